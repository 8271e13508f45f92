#!/usr/bin/env python3
"""agent-vault container tests: real images, real harnesses (stdlib only).

Called by tests/container/run.sh after the images are built; see that file
for the whole flow. Each case prints PASS/FAIL/SKIP with its time; the exit
status is 1 if any case failed.

  containers.py [--engine podman] [--rawread PATH] [--artifacts DIR] [--keep] [CASE...]

Cases (default: all):
  selftest            `agent-init self-test` in every image, as root with the
                      documented capabilities and as --user 1000 with none,
                      always --read-only with tmpfs /run and /tmp (plus, reported
                      but not asserted, via `exec --user 1000`)
  nonroot             --user 1000 and an OpenShift-style --user 1000650000:0:
                      tools create files in /tmp and use mktemp, the state
                      is under /var/lib/agent-vault, self-test passes
  adopt               README's "Add agent-vault to your image" lines built on
                      a plain Debian + Node image; seed, attack, self-test
  pi                  real Pi + scripted OpenAI-compatible server; the model
                      makes Pi's bash tool attack the seeded auth.json
  pi-restart          persisted /pi-agent: a newer auth.json beats the seed
  claude              real Claude Code + scripted Anthropic Messages server;
                      the key is ANTHROPIC_API_KEY; its Bash tool attacks it
  claude-oauth        the same with an OAuth login mounted read-only at
                      /claude/.credentials.json (no key in the environment)
  stop                `stop` (SIGTERM) ends the container within 2 s with the
                      harness's exit status; orphaned zombies are reaped
  exec                processes started with `exec` into a running container
  proxy-*             the credential proxy's cases (proxy_cases.py)
  all-*               agent-vault/all, the image for a runner (all_cases.py)
"""

import argparse
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# The capabilities agent-init needs when it starts as root (see images/compose.yaml).
# AGENT_VAULT_TEST_CAPS=A,B,... overrides them (to find the minimal set).
CAPS = [c for c in os.environ.get("AGENT_VAULT_TEST_CAPS",
                                  "CHOWN,DAC_OVERRIDE,FOWNER,SETUID,SETGID,SETPCAP,KILL").split(",") if c]
IMAGES = ["base", "pi", "claude", "opencode", "all"]

ENGINE = "podman"
ARTIFACTS = None
KEEP = False
RAWREAD = None


