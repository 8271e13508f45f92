"""Container cases for the credential proxy (stdlib only).

The images' policy turns the proxy on (`[proxy] mode = "on"`): agent-init
starts vault-proxy under uid 64990 with the real credential and shows the
harness placeholders and a base URL on 127.0.0.1. These cases drive the real
harnesses with the scripted model server (mock_llm.py), which is the route's
upstream (the base URL the user gave becomes the upstream), and check both
ends: what the harness's own in-process tools can read (placeholders only)
and what the upstream receives (the real key or token, on every request).

  proxy-pi-key        Pi, `anthropic` provider, API key in auth.json
  proxy-pi-oauth      Pi, `anthropic` provider, subscription (`oauth` entry)
  proxy-claude-key    Claude Code, ANTHROPIC_API_KEY in the environment
  proxy-claude-oauth  Claude Code, subscription `.credentials.json` seeded from
                      /claude-ro; three starts (seed, placeholder + seed,
                      no seed: the proxy's stored session)
  proxy-claude-both   Claude Code with ANTHROPIC_API_KEY and a seeded login: one
                      base URL, the placeholder picks the real credential
  proxy-sidecar       vault-proxy as its own container (agent-vault/proxy,
                      `--config FILE`), the agent container non-root with no
                      capabilities joining its network namespace
  proxy-nonroot       `--user 1000` with the image's policy: refused (exit 2),
                      the message names the sidecar form
  proxy-restart       the documented capabilities: a killed proxy is restarted
                      (requests work again), `stop` ends the container promptly

containers.py imports this module and adds `cases(module)` to its cases.
"""

import json
import os
import re
import secrets
import socket
import subprocess
import time

# Set by cases(): the containers.py module (ENGINE, ARTIFACTS, helpers).
C = None

PROXY_UID = 64990
PI_MODEL = "claude-sonnet-4-5"


def marker(i):
    return "PSTEP-%d" % i


def shell(i, cmd):
    """A bash step whose result carries its marker."""
    return "echo %s; %s" % (marker(i), cmd)


def bash_steps(first, cmds):
    return [shell(first + i, c) for i, c in enumerate(cmds)]


def read_step(tool_input):
    return {"tool": "read", "input": tool_input}


def leaks(results, reqs, secrets_):
    """(where, name) for every secret found in a tool result or a request
    body the upstream received."""
    found = []
    for name, value in secrets_.items():
        for i, text in enumerate(results):
            if value in text:
                found.append(("tool result %d" % i, name))
        for r in reqs:
            if value in r.get("body", ""):
                found.append(("request body %s" % r.get("path"), name))
    return found


def final_results(reqs):
    """The tool results of the longest conversation the upstream saw."""
    with_results = [r for r in reqs if r.get("tool_results") is not None]
    if not with_results:
        return []
    return max((r["tool_results"] for r in with_results), key=len)


def proxy_started_line(res, err):
    """vault-proxy's own start line (it names its uid) and agent-init's
    start line naming the credential proxy among the harness's layers."""
    line = next((l for l in err.splitlines() if l.startswith("vault-proxy: serving")), "")
    res.check(line, "vault-proxy did not start: %s" % C.why(err))
    res.check(("; uid %d;" % PROXY_UID) in line, "vault-proxy is not uid %d: %s" % (PROXY_UID, line))
    started = next((l for l in err.splitlines() if "started as pid" in l), "")
    res.check("credential proxy" in started, "agent-init's start line does not name the credential proxy: %r"
              % started)
    res.note(line.strip()[:200])
    return line


def check_steps_ran(res, results, script):
    res.check(len(results) >= len(script), "only %d of %d scripted steps came back" % (len(results), len(script)))
    for i, step in enumerate(script):
        if isinstance(step, str):
            text = results[i] if i < len(results) else ""
            res.check(marker(i) in text, "bash step %d did not run: %r" % (i, step[:80]))


# ---------------------------------------------------------------------------
# Pi
PI_BASH = [
    "cat /pi-agent/auth.json 2>&1; av-rawread /pi-agent/auth.json $PPID 1 2>&1 | tail -3",
    "ls -la /var/lib/agent-vault/proxy 2>&1; cat /var/lib/agent-vault/proxy/* 2>&1; "
    "for p in /proc/[0-9]*; do echo \"== $p $(stat -c %u $p)\"; tr '\\0' '\\n' < $p/environ 2>&1 | head -c 400; "
    "head -c 64 $p/mem 2>&1 | head -c 80; done 2>&1 | head -80",
    "grep -rao 'sk-ant-[a-z0-9]*-avtest[0-9a-f]*' /tmp /run /workspace /home /pi-agent /var/lib/agent-vault 2>&1 | head",
]


