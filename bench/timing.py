"""The benchmark's timing core (started by bench/run.sh inside its mount
namespace; see bench/README.md).

Every figure is taken with two arms started alternately, A B A B ..., in one
run: "with" through `agent-init run` (the built-in policy, the preload from
/etc/ld.so.preload) and "without" as the same user with `setpriv`. Each arm
prints its own timing (the harness or the tool measures itself), so the
start-up of agent-init, unshare and prlimit is never in a figure. Each figure
is printed as min and median over the samples, and the ratio of the medians
(and of the minimums) from this run only.

With --container IMAGE (bench/container.sh) every arm is a `podman run` of
that image instead, as users start one: "with" through the image's
ENTRYPOINT (`agent-init run --`, the image's policy), "without" the same
image with `--entrypoint` the harness, the same user, and an empty file over
/etc/ld.so.preload; both under `--ulimit nofile=SOFT:SOFT`.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import resource
import shlex

# The two fd limits users get: Docker/Podman's default soft limit (1024) and
# the 1048576 common under Kubernetes. Raising the hard limit needs
# CAP_SYS_RESOURCE; without it (some containers) the large figure is taken at
# the current hard limit, and the output says so. The preload lists
# /proc/self/fd instead of polling above 4096 (vault-preload/src/guard.rs
# POLL_LIMIT), so any limit above that takes the same path.
WANT_LARGE = 1048576
p = argparse.ArgumentParser()
p.add_argument("--root", required=True)
p.add_argument("--dir", required=True)
p.add_argument("--uid", required=True)
p.add_argument("--gid", required=True)
p.add_argument("--home", required=True)
p.add_argument("--quick", action="store_true", help="short smoke run")
p.add_argument("--cpu", action="store_true",
               help="only the CPU-time breakdown of a spawn (perf stat -e task-clock)")
p.add_argument("--container", metavar="IMAGE",
               help="run every arm as a podman container of IMAGE (bench/container.sh)")
p.add_argument("--ab", metavar="NAME=LIB,...",
               help="with --cpu: compare preload builds: each LIB (a libvault_preload.so) is copied "
                    "over the release preload in turn, for a harness and a tool spawning")
p.add_argument("--rounds", type=int, help="with --cpu: interleaved rounds (default 9, --quick 3); "
                                          "with --profile: profiles per arm (default 5, --quick 1)")
p.add_argument("--profile", action="store_true",
               help="where a spawn's CPU time goes, by process, library and symbol: a sampled profile "
                    "(perf record) of the harness and a tool spawning, each against its floor")
a = p.parse_args()
if a.profile and (a.container or a.ab):
    sys.exit("bench: --profile is host-only and takes no --ab")
if a.ab and not a.cpu:
    sys.exit("bench: --ab needs --cpu")
if a.container and a.cpu:
    sys.exit("bench: --cpu is host-only (perf stat counts its own descendants; a container's processes are "
             "conmon's); run `bench/run.sh --cpu` on the host")

_, HARD_NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)
# The container runtime (runc, started by podman as this process's child) has
# no more capabilities than this process: a container gets --ulimit
# nofile=N:N only when this process could raise its own hard limit to N.
if subprocess.run(["prlimit", f"--nofile={WANT_LARGE}:{WANT_LARGE}", "--", "true"],
                  stderr=subprocess.DEVNULL).returncode == 0:
    HARD_NOFILE = WANT_LARGE
LIMITS = (1024, min(WANT_LARGE, HARD_NOFILE))
LIMIT_NOTE = ("" if LIMITS[1] == WANT_LARGE else
              f"NOTE: the hard RLIMIT_NOFILE here is {HARD_NOFILE} and cannot be raised (no "
              f"CAP_SYS_RESOURCE), so the large-limit figures use a soft limit of {LIMITS[1]}, "
              f"not {WANT_LARGE} (the preload's scan of a harness child's fds depends on the size of "
              f"its fd table, not on the limit, so a larger limit costs a spawn nothing more)."
              + (" podman's runtime (runc) inherits this process's capabilities, so a container "
                 "cannot get more either." if a.container else ""))
# An explicit --ulimit makes podman 4 set RLIMIT_NPROC to 1048576 as well,
# which runc cannot set without CAP_SYS_RESOURCE: the containers get podman's
# default instead (containers.conf default_ulimits, "nproc=1000:1000"). No arm
# runs more than a few processes at a time.
NPROC = "1000:1000"


W = a.dir
AGENT_INIT = a.root + "/target/release/agent-init"
if a.container:
    # Paths inside the container (bench/container.sh mounts them).
    BIN = "/bench/bin"
    WS = "/workspace"
    OUT, OUT_HOST = "/bench/out", W + "/out"   # strace logs, written in the container
else:
    BIN = W + "/bin"
    WS = W + "/ws"
    OUT = OUT_HOST = W

# Sample counts and loop sizes.
if a.quick:
    S_WORK, S_SPAWN, S_OPEN = 1, 2, 2
    N_C, N_SCRIPT, N_OPEN, N_STRACE = 100, 30, 20000, 10
    WORK = ["git", "grep", "pipelines"]
else:
    S_WORK, S_SPAWN, S_OPEN = 5, 7, 7
    N_C, N_SCRIPT, N_OPEN, N_STRACE = 1000, 300, 200000, 100
    WORK = ["configure", "make", "git", "grep", "python", "pipelines"]

ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": a.home,
    "LANG": "C.UTF-8",
}
if a.container:
    # The arms' environment goes in with `-e`; the image keeps its vault
    # directories (/pi-agent, /claude). podman itself runs with this
    # process's environment (CONTAINERS_STORAGE_CONF).
    ENV["USER"] = ENV["LOGNAME"] = "agent"
    RUN_ENV = dict(os.environ)
else:
    # The built-in policy's vault directories default to /pi-agent and
    # /claude; agent-init creates them, so they are moved to /srv (a tmpfs
    # in the namespace, see run.sh) to leave the host untouched.
    ENV["PI_CODING_AGENT_DIR"] = "/srv/pi-agent"
    ENV["CLAUDE_CONFIG_DIR"] = "/srv/claude"
    user = subprocess.run(["getent", "passwd", a.uid], capture_output=True, text=True).stdout.split(":")[0]
    ENV["USER"] = ENV["LOGNAME"] = user
    RUN_ENV = ENV


def prefix(etc, soft):
    """prlimit, then a nested mount namespace with `etc` over /etc."""
    return [
        "prlimit", f"--nofile={soft}:{HARD_NOFILE}", "--",
        "unshare", "--mount", "--propagation", "private", "--",
        "/bin/sh", "-c", 'mount --bind "$0" /etc && exec "$@"', etc,
    ]


def podman_run(soft, extra):
    """`podman run` of the bench image as the images' runtime contract has
    it (images/base/Dockerfile: read-only root, tmpfs /run and /tmp, the
    capability set, no-new-privileges), the workspace bind-mounted as
    /workspace, the bench's programs read-only at /bench/bin, and
    `--ulimit nofile=SOFT:SOFT`. `extra` goes before the image name."""
    return [
        "podman", "run", "--rm", "--network=none", "--read-only", "--tmpfs", "/run", "--tmpfs", "/tmp",
        "--tmpfs", "/pi-agent",
        "--cap-drop=ALL", "--cap-add=CHOWN,DAC_OVERRIDE,FOWNER,SETUID,SETGID,SETPCAP,KILL",
        "--security-opt=no-new-privileges",
        "-v", f"{W}/ws:/workspace", "-v", f"{W}/bin:/bench/bin:ro",
        "-v", f"{OUT_HOST}:/bench/out",
        "--ulimit", f"nofile={soft}:{soft}", "--ulimit", f"nproc={NPROC}",
        *[x for k, v in ENV.items() for x in ("-e", f"{k}={v}")],
        *extra,
    ]


# The "without" arm in a container: an empty file over the image's
# /etc/ld.so.preload (bench/container.sh makes it).
NO_PRELOAD = ["-v", f"{W}/empty-preload:/etc/ld.so.preload:ro"]
# The floors' arm in a container: an /etc/ld.so.preload naming the empty
# library, loaded the way agent-vault's is (see `etc_for`).
EMPTY_PRELOAD = ["-v", f"{W}/empty-lib-preload:/etc/ld.so.preload:ro"]


def etc_for(empty_lib):
    """The /etc of an arm without agent-vault: the plain one, or (the
    floors, `empty_lib`) one whose /etc/ld.so.preload names the empty
    library. The floors load it as agent-vault's library is loaded: the
    loader reads /etc/ld.so.preload in every new program (an `access`, an
    `open`, a `mmap`: about 16 µs a spawn here over `LD_PRELOAD`, bench/
    RESULTS.md run 13), which any design that preloads this way pays."""
    return W + ("/etc-empty" if empty_lib else "/etc-plain")


def with_av(cmd, soft, policy=None):
    if a.container:
        # the image's policy with one layer off, over the image's policy
        pol = ["-v", f"{W}/policies/{os.path.basename(policy)}:/etc/agent-vault/policy.toml:ro"] if policy else []
        return podman_run(soft, pol) + [a.container, *cmd]
    pol = ["--policy", policy] if policy else []
    return prefix(W + "/etc-vault", soft) + [
        AGENT_INIT, "run", "-q", "--user", f"{a.uid}:{a.gid}", *pol, "--", *cmd]


def without_av(cmd, soft, empty_lib=False):
    if a.container:
        return podman_run(soft, [*(EMPTY_PRELOAD if empty_lib else NO_PRELOAD), "--user", f"{a.uid}:{a.gid}",
                                 "--entrypoint", cmd[0]]) + [a.container, *cmd[1:]]
    return prefix(etc_for(empty_lib), soft) + [
        "setpriv", "--reuid", a.uid, "--regid", a.gid, "--clear-groups", "--", *cmd]


# The fd at which `llreplay --last-layer-fd` leaves the tool layer's ruleset
# for `spawner forkexec-layer` (the fd the preload's cached ruleset has in a
# harness started by agent-init; any free fd would do).
LAST_LAYER_FD = "3"


def replayed(cmd, soft, rules, empty_lib=False, last_layer_in_children=False, allow_filter=False):
    """Without agent-vault, under the recorded Landlock layers; `empty_lib`:
    with the empty library preloaded (the floors, `etc_for`). With
    `last_layer_in_children`, llreplay enforces the base layer only and
    leaves the tool layer's ruleset open at LAST_LAYER_FD for `cmd`
    (`spawner forkexec-layer N 3`) to enforce in each child. With
    `allow_filter`, also a seccomp filter that allows everything (what any
    seccomp filter costs a system call: figure 4's floor)."""
    keep = (["--allow-filter"] if allow_filter else []) + (
        ["--last-layer-fd", LAST_LAYER_FD] if last_layer_in_children else [])
    if a.container:
        return podman_run(soft, [*(EMPTY_PRELOAD if empty_lib else NO_PRELOAD), "--entrypoint",
                                 BIN + "/llreplay"]) + [a.container, *keep, rules, a.uid, a.gid, *cmd]
    return prefix(etc_for(empty_lib), soft) + [BIN + "/llreplay", *keep, rules, a.uid, a.gid, *cmd]


def harness_floor(n, soft, rules, spawn="forkexec"):
    """The floor of a harness spawn, what any design of this shape pays per
    spawn from the harness: the harness under the base layer (as agent-init
    leaves it, with no_new_privs), and each child, before its execve, doing
    what agent-vault's harness child does (strace -f of a harness spawn:
    prctl(PR_SET_NO_NEW_PRIVS) and landlock_restrict_self of the tool
    layer's ruleset, built once in the harness as the preload's cache has
    it; no seccomp call), then the execve of /bin/true with an empty
    library in /etc/ld.so.preload (any preload's floor). Not in it: agent-init's
    seccomp filters on the harness (three, inherited by every child; their
    length is this policy's choice, not a floor of the shape: their cost is
    the `[seccomp] mode = "off"` row) and the preload's own work.

    `spawn="posix_spawn"`: the floor of a harness's posix_spawn. glibc's
    posix_spawn child execs without calling any interposed function, so
    the only place a preload can restrict it is the thread that spawns it:
    a new thread per spawn (agent-vault's helper thread) that enforces the
    tool layer on itself and calls posix_spawn (`spawner
    posix_spawn-layer`)."""
    return replayed([BIN + "/spawner", spawn + "-layer", str(n), LAST_LAYER_FD], soft, rules,
                    empty_lib=True, last_layer_in_children=True)


def traced(arm, strace, with_arm):
    """The arm `arm` (built by with_av or without_av) with `strace` in front
    of agent-init (with) or of the harness's user switch (without), as root
    on the host (the tracee may not write the log); in a container, strace
    is the entrypoint (CAP_SYS_PTRACE added for this run only), in front of
    `agent-init run --` or, as the same user, of the harness. There
    agent-init is not PID 1, so it also gets CAP_SYS_ADMIN: the preload
    trusts PID 1 or CAP_SYS_ADMIN to seed the vault (vault-preload/src/
    state.rs); agent-init drops every capability before the harness starts,
    and the layers it builds come from the policy alone."""
    if a.container:
        i = arm.index(a.container)
        head = arm[:i] + ["--cap-add=SYS_PTRACE"] + (["--cap-add=SYS_ADMIN"] if with_arm else [])
        if with_arm:
            return head + ["--entrypoint", strace[0], a.container, *strace[1:],
                           "/usr/local/bin/agent-init", "run", "--", *arm[i + 1:]]
        j = head.index("--entrypoint")
        harness = head[j + 1]
        head[j + 1] = strace[0]
        return head + [a.container, *strace[1:], harness, *arm[i + 1:]]
    i = arm.index(AGENT_INIT if with_arm else "setpriv")
    return arm[:i] + strace + arm[i:]


def run_once(cmd, key):
    r = subprocess.run(cmd, env=RUN_ENV, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    vals = [float(m.group(1)) for m in re.finditer(rf"^{key} ([0-9.]+)$", r.stdout, re.M)]
    # ld.so only warns when a preloaded library cannot be loaded (say, the
    # tool layer denies reading it): a floor without its library is no floor.
    if r.returncode != 0 or not vals or "cannot be preloaded" in r.stderr:
        sys.exit(f"bench: failed (exit {r.returncode}, no '{key}' line): {' '.join(cmd)}\n"
                 f"stdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}")
    return vals


def measure(arms, key, samples):
    """arms: {label: cmd}; run them alternately `samples` times (after one
    untimed round). Returns {label: [values]}."""
    for cmd in arms.values():
        run_once(cmd, key)
    out = {k: [] for k in arms}
    for _ in range(samples):
        for k, cmd in arms.items():
            out[k] += run_once(cmd, key)
    return out


ROWS = []  # (limit, section, name, without, with, goal, unit, floor or None)


def stat(v):
    return min(v), statistics.median(v)


def paired(wo, w):
    """The median of the per-sample ratios: each sample's two arms ran one
    after the other, so a pair shares the machine's load of that moment."""
    return statistics.median(b / a for a, b in zip(wo, w))


def fmt(x, unit):
    if unit == "ms":
        return f"{x / 1e6:,.1f} ms"
    if unit == "us":
        return f"{x:,.1f} µs"
    return f"{x:,.0f} ns"


def row(limit, section, name, without, with_, goal, unit, floor=None):
    ROWS.append((limit, section, name, without, with_, goal, unit, floor))
    (wmin, wmed), (amin, amed) = stat(without), stat(with_)
    fl = (f", floor {fmt(statistics.median(floor), unit)} (floor/without {paired(without, floor):.3f})"
          if floor else "")
    print(f"  [{limit}] {name}: without {fmt(wmed, unit)} (min {fmt(wmin, unit)}), "
          f"with {fmt(amed, unit)} (min {fmt(amin, unit)}), ratio {paired(without, with_):.3f} "
          f"(of minimums {amin / wmin:.3f}){fl}", file=sys.stderr, flush=True)


def say(s):
    print(s, file=sys.stderr, flush=True)


# --- figure 4's comparison ruleset: recorded from a real tool -------------

ACCESS = {n: 1 << i for i, n in enumerate(
    "EXECUTE WRITE_FILE READ_FILE READ_DIR REMOVE_DIR REMOVE_FILE MAKE_CHAR MAKE_DIR "
    "MAKE_REG MAKE_SOCK MAKE_FIFO MAKE_BLOCK MAKE_SYM REFER TRUNCATE IOCTL_DEV".split())}
# The tool layer's scopes (vault-preload/src/tool_layer.rs: SIGNAL |
# ABSTRACT_UNIX_SOCKET from ABI 6); strace 6.1 does not print `scoped`.
TOOL_SCOPES = 3


def access_bits(s):
    bits = 0
    for part in s.split("|"):
        part = part.strip()
        if part.startswith("LANDLOCK_ACCESS_FS_"):
            bits |= ACCESS[part[len("LANDLOCK_ACCESS_FS_"):]]
        else:
            bits |= int(part, 0)
    return bits


def record_layers(file):
    """strace a tool started through agent-init and write the Landlock layers
    it ends up under (every ruleset that is enforced on its way: the base
    layer by agent-init's child, the tool layer by the harness's child) in
    llreplay's format. Returns the rules file and the rule count per layer.
    The base layer's handled network rights and scopes are taken as none
    (agent-init/src/landlock_layer.rs: the base layer has no scopes and the
    policy no network rules); strace prints neither."""
    log = OUT_HOST + "/landlock.strace"
    cmd = with_av([BIN + "/spawner", "run", "1", BIN + "/openloop", file, "10"], LIMITS[0])
    strace = ["strace", "-f", "-qq", "-y", "-s", "4096", "-o", OUT + "/landlock.strace",
              "-e", "trace=landlock_create_ruleset,landlock_add_rule,landlock_restrict_self"]
    # strace goes after the namespace prefix, so that the bind mount of /etc
    # is in place and agent-init is traced from its start.
    run_once(traced(cmd, strace, True), "ns_per_open")
    created = {}   # fd -> [handled, [(access, path)]]
    layers = []
    for line in open(log):
        if "unfinished" in line or "resumed" in line:
            sys.exit(f"bench: an interleaved strace line; cannot record the layers: {line}")
        m = re.search(r"landlock_create_ruleset\(\{handled_access_fs=([^,]+),.*\) = (\d+)<", line)
        if m:
            created[m.group(2)] = [access_bits(m.group(1)), []]
            continue
        m = re.search(r"landlock_add_rule\((\d+)<[^>]*>, LANDLOCK_RULE_PATH_BENEATH, "
                      r"\{allowed_access=([^,]+), parent_fd=\d+<(.*)>\}, 0\) = 0", line)
        if m:
            created[m.group(1)][1].append((access_bits(m.group(2)), m.group(3)))
            continue
        if "landlock_add_rule(" in line and line.rstrip().endswith("= 0"):
            sys.exit(f"bench: a landlock_add_rule line this script cannot read: {line}")
        m = re.search(r"landlock_restrict_self\((\d+)<.*\) = 0", line)
        if m:
            layers.append(created[m.group(1)])
    if len(layers) != 2:
        sys.exit(f"bench: expected 2 Landlock layers on a tool (base + tool layer), saw {len(layers)}; see {log}")
    rules = OUT_HOST + "/tool-layers.rules"
    with open(rules, "w") as f:
        for n, (handled, rs) in enumerate(layers):
            f.write(f"layer {handled} {0 if n == 0 else TOOL_SCOPES}\n")
            for acc, path in rs:
                f.write(f"rule {acc} {path}\n")
    return OUT + "/tool-layers.rules", [len(rs) for _, rs in layers]


# --- the per-step breakdown of a harness spawn ----------------------------

def strace_children(cmd_prefix_until, tail, soft, with_arm):
    """strace -f -ttt a harness doing N_STRACE fork+execs of /bin/true and
    return (median µs fork->execve, median syscalls before execve, one
    child's syscall names before execve, median syscalls after execve)."""
    name = f"/spawn-{'with' if with_arm else 'without'}-{soft}.strace"
    log = OUT_HOST + name
    strace = ["strace", "-f", "-ttt", "-qq", "-o", OUT + name]
    run_once(traced(cmd_prefix_until, strace, with_arm), "us_per_spawn")
    lines = [ln.split(None, 2) for ln in open(log) if ln.strip()]
    spawner = None
    clone_at = {}   # child pid -> clone entry time
    pending = {}    # pid -> entry time of an unfinished clone
    per_child = {}  # pid -> list of (t, name)
    for pid, t, rest in lines:
        t = float(t)
        name = re.match(r"(<\.\.\. )?([a-z0-9_]+)", rest)
        name = name.group(2) if name else "?"
        if spawner is None and rest.startswith(f'execve("{BIN}/spawner"'):
            spawner = pid
        if pid == spawner and name in ("clone", "clone3", "fork", "vfork"):
            if "unfinished" in rest:
                pending[pid] = t
                continue
            m = re.search(r"= (\d+)$", rest)
            if m:
                clone_at[m.group(1)] = pending.pop(pid, t)
            continue
        per_child.setdefault(pid, []).append((t, name, rest))
    spans, before, after, sample = [], [], [], None
    for c, t0 in clone_at.items():
        ev = per_child.get(c, [])
        idx = next((k for k, e in enumerate(ev) if e[1] == "execve" and "/bin/true" in e[2]), None)
        if idx is None:
            continue
        spans.append((ev[idx][0] - t0) * 1e6)
        before.append(idx)
        after.append(len(ev) - idx - 1)
        if sample is None or len(spans) == len(clone_at) // 2:
            sample = [e[1] for e in ev[:idx]]
    if not spans:
        sys.exit(f"bench: no fork->execve of /bin/true found in {log} (spawner pid {spawner}, "
                 f"{len(clone_at)} clones); its first lines:\n" + "".join(open(log).readlines()[:60]))
    return statistics.median(spans), statistics.median(before), sample, statistics.median(after)


def compact(names):
    """Syscall names as counts, most frequent first."""
    counts = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    return ", ".join(f"{n} {c}" for n, c in sorted(counts.items(), key=lambda x: (-x[1], x[0])))


# --- the floor of a harness spawn ------------------------------------------

FLOOR_LABEL = ("the FLOOR of a harness spawn: base layer on the harness, the tool layer applied in "
               "each child, an empty preload (no agent-vault)")
SPAWN_FLOOR_LABEL = ("the FLOOR of a harness's POSIX_SPAWN: base layer on the harness, per spawn a thread "
                     "that enforces the tool layer on itself and calls posix_spawn, an empty preload "
                     "(no agent-vault)")
TOOL_FLOOR_LABEL = ("the FLOOR of a spawn inside a TOOL: both layers on the spawning program, an empty "
                    "preload (no agent-vault)")


def tool_floor(n, soft, rules):
    """The floor of a spawn inside a tool: the spawning program under both
    recorded layers (as a tool is), the execve of /bin/true with an empty
    library in /etc/ld.so.preload; no seccomp filter (see harness_floor)."""
    return replayed([BIN + "/spawner", "forkexec", str(n)], soft, rules, empty_lib=True)


def floor_lines(per, rule_counts):
    """The derived lines about the floor of a harness spawn (`per`: figure per
    variant, µs per spawn)."""
    fl, w, wo = per["floor"], per["with"], per["without"]
    return (f"- the floor of a harness spawn (harness_floor() in bench/timing.py: `llreplay --last-layer-fd` "
            f"with the recorded base layer, {rule_counts[0]} rules, on the harness; in each child "
            f"prctl(PR_SET_NO_NEW_PRIVS) + landlock_restrict_self of the recorded tool layer, "
            f"{rule_counts[1]} rules, built once; exec with an empty library in /etc/ld.so.preload; no seccomp "
            f"filter): {fl:,.1f} µs, {fl - wo:+,.1f} µs over without ({fl / wo:.3f}; goal ≤ 1.25)\n"
            f"- how close: with − floor {w - fl:+,.1f} µs (with / floor {w / fl:.3f}); of it, agent-init's "
            f"seccomp filters (with − seccomp off) {w - per['seccomp-off']:+,.1f} µs, and the rest the "
            f"preload's work (its start-up in the new program and its spawn hook in the harness child)\n"
            f"- the floor of a spawn inside a tool (tool_floor(): `llreplay` with both recorded layers, an "
            f"empty library in /etc/ld.so.preload): {per['tool-floor']:,.1f} µs, "
            f"{per['tool-floor'] - per['tool-without']:+,.1f} µs over a tool spawning without agent-vault "
            f"({per['tool-floor'] / per['tool-without']:.3f}; goal ≤ 1.12); how close: a tool spawning with "
            f"agent-vault − floor {per['tool-with'] - per['tool-floor']:+,.1f} µs "
            f"(with / floor {per['tool-with'] / per['tool-floor']:.3f})"
            + (f"; of it, agent-init's seccomp filters {per['tool-with'] - per['tool-seccomp-off']:+,.1f} µs "
               f"(a tool spawning with − with `[seccomp] mode = \"off\"`), and the rest the preload's "
               f"start-up in the new program" if "tool-seccomp-off" in per else ""))


# --- CPU time per spawn (--cpu) ---------------------------------------------

def cpu_once(cmd):
    """CPU time (ms, task-clock: every process and thread of the run) and
    page faults of one run of `cmd`, counted by `perf stat` in front of it."""
    out = W + "/perf-stat.csv"
    run_once(["perf", "stat", "-x,", "-e", "task-clock,page-faults", "-o", out, "--", *cmd],
             "us_per_spawn")
    got = {}
    for line in open(out):
        f = line.split(",")
        if len(f) > 2 and f[2] in ("task-clock", "page-faults"):
            got[f[2]] = float(f[0])
    if len(got) != 2:
        sys.exit(f"bench: no task-clock or page-faults line in {out}: {open(out).read()}")
    return got["task-clock"], got["page-faults"]


def cpu_main():
    """CPU time per spawn, by variant, at soft limit 1024: steadier than
    wall time on a shared machine (a busy neighbour delays a process; it
    does not make it execute more). Each variant runs N spawns and 1 spawn,
    interleaved with the others round by round; per spawn = (median T(N) -
    median T(1)) / (N - 1), which removes the start-up of agent-init,
    unshare and the harness that every run pays once."""
    t_start = time.time()
    load = open("/proc/loadavg").read().split()[:3]
    n, rounds = (300, 3) if a.quick else (1000, 9)
    rounds = a.rounds or rounds
    soft = 1024
    sp = BIN + "/spawner"
    if a.ab:
        return ab_main(n, rounds, soft, sp, t_start, load)
    variants = {
        "without": lambda k: without_av([sp, "forkexec", str(k)], soft),
        "empty": lambda k: without_av([sp, "forkexec", str(k)], soft, empty_lib=True),
        "with": lambda k: with_av([sp, "forkexec", str(k)], soft),
        "landlock-off": lambda k: with_av([sp, "forkexec", str(k)], soft, W + "/landlock-off.toml"),
        "seccomp-off": lambda k: with_av([sp, "forkexec", str(k)], soft, W + "/seccomp-off.toml"),
        "tool-without": lambda k: without_av([sp, "run", "1", sp, "forkexec", str(k)], soft),
        "tool-with": lambda k: with_av([sp, "run", "1", sp, "forkexec", str(k)], soft),
        "tool-seccomp-off": lambda k: with_av([sp, "run", "1", sp, "forkexec", str(k)], soft,
                                              W + "/seccomp-off.toml"),
        "spawn-without": lambda k: without_av([sp, "posix_spawn", str(k)], soft),
        "spawn-with": lambda k: with_av([sp, "posix_spawn", str(k)], soft),
    }
    rules, rule_counts = record_layers(WS + "/proj/src/f01.c")
    say(f"bench: recorded a tool's Landlock layers: base layer {rule_counts[0]} rules, "
        f"tool layer {rule_counts[1]} rules ({rules})")
    variants["floor"] = lambda k: harness_floor(k, soft, rules)
    variants["tool-floor"] = lambda k: tool_floor(k, soft, rules)
    variants["spawn-floor"] = lambda k: harness_floor(k, soft, rules, "posix_spawn")
    say(f"bench: CPU time per spawn, {n} and 1 spawns x {rounds} rounds; load average {' '.join(load)}")
    big = {k: [] for k in variants}
    one = {k: [] for k in variants}
    for v in variants.values():
        cpu_once(v(1))  # untimed round
    for r in range(rounds):
        for k, v in variants.items():
            big[k].append(cpu_once(v(n)))
            one[k].append(cpu_once(v(1)))
        say(f"  round {r + 1}/{rounds} done")
    med = statistics.median
    per = {k: (med(t for t, _ in big[k]) - med(t for t, _ in one[k])) * 1000 / (n - 1)
           for k in variants}
    faults = {k: (med(f for _, f in big[k]) - med(f for _, f in one[k])) / (n - 1)
              for k in variants}
    print(f"\nCPU time and page faults per spawn (`perf stat -e task-clock,page-faults`, all processes of the run), "
          f"{'QUICK (smoke) run' if a.quick else 'full run'}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; kernel {os.uname().release}; "
          f"{os.cpu_count()} CPUs; soft RLIMIT_NOFILE {soft}; C fork+exec of /bin/true; "
          f"{rounds} interleaved rounds of {n} and of 1 spawn; per spawn = (median of {n} - median of 1) / {n - 1}.")
    print("Command of a variant: `perf stat -x, -e task-clock,page-faults -o FILE -- ` + the arm "
          "(see the wall-time tables).\n")
    print("| variant | CPU µs per spawn | vs without | page faults per spawn |")
    print("|---|---|---|---|")
    for k, label in (("without", "without agent-vault"),
                     ("empty", "without agent-vault, an EMPTY library in /etc/ld.so.preload (any preload's floor)"),
                     ("with", "with agent-vault (built-in policy): the harness spawning"),
                     ("landlock-off", "with agent-vault, `[landlock] mode = \"off\"`"),
                     ("seccomp-off", "with agent-vault, `[seccomp] mode = \"off\"`"),
                     ("tool-without", "a TOOL spawning, without agent-vault"),
                     ("tool-with", "a TOOL spawning, with agent-vault"),
                     ("tool-seccomp-off", "a TOOL spawning, with agent-vault, `[seccomp] mode = \"off\"`"),
                     ("floor", FLOOR_LABEL),
                     ("tool-floor", TOOL_FLOOR_LABEL),
                     ("spawn-without", "the harness's POSIX_SPAWN, without agent-vault"),
                     ("spawn-with", "the harness's POSIX_SPAWN, with agent-vault"),
                     ("spawn-floor", SPAWN_FLOOR_LABEL)):
        base = per[k.split("-")[0] + "-without" if k.startswith(("tool", "spawn")) else "without"]
        print(f"| {label} | {per[k]:,.1f} | {per[k] - base:+,.1f} µs ({per[k] / base:.3f}) | {faults[k]:.1f} |")
    print()
    print(f"- any preloaded library (empty one): {per['empty'] - per['without']:+,.1f} µs")
    print(f"- the preload's start-up in the new program (a tool spawning, with − without): "
          f"{per['tool-with'] - per['tool-without']:+,.1f} µs")
    print(f"- the harness child's work before exec (the harness spawning − a tool spawning, both with "
          f"agent-vault): {per['with'] - per['tool-with']:+,.1f} µs")
    print(f"- the kernel's Landlock (with − landlock off): {per['with'] - per['landlock-off']:+,.1f} µs")
    print(f"- the kernel's seccomp filter (with − seccomp off): {per['with'] - per['seccomp-off']:+,.1f} µs "
          f"for the harness spawning, {per['tool-with'] - per['tool-seccomp-off']:+,.1f} µs for a tool spawning")
    print(floor_lines(per, rule_counts))
    sw, sf, swo = per["spawn-with"], per["spawn-floor"], per["spawn-without"]
    print(f"- the floor of a harness's posix_spawn (harness_floor(spawn=\"posix_spawn\"): per spawn a thread "
          f"that enforces the recorded tool layer on itself, then posix_spawn): {sf:,.1f} µs, "
          f"{sf - swo:+,.1f} µs over without ({sf / swo:.3f}; goal ≤ 1.25); how close: with − floor "
          f"{sw - sf:+,.1f} µs (with / floor {sw / sf:.3f})")
    load = open("/proc/loadavg").read().split()[:3]
    print(f"\nTook {time.time() - t_start:.0f} s; load average at the end {' '.join(load)}.")


# --- the figures ----------------------------------------------------------

def main():
    t_start = time.time()
    load = open("/proc/loadavg").read().split()[:3]
    say(f"bench: {'quick' if a.quick else 'full'} run; load average {' '.join(load)} at start")
    if LIMIT_NOTE:
        say("bench: " + LIMIT_NOTE)
    ws_file = WS + "/proj/src/f01.c"
    rules, rule_counts = record_layers(ws_file)
    say(f"bench: recorded a tool's Landlock layers: base layer {rule_counts[0]} rules, "
        f"tool layer {rule_counts[1]} rules ({rules})")
    sp = BIN + "/spawner"
    breakdown = {}
    for soft in LIMITS:
        say(f"== soft RLIMIT_NOFILE {soft}")
        # 1. tool work, run by the C harness as its child.
        for w in WORK:
            cmd = [sp, "run", "1", "/bin/sh", f"{WS}/work-{w}.sh"]
            arms = {"without": without_av(cmd, soft), "with": with_av(cmd, soft)}
            if not a.quick:
                # The floor of the tool work: the same work under the
                # recorded layers (both) with an empty library preloaded.
                arms["floor"] = replayed(cmd, soft, rules, empty_lib=True)
            r = measure(arms, "ns", S_WORK)
            row(soft, 1, f"tool work: {w}", r["without"], r["with"], 1.03, "ms", r.get("floor"))
        # 2. spawn from the harness.
        py = ("import subprocess,sys,time\nn=int(sys.argv[1])\n"
              "for _ in range(20): subprocess.run(['/bin/true'], check=True)\n"
              "t=time.perf_counter()\n"
              "for _ in range(n): subprocess.run(['/bin/true'], check=True)\n"
              "print('us_per_spawn %.2f' % ((time.perf_counter()-t)/n*1e6))")
        js = ("const cp=require('child_process');const n=+process.argv[1];"
              "for(let i=0;i<20;i++)cp.spawnSync('/bin/true');"
              "const t=process.hrtime.bigint();"
              "for(let i=0;i<n;i++){if(cp.spawnSync('/bin/true').status!==0)process.exit(1);}"
              "console.log('us_per_spawn '+(Number(process.hrtime.bigint()-t)/n/1000).toFixed(2));")
        # The C harness's two ways have a floor (harness_floor), as a third arm.
        harnesses = [
            ("C harness: fork+exec /bin/true", [sp, "forkexec", str(N_C)], "forkexec"),
            ("C harness: posix_spawn /bin/true", [sp, "posix_spawn", str(N_C)], "posix_spawn"),
            ("Python harness: subprocess.run", ["/usr/bin/python3", "-c", py, str(N_SCRIPT)], None),
            ("Node harness: spawnSync", ["/usr/bin/node", "-e", js, str(N_SCRIPT)], None),
        ]
        for name, cmd, floor_of in harnesses:
            arms = {"without": without_av(cmd, soft), "with": with_av(cmd, soft)}
            if floor_of:
                arms["floor"] = harness_floor(N_C, soft, rules, floor_of)
            r = measure(arms, "us_per_spawn", S_SPAWN)
            row(soft, 2, f"spawn from the harness: {name}", r["without"], r["with"], 1.25, "us", r.get("floor"))
        # 3. spawn inside a tool (the C program is the harness's child).
        for mode in ("forkexec", "posix_spawn"):
            cmd = [sp, "run", "1", sp, mode, str(N_C)]
            r = measure({"without": without_av(cmd, soft), "with": with_av(cmd, soft)}, "us_per_spawn", S_SPAWN)
            row(soft, 3, f"spawn inside a tool: {'fork+exec' if mode == 'forkexec' else 'posix_spawn'} /bin/true",
                r["without"], r["with"], 1.12, "us")
        # 4. open+read+close of a workspace file in a tool vs the same layers alone.
        loop = [BIN + "/openloop", ws_file, str(N_OPEN)]
        r = measure({
            "nothing": without_av(loop, soft),
            "layers": replayed(loop, soft, rules),
            "layers+filter": replayed(loop, soft, rules, allow_filter=True),
            "with": with_av([sp, "run", "1", *loop], soft),
            "seccomp-off": with_av([sp, "run", "1", *loop], soft, W + "/seccomp-off.toml"),
        }, "ns_per_open", S_OPEN)
        row(soft, 4, "open+read+close in a tool vs the same Landlock layers alone",
            r["layers"], r["with"], 1.05, "ns")
        row(soft, 4, "the floor: the same layers and a seccomp filter that allows everything, "
            "vs the layers alone", r["layers"], r["layers+filter"], 1.05, "ns")
        row(soft, 4, "in a tool with `[seccomp] mode = \"off\"` vs the same Landlock layers alone",
            r["layers"], r["seccomp-off"], None, "ns")
        row(soft, 4, "(for scale) the same Landlock layers alone vs no Landlock",
            r["nothing"], r["layers"], None, "ns")
        # Breakdown of a harness spawn (C harness, fork+exec).
        fe = [sp, "forkexec", str(N_C)]
        in_tool = [sp, "run", "1", *fe]
        r = measure({
            "without": without_av(fe, soft),
            "empty": without_av(fe, soft, empty_lib=True),
            "with": with_av(fe, soft),
            "landlock-off": with_av(fe, soft, W + "/landlock-off.toml"),
            "seccomp-off": with_av(fe, soft, W + "/seccomp-off.toml"),
            "tool-without": without_av(in_tool, soft),
            "tool-with": with_av(in_tool, soft),
            "floor": harness_floor(N_C, soft, rules),
            "tool-floor": tool_floor(N_C, soft, rules),
        }, "us_per_spawn", S_SPAWN)
        breakdown[(soft, "variants")] = r
        st = {}
        for arm, build in (("without", without_av), ("with", with_av)):
            st[arm] = strace_children(build([sp, "forkexec", str(N_STRACE)], soft), [sp], soft, arm == "with")
        breakdown[(soft, "strace")] = st
    print_tables(breakdown, rule_counts)
    load = open("/proc/loadavg").read().split()[:3]
    print(f"\nTook {time.time() - t_start:.0f} s; load average at the end {' '.join(load)}.")


def print_tables(bd, rule_counts):
    med = statistics.median
    print()
    print(f"agent-vault overhead, {'QUICK (smoke) run' if a.quick else 'full run'}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; kernel {os.uname().release}; "
          f"{os.cpu_count()} CPUs")
    if a.container:
        print(f"In containers: image {a.container} ({os.environ.get('BENCH_IMAGE_NOTE', '')}), engine "
              f"{os.environ.get('BENCH_ENGINE', 'podman')}; every arm is one `podman run`.")
    print("Interleaved samples (A B A B ...), all from this run. without, with: medians. "
          "ratio: the median of the per-sample ratios (each sample's with / its without, run "
          "back to back); in brackets: the ratio of the minimums.")
    if LIMIT_NOTE:
        print(LIMIT_NOTE)
    sp = [BIN + "/spawner", "forkexec", str(N_C)]
    print("Arms (here for figure 2's C fork+exec; SOFT = the table's limit):")
    print("- with:    `" + shlex.join(with_av(sp, "SOFT")) + "`")
    print("- without: `" + shlex.join(without_av(sp, "SOFT")) + "`")
    titles = {
        1: "1. a coding agent's tool work, run as a tool (the C harness's child)",
        2: "2. spawn from the harness",
        3: "3. spawn inside a tool (the C program is the harness's child)",
        4: "4. open+read+close of a workspace file in a tool; \"without\" = the same Landlock layers alone",
    }
    for soft in LIMITS:
        print(f"\n### soft RLIMIT_NOFILE = {soft} (hard {soft if a.container else HARD_NOFILE})\n")
        # Figure 1's floor (full runs): the same work under the recorded
        # layers with an empty library preloaded, as two more columns.
        floors = any(r[7] for r in ROWS if r[0] == soft)
        fh, fs, fe = (" floor | floor / without |", "---|---|", " | |") if floors else ("", "", "")
        print(f"| figure | without | with | ratio | goal |{fh}")
        print(f"|---|---|---|---|---|{fs}")
        section = None
        tot_wo = tot_w = tot_fl = 0
        for limit, sec, name, wo, w, goal, unit, fl in ROWS:
            if limit != soft:
                continue
            if sec != section:
                if section == 1 and len(WORK) > 1:
                    fsum = f" {tot_fl / 1e6:,.1f} ms | {tot_fl / tot_wo:.3f} |" if floors else ""
                    print(f"| tool work: all of the above (sum of medians) | {tot_wo / 1e6:,.1f} ms | "
                          f"{tot_w / 1e6:,.1f} ms | {tot_w / tot_wo:.3f} | ≤ 1.03 |{fsum}")
                print(f"| **{titles[sec]}** | | | | |{fe}")
                section = sec
            if sec == 1:
                tot_wo += med(wo)
                tot_w += med(w)
                tot_fl += med(fl) if fl else 0
            g = f"≤ {goal:.2f}" if goal else "(for scale)"
            fcol = (f" {fmt(med(fl), unit)} | **{paired(wo, fl):.3f}** ({min(fl) / min(wo):.3f}) |" if fl
                    else fe)
            print(f"| {name.split(': ', 1)[-1]} | {fmt(med(wo), unit)} | {fmt(med(w), unit)} | "
                  f"**{paired(wo, w):.3f}** ({min(w) / min(wo):.3f}) | {g} |{fcol}")
        v = bd[(soft, "variants")]
        b = {k: med(x) for k, x in v.items()}
        print(f"\nWhere a harness spawn's time goes (C harness, fork+exec of /bin/true, µs per spawn, "
              f"medians; the variants were interleaved with each other):\n")
        print("| variant | µs per spawn | vs without |")
        print("|---|---|---|")
        for k, label in (("without", "without agent-vault"),
                         ("empty", "without agent-vault, an EMPTY library in /etc/ld.so.preload (any preload's floor)"),
                         ("with", "with agent-vault (built-in policy)"),
                         ("landlock-off", "with agent-vault, `[landlock] mode = \"off\"` (no base or tool layer)"),
                         ("seccomp-off", "with agent-vault, `[seccomp] mode = \"off\"`"),
                         ("tool-without", "a TOOL spawning (figure 3's loop), without agent-vault"),
                         ("tool-with", "a TOOL spawning (figure 3's loop), with agent-vault"),
                         ("floor", FLOOR_LABEL),
                         ("tool-floor", TOOL_FLOOR_LABEL)):
            print(f"| {label} | {b[k]:,.1f} | {b[k] - b['without']:+,.1f} µs ({b[k] / b['without']:.3f}) |")
        st = bd[(soft, "strace")]
        print()
        print(f"- any preloaded library (empty one): {b['empty'] - b['without']:+,.1f} µs per spawn")
        print(f"- the preload's start-up in the new program (a tool spawning, with − without: the "
              f"spawned program loads the preload, no layer is built): "
              f"{b['tool-with'] - b['tool-without']:+,.1f} µs; "
              f"syscalls of /bin/true after its execve under strace: {st['without'][3]:.0f} without, "
              f"{st['with'][3]:.0f} with")
        print(f"- the harness child's work before exec (the harness spawning − a tool spawning, both "
              f"with agent-vault): {b['with'] - b['tool-with']:+,.1f} µs; under `strace -f -ttt`, "
              f"fork→execve {st['without'][0]:,.0f} µs and {st['without'][1]:.0f} syscalls without, "
              f"{st['with'][0]:,.0f} µs and {st['with'][1]:.0f} syscalls with (strace slows each syscall)")
        print(f"  - the child's syscalls before execve, with agent-vault (one child, by count): {compact(st['with'][2])}")
        print(f"- the kernel's Landlock (both layers; includes the tool layer's construction): "
              f"{b['with'] - b['landlock-off']:+,.1f} µs per spawn (with − landlock off)")
        print(f"- the kernel's seccomp filter: {b['with'] - b['seccomp-off']:+,.1f} µs per spawn (with − seccomp off)")
        print(floor_lines(b, rule_counts))
    if any(r[7] for r in ROWS):
        print("\nFigure 1's floor: the same work, run the same way (the C harness's child), under the "
              "recorded layers (both, `llreplay`) with an empty library in /etc/ld.so.preload and no agent-vault: "
              "what any design of this shape pays (Landlock and any preload), without the preload's own "
              "work and agent-init's seccomp filters. floor / without: the median of the per-sample "
              "ratios, (of the minimums).")
    print(f"\nFigure 4's \"same shape\": the Landlock layers a tool is really under, recorded with strace "
          f"from a tool started through agent-init (the base layer: {rule_counts[0]} rules; the tool "
          f"layer: {rule_counts[1]} rules, same handled rights, same paths), replayed by "
          f"bench/c/llreplay.c in a process without agent-vault.")


def ab_main(n, rounds, soft, sp, t_start, load):
    """--cpu --ab: CPU time per spawn of a harness and of a tool spawning,
    with each preload build in turn (copied over the release preload that
    the session's /etc/ld.so.preload names, before each sample; the
    release build is put back at the end), interleaved round by round with
    the baselines and the floors. How this run's A/B of the spawn path was
    measured (bench/RESULTS.md, run 10)."""
    import shutil
    target = a.root + "/target/release/libvault_preload.so"
    saved = W + "/release-preload.so"
    shutil.copyfile(target, saved)
    builds = []
    for item in a.ab.split(","):
        name, sep, lib = item.partition("=")
        if not sep or not os.path.isfile(lib):
            sys.exit(f"bench: --ab wants NAME=LIB,... with LIB an existing file; got {item!r}")
        builds.append((name, lib))

    def use(lib):
        shutil.copyfile(lib or saved, target + ".ab")
        os.chmod(target + ".ab", 0o755)
        os.rename(target + ".ab", target)

    rules, _ = record_layers(WS + "/proj/src/f01.c")
    variants = {
        "without": (None, lambda k: without_av([sp, "forkexec", str(k)], soft)),
        "tool-without": (None, lambda k: without_av([sp, "run", "1", sp, "forkexec", str(k)], soft)),
        "floor": (None, lambda k: harness_floor(k, soft, rules)),
        "tool-floor": (None, lambda k: tool_floor(k, soft, rules)),
    }
    for name, lib in builds:
        variants["harness: " + name] = (lib, lambda k: with_av([sp, "forkexec", str(k)], soft))
        variants["tool: " + name] = (lib, lambda k: with_av([sp, "run", "1", sp, "forkexec", str(k)], soft))
    say(f"bench: A/B of {len(builds)} preload builds, {n} and 1 spawns x {rounds} rounds; "
        f"load average {' '.join(load)}")
    big = {k: [] for k in variants}
    one = {k: [] for k in variants}
    try:
        for lib, v in variants.values():
            use(lib)
            cpu_once(v(1))  # untimed round
        for r in range(rounds):
            for k, (lib, v) in variants.items():
                use(lib)
                big[k].append(cpu_once(v(n)))
                one[k].append(cpu_once(v(1)))
            say(f"  round {r + 1}/{rounds} done")
    finally:
        use(None)
    med = statistics.median
    per = {k: (med(t for t, _ in big[k]) - med(t for t, _ in one[k])) * 1000 / (n - 1) for k in variants}
    faults = {k: (med(f for _, f in big[k]) - med(f for _, f in one[k])) / (n - 1) for k in variants}
    print(f"\nA/B of preload builds: CPU time and page faults per spawn (C fork+exec of /bin/true, soft "
          f"RLIMIT_NOFILE {soft}, {rounds} interleaved rounds of {n} and of 1 spawn); "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("Builds: " + ", ".join(f"{name} = `{lib}`" for name, lib in builds))
    print("\n| variant | CPU µs per spawn | vs its without | page faults per spawn |\n|---|---|---|---|")
    for k in variants:
        base = per["tool-without"] if k.startswith("tool") else per["without"]
        print(f"| {k} | {per[k]:.1f} | {per[k] / base:.3f} | {faults[k]:.1f} |")
    print(f"\nTook {time.time() - t_start:.0f} s.")


# --- where a spawn's CPU time goes (--profile) -------------------------------

PROFILE_HZ = 20000


def profile_once(cmd, out):
    """`perf record` of `cmd` (every process it starts) at PROFILE_HZ
    samples a second of CPU time; returns {(process, library, symbol):
    samples}."""
    run_once(["perf", "record", "-q", "-F", str(PROFILE_HZ), "-e", "cpu-clock", "-o", out, "--", *cmd],
             "us_per_spawn")
    r = subprocess.run(["perf", "script", "-i", out, "-F", "comm,ip,sym,dso"],
                       capture_output=True, text=True, check=True)
    got = {}
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) < 3:
            continue
        # comm, ip, symbol (may hold spaces, or be "[unknown]"), (library)
        key = (f[0], f[-1].strip("()").rsplit("/", 1)[-1], " ".join(f[2:-1]) or "?")
        got[key] = got.get(key, 0) + 1
    return got


def profile_main():
    """Sampled profiles of four `--cpu` variants (a harness and a tool
    spawning, with agent-vault and at their floors), N spawns each, and
    where they differ, in µs per spawn: samples / PROFILE_HZ / N. perf's
    sampling slows what it samples, so read the figures as shares of the
    difference, not as times (`--cpu` gives those). The release preload is
    stripped, so its own functions show as `[unknown]`; `sudo
    CARGO_PROFILE_RELEASE_STRIP=none bench/run.sh --profile` names them
    (rebuild without it afterwards). How run 13 found the environment
    filter's 5 µs (bench/RESULTS.md)."""
    t_start = time.time()
    n, soft = (500 if a.quick else 2000), 1024
    rounds = a.rounds or (1 if a.quick else 5)
    sp = BIN + "/spawner"
    rules, _ = record_layers(WS + "/proj/src/f01.c")
    pairs = [
        ("the harness spawning", with_av([sp, "forkexec", str(n)], soft), harness_floor(n, soft, rules)),
        ("a tool spawning", with_av([sp, "run", "1", sp, "forkexec", str(n)], soft), tool_floor(n, soft, rules)),
    ]
    per = 1e6 / PROFILE_HZ / n / rounds
    print(f"\nWhere a spawn's CPU time goes: `perf record -F {PROFILE_HZ} -e cpu-clock` of {n} C fork+execs of "
          f"/bin/true, {rounds} interleaved rounds, soft RLIMIT_NOFILE {soft}; µs per spawn = samples / "
          f"{PROFILE_HZ} / {n} / {rounds}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. In a VM, "
          f"the loader's CPU-feature setup (`init_cpu_features`, `handle_amd`: `cpuid`, which traps) is "
          f"the same in every arm but lands on its samples unevenly: a difference there is noise.")
    for i, (name, with_cmd, floor_cmd) in enumerate(pairs):
        say(f"bench: profiling {name}, with agent-vault and at the floor, {rounds} rounds")
        w, f = {}, {}
        for r in range(rounds):
            for acc, cmd, arm in ((w, with_cmd, "with"), (f, floor_cmd, "floor")):
                for k, c in profile_once(cmd, f"{W}/profile-{i}-{arm}.data").items():
                    acc[k] = acc.get(k, 0) + c
        diff = {k: (w.get(k, 0) - f.get(k, 0)) * per for k in set(w) | set(f)}
        by_lib = {}
        for (comm, lib, _), d in diff.items():
            by_lib[(comm, lib)] = by_lib.get((comm, lib), 0) + d
        print(f"\n{name}: with agent-vault {sum(w.values()) * per:,.1f} µs per spawn, floor "
              f"{sum(f.values()) * per:,.1f} (both as sampled)\n")
        print("| process | library | with − floor, µs per spawn |\n|---|---|---|")
        for (comm, lib), d in sorted(by_lib.items(), key=lambda x: -abs(x[1]))[:8]:
            print(f"| {comm} | {lib} | {d:+.1f} |")
        print("\n| process | library | symbol | with − floor, µs per spawn |\n|---|---|---|---|")
        for (comm, lib, sym), d in sorted(diff.items(), key=lambda x: -x[1])[:20]:
            print(f"| {comm} | {lib} | `{sym}` | {d:+.2f} |")
    print(f"\nTook {time.time() - t_start:.0f} s.")


if a.profile:
    profile_main()
elif a.cpu:
    cpu_main()
else:
    main()
