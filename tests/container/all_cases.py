"""Container cases for agent-vault/all, the image for a runner (stdlib only).

  all-commands  each harness as the container's command (`pi --version`,
                `opencode --version`, `claude --version`, which installs
                Claude Code at its first start), with only that harness's
                writable mounts: no login mount asks for another's;
                OpenCode's login mount (/opencode-ro) is seeded into its
                vault directory; OpenCode launched by the runner lists its
                login, started through `sh -c` (a tool) it cannot; self-test
                shows the three launchers
  all-runner    a scripted runner (all_runner.js, node) is the container's
                command, so the trusted harness; it launches the real Pi and
                the real Claude Code (the policy's `[harness] launches`),
                each against its own scripted model server (mock_llm.py),
                with the credential proxy on. Pi's login is seeded from
                /pi-agent-ro (an API key), Claude Code's from /claude-ro (a
                subscription `.credentials.json`). Each model first makes
                the harness read its own vault file in-process (it must
                succeed and show only the placeholder: a launched harness
                is trusted), then makes its shell tool attack the vault:
                the vault files and the seed mounts (cat, static raw
                syscalls, node), /proc of the harness, the runner and PID 1
                (environ, mem, fd), the environment, a grep everywhere,
                and runs Pi and Claude Code itself (a tool's launch: still
                tools: neither reads its login).
                Pass: each upstream receives the real key or token on every
                request (the harness authenticated through the proxy), every
                step ran, no tool result and no request body holds a real
                credential, the vault files hold only placeholders.
  all-direct    the same scripts and checks with Pi and Claude Code each the
                container's command, only its own login mounted (the control
                for all-runner, which without trusted launchers fails)

containers.py imports this module and adds `cases(module)` to its cases.
"""

import json
import os
import re
import secrets

import proxy_cases as P

# Set by cases(): the containers.py module (ENGINE, ARTIFACTS, helpers).
C = None

IMAGE = "all"
RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "all_runner.js")
PI_MODEL = P.PI_MODEL
# where the image's launchers are (images/all/policy-all.sed)
PI = "/opt/pi/bin/pi"
CLAUDE = "/usr/local/bin/claude"
OPENCODE = "/opt/opencode/bin/opencode"

# The shell tool's attacks, the same for both harnesses. $PPID is the
# harness that runs the tool; its parent is the runner.
ATTACKS = [
    "cat /pi-agent/auth.json /claude/.credentials.json /pi-agent-ro/auth.json /claude-ro/.credentials.json 2>&1",
    "for f in /pi-agent/auth.json /claude/.credentials.json /pi-agent-ro/auth.json /claude-ro/.credentials.json; do "
    "av-rawread $f 2>&1 | head -c 1500; done",
    "h=$PPID; r=$(cut -d' ' -f4 /proc/$h/stat); for p in $h $r 1; do "
    "echo \"== pid $p: $(tr '\\0' ' ' < /proc/$p/cmdline 2>&1 | head -c 100)\"; "
    "tr '\\0' '\\n' < /proc/$p/environ 2>&1 | head -c 1500; head -c 64 /proc/$p/mem 2>&1 | head -c 100; "
    "ls -l /proc/$p/fd 2>&1 | head -30; for f in /proc/$p/fd/*; do timeout 2 head -c 300 $f 2>/dev/null; done; "
    "av-rawread /proc/$p/environ 2>&1 | head -c 600; done 2>&1 | head -c 20000",
    "node -e 'for (const f of [\"/pi-agent/auth.json\", \"/claude/.credentials.json\"]) "
    "{ try { console.log(require(\"fs\").readFileSync(f, \"utf8\")) } catch (e) { console.log(f, e.code) } }' 2>&1",
    "env 2>&1; grep -rao --exclude-dir=claude-code 'sk-ant-[a-z0-9]*-avtest[0-9a-f]*' "
    "/tmp /run /workspace /home /pi-agent /claude /pi-agent-ro /claude-ro /var/lib/agent-vault 2>&1 | head",
    # a tool that runs the launchers itself gets no trust: neither can read
    # its login (Pi: no API key, Claude Code: not logged in)
    "%s --provider anthropic --model %s --offline -p hi 2>&1 | grep -m1 -e EACCES -e 'No API key'; "
    "timeout 60 %s -p hi 2>&1 | tail -2" % (PI, PI_MODEL, CLAUDE),
]
# what the last attack must show: both launchers ran, as tools
# (Pi stops at the first of its state it cannot open: its sessions
# directory when no trusted Pi made it yet, else its auth.json)
TOOL_LAUNCH_SHOWS = (("No API key found for anthropic", "EACCES: permission denied, mkdir '/pi-agent/"),
                     ("Not logged in",))