def pi_script():
    reads = [read_step({"path": "/pi-agent/auth.json"}),          # 0: the vault file, in-process
             read_step({"path": "/pi-agent-ro/auth.json"}),       # 1: the seed (root's 0600 file)
             read_step({"path": "/pi-agent/models.json"}),        # 2: where Pi is pointed
             read_step({"path": "/proc/1/environ"})]              # 3: agent-init's environment
    return reads + bash_steps(len(reads), PI_BASH)


def pi_seed(art, port, auth):
    seed = os.path.join(art, "seed")
    state = os.path.join(art, "state")
    ws = os.path.join(art, "workspace")
    for d in (seed, state, ws):
        os.makedirs(d)
    # the user's base URL: the proxy route's upstream
    C.write(os.path.join(seed, "models.json"),
            json.dumps({"providers": {"anthropic": {"baseUrl": "http://127.0.0.1:%d" % port}}}), 0o600)
    C.write(os.path.join(seed, "auth.json"), json.dumps({"anthropic": auth}), 0o600)
    os.chown(state, 1000, 1000)
    os.chmod(state, 0o700)
    os.chown(ws, 1000, 1000)
    return seed, state, ws


def run_pi(res, art, seed, state, ws, name, flags=None, entry=None):
    args = [C.ENGINE, "run", "--rm", "--name", "av-test-%s-%d" % (name, os.getpid()), "--network", "host"] + \
        (flags if flags is not None else C.secure_flags()) + C.volumes_except("pi", "/pi-agent", "/workspace") + [
        "-v", "%s:/pi-agent-ro:ro" % seed, "-v", "%s:/pi-agent" % state, "-v", "%s:/workspace" % ws,
        "-v", "%s:/usr/local/bin/av-rawread:ro" % C.RAWREAD] + (entry or [C.image("pi")]) + [
        "pi", "--provider", "anthropic", "--model", PI_MODEL, "--offline", "-p", "Run the scripted steps."]
    rc, out, err, dt = C.sh(args, timeout=300)
    C.write(os.path.join(art, "%s.stdout" % name), out)
    C.write(os.path.join(art, "%s.stderr" % name), err)
    res.note("%s: rc=%s in %.1fs" % (name, rc, dt))
    res.check(rc == 0, "%s exited %s: %s" % (name, rc, C.why(err)))
    res.check("All scripted steps done." in out, "%s did not print the final answer" % name)
    return err


def pi_case(res, label, auth, want_header, want_value, real, placeholder_prefix):
    """Shared body of the Pi cases: `auth` is the auth.json entry, the
    upstream must see `want_value` in `want_header` on every request."""
    art = C.artifact_dir(label)
    script = pi_script()
    srv = C.MockServer(art, script)
    try:
        seed, state, ws = pi_seed(art, srv.port, auth)
        seed_sha = C.sha(os.path.join(seed, "auth.json"))
        err = run_pi(res, art, seed, state, ws, label)
    finally:
        srv.stop()
    proxy_started_line(res, err)
    reqs = [r for r in srv.requests() if r.get("api", "").startswith("anthropic")]
    C.write(os.path.join(art, "paths.txt"), "\n".join("%s %s" % (r.get("method"), r.get("path")) for r in reqs))
    res.check(reqs, "the upstream received no Anthropic request")
    bad = [r.get(want_header) for r in reqs if r.get(want_header) != want_value]
    res.check(not bad, "requests the upstream received without the real credential in %s: %s"
              % (want_header, [str(b)[:40] for b in bad[:3]]))
    res.note("the upstream received %d requests, each with the real credential in %s" % (len(reqs), want_header))
    results = final_results(reqs)
    C.write(os.path.join(art, "tool_results.json"), json.dumps(results, indent=1))
    check_steps_ran(res, results, script)
    for where, name in leaks(results, reqs, real):
        res.check(False, "%s holds %s" % (where, name))
    # 0: Pi's in-process read of its auth.json: the placeholder, not the key
    shown = results[0] if results else ""
    res.check(placeholder_prefix + "av-" in shown, "Pi's read of auth.json shows no placeholder: %r" % shown[:300])
    res.note("Pi read /pi-agent/auth.json -> %s" % shown.replace("\n", " ")[:150])
    # 1: the seed is root's 0600 file: Pi cannot read it
    res.check(len(results) > 1 and ("EACCES" in results[1] or "ermission denied" in results[1]),
              "Pi's read of the seed was not refused: %r" % (results[1][:200] if len(results) > 1 else None))
    # 2: models.json points at the proxy
    res.check(len(results) > 2 and "http://127.0.0.1:" in results[2] and "/pi-anthropic" in results[2],
              "models.json does not point Pi at the proxy: %r" % (results[2][:300] if len(results) > 2 else None))
    # 3: agent-init's environment is not the harness's to read
    res.check(len(results) > 3 and ("EACCES" in results[3] or "ermission denied" in results[3]),
              "Pi read /proc/1/environ: %r" % (results[3][:200] if len(results) > 3 else None))
    # the files: the seed untouched, the vault copy holds the placeholder
    res.check(C.sha(os.path.join(seed, "auth.json")) == seed_sha, "the seed auth.json changed")
    with open(os.path.join(state, "auth.json")) as f:
        vault = f.read()
    res.check(placeholder_prefix + "av-" in vault and not any(v in vault for v in real.values()),
              "/pi-agent/auth.json does not hold only placeholders: %s" % vault[:200])
    return art, state