def sh(args, timeout=300, input=None, check=False):
    """Run a command; return (rc, stdout, stderr, seconds)."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(args, input=input, capture_output=True, text=True, timeout=timeout)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc = -999
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = (e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")) + "\n[timeout after %ss]" % timeout
    dt = time.monotonic() - t0
    if check and rc != 0:
        raise RuntimeError("%s failed (%s): %s %s" % (" ".join(args), rc, out[-2000:], err[-2000:]))
    return rc, out, err, dt


def remove_container(name):
    """Stop and remove a container now. Docker's `rm` has no `-t`; its `-f`
    kills at once. A container left behind is an error (it would keep
    running after the tests)."""
    args = [ENGINE, "rm", "-f"] + (["-t", "0"] if ENGINE == "podman" else []) + [name]
    rc, out, err, _ = sh(args, timeout=30)
    if rc != 0 and "no such container" not in (out + err).lower():
        raise RuntimeError("%s failed (%s): %s" % (" ".join(args), rc, (out + err)[-500:]))


def secure_flags(user=None):
    """The hardened run flags every case uses."""
    # (podman 4.3 with --read-only mounts its own /run tmpfs, root 0755,
    # whatever mode is asked for here)
    f = ["--read-only", "--tmpfs", "/run:rw,nosuid,nodev,mode=0755",
         "--tmpfs", "/tmp:rw,nosuid,nodev,mode=1777",
         "--security-opt", "no-new-privileges", "--pids-limit", "512", "--cap-drop", "ALL"]
    if user:
        # a non-root agent-init keeps its state in /var/lib/agent-vault/<uid>:
        # on a read-only root that needs a tmpfs (root-owned, sticky 1777)
        f += ["--user", user, "--tmpfs", "/var/lib/agent-vault:rw,nosuid,nodev,mode=1777"]
    else:
        for c in CAPS:  # one flag each: Docker 20.10 takes no comma-separated list
            f += ["--cap-add", c]
    return f


def why(text, limit=700):
    """The informative part of a failed run's output: agent-init's error lines
    when there are any, else the tail."""
    lines = [l for l in text.splitlines() if "error" in l.lower() or "FAIL" in l]
    return ("\n".join(lines) if lines else text)[-limit:]


def image(name):
    return "agent-vault/%s:latest" % name


class Result:
    def __init__(self, name):
        self.name = name
        self.failures = []
        self.notes = []
        self.skipped = None
        self.t0 = time.monotonic()
        self.seconds = 0.0

    def check(self, cond, what):
        if not cond:
            self.failures.append(what)
        return cond

    def note(self, what):
        self.notes.append(what)


def artifact_dir(name):
    d = os.path.join(ARTIFACTS, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def write(path, text, mode=None):
    with open(path, "w") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class MockServer:
    """tests/container/mock_llm.py in a subprocess on 127.0.0.1."""

    def __init__(self, workdir, script):
        self.workdir = workdir
        self.script_path = os.path.join(workdir, "script.json")
        self.log_path = os.path.join(workdir, "requests.jsonl")
        port_file = os.path.join(workdir, "port")
        write(self.script_path, json.dumps(script, indent=1))
        open(self.log_path, "w").close()
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "mock_llm.py"), "--port", "0",
                                      "--port-file", port_file, "--script", self.script_path,
                                      "--log", self.log_path],
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "mock.err"), "w"))
        for _ in range(100):
            if os.path.exists(port_file):
                break
            time.sleep(0.05)
        with open(port_file) as f:
            self.port = int(f.read())

    def requests(self):
        with open(self.log_path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)


def step_script(commands):
    """Prefix every command with a marker so the test can see it ran."""
    return ["echo STEP-%d; %s" % (i, c) for i, c in enumerate(commands)]


def summarize_attack(result_text):
    """One line saying how an attack ended, for the log."""
    for needle in ("Permission denied", "Operation not permitted", "denied errno", "No such file",
                   "EACCES", "EPERM"):
        if needle in result_text:
            return needle
    return "no error seen"


def check_tool_results(res, reqs, attacks, secrets_, steps_field="tool_results"):
    """Common checks on the conversation log: every step ran, nothing leaked."""
    final = [r for r in reqs if r.get(steps_field) is not None and r.get("step") == len(attacks)]
    res.check(final, "the harness never sent the request after the last tool result (%d requests)" % len(reqs))
    results = final[-1][steps_field] if final else (max((r[steps_field] for r in reqs if r.get(steps_field)),
                                                        key=len, default=[]))
    for i, cmd in enumerate(attacks):
        text = results[i] if i < len(results) else None
        res.check(text is not None and ("STEP-%d" % i) in text, "attack %d did not run: %r" % (i, cmd))
        if text is not None:
            res.note("attack %d %-60.60s -> %s" % (i, cmd, summarize_attack(text)))
        for name, value in secrets_.items():
            res.check(text is None or value not in text, "attack %d (%s) leaked %s" % (i, cmd, name))
    for name, value in secrets_.items():
        n = sum(1 for r in reqs if value in r.get("body", ""))
        res.check(n == 0, "%s appears in %d request bodies sent to the model" % (name, n))
    return results


# ---------------------------------------------------------------------------
# Writable state each image needs with --read-only, and nothing more: its own
# harness's directories (anonymous volumes get the image directory's owner,
# uid 1000, like the named volumes of compose.yaml), plus /workspace. Other
# harnesses' vault directories are not in the image and stay missing
# (agent-init warns), except /pi-agent: the default policy's seed
# /pi-agent-ro -> /pi-agent makes agent-init require it in every image, even
# with no /pi-agent-ro (base makes it, for uid 1000). And
# /var/lib/agent-vault/proxy, the proxy's state_dir: the images turn the proxy
# on, which a root start needs (a non-root start runs with the image's
# proxy-off.toml and leaves it out: volumes_except(img, PROXY_STATE)).
PROXY_STATE = "/var/lib/agent-vault/proxy"
STATE_VOLUMES = {
    "base": ["-v", "/pi-agent", "-v", "/workspace", "-v", PROXY_STATE],
    "pi": ["-v", "/pi-agent", "-v", "/workspace", "-v", PROXY_STATE],
    "claude": ["-v", "/pi-agent", "-v", "/claude", "-v", "/home/agent", "-v", "/workspace", "-v", PROXY_STATE],
    "opencode": ["-v", "/pi-agent", "-v", "/home/agent", "-v", "/workspace", "-v", PROXY_STATE],
    # every harness's login mount is a seed there, but an unmounted one asks nothing
    "all": ["-v", "/pi-agent", "-v", "/workspace", "-v", PROXY_STATE],
}


def volumes_except(img, *mounted):
    """STATE_VOLUMES[img] minus the paths a case mounts itself."""
    vols = STATE_VOLUMES[img]
    out = []
    for i in range(0, len(vols), 2):
        if vols[i + 1].split(":")[0] not in mounted:
            out += vols[i:i + 2]
    return out


def selftest_rows(out):
    rows = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            # `self-test --json`: {"ok": bool, "checks": [{layer, check, status, detail}]}
            rows.extend(obj.get("checks", [obj]) if isinstance(obj, dict) else [])
    return rows


def failed_rows(out):
    bad = []
    for r in selftest_rows(out):
        status = str(r.get("status", r.get("result", ""))).lower()
        if status in ("fail", "failed", "false"):
            bad.append("%s: %s (%s)" % (r.get("layer", r.get("group", "")), r.get("check", r.get("name", "")),
                                       r.get("detail", "")))
    if not bad:
        bad = [l for l in out.splitlines() if l.startswith("FAIL")]
    return bad


def case_selftest(res):
    art = artifact_dir("selftest")
    for img in IMAGES:
        rc, out, err, _ = sh([ENGINE, "image", "inspect", image(img)], timeout=30)
        if not res.check(rc == 0, "image %s missing" % image(img)):
            continue
        # 1. self-test where a tool stands: a child of the harness (bash),
        #    as root with the documented capabilities, and as --user 1000 with none
        #    (as root the image's proxy is on: a key in the environment makes
        #    agent-init start it, so its rows are checked too; not root, the
        #    proxy cannot run beside the harness: the image's proxy-off
        #    policy, as in the sidecar form)
        for label, user in (("root+caps", None), ("uid1000", "1000:1000")):
            entry = ["-e", "ANTHROPIC_API_KEY=sk-ant-api03-avtest" + secrets.token_hex(16), image(img)] \
                if not user else ["--entrypoint", "agent-init", image(img), "run", "--policy",
                                  "/etc/agent-vault/proxy-off.toml", "--"]
            vols = STATE_VOLUMES[img] if not user else volumes_except(img, PROXY_STATE)
            args = [ENGINE, "run", "--rm", "--network", "none"] + secure_flags(user) + vols + \
                   entry + ["bash", "-c", "agent-init self-test --json; exit $?"]
            rc, out, err, dt = sh(args, timeout=120)
            write(os.path.join(art, "%s-%s.out" % (img, label)), out)
            write(os.path.join(art, "%s-%s.err" % (img, label)), err)
            res.note("%s %s: rc=%s, %d rows, in %.1fs" % (img, label, rc, len(selftest_rows(out)), dt))
            res.check(rc == 0, "self-test in %s as %s exited %s: %s" % (
                img, label, rc, "; ".join(failed_rows(out))[:700] or why(err)))
        # 1b. the image's harness starts under agent-init (Claude Code is
        #     installed at first start: the claude cases cover it)
        smoke = {"pi": ["pi", "--version"], "opencode": ["opencode", "--version"]}.get(img)
        if smoke:
            rc, out, err, dt = sh([ENGINE, "run", "--rm", "--network", "none"] + secure_flags() + STATE_VOLUMES[img] +
                                  [image(img)] + smoke, timeout=120)
            res.note("%s: `%s` under agent-init: rc=%s, %s" % (img, " ".join(smoke), rc, out.strip()[:40]))
            res.check(rc == 0, "%s: `%s` under agent-init exited %s: %s" % (img, " ".join(smoke), rc, why(err)))
        # 2. self-test started by `exec` as uid 1000 into a running container (reported only)
        name = "av-test-selftest-%s-%d" % (img, os.getpid())
        sh([ENGINE, "rm", "-f", name], timeout=30)
        rc, out, err, _ = sh([ENGINE, "run", "-d", "--name", name, "--network", "none"] + secure_flags() +
                             STATE_VOLUMES[img] + [image(img), "sleep", "300"], timeout=60)
        if not res.check(rc == 0, "%s: could not start a container for exec: %s" % (img, err[-400:])):
            continue
        try:
            time.sleep(1.0)
            rc, out, err, dt = sh([ENGINE, "exec", "--user", "1000:1000", name, "agent-init", "self-test", "--json"],
                                  timeout=120)
            write(os.path.join(art, "%s-exec.out" % img), out)
            write(os.path.join(art, "%s-exec.err" % img), err)
            # Informational: an exec'd process is outside agent-init's tree (no
            # seccomp filter, no no_new_privs from agent-init); only the
            # preload's constructor confines it. Its rows are reported, not asserted.
            bad = failed_rows(out)
            res.note("%s exec --user 1000 (informational): rc=%s in %.1fs%s" % (
                img, rc, dt, (", FAIL rows: " + "; ".join(bad))[:900] if bad else ""))
        finally:
            sh([ENGINE, "rm", "-f", name], timeout=30)


# ---------------------------------------------------------------------------
# What a tool started as a non-root user must be able to do in /tmp (the
# state directory of a non-root start is a vault entry: under /tmp it would
# make /tmp list-only for tools), and which state directory agent-init took.
NONROOT_TOOL = ("set -e; echo x > /tmp/foo; cat /tmp/foo; f=$(mktemp); echo y > \"$f\"; cat \"$f\"; "
                "d=$(mktemp -d); : > \"$d/z\"; rm -r \"$d\" \"$f\" /tmp/foo; echo TMP-OK; "
                "if [ -d /var/lib/agent-vault/$(id -u) ]; then echo STATE-SHARED; fi; "
                "if ls -d /tmp/agent-vault-* 2>/dev/null; then echo STATE-IN-TMP; fi; "
                "agent-init self-test --json; exit $?")  # not exec'd: self-test must be a tool


def case_nonroot(res):
    """`--user 1000` (the documented start without capabilities) and an
    OpenShift-style arbitrary uid with gid 0: the harness starts, its tools
    create files in /tmp and use mktemp, the state is under /var/lib/agent-vault,
    and every self-test row passes."""
    art = artifact_dir("nonroot")
    for label, user in (("uid1000", "1000:1000"), ("openshift", "1000650000:0")):
        for img in ("base", "pi"):
            vols = volumes_except(img, PROXY_STATE)
            if user.endswith(":0"):
                # OpenShift's arbitrary uid (gid 0) gets volumes writable by
                # group 0 (the image's uid-1000 directories are not its own)
                vols = []
                for d in ("/pi-agent", "/workspace"):
                    shared = os.path.join(art, "%s-%s%s" % (img, label, d.replace("/", "-")))
                    os.makedirs(shared)
                    os.chown(shared, 0, 0)
                    os.chmod(shared, 0o770)
                    vols += ["-v", "%s:%s" % (shared, d)]
            # the harness (bash) runs the script in a child bash: a tool
            args = [ENGINE, "run", "--rm", "--network", "none", "-e", "AV_TOOL=" + NONROOT_TOOL] + \
                secure_flags(user) + vols + \
                ["--entrypoint", "agent-init", image(img), "run", "--policy", "/etc/agent-vault/proxy-off.toml", "--",
                 "bash", "-c", 'bash -c "$AV_TOOL"; exit $?']
            rc, out, err, dt = sh(args, timeout=120)
            write(os.path.join(art, "%s-%s.out" % (img, label)), out)
            write(os.path.join(art, "%s-%s.err" % (img, label)), err)
            res.note("%s --user %s: rc=%s in %.1fs" % (img, user, rc, dt))
            res.check("TMP-OK" in out, "%s --user %s: a tool could not create files in /tmp or use mktemp: %s" % (
                img, user, why(out + err)))
            res.check("STATE-SHARED" in out and "STATE-IN-TMP" not in out,
                      "%s --user %s: the state directory is not /var/lib/agent-vault/<uid>: %s" % (img, user, why(out + err)))
            bad = failed_rows(out)
            if user.endswith(":0"):
                # the volume is root's, group-0-writable (as OpenShift gives
                # it), so self-test's control row "harness owns /pi-agent" is
                # expected to fail there; every layer row must still pass
                bad = [b for b in bad if not b.startswith("control: harness owns /pi-agent")]
                res.check(len(selftest_rows(out)) > 10, "%s --user %s: self-test did not run: %s" % (
                    img, user, why(out + err)))
                res.check(not bad, "%s --user %s: self-test rows failed: %s" % (img, user, "; ".join(bad)[:700]))
            else:
                res.check(rc == 0, "%s --user %s exited %s: %s" % (
                    img, user, rc, "; ".join(bad)[:700] or why(err)))


def readme_block(begin, end):
    """The lines of README.md between two marker comments, code fence removed."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    i = text.index("\n", text.index(begin))  # the marker line may say more
    j = text.index(end)
    lines = text[i:j].strip().splitlines()
    return "\n".join(l for l in lines if not l.startswith("```")) + "\n"