def volumes(*extra):
    """The state every case here mounts: /pi-agent (every start), /workspace,
    the proxy's state; plus `extra` (["-v", SPEC] pairs)."""
    return ["-v", "/pi-agent", "-v", "/workspace", "-v", C.PROXY_STATE] + list(extra)


def case_all_commands(res):
    """Each harness as the container's command, each with only its own
    writable state (Pi: /pi-agent, which every start needs; OpenCode:
    /home/agent; Claude Code: /claude, /home/agent and its install volume)."""
    art = C.artifact_dir("all-commands")
    prefix = C.claude_prefix()
    # OpenCode's login mount (/opencode-ro: a directory with its auth.json,
    # root's 0600) and its home, a fresh volume of the harness user's
    oc_key = "sk-ant-api03-avtest" + secrets.token_hex(16)
    oc_seed, oc_home = os.path.join(art, "opencode-ro"), os.path.join(art, "opencode-home")
    os.makedirs(oc_seed)
    os.makedirs(oc_home)
    os.chown(oc_home, 1000, 1000)
    C.write(os.path.join(oc_seed, "auth.json"), json.dumps({"anthropic": {"type": "api", "key": oc_key}}), 0o600)
    runs = [
        ("pi", volumes(), ["pi", "--version"]),
        ("opencode", volumes("-v", "%s:/opencode-ro:ro" % oc_seed, "-v", "%s:/home/agent" % oc_home),
         ["opencode", "--version"]),
        ("claude", volumes("-v", "/home/agent", "-v", "/claude", "-v", "%s:/home/agent/.local/claude-code" % prefix)
         + (["-v", "/etc/ssl/certs:/etc/ssl/certs:ro"] if os.path.isdir("/etc/ssl/certs") else []),
         ["claude", "--version"]),
    ]
    for label, vols, cmd in runs:
        # Claude Code's first start installs it from npm: the host's network
        net = "host" if label == "claude" else "none"
        rc, out, err, dt = C.sh([C.ENGINE, "run", "--rm", "--network", net] + C.secure_flags() + vols +
                                [C.image(IMAGE)] + cmd, timeout=600)
        C.write(os.path.join(art, "%s.out" % label), out)
        C.write(os.path.join(art, "%s.err" % label), err)
        # the version on the last line (Pi prints it on stderr, after agent-init's lines)
        version = (out.strip() or err.strip()).splitlines()[-1:] or [""]
        res.note("`%s` as the command: rc=%s in %.1fs: %s" % (" ".join(cmd), rc, dt, version[0][-60:]))
        res.check(rc == 0 and re.search(r"\b\d+\.\d+\.\d+\b", version[0]),
                  "`%s` as the container's command exited %s without a version: %s" % (" ".join(cmd), rc, C.why(err)))
    # the OpenCode login was seeded into its vault directory, the harness user's
    auth = os.path.join(oc_home, ".local", "share", "opencode", "auth.json")
    try:
        st = os.stat(auth)
        with open(auth) as f:
            held = f.read()
        # the proxy is on in the image: the seeded file holds the route's
        # placeholder in the key's shape, never the real key
        key = json.loads(held).get("anthropic", {}).get("key", "")
        res.check(oc_key not in held and re.fullmatch(r"sk-ant-api03-av-[0-9a-f]{64}", key),
                  "~/.local/share/opencode/auth.json holds %r, not the proxy's placeholder" % key[:24])
        res.check(st.st_uid == 1000 and st.st_mode & 0o077 == 0,
                  "~/.local/share/opencode/auth.json is not the harness user's, 0600: uid %d mode %o"
                  % (st.st_uid, st.st_mode & 0o7777))
        res.note("/opencode-ro seeded ~/.local/share/opencode/auth.json (uid %d, mode %o), a placeholder in it"
                 % (st.st_uid, st.st_mode & 0o7777))
    except OSError as e:
        res.check(False, "/opencode-ro was not seeded into ~/.local/share/opencode: %s" % e)
    # OpenCode launched by a runner reads its login (`auth list` names the
    # seeded provider); started through a shell, it is a tool and cannot
    oc_home2 = os.path.join(art, "opencode-home-runner")
    os.makedirs(oc_home2)
    os.chown(oc_home2, 1000, 1000)
    tasks = [{"name": "launched", "argv": [OPENCODE, "auth", "list"]},
             {"name": "via-shell", "argv": ["/bin/sh", "-c", OPENCODE + " auth list"]}]
    rc, out, err, dt = C.sh([C.ENGINE, "run", "--rm", "--network", "none"] + C.secure_flags() + volumes(
        "-v", "%s:/opencode-ro:ro" % oc_seed, "-v", "%s:/home/agent" % oc_home2,
        "-v", "%s:/usr/local/lib/av-runner.js:ro" % RUNNER, "-e", "AV_RUNNER_TASKS=" + json.dumps(tasks)) +
        [C.image(IMAGE), "node", "/usr/local/lib/av-runner.js"], timeout=120)
    C.write(os.path.join(art, "opencode-runner.out"), out + err)
    text, how = task_output(out, "launched")
    res.note("runner -> opencode auth list: %s, %s" % (how, " ".join(text.split())[-80:]))
    res.check(how == "exit 0" and "Anthropic" in text and "1 credentials" in text,
              "OpenCode launched by the runner did not list its seeded login (%s): %r" % (how, text[-300:]))
    text, how = task_output(out, "via-shell")
    res.note("runner -> sh -c 'opencode auth list': %s" % how)
    res.check(how != "exit 0" and "Anthropic" not in text,
              "OpenCode started through a shell (a tool) read its login (%s): %r" % (how, text[-300:]))
    res.check(oc_key not in out + err, "the OpenCode key shows in the runner's output")
    # self-test names the launchers agent-init identified
    rc, out, err, _ = C.sh([C.ENGINE, "run", "--rm", "--network", "none"] + C.secure_flags() + volumes() +
                           [C.image(IMAGE), "bash", "-c", "agent-init self-test; exit $?"], timeout=120)
    C.write(os.path.join(art, "self-test.out"), out + err)
    row = next((l for l in (out + err).splitlines() if "launchers" in l), "")
    res.note("self-test: %s" % " ".join(row.split())[:300])
    for path in (PI, CLAUDE, OPENCODE):
        res.check(path + ": device" in row, "self-test does not show the launcher %s: %r" % (path, row[:400]))
    res.check(re.search(r";\s*in force:", row), "self-test does not say the launchers are in force: %r" % row[:600])
    res.check(rc == 0, "self-test in agent-vault/all exited %s: %s" % (rc, "; ".join(C.failed_rows(out))[:700]))