def case_proxy_pi_key(res):
    key = "sk-ant-api03-avtest" + secrets.token_hex(16)
    pi_case(res, "proxy-pi-key", {"type": "api_key", "key": key}, "x_api_key", key,
            {"the API key": key}, "sk-ant-api03-")


def case_proxy_pi_oauth(res):
    access = "sk-ant-oat01-avtest" + secrets.token_hex(16)
    refresh = "sk-ant-ort01-avtest" + secrets.token_hex(16)
    pi_case(res, "proxy-pi-oauth",
            {"type": "oauth", "access": access, "refresh": refresh, "expires": 4102444800000},
            "auth", "Bearer " + access, {"the access token": access, "the refresh token": refresh},
            "sk-ant-oat01-")


# ---------------------------------------------------------------------------
# Claude Code
def claude_read(path):
    return {"tool": "Read", "input": {"file_path": path}}


CLAUDE_BASH = [
    "env 2>&1 | grep -i -e anthropic -e claude",
    "ls -la /var/lib/agent-vault/proxy 2>&1; cat /var/lib/agent-vault/proxy/* 2>&1; "
    "for p in /proc/[0-9]*; do echo \"== $p $(stat -c %u $p)\"; tr '\\0' '\\n' < $p/environ 2>&1 | head -c 400; "
    "done 2>&1 | head -80",
    "av-rawread /claude/.credentials.json $PPID 1 2>&1 | tail -3; "
    "grep -rao 'sk-ant-[a-z0-9]*-avtest[0-9a-f]*' /tmp /run /workspace /home /claude /var/lib/agent-vault 2>&1 | head",
]


def claude_case(res, label, env, mounts, want_header, want_value, real, reads, state_setup=None,
                starts=None, proxy_state=None):
    """Run Claude Code once per entry of `starts` (each: the extra mounts of
    that start; default one start with `mounts`), /claude and the workspace
    kept across starts; every start must reach the upstream with the real
    credential only. Returns the artifact dir, what state_setup returned,
    and each start's agent-init stderr."""
    art = C.artifact_dir(label)
    script = [claude_read(p) for p, _ in reads] + bash_steps(len(reads), CLAUDE_BASH)
    srv = C.MockServer(art, script)
    state = None
    starts = starts if starts is not None else [mounts]
    errs = []
    try:
        if state_setup:
            state = state_setup(art)
        for n, start_mounts in enumerate(starts, 1):
            tag = "claude" if len(starts) == 1 else "claude-%d" % n
            before = len(srv.requests())
            C.run_claude(res, art, srv.port, env, start_mounts, proxy_state=proxy_state, tag=tag)
            with open(os.path.join(art, "%s.stderr" % tag)) as f:
                errs.append(f.read())
            proxy_started_line(res, errs[-1])
            check_claude_start(res, art, tag, srv.requests()[before:], script, want_header, want_value,
                               real, reads)
    finally:
        srv.stop()
    return art, state, errs