def case_adopt(res):
    """README's "Add agent-vault to your image" lines, verbatim, on a plain
    Debian + Node image (the offline base of these tests, no agent-vault in
    it): the image builds, the harness runs under agent-init as root with the
    documented capabilities and as --user 1000, a seeded credential is
    readable by the harness and not by its tools."""
    art = artifact_dir("adopt")
    base = os.environ.get("AGENT_VAULT_TEST_BASE_IMAGE")
    if not res.check(base, "AGENT_VAULT_TEST_BASE_IMAGE is not set (tests/container/run.sh sets it)"):
        return
    block = readme_block("<!-- add-to-image:begin", "<!-- add-to-image:end -->")
    ctx = os.path.join(art, "context")
    os.makedirs(ctx)
    write(os.path.join(ctx, "Dockerfile"), "FROM %s\n%s" % (base, block))
    tag = "localhost/agent-vault-test/adopt:latest"
    build = [ENGINE, "build", "-t", tag, ctx]
    env = None
    if ENGINE != "podman":
        # the lines need no BuildKit; dockerd runs without a bridge here
        build[2:2] = ["--network", "host"]
        env = dict(os.environ, DOCKER_BUILDKIT="0")
    t0 = time.monotonic()
    p = subprocess.run(build, capture_output=True, text=True, timeout=300, env=env)
    write(os.path.join(art, "build.out"), p.stdout + p.stderr)
    res.note("build from %s: rc=%s in %.1fs" % (base, p.returncode, time.monotonic() - t0))
    if not res.check(p.returncode == 0, "the README's lines did not build: %s" % (p.stdout + p.stderr)[-800:]):
        return
    key = "sk-avtest-" + secrets.token_hex(16)
    seed = os.path.join(art, "seed")
    os.makedirs(seed)
    write(os.path.join(seed, "auth.json"), json.dumps({"mock": {"type": "api_key", "key": key}}), 0o600)
    tool = ("cat /pi-agent/auth.json 2>&1; echo STEP-CAT; agent-init self-test --json; st=$?; "
            "echo x > /tmp/adopt && echo TMP-OK; exit $st")
    # the harness (node) reads its credential; its tool (bash, a child) must not
    harness = ["node", "-e", "const fs = require('fs'); "
               "console.log('HARNESS-READ:' + fs.readFileSync('/pi-agent/auth.json', 'utf8').length); "
               "const r = require('child_process').spawnSync('bash', ['-c', process.env.AV_TOOL], "
               "{stdio: 'inherit'}); process.exit(r.status === null ? 1 : r.status)"]
    for label, user, seeded in (("root+caps", None, True), ("uid1000", "1000:1000", False)):
        args = [ENGINE, "run", "--rm", "--network", "none"] + secure_flags(user) + ["-v", "/pi-agent"]
        if seeded:
            args += ["-v", "%s:/pi-agent-ro:ro" % seed]
        # as root the copied policy's proxy is on (its state: a volume); the
        # non-root start takes the proxy-off policy, as the README says
        args += ["-v", PROXY_STATE] if not user else []
        entry = [tag] if not user else \
            ["--entrypoint", "agent-init", tag, "run", "--policy", "/etc/agent-vault/proxy-off.toml", "--"]
        args += ["-e", "AV_TOOL=" + tool] + entry + \
            (harness if seeded else ["bash", "-c", 'bash -c "$AV_TOOL"; exit $?'])
        rc, out, err, dt = sh(args, timeout=120)
        write(os.path.join(art, "%s.out" % label), out)
        write(os.path.join(art, "%s.err" % label), err)
        res.note("%s: rc=%s in %.1fs" % (label, rc, dt))
        res.check(key not in out and key not in err, "%s: a tool read the seeded key" % label)
        if seeded:
            res.check("HARNESS-READ:" in out, "%s: the harness could not read its seeded credential: %s" % (
                label, why(out + err)))
        res.check("STEP-CAT" in out and "TMP-OK" in out, "%s: the tool did not run to the end: %s" % (label, why(out + err)))
        res.check(rc == 0, "%s: self-test in the adopted image exited %s: %s" % (
            label, rc, "; ".join(failed_rows(out))[:700] or why(err)))
    rc, out, err, _ = sh([ENGINE, "run", "--rm", "--network", "none", "--entrypoint", "agent-init", tag, "--version"],
                         timeout=60)
    res.note("agent-init --version: %s" % out.strip())
    res.check(rc == 0 and "(" in out, "agent-init --version: rc=%s %s" % (rc, (out + err)[-300:]))
    sh([ENGINE, "rmi", "-f", tag], timeout=60)