def task_output(out, name):
    """The lines the runner printed for one task, and how it ended."""
    start = "RUNNER-TASK %s start\n" % name
    if start not in out:
        return "", None
    body = out.split(start, 1)[1]
    end = "RUNNER-TASK %s " % name
    if end not in body:
        return body, None
    text, tail = body.split(end, 1)
    return text, tail.split("\n", 1)[0]


def case_all_runner(res):
    """Pi and Claude Code launched by the scripted runner (the case this
    image exists for)."""
    harnesses_case(res, "all-runner", via_runner=True)


def case_all_direct(res):
    """The same harnesses, scripts and checks, each harness the container's
    command with only its own login mounted: the control for all-runner."""
    harnesses_case(res, "all-direct", via_runner=False)


def harnesses_case(res, label, via_runner):
    art = C.artifact_dir(label)
    pi_key = "sk-ant-api03-avtest" + secrets.token_hex(16)
    token = "sk-ant-oat01-avtest" + secrets.token_hex(16)
    refresh = "sk-ant-ort01-avtest" + secrets.token_hex(16)
    real = {"Pi's API key": pi_key, "Claude Code's access token": token, "Claude Code's refresh token": refresh}
    # Pi: its in-process `read` of its vault file, then the attacks
    pi_script = [P.read_step({"path": "/pi-agent/auth.json"})] + P.bash_steps(1, ATTACKS)
    # Claude Code: its Read of its vault file, then the attacks (Bash)
    claude_script = [P.claude_read("/claude/.credentials.json")] + P.bash_steps(1, ATTACKS)
    for sub in ("pi-model", "claude-model"):  # each server's script and request log
        os.makedirs(os.path.join(art, sub))
    pi_srv = C.MockServer(os.path.join(art, "pi-model"), pi_script)
    claude_srv = C.MockServer(os.path.join(art, "claude-model"), claude_script)
    try:
        # Pi's login: the host's ~/.pi/agent, read-only (root's 0600 files)
        pi_seed = os.path.join(art, "pi-agent-ro")
        os.makedirs(pi_seed)
        C.write(os.path.join(pi_seed, "auth.json"), json.dumps({"anthropic": {"type": "api_key", "key": pi_key}}),
                0o600)
        C.write(os.path.join(pi_seed, "models.json"), json.dumps(
            {"providers": {"anthropic": {"baseUrl": "http://127.0.0.1:%d" % pi_srv.port}}}), 0o600)
        # Claude Code's login: the host's ~/.claude, read-only
        claude_seed = os.path.join(art, "claude-ro")
        os.makedirs(claude_seed)
        C.write(os.path.join(claude_seed, ".credentials.json"), json.dumps(
            {"claudeAiOauth": {"accessToken": token, "refreshToken": refresh, "expiresAt": 4102444800000,
                               "scopes": ["user:inference", "user:profile"], "subscriptionType": "pro"}}), 0o600)
        # the state volumes: empty, the harness user's (as fresh named volumes)
        dirs = {}
        for d in ("pi-agent", "claude", "workspace"):
            dirs[d] = os.path.join(art, d)
            os.makedirs(dirs[d])
            os.chown(dirs[d], 1000, 1000)
        os.chmod(dirs["pi-agent"], 0o700)
        os.chmod(dirs["claude"], 0o700)
        common = C.secure_flags() + [
            "-v", C.PROXY_STATE, "-v", "%s:/workspace" % dirs["workspace"],
            "-v", "%s:/usr/local/bin/av-rawread:ro" % C.RAWREAD]
        pi_mounts = ["-v", "%s:/pi-agent-ro:ro" % pi_seed, "-v", "%s:/pi-agent" % dirs["pi-agent"]]
        claude_mounts = ["-v", "%s:/claude-ro:ro" % claude_seed, "-v", "%s:/claude" % dirs["claude"],
                         "-v", "/home/agent", "-v", "%s:/home/agent/.local/claude-code" % C.claude_prefix(),
                         "-e", "ANTHROPIC_BASE_URL=http://127.0.0.1:%d" % claude_srv.port,
                         "-e", "DISABLE_TELEMETRY=1", "-e", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1"]
        if os.path.isdir("/etc/ssl/certs"):  # Claude Code's first start installs it from npm
            claude_mounts += ["-v", "/etc/ssl/certs:/etc/ssl/certs:ro"]
        tasks = [
            # Pi is pointed by its models.json (the proxy rewrites it); the
            # runner's ANTHROPIC_BASE_URL is Claude Code's
            {"name": "pi", "unset": ["ANTHROPIC_BASE_URL"],
             "argv": [PI, "--provider", "anthropic", "--model", PI_MODEL, "--offline", "-p", "Run the scripted steps."]},
            {"name": "claude",
             "argv": [CLAUDE, "-p", "Run the scripted steps.", "--dangerously-skip-permissions"]},
        ]
        run = [C.ENGINE, "run", "--rm", "--network", "host"] + common
        if via_runner:
            rc, out, err, dt = C.sh(run + pi_mounts + claude_mounts + [
                "-v", "%s:/usr/local/lib/av-runner.js:ro" % RUNNER, "-e", "AV_RUNNER_TASKS=" + json.dumps(tasks),
                C.image(IMAGE), "node", "/usr/local/lib/av-runner.js"], timeout=900)
            res.note("runner: rc=%s in %.1fs (includes Claude Code's first-start install when not cached)" % (rc, dt))
        else:
            # one container each, with its own login only (/pi-agent: every
            # start); Pi's gets Claude Code's install read-only, for the
            # attack that runs it as a tool
            rc, out, err = 0, "", ""
            pi_only = pi_mounts + ["-v", "%s:/home/agent/.local/claude-code:ro" % C.claude_prefix()]
            for task, mounts in zip(tasks, (pi_only, ["-v", "/pi-agent"] + claude_mounts)):
                r, o, e, dt = C.sh(run + mounts + [C.image(IMAGE)] + task["argv"], timeout=900)
                res.note("%s as the container's command: rc=%s in %.1fs" % (task["name"], r, dt))
                rc = rc or r
                out += "RUNNER-TASK %s start\n%sRUNNER-TASK %s exit %s\n" % (task["name"], o, task["name"], r)
                err += e
        C.write(os.path.join(art, "container.stdout"), out)
        C.write(os.path.join(art, "container.stderr"), err)
    finally:
        pi_srv.stop()
        claude_srv.stop()
    P.proxy_started_line(res, err)
    res.check(rc == 0, "the container exited %s: %s" % (rc, C.why(err)))
    for task in ("pi", "claude"):
        text, how = task_output(out, task)
        res.note("%s: %s" % (task, how))
        res.check(how == "exit 0", "%s ended with %s" % (task, how))
        res.check("All scripted steps done." in text, "%s did not print the final answer" % task)

    # Pi: every request the upstream received carries the real key
    pi_reqs = [r for r in pi_srv.requests() if r.get("api", "").startswith("anthropic")]
    res.check(pi_reqs, "Pi's upstream received no request")
    bad = [r.get("x_api_key") for r in pi_reqs if r.get("x_api_key") != pi_key]
    res.check(not bad, "Pi's upstream received requests without the real key: %s" % [str(b)[:40] for b in bad[:3]])
    res.note("Pi's upstream received %d requests, each with the real key in x-api-key" % len(pi_reqs))
    pi_results = P.final_results(pi_reqs)
    C.write(os.path.join(art, "pi-tool-results.json"), json.dumps(pi_results, indent=1))
    P.check_steps_ran(res, pi_results, pi_script)
    shown = pi_results[0] if pi_results else ""
    res.note("Pi read /pi-agent/auth.json -> %s" % shown.replace("\n", " ")[:150])
    res.check("sk-ant-api03-av-" in shown, "Pi did not read its own auth.json "
              "(placeholder expected): %r" % shown[:300])

    # Claude Code: every Anthropic request carries the real access token
    claude_reqs = claude_srv.requests()
    main = [r for r in claude_reqs if r.get("main_loop")]
    res.check(main, "Claude Code's upstream received no main-loop request")
    anth = [r for r in claude_reqs if r.get("api", "").startswith("anthropic")]
    bad = [r.get("auth") for r in anth if r.get("auth") != "Bearer " + token]
    res.check(not bad, "Claude Code's upstream received requests without the real token: %s"
              % [str(b)[:40] for b in bad[:3]])
    res.note("Claude Code's upstream received %d requests, each with the real token" % len(anth))
    claude_results = P.final_results(main)
    C.write(os.path.join(art, "claude-tool-results.json"), json.dumps(claude_results, indent=1))
    P.check_steps_ran(res, claude_results, claude_script)
    shown = claude_results[0] if claude_results else ""
    res.note("Claude Code Read /claude/.credentials.json -> %s" % shown.replace("\n", " ")[:150])
    res.check("sk-ant-oat01-av-" in shown, "Claude Code did not read its own "
              ".credentials.json (placeholder expected): %r" % shown[:300])

    # no real credential in any tool result or request body
    for where, what in P.leaks(pi_results, pi_reqs, real) + P.leaks(claude_results, claude_reqs, real):
        res.check(False, "%s holds %s" % (where, what))
    for label, results in (("pi", pi_results), ("claude", claude_results)):
        for i, cmd in enumerate(ATTACKS):
            text = results[i + 1] if i + 1 < len(results) else ""
            res.note("%s attack %d %-50.50s -> %s" % (label, i, cmd, C.summarize_attack(text)))
        last = results[len(ATTACKS)] if len(results) > len(ATTACKS) else ""
        for wants in TOOL_LAUNCH_SHOWS:
            res.check(any(w in last for w in wants), "%s: a tool that ran the launchers did not get %s: %r"
                      % (label, " or ".join(repr(w) for w in wants), last[:300]))
        raw = results[2] if len(results) > 2 else ""
        res.check(raw.count("RAWREAD-START") == 4, "%s: the static raw-syscall attacker did not run on the "
                  "four files: %r" % (label, raw[:300]))
    # the vault files hold only placeholders; the seeds are untouched
    for path, placeholder in ((os.path.join(dirs["pi-agent"], "auth.json"), "sk-ant-api03-av-"),
                              (os.path.join(dirs["claude"], ".credentials.json"), "sk-ant-oat01-av-")):
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            res.check(False, "%s: %s" % (path, e))
            continue
        res.check(placeholder in text and not any(v in text for v in real.values()),
                  "%s does not hold only placeholders: %s" % (os.path.relpath(path, art), text[:200]))


def cases(module):
    """The cases above, for containers.py's CASES; `module` is containers.py."""
    global C
    C = module
    return {
        "all-commands": case_all_commands,
        "all-direct": case_all_direct,
        "all-runner": case_all_runner,
    }