def check_claude_start(res, art, tag, reqs, script, want_header, want_value, real, reads):
    main = [r for r in reqs if r.get("main_loop")]
    res.check(main, "%s: the upstream received no main-loop request" % tag)
    anth = [r for r in reqs if r.get("api", "").startswith("anthropic")]
    bad = [r.get(want_header) for r in anth if r.get(want_header) != want_value]
    res.check(not bad, "%s: requests the upstream received without the real credential in %s: %s"
              % (tag, want_header, [str(b)[:40] for b in bad[:3]]))
    res.note("%s: the upstream received %d Anthropic requests, each with the real credential in %s"
             % (tag, len(anth), want_header))
    results = final_results(main)
    C.write(os.path.join(art, "%s.tool_results.json" % tag), json.dumps(results, indent=1))
    check_steps_ran(res, results, script)
    for where, name in leaks(results, reqs, real):
        res.check(False, "%s: %s holds %s" % (tag, where, name))
    for i, (path, want) in enumerate(reads):
        text = results[i] if i < len(results) else ""
        res.note("%s: Claude Code Read %s -> %s" % (tag, path, text.replace("\n", " ")[:140]))
        if want:
            res.check(want in text, "%s: Claude Code's Read of %s shows no %r: %r" % (tag, path, want, text[:300]))


def case_proxy_claude_key(res):
    """ANTHROPIC_API_KEY in the container's environment. Claude Code's Read
    refuses /proc files itself (reported, and checked for no leak); that the
    harness's own environment holds only the placeholder shows at the
    upstream: vault-proxy answers 401 to any request without the exact
    placeholder, so every request the upstream received came from a harness
    holding the placeholder, and carried the real key from the proxy."""
    key = "sk-ant-api03-avtest" + secrets.token_hex(16)
    reads = [("/proc/self/environ", None),     # its own environment (Claude Code's Read refuses /proc)
             ("/claude/.claude.json", None),   # its config (may hold key hints)
             ("/proc/1/environ", None)]        # agent-init's
    claude_case(res, "proxy-claude-key", {"ANTHROPIC_API_KEY": key}, [], "x_api_key", key,
                {"the API key": key}, reads)


def case_proxy_claude_oauth(res):
    """A subscription login on the host, mounted read-only at /claude-ro
    (root-owned 0400, as the README shows), seeded by agent-init into the
    empty /claude state volume. Three starts, each authenticating with the
    real token upstream while Claude Code's Read of .credentials.json shows
    a placeholder: 1. the seed is copied, then replaced by placeholders;
    2. /claude holds the last start's placeholder, the real login is read
    from the mount again; 3. without the mount, the proxy resumes the
    session it stored in its state volume at the first start."""
    token = "sk-ant-oat01-avtest" + secrets.token_hex(16)
    refresh = "sk-ant-ort01-avtest" + secrets.token_hex(16)
    cred = {"claudeAiOauth": {"accessToken": token, "refreshToken": refresh, "expiresAt": 4102444800000,
                              "scopes": ["user:inference", "user:profile"], "subscriptionType": "pro"}}
    art = os.path.join(C.ARTIFACTS, "proxy-claude-oauth")   # claude_case makes it afresh
    seed = os.path.join(art, "claude-ro")
    proxy_state = os.path.join(art, "proxy-state")
    holder = {}

    def setup(art_):
        os.makedirs(seed)
        os.chmod(seed, 0o700)
        C.write(os.path.join(seed, ".credentials.json"), json.dumps(cred), 0o400)
        holder["seed_sha"] = C.sha(os.path.join(seed, ".credentials.json"))
        os.makedirs(proxy_state)
        os.chown(proxy_state, PROXY_UID, PROXY_UID)
        os.chmod(proxy_state, 0o700)
        return os.path.join(art_, "state")

    reads = [("/claude/.credentials.json", "sk-ant-oat01-av-"),
             ("/claude-ro/.credentials.json", None),   # the seed: hidden from the harness
             ("/claude/.claude.json", None)]
    seed_mount = "%s:/claude-ro:ro" % seed
    _, state, errs = claude_case(res, "proxy-claude-oauth", {}, [], "auth", "Bearer " + token,
                                 {"the access token": token, "the refresh token": refresh}, reads,
                                 state_setup=setup, starts=[[seed_mount], [seed_mount], []],
                                 proxy_state=proxy_state)
    # vault-proxy's start line says where each start's session came from.
    want = ["claude=oauth(seed)",             # 1: the login copied from /claude-ro
            "claude=oauth(stored)",           # 2: the same login again: the proxy's copy
            "claude=oauth(stored, no seed)"]  # 3: no login anywhere but the proxy's state
    for n, (err, w) in enumerate(zip(errs, want), 1):
        line = next((l for l in err.splitlines() if l.startswith("vault-proxy: serving")), "")
        res.check(("routes %s;" % w) in line, "start %d: vault-proxy did not serve %s: %r" % (n, w, line))
    if len(errs) == 3:
        res.check("served with the session the proxy stored" in errs[2],
                  "start 3: agent-init did not say it resumes the proxy's session: %s" % C.why(errs[2]))
    with open(os.path.join(state, ".credentials.json")) as f:
        after = f.read()
    res.check("sk-ant-oat01-av-" in after and token not in after and refresh not in after,
              "/claude/.credentials.json does not hold only placeholders: %s" % after[:200])
    res.check(C.sha(os.path.join(seed, ".credentials.json")) == holder.get("seed_sha"), "the seed changed")