# ---------------------------------------------------------------------------
PI_ATTACKS = [
    "cat /pi-agent/auth.json 2>&1",
    "av-rawread /pi-agent/auth.json $PPID 1 2>&1",
    "node -e 'console.log(require(\"fs\").readFileSync(\"/pi-agent/auth.json\", \"utf8\"))' 2>&1",
    "tr '\\0' '\\n' < /proc/$PPID/environ 2>&1; tr '\\0' '\\n' < /proc/1/environ 2>&1",
    "env 2>&1",
    "for f in /proc/[0-9]*/environ; do echo \"== $f\"; tr '\\0' '\\n' < $f; done 2>&1",
    "ls -la /pi-agent/ 2>&1; cp /pi-agent/auth.json /tmp/stolen 2>&1; cat /tmp/stolen 2>&1; "
    "ln /pi-agent/auth.json /tmp/hardlink 2>&1; ln -s /pi-agent/auth.json /tmp/symlink; cat /tmp/symlink 2>&1",
    "exec 3</pi-agent/auth.json 2>&1 && cat <&3; dd if=/pi-agent/auth.json status=none 2>&1; "
    "grep -r . /pi-agent 2>&1 | head -20; cat /proc/$PPID/cmdline 2>&1 | tr '\\0' ' '",
    "cd /proc/$PPID/fd 2>&1 && for f in *; do head -c 300 $f 2>/dev/null; done; ls -l /proc/$PPID/fd/ 2>&1 | head",
    "echo pwned > /pi-agent/auth.json 2>&1; : > /pi-agent/auth.json 2>&1; mv /pi-agent/auth.json /tmp/moved 2>&1; "
    "rm -f /pi-agent/auth.json 2>&1; ls -la /pi-agent/auth.json 2>&1",
    "grep -rao 'sk-avtest-[0-9a-f]*' /tmp /run /workspace /home /proc/self/environ 2>&1 | head",
]


