# images/all's policy: the base image's policy (policy/default.toml with
# `[proxy] mode = "on"`) plus what a runner needs, and nothing else changed
# (images/all/Dockerfile checks that only these lines are added):
# - `[harness] launches`: the harness programs the runner (the container's
#   command, the trusted harness) may start as harnesses of their own. Pi's
#   and OpenCode's npm entry points (root-owned, in /opt), and `claude`, the
#   root-owned first-start installer (images/claude/claude-start), which
#   execs Claude Code from its install volume;
# - the login mounts of Claude Code and OpenCode as seeds (Pi's,
#   /pi-agent-ro, is in the default policy): a read-only mount of the host's
#   ~/.claude at /claude-ro, of ~/.local/share/opencode at /opencode-ro.
#   A seed whose source is not mounted asks nothing of its target, so a
#   start that uses only Pi needs no /claude or /home/agent volume.
/^unhooked = /a\
# images/all: the harnesses a runner may launch (images/all/policy-all.sed).\
launches = ["/opt/pi/bin/pi", "/usr/local/bin/claude", "/opt/opencode/bin/opencode"]
$a\
\
# images/all: Claude Code's and OpenCode's login mounts (images/all/policy-all.sed).\
[[seed]]\
source = "/claude-ro"\
target = "${CLAUDE_CONFIG_DIR:-~/.claude}"\
mode = "copy-missing"\
\
[[seed]]\
source = "/opencode-ro"\
target = "~/.local/share/opencode"\
mode = "copy-missing"