def case_proxy_claude_both(res):
    """ANTHROPIC_API_KEY in the environment AND a subscription login seeded
    from /claude-ro: both routes are pointed by ANTHROPIC_BASE_URL, so they
    are one group on the proxy. Whichever credential Claude Code chooses (its
    own precedence), the upstream must get that credential's real value in
    its header, never a placeholder, and no request may be refused. (In -p
    mode Claude Code takes the API key; that a request carrying the login's
    placeholder on the same path gets the real token is shown by
    agent-init/tests/proxy.rs, a_group_serves_each_credential_...)"""
    key = "sk-ant-api03-avtest" + secrets.token_hex(16)
    token = "sk-ant-oat01-avtest" + secrets.token_hex(16)
    refresh = "sk-ant-ort01-avtest" + secrets.token_hex(16)
    art = C.artifact_dir("proxy-claude-both")
    seed = os.path.join(art, "claude-ro")
    os.makedirs(seed)
    os.chmod(seed, 0o700)
    C.write(os.path.join(seed, ".credentials.json"), json.dumps(
        {"claudeAiOauth": {"accessToken": token, "refreshToken": refresh, "expiresAt": 4102444800000,
                           "scopes": ["user:inference", "user:profile"], "subscriptionType": "pro"}}), 0o400)
    script = [claude_read("/claude/.credentials.json")] + bash_steps(1, CLAUDE_BASH)
    srv = C.MockServer(art, script)
    try:
        C.run_claude(res, art, srv.port, {"ANTHROPIC_API_KEY": key}, ["%s:/claude-ro:ro" % seed])
    finally:
        srv.stop()
    with open(os.path.join(art, "claude.stderr")) as f:
        line = proxy_started_line(res, f.read())
    res.check("anthropic=api-key" in line and "claude=oauth(seed)" in line,
              "vault-proxy does not serve both routes: %r" % line)
    reqs = srv.requests()
    anth = [r for r in reqs if r.get("api", "").startswith("anthropic")]
    res.check(anth, "the upstream received no Anthropic request")
    by_key = [r for r in anth if r.get("x_api_key") == key and not r.get("auth")]
    by_login = [r for r in anth if r.get("auth") == "Bearer " + token and not r.get("x_api_key")]
    res.check(len(by_key) + len(by_login) == len(anth),
              "requests without exactly one real credential: %s"
              % [(r.get("x_api_key") or "")[:24] + "|" + (r.get("auth") or "")[:30] for r in anth
                 if r not in by_key and r not in by_login][:3])
    res.note("Claude Code chose %s: %d requests with the real API key, %d with the real OAuth token"
             % ("the API key" if len(by_key) >= len(by_login) else "the login", len(by_key), len(by_login)))
    # (request bodies may quote a placeholder: the harness's tools read it)
    res.check(not any("-av-" in "%s %s" % (r.get("x_api_key"), r.get("auth")) for r in reqs),
              "a placeholder reached the upstream in a credential header")
    results = final_results([r for r in reqs if r.get("main_loop")])
    check_steps_ran(res, results, script)
    for where, name in leaks(results, reqs, {"the API key": key, "the access token": token,
                                             "the refresh token": refresh}):
        res.check(False, "%s holds %s" % (where, name))


# ---------------------------------------------------------------------------
# Sidecar: vault-proxy in its own container, the agent non-root
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SIDECAR_BASH = [
    "cat /etc/vault-proxy/config.toml 2>&1; ls -la /var/lib/agent-vault 2>&1",
    "for p in /proc/[0-9]*; do echo \"== $p $(cat $p/comm 2>&1)\"; tr '\\0' '\\n' < $p/environ 2>&1 | head -c 300; "
    "done 2>&1 | head -60",
    "id; grep -rao 'sk-ant-api03-avtest[0-9a-f]*' /tmp /run /workspace /home /pi-agent 2>&1 | head",
]