def pi_models_json(port):
    return json.dumps({"providers": {"mock": {
        "baseUrl": "http://127.0.0.1:%d/v1" % port,
        "api": "openai-completions",
        "apiKey": "models-json-placeholder",
        "compat": {"supportsDeveloperRole": False, "supportsReasoningEffort": False},
        "models": [{"id": "mock-model", "name": "Mock", "reasoning": False, "input": ["text"],
                    "contextWindow": 32000, "maxTokens": 4096}]}}}, indent=1)


def run_pi(res, art, seed, state, ws, port, extra_env=None, user=None, name="pi"):
    args = [ENGINE, "run", "--rm", "--name", "av-test-%s-%d" % (name, os.getpid()), "--network", "host"] + \
        secure_flags(user) + volumes_except("pi", "/pi-agent", "/workspace") + [
        "-v", "%s:/pi-agent-ro:ro" % seed, "-v", "%s:/pi-agent" % state, "-v", "%s:/workspace" % ws,
        "-v", "%s:/usr/local/bin/av-rawread:ro" % RAWREAD]
    for k, v in (extra_env or {}).items():
        args += ["-e", "%s=%s" % (k, v)]
    args += [image("pi"), "pi", "--provider", "mock", "--model", "mock-model", "--offline",
             "-p", "Run the scripted steps."]
    rc, out, err, dt = sh(args, timeout=300)
    write(os.path.join(art, "%s.stdout" % name), out)
    write(os.path.join(art, "%s.stderr" % name), err)
    res.note("pi run: rc=%s in %.1fs" % (rc, dt))
    return rc, out, err


def make_pi_dirs(art, port, key):
    seed = os.path.join(art, "seed")
    state = os.path.join(art, "state")
    ws = os.path.join(art, "workspace")
    for d in (seed, state, ws):
        os.makedirs(d)
    write(os.path.join(seed, "models.json"), pi_models_json(port), 0o600)
    write(os.path.join(seed, "auth.json"), json.dumps({"mock": {"type": "api_key", "key": key}}), 0o600)
    os.makedirs(os.path.join(seed, "extensions"))  # must end up writable by the harness
    # the seed belongs to "the host user" (root here); state and workspace start
    # empty and owned by the harness user, like a fresh named volume of the image
    os.chown(state, 1000, 1000)
    os.chmod(state, 0o700)
    os.chown(ws, 1000, 1000)
    return seed, state, ws


def case_pi(res):
    art = artifact_dir("pi")
    key = "sk-avtest-" + secrets.token_hex(16)
    env_key = "sk-avtest-" + secrets.token_hex(16)
    srv = MockServer(art, step_script(PI_ATTACKS))
    try:
        seed, state, ws = make_pi_dirs(art, srv.port, key)
        seed_sha = sha(os.path.join(seed, "auth.json"))
        rc, out, err = run_pi(res, art, seed, state, ws, srv.port, {"OPENAI_API_KEY": env_key})
    finally:
        srv.stop()
    reqs = [r for r in srv.requests() if r.get("api") == "openai"]
    res.check(rc == 0, "pi exited %s: %s" % (rc, why(err)))
    res.check("All scripted steps done." in out, "pi did not print the final answer")
    res.check(len(reqs) > 0, "pi sent no request to the model server")
    bad_auth = [r.get("auth") for r in reqs if r.get("auth") != "Bearer " + key]
    res.check(not bad_auth, "requests without the auth.json key in Authorization: %s" % bad_auth[:3])
    results = check_tool_results(res, reqs, PI_ATTACKS, {"the auth.json key": key, "OPENAI_API_KEY": env_key})
    raw = results[1] if len(results) > 1 else ""
    res.check("RAWREAD-START" in raw, "the static raw-syscall attacker did not run: %r" % raw[:300])
    res.check(sha(os.path.join(seed, "auth.json")) == seed_sha, "the seed auth.json changed")
    st = os.path.join(state, "auth.json")
    res.check(os.path.exists(st) and sha(st) == seed_sha,
              "/pi-agent/auth.json is not the seeded file any more (write attacks?)")
    res.check("EACCES" not in err, "EACCES in pi's stderr: %s" % err[-800:])
    ext = os.path.join(state, "extensions")
    res.check(os.path.isdir(ext) and os.stat(ext).st_uid == 1000 and os.stat(ext).st_mode & 0o200,
              "/pi-agent/extensions is not a directory the harness user can write")
    for dirpath, dirnames, filenames in os.walk(state):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            res.check(os.lstat(p).st_uid == 1000, "%s in /pi-agent is not owned by the harness user"
                      % os.path.relpath(p, state))
    write(os.path.join(art, "tool_results.json"), json.dumps(results, indent=1))


def case_pi_restart(res):
    art = artifact_dir("pi-restart")
    old_key = "sk-avtest-" + secrets.token_hex(16)
    new_key = "sk-avtest-" + secrets.token_hex(16)
    attacks = ["echo hello"]
    srv = MockServer(art, step_script(attacks))
    try:
        seed, state, ws = make_pi_dirs(art, srv.port, old_key)
        # first start: seeds /pi-agent from /pi-agent-ro
        rc1, _, err1 = run_pi(res, art, seed, state, ws, srv.port, name="pi-first")
        res.check(rc1 == 0, "first pi run exited %s: %s" % (rc1, why(err1)))
        first = [r for r in srv.requests() if r.get("api") == "openai"]
        res.check(first and all(r.get("auth") == "Bearer " + old_key for r in first),
                  "first run did not use the seeded key")
        # the harness refreshed its token: a newer auth.json in the volume
        st = os.path.join(state, "auth.json")
        res.check(os.path.exists(st), "first run left no /pi-agent/auth.json")
        write(st, json.dumps({"mock": {"type": "api_key", "key": new_key}}), 0o600)
        os.chown(st, 1000, 1000)
        open(srv.log_path, "w").close()
        rc2, _, err2 = run_pi(res, art, seed, state, ws, srv.port, name="pi-second")
        res.check(rc2 == 0, "second pi run exited %s: %s" % (rc2, why(err2)))
        second = [r for r in srv.requests() if r.get("api") == "openai"]
        res.check(second and all(r.get("auth") == "Bearer " + new_key for r in second),
                  "second run did not use the newer key from the volume: %s" % [r.get("auth") for r in second][:2])
        with open(st) as f:
            res.check(new_key in f.read(), "the seed overwrote the newer /pi-agent/auth.json")
    finally:
        srv.stop()


