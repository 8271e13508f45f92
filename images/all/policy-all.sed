# images/all's policy: the base image's policy (policy/default.toml with
# `[proxy] mode = "on"`) plus what a runner needs, and nothing else changed
# (images/all/Dockerfile checks that only these lines are added):
# - `[harness] launches`: the harness programs the runner (the container's
#   command, the trusted harness) may start as harnesses of their own. Pi's
#   and OpenCode's npm entry points (root-owned, in /opt), and `claude`, the
#   root-owned first-start installer (images/claude/claude-start), which
#   execs Claude Code from its install volume;
# - OpenCode's login mount as a seed (Pi's /pi-agent-ro and Claude Code's
#   /claude-ro are in the default policy): a read-only mount of the host's
#   ~/.local/share/opencode at /opencode-ro.
#   A seed whose source is not mounted asks nothing of its target, so a
#   start that uses only Pi needs no /claude or /home/agent volume.
/^unhooked = /a\
# images/all: the harnesses a runner may launch (images/all/policy-all.sed).\
launches = ["/opt/pi/bin/pi", "/usr/local/bin/claude", "/opt/opencode/bin/opencode"]
$a\
\
# images/all: OpenCode's login mount (images/all/policy-all.sed).\
[[seed]]\
source = "/opencode-ro"\
target = "~/.local/share/opencode"\
mode = "copy-missing"