def case_proxy_sidecar(res):
    art = C.artifact_dir("proxy-sidecar")
    key = "sk-ant-api03-avtest" + secrets.token_hex(16)
    port = free_port()
    script = [read_step({"path": "/pi-agent/auth.json"})] + bash_steps(1, SIDECAR_BASH)
    srv = C.MockServer(art, script)
    proxy = "av-test-sidecar-proxy-%d" % os.getpid()
    try:
        # the files images/sidecar-config.sh writes: the config (real key) for
        # the proxy container only, Pi's seed (placeholder) for the agent
        side = os.path.join(art, "sidecar")
        env = dict(os.environ, ANTHROPIC_API_KEY=key, ANTHROPIC_BASE_URL="http://127.0.0.1:%d" % srv.port,
                   VAULT_PROXY_PORT=str(port))
        p = subprocess.run([os.path.join(C.ROOT, "images", "sidecar-config.sh"), side], env=env,
                           capture_output=True, text=True, timeout=30)
        rc, err = p.returncode, p.stderr
        if not res.check(rc == 0, "sidecar-config.sh failed: %s" % err[-300:]):
            return
        cfg = os.path.join(side, "vault-proxy.toml")
        seed = os.path.join(side, "pi-agent")
        with open(os.path.join(seed, "auth.json")) as f:
            placeholder = json.load(f)["anthropic"]["key"]
        agent_side = ""
        for f in (os.path.join(seed, "auth.json"), os.path.join(seed, "models.json"), os.path.join(side, "claude.env")):
            with open(f) as fh:
                agent_side += fh.read()
        res.check(placeholder.startswith("sk-ant-api03-av-") and key not in agent_side,
                  "the agent's side of sidecar-config.sh is not placeholder-only")
        C.sh([C.ENGINE, "rm", "-f", proxy], timeout=30)
        rc, out, err, _ = C.sh([C.ENGINE, "run", "-d", "--name", proxy, "--network", "host", "--read-only",
                                "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--pids-limit", "64",
                                # a fresh volume: the image's directory, 64990's and 0700
                                "-v", "/var/lib/agent-vault/proxy",
                                "-v", "%s:/etc/vault-proxy/config.toml:ro" % cfg, C.image("proxy")], timeout=60)
        if not res.check(rc == 0, "the proxy container did not start: %s" % err[-400:]):
            return
        logs = C.wait_for_log(proxy, "serving http://127.0.0.1:%d" % port, 30)
        if not res.check(logs is not None, "vault-proxy never served: %s"
                         % C.sh([C.ENGINE, "logs", proxy], timeout=30)[2][-500:]):
            return
        res.note("proxy container: %s" % [l for l in logs.splitlines() if "serving" in l][0][:160])
        # the agent's state: empty, owned by the harness user (it starts as uid 1000)
        state = os.path.join(art, "state")
        ws = os.path.join(art, "workspace")
        for d in (state, ws):
            os.makedirs(d)
            os.chown(d, 1000, 1000)
        os.chmod(state, 0o700)
        args = [C.ENGINE, "run", "--rm", "--name", "av-test-sidecar-agent-%d" % os.getpid(),
                "--network", "container:%s" % proxy] + C.secure_flags("1000:1000") + \
            C.volumes_except("pi", "/pi-agent", "/workspace", C.PROXY_STATE) + [
            "-v", "%s:/pi-agent-ro:ro" % seed, "-v", "%s:/pi-agent" % state, "-v", "%s:/workspace" % ws,
            "--entrypoint", "agent-init", C.image("pi"), "run", "--policy", "/etc/agent-vault/proxy-off.toml", "--",
            "pi", "--provider", "anthropic", "--model", PI_MODEL, "--offline", "-p", "Run the scripted steps."]
        rc, out, err, dt = C.sh(args, timeout=300)
        C.write(os.path.join(art, "agent.stdout"), out)
        C.write(os.path.join(art, "agent.stderr"), err)
        res.note("agent (uid 1000, no capabilities, --network container:proxy): rc=%s in %.1fs" % (rc, dt))
        res.check(rc == 0, "the agent exited %s: %s" % (rc, C.why(err)))
        res.check("All scripted steps done." in out, "Pi did not print the final answer")
    finally:
        srv.stop()
        _, plog, perr, _ = C.sh([C.ENGINE, "logs", proxy], timeout=30)
        C.write(os.path.join(art, "proxy.log"), plog + perr)
        if not C.KEEP:
            C.remove_container(proxy)
    reqs = [r for r in srv.requests() if r.get("api", "").startswith("anthropic")]
    res.check(reqs, "the upstream received no request")
    bad = [r.get("x_api_key") for r in reqs if r.get("x_api_key") != key]
    res.check(not bad, "requests without the real key: %s" % [str(b)[:40] for b in bad[:3]])
    res.note("the upstream received %d requests, each with the real key" % len(reqs))
    results = final_results(reqs)
    C.write(os.path.join(art, "tool_results.json"), json.dumps(results, indent=1))
    check_steps_ran(res, results, script)
    for where, name in leaks(results, reqs, {"the API key": key}):
        res.check(False, "%s holds %s" % (where, name))
    res.check(results and placeholder in results[0], "Pi's read of auth.json is not the placeholder: %r"
              % (results[0][:200] if results else None))
    res.check(len(results) > 1 and "No such file" in results[1],
              "the agent container sees the proxy's config: %r" % (results[1][:200] if len(results) > 1 else None))
    res.check(len(results) > 2 and "vault-proxy" not in results[2],
              "the agent container sees the proxy's process: %r" % (results[2][:300] if len(results) > 2 else None))