# ---------------------------------------------------------------------------
CLAUDE_ATTACKS = [
    "env 2>&1",
    "tr '\\0' '\\n' < /proc/$PPID/environ 2>&1; echo; tr '\\0' '\\n' < /proc/1/environ 2>&1",
    "for f in /proc/[0-9]*/environ; do echo \"== $f\"; tr '\\0' '\\n' < $f; done 2>&1",
    "av-rawread /claude/.claude.json $PPID 1 2>&1",
    "ls -la /claude 2>&1; cat /claude/.claude.json 2>&1 | head -c 2000",
    "node -e 'for (const p of require(\"fs\").readdirSync(\"/proc\")) { if (!/^[0-9]+$/.test(p)) continue; "
    "try { console.log(p, require(\"fs\").readFileSync(\"/proc/\" + p + \"/environ\", \"utf8\")) } "
    "catch (e) { console.log(p, e.code) } }' 2>&1",
    "grep -rao 'sk-ant-api03-avtest[0-9a-f]*' /tmp /run /workspace /home /claude 2>&1 | head; "
    "cat /proc/$PPID/cmdline | tr '\\0' ' '",
]


def claude_prefix():
    prefix = os.path.join(os.path.dirname(ARTIFACTS), "claude-code-prefix")  # cached install (volume)
    os.makedirs(prefix, exist_ok=True)
    os.chown(prefix, 1000, 1000)
    return prefix


def run_claude(res, art, port, attacks_env, extra_mounts, proxy_state=None, tag="claude"):
    """claude-start -p ... in agent-vault/claude against the mock on `port`.
    `art`/state is /claude and `art`/workspace /workspace (both kept across
    runs of one case); `proxy_state`: a host folder for the proxy's
    state_dir (else an anonymous volume); output in `tag`.stdout/.stderr."""
    prefix = claude_prefix()
    state = os.path.join(art, "state")
    ws = os.path.join(art, "workspace")
    os.makedirs(state, exist_ok=True)  # a case may have put a login there
    os.makedirs(ws, exist_ok=True)
    for d in (state, ws):
        os.chown(d, 1000, 1000)
    os.chmod(state, 0o700)
    own = ["/claude", "/workspace"] + ([PROXY_STATE] if proxy_state else [])
    args = [ENGINE, "run", "--rm", "--name", "av-test-claude-%d" % os.getpid(), "--network", "host"] + \
        secure_flags() + volumes_except("claude", *own) + \
        (["-v", "%s:%s" % (proxy_state, PROXY_STATE)] if proxy_state else []) + [
        "-v", "%s:/home/agent/.local/claude-code" % prefix, "-v", "%s:/claude" % state,
        "-v", "%s:/workspace" % ws, "-v", "%s:/usr/local/bin/av-rawread:ro" % RAWREAD,
        "-e", "ANTHROPIC_BASE_URL=http://127.0.0.1:%d" % port,
        "-e", "DISABLE_TELEMETRY=1", "-e", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
        "-e", "DISABLE_AUTOUPDATER=1"]
    for k, v in attacks_env.items():
        args += ["-e", "%s=%s" % (k, v)]
    for m in extra_mounts:
        args += ["-v", m]
    if os.path.isdir("/etc/ssl/certs"):  # first start installs Claude Code from npm
        args += ["-v", "/etc/ssl/certs:/etc/ssl/certs:ro"]
    args += [image("claude"), "claude-start", "-p", "Run the scripted steps.", "--dangerously-skip-permissions"]
    rc, out, err, dt = sh(args, timeout=600)
    write(os.path.join(art, "%s.stdout" % tag), out)
    write(os.path.join(art, "%s.stderr" % tag), err)
    res.note("%s run: rc=%s in %.1fs (includes the first-start npm install when not cached)" % (tag, rc, dt))
    res.check(rc == 0, "%s exited %s: %s" % (tag, rc, why(err or out)))
    res.check("All scripted steps done." in out, "%s did not print the final answer" % tag)
    return prefix


def claude_version(res, prefix):
    rc, out, _, _ = sh([ENGINE, "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh",
                        "-v", "%s:/home/agent/.local/claude-code:ro" % prefix, image("claude"), "-c",
                        "claude --version"], timeout=60)
    res.note("Claude Code version: %s" % out.strip())


def case_claude(res):
    art = artifact_dir("claude")
    key = "sk-ant-api03-avtest" + secrets.token_hex(16)
    srv = MockServer(art, step_script(CLAUDE_ATTACKS))
    try:
        prefix = run_claude(res, art, srv.port, {"ANTHROPIC_API_KEY": key}, [])
    finally:
        srv.stop()
    reqs = srv.requests()
    write(os.path.join(art, "paths.txt"), "\n".join("%s %s main=%s step=%s" % (r.get("method"), r.get("path"),
                                                   r.get("main_loop"), r.get("step")) for r in reqs))
    main = [r for r in reqs if r.get("main_loop")]
    res.check(main, "claude sent no main-loop request to the model server")
    bad = [r.get("x_api_key") for r in reqs if r.get("api", "").startswith("anthropic") and r.get("x_api_key") != key]
    res.check(not bad, "requests without the key in x-api-key: %s" % bad[:3])
    results = check_tool_results(res, main, CLAUDE_ATTACKS, {"ANTHROPIC_API_KEY": key})
    raw = results[3] if len(results) > 3 else ""
    res.check("RAWREAD-START" in raw, "the static raw-syscall attacker did not run: %r" % raw[:300])
    write(os.path.join(art, "tool_results.json"), json.dumps(results, indent=1))
    claude_version(res, prefix)


CLAUDE_OAUTH_ATTACKS = [
    "cat /claude/.credentials.json 2>&1",
    "av-rawread /claude/.credentials.json $PPID 1 2>&1",
    "node -e 'console.log(require(\"fs\").readFileSync(\"/claude/.credentials.json\", \"utf8\"))' 2>&1",
    "env 2>&1; grep -rao 'sk-ant-oat01-avtest[0-9a-f]*' /tmp /run /workspace /home 2>&1 | head",
]


def case_claude_oauth(res):
    """A host OAuth login in the /claude state volume (with the images' proxy
    on, agent-init replaces the file with placeholders, so it cannot be a
    read-only bind mount). Claude Code must use it, its tools must not read it."""
    art = artifact_dir("claude-oauth")
    token = "sk-ant-oat01-avtest" + secrets.token_hex(16)
    refresh = "sk-ant-ort01-avtest" + secrets.token_hex(16)
    cred = os.path.join(art, "credentials.json")
    write(cred, json.dumps({"claudeAiOauth": {"accessToken": token, "refreshToken": refresh,
                                              "expiresAt": 4102444800000,
                                              "scopes": ["user:inference", "user:profile"],
                                              "subscriptionType": "pro"}}), 0o600)
    os.chown(cred, 1000, 1000)  # the host user's file
    state = os.path.join(art, "state")  # run_claude mounts it at /claude
    os.makedirs(state)
    shutil.copy2(cred, os.path.join(state, ".credentials.json"))
    os.chown(os.path.join(state, ".credentials.json"), 1000, 1000)
    srv = MockServer(art, step_script(CLAUDE_OAUTH_ATTACKS))
    try:
        run_claude(res, art, srv.port, {}, [])
    finally:
        srv.stop()
    reqs = srv.requests()
    main = [r for r in reqs if r.get("main_loop")]
    res.check(main, "claude sent no main-loop request to the model server")
    bad = [r.get("auth") for r in main if r.get("auth") != "Bearer " + token]
    res.check(not bad, "requests without the OAuth token: %s" % bad[:3])
    results = check_tool_results(res, main, CLAUDE_OAUTH_ATTACKS, {"OAuth access token": token,
                                                                     "OAuth refresh token": refresh})
    write(os.path.join(art, "tool_results.json"), json.dumps(results, indent=1))


# ---------------------------------------------------------------------------
def running(name):
    rc, out, _, _ = sh([ENGINE, "inspect", "--format", "{{.State.Running}}", name], timeout=30)
    return rc == 0 and out.strip() == "true"


def wait_for_log(name, needle, timeout=30):
    """Wait until the container's output has `needle`; None if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rc, out, err, _ = sh([ENGINE, "logs", name], timeout=10)
        if needle in out or needle in err:
            return out + err
        if not running(name):
            return None
        time.sleep(0.2)
    return None


def case_stop(res):
    art = artifact_dir("stop")
    harness = (
        "for i in 1 2 3 4 5; do (sleep 0.2 &); done; "       # orphans: reparented to PID 1, then exit
        "sleep 1.5; "
        "z=0; for s in /proc/[0-9]*/status; do grep -q '^State:.*Z' $s 2>/dev/null && z=$((z+1)); done; "
        "echo zombies=$z; "
        "trap 'echo got-TERM; exit 42' TERM; echo HARNESS-READY; "
        "while :; do sleep 0.1; done")
    variants = [("trap-exit-42", ["bash", "-c", harness], 42, "zombies=0"),
                ("sleep-killed-by-TERM", ["sleep", "1000"], 143, None)]
    # The 2 s limit is on the container's own exit (SIGTERM to PID 1 exited,
    # as the engine records it); the engine's clean-up after that is not ours
    # and is only reported. A loaded 2-core machine can still stall a run: a
    # variant over the limit is run once more, and the faster try counts.
    # Exit codes and zombies are checked on every try.
    for label, cmd, want, must in variants:
        for attempt in (1, 2):
            dt = stop_once(res, label, cmd, want, must, art, final=(attempt == 2))
            if dt is not None and dt < 2.0:
                break


def rfc3339_ns(text):
    """Docker's `2026-11-27T15:08:11.123456789Z` as Unix nanoseconds ("" if not that)."""
    import datetime
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", text.strip())
    if not m:
        return ""
    secs = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    frac = (m.group(2) or "0")[:9].ljust(9, "0")
    return str(int(secs) * 10**9 + int(frac))


def stop_once(res, label, cmd, want, must, art, final):
    """One try of a stop variant: the seconds `podman stop` took, or None;
    the timing is checked only on the final try."""
    name = "av-test-stop-%s-%d" % (label, os.getpid())
    sh([ENGINE, "rm", "-f", name], timeout=30)
    rc, out, err, _ = sh([ENGINE, "run", "-d", "--name", name, "--network", "none"] + secure_flags() +
                         STATE_VOLUMES["base"] + [image("base")] + cmd, timeout=60)
    if not res.check(rc == 0, "%s: could not start: %s" % (label, err[-500:])):
        return None
    try:
        if label.startswith("trap"):
            logs = wait_for_log(name, "HARNESS-READY", 30)
            if not res.check(logs is not None, "%s: harness never got ready: %s" % (
                    label, why(sh([ENGINE, "logs", name], timeout=30)[2]))):
                return None
            if logs is not None and must:
                res.check(must in logs, "%s: zombies not reaped: %s" % (label, logs.strip()[-300:]))
        else:
            time.sleep(1.0)
        t0 = time.monotonic()
        sent_ns = time.time_ns()
        rc, _, err, _ = sh([ENGINE, "stop", "-t", "10", name], timeout=30)
        cli = time.monotonic() - t0
        # podman's FinishedAt is a time (.UnixNano); Docker's an RFC 3339 string
        fmt = "{{.State.ExitCode}} " + ("{{.State.FinishedAt.UnixNano}}" if ENGINE == "podman"
                                        else "{{.State.FinishedAt}}")
        _, out, _, _ = sh([ENGINE, "inspect", "--format", fmt, name], timeout=30)
        code, _, finished = out.strip().partition(" ")
        if ENGINE != "podman":
            finished = rfc3339_ns(finished)
        # The container's own stop time: from the SIGTERM to the moment its
        # PID 1 exited (recorded by the engine), without the engine's clean-up.
        try:
            dt = (int(finished) - sent_ns) / 1e9
        except ValueError:
            dt = cli
        _, logs, elogs, _ = sh([ENGINE, "logs", name], timeout=30)
        write(os.path.join(art, label + ".log"), logs + elogs)
        res.note("%s: exited %.2fs after the stop (the `%s stop` command took %.2fs), exit code %s"
                 % (label, dt, ENGINE, cli, code))
        if dt >= 2.0 and not final:
            res.note("%s: over the 2s limit; trying once more" % label)
        else:
            res.check(dt < 2.0, "%s: exited %.2fs after the stop (limit 2s)" % (label, dt))
        res.check(code == str(want), "%s: exit code %s, want %s" % (label, code, want))
        return dt
    finally:
        if not KEEP:
            sh([ENGINE, "rm", "-f", name], timeout=30)