def case_proxy_nonroot(res):
    """Started as uid 1000 with the image's policy (proxy on): agent-init
    refuses, naming the cause and the fix (the sidecar form)."""
    rc, out, err, _ = C.sh([C.ENGINE, "run", "--rm", "--network", "none"] + C.secure_flags("1000:1000") +
                           C.STATE_VOLUMES["base"] + ["-e", "ANTHROPIC_API_KEY=sk-ant-api03-avtest" + secrets.token_hex(16),
                                              C.image("base"), "true"], timeout=60)
    line = next((l for l in err.splitlines() if "[proxy]" in l or "proxy" in l), err.strip()[-300:])
    res.note("--user 1000 with the proxy on: rc=%s: %s" % (rc, line[:240]))
    res.check(rc == 2, "agent-init as uid 1000 with the proxy on exited %s, want 2" % rc)
    res.check("sidecar" in err and "needs agent-init started as root" in err,
              "the refusal does not name the cause and the fix: %s" % err[-400:])


# A static program (no preload, so no tool layer and no Landlock signal
# scope) that SIGKILLs every process named vault-proxy: run by `exec` as root
# with the container's capabilities, it plays a proxy crash.
KILLER_C = r"""
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    DIR *d = opendir("/proc"); struct dirent *e; int n = 0;
    while (d && (e = readdir(d))) {
        char path[300], comm[64] = {0}; FILE *f;
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/comm", e->d_name);
        if (!(f = fopen(path, "r"))) continue;
        if (fgets(comm, sizeof comm, f) && strcmp(comm, "vault-proxy\n") == 0) {
            if (kill(atoi(e->d_name), SIGKILL) == 0) { printf("killed %s\n", e->d_name); n++; }
            else perror("kill");
        }
        fclose(f);
    }
    return n ? 0 : 1;
}
"""

# The harness: bash itself (in-process, /dev/tcp) sends requests to the
# proxy with the placeholder it holds, before and after the proxy is killed.
RESTART_HARNESS = r"""
u=${ANTHROPIC_BASE_URL#http://}; hp=${u%%/*}; path=/${u#*/}
req() {
    exec 3<>/dev/tcp/${hp%:*}/${hp#*:} || return 1
    printf 'POST %s/v1/messages HTTP/1.1
Host: proxy
x-api-key: %s
content-type: application/json
content-length: 2
connection: close

{}' "$path" "$ANTHROPIC_API_KEY" >&3
    head -n 1 <&3; exec 3<&-
}
echo "FIRST $(req)"
while [ ! -e /tmp/killed ]; do sleep 0.1; done
for i in $(seq 100); do r=$(req 2>/dev/null); case "$r" in *" 200"*) echo "AFTER $r try $i"; break;; esac; sleep 0.1; done
trap 'echo got-TERM; exit 42' TERM
echo HARNESS-READY
while :; do sleep 0.1; done
"""


def case_proxy_restart(res):
    """The documented capabilities suffice for agent-init to restart a dead
    proxy while it serves (it keeps SETUID, SETGID, SETPCAP) and to stop the
    container promptly with the proxy running."""
    art = C.artifact_dir("proxy-restart")
    key = "sk-ant-api03-avtest" + secrets.token_hex(16)
    killer = os.path.join(art, "killer")
    with open(killer + ".c", "w") as f:
        f.write(KILLER_C)
    rc, _, err, _ = C.sh(["gcc", "-static", "-O2", "-o", killer, killer + ".c"], timeout=120)
    if not res.check(rc == 0, "gcc -static killer: %s" % err[-300:]):
        return
    srv = C.MockServer(art, [])
    name = "av-test-proxy-restart-%d" % os.getpid()
    try:
        C.sh([C.ENGINE, "rm", "-f", name], timeout=30)
        rc, _, err, _ = C.sh([C.ENGINE, "run", "-d", "--name", name, "--network", "host"] + C.secure_flags() +
                             C.STATE_VOLUMES["base"] + ["-v", "%s:/usr/local/bin/av-kill-proxy:ro" % killer,
                                                "-e", "ANTHROPIC_API_KEY=" + key,
                                                "-e", "ANTHROPIC_BASE_URL=http://127.0.0.1:%d" % srv.port,
                                                C.image("base"), "bash", "-c", RESTART_HARNESS], timeout=60)
        if not res.check(rc == 0, "could not start: %s" % err[-400:]):
            return
        logs = C.wait_for_log(name, "FIRST", 30)
        if not res.check(logs is not None and re.search(r"FIRST HTTP/1\.\d 200", logs), "the first request through the "
                         "proxy failed: %s" % (logs or C.sh([C.ENGINE, "logs", name], timeout=30)[2])[-500:]):
            return
        rc, out, err, _ = C.sh([C.ENGINE, "exec", name, "av-kill-proxy"], timeout=30)
        res.note("killed the proxy: %s" % (out + err).strip()[:100])
        if not res.check(rc == 0, "could not kill vault-proxy: %s" % (out + err)[-300:]):
            return
        C.sh([C.ENGINE, "exec", "--user", "1000", name, "touch", "/tmp/killed"], timeout=30)
        logs = C.wait_for_log(name, "HARNESS-READY", 40)
        res.check(logs is not None and re.search(r"AFTER HTTP/1\.\d 200", logs),
                  "no request went through after the restart: %s" % (logs or "")[-600:])
        res.check(logs is not None and "vault-proxy exited (killed by SIGKILL); restarting" in logs,
                  "agent-init did not report the proxy's death: %s" % (logs or "")[-600:])
        res.check(logs is not None and logs.count("vault-proxy: serving") >= 2,
                  "vault-proxy did not start again: %s" % (logs or "")[-600:])
        for l in (logs or "").splitlines():
            if "vault-proxy exited" in l or "vault-proxy: serving" in l or l.startswith("AFTER"):
                res.note(l.strip()[:200])
        t0 = time.monotonic()
        C.sh([C.ENGINE, "stop", "-t", "10", name], timeout=30)
        dt = time.monotonic() - t0
        _, code, _, _ = C.sh([C.ENGINE, "inspect", "--format", "{{.State.ExitCode}}", name], timeout=30)
        res.note("stop with the proxy running: %.2fs, exit code %s" % (dt, code.strip()))
        res.check(code.strip() == "42", "exit code %s after stop, want the harness's 42" % code.strip())
        res.check(dt < 5.0, "stop took %.2fs" % dt)
    finally:
        srv.stop()
        _, out, err, _ = C.sh([C.ENGINE, "logs", name], timeout=30)
        C.write(os.path.join(art, "container.log"), out + err)
        if not C.KEEP:
            C.remove_container(name)
    reqs = [r for r in srv.requests() if r.get("api", "").startswith("anthropic")]
    res.check(len(reqs) >= 2, "the upstream received %d requests, want 2 (before and after)" % len(reqs))
    res.check(all(r.get("x_api_key") == key for r in reqs), "a request reached the upstream without the real key")


def cases(module):
    """The cases above, for containers.py's CASES; `module` is containers.py."""
    global C
    C = module
    return {
        "proxy-pi-key": case_proxy_pi_key,
        "proxy-pi-oauth": case_proxy_pi_oauth,
        "proxy-claude-key": case_proxy_claude_key,
        "proxy-claude-oauth": case_proxy_claude_oauth,
        "proxy-claude-both": case_proxy_claude_both,
        "proxy-sidecar": case_proxy_sidecar,
        "proxy-nonroot": case_proxy_nonroot,
        "proxy-restart": case_proxy_restart,
    }