# ---------------------------------------------------------------------------
def case_exec(res):
    """exec'd processes are untrusted: the preload's constructor must confine
    them. A static binary started by exec loads no preload and is not a
    descendant of agent-init, so only file ownership stands in its way."""
    art = artifact_dir("exec")
    key = "sk-avtest-" + secrets.token_hex(16)
    seed, state, ws = make_pi_dirs(art, 9, key)
    name = "av-test-exec-%d" % os.getpid()
    sh([ENGINE, "rm", "-f", name], timeout=30)
    rc, out, err, _ = sh([ENGINE, "run", "-d", "--name", name, "--network", "none"] + secure_flags() +
                         volumes_except("pi", "/pi-agent", "/workspace") + [
        "-v", "%s:/pi-agent-ro:ro" % seed, "-v", "%s:/pi-agent" % state, "-v", "%s:/workspace" % ws,
        "-v", "%s:/usr/local/bin/av-rawread:ro" % RAWREAD, image("pi"), "sleep", "1000"], timeout=60)
    if not res.check(rc == 0, "could not start: %s" % err[-500:]):
        return
    try:
        time.sleep(1.5)
        if not res.check(running(name), "the container is not running: %s"
                         % why(sh([ENGINE, "logs", name], timeout=30)[2])):
            return
        rc, _, err, _ = sh([ENGINE, "exec", "--user", "1000", name, "true"], timeout=60)
        if not res.check(rc == 0, "exec --user 1000 true failed (%s): %s" % (rc, err[-300:])):
            return
        tries = [
            ("root-cat", [], ["cat", "/pi-agent/auth.json"], True),
            ("uid1000-cat", ["--user", "1000"], ["cat", "/pi-agent/auth.json"], True),
            ("uid1000-node", ["--user", "1000"], ["node", "-e",
                                                  "process.stdout.write(require('fs').readFileSync('/pi-agent/auth.json'))"], True),
            ("uid1000-environ-of-pid1", ["--user", "1000"], ["cat", "/proc/1/environ"], False),
            # known limitation: no preload, no Landlock, same uid as the vault's owner
            ("uid1000-static", ["--user", "1000"], ["av-rawread", "/pi-agent/auth.json"], False),
            ("root-static", [], ["av-rawread", "/pi-agent/auth.json"], False),
        ]
        for label, opts, cmd, must_hold in tries:
            rc, out, err, _ = sh([ENGINE, "exec"] + opts + [name] + cmd, timeout=60)
            write(os.path.join(art, label + ".out"), out + err)
            leaked = key in out or key in err
            res.note("exec %s: rc=%s %s" % (label, rc, "LEAKED the key" if leaked else "no leak"))
            if must_hold:
                res.check(not leaked, "exec %s read the vault file" % label)
    finally:
        if not KEEP:
            sh([ENGINE, "rm", "-f", name], timeout=30)


CASES = {
    "selftest": case_selftest,
    "nonroot": case_nonroot,
    "adopt": case_adopt,
    "pi": case_pi,
    "pi-restart": case_pi_restart,
    "claude": case_claude,
    "claude-oauth": case_claude_oauth,
    "stop": case_stop,
    "exec": case_exec,
}
CASES.update(__import__("proxy_cases").cases(sys.modules[__name__]))  # the credential proxy's cases
CASES.update(__import__("all_cases").cases(sys.modules[__name__]))  # agent-vault/all: the runner image


def main():
    global ENGINE, ARTIFACTS, KEEP, RAWREAD
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", default=os.environ.get("CONTAINER_ENGINE", "podman"))
    ap.add_argument("--rawread", required=True, help="static attacker binary (gcc -static attack/rawread.c)")
    ap.add_argument("--artifacts", default=os.path.join(HERE, ".cache", "artifacts"))
    ap.add_argument("--keep", action="store_true", help="keep stopped containers")
    ap.add_argument("cases", nargs="*")
    a = ap.parse_args()
    ENGINE, ARTIFACTS, KEEP, RAWREAD = a.engine, os.path.abspath(a.artifacts), a.keep, os.path.abspath(a.rawread)
    os.makedirs(ARTIFACTS, exist_ok=True)
    names = a.cases or list(CASES)
    for n in names:
        if n not in CASES:
            sys.exit("unknown case %s (have %s)" % (n, ", ".join(CASES)))
    results = []
    for n in names:
        res = Result(n)
        print("=== %s" % n, flush=True)
        try:
            CASES[n](res)
        except Exception as e:  # a broken case is a failed case
            res.failures.append("exception: %r" % e)
        res.seconds = time.monotonic() - res.t0
        for line in res.notes:
            print("    %s" % line)
        for line in res.failures:
            print("  ! %s" % line)
        status = "PASS" if not res.failures else "FAIL"
        print("%s %s (%.1fs)" % (status, n, res.seconds), flush=True)
        results.append(res)
    print("\nsummary:")
    for r in results:
        first = " ".join(r.failures[0].split())[:110] if r.failures else ""
        print("  %-4s %-12s %6.1fs  %s" % ("PASS" if not r.failures else "FAIL", r.name, r.seconds, first))
    with open(os.path.join(ARTIFACTS, "summary.json"), "w") as f:
        json.dump([{"case": r.name, "pass": not r.failures, "seconds": round(r.seconds, 1),
                    "failures": r.failures, "notes": r.notes} for r in results], f, indent=1)
    sys.exit(1 if any(r.failures for r in results) else 0)


if __name__ == "__main__":
    main()
