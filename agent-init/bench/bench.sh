#!/usr/bin/env bash
# agent-init benchmarks (figures for the README; not timed tests).
#
#   sudo agent-init/bench/bench.sh            # builds the release binary first
#
# Runs as root (agent-init switches users), inside a private mount namespace
# with tmpfs over /run/agent-vault and the harness user's home, so nothing
# on the host changes. The vault preload is left out (AGENT_VAULT_PRELOAD=off):
# these figures are agent-init's own cost.
#
# 1. `agent-init run -- /bin/true` against `/bin/true` (default policy, no seeding)
# 2. seccomp: a getppid loop with and without the filter
# 3. seccomp: `git status` + `grep -r` over a checkout, with and without the filter
# 4. seeding 10,000 small files against `cp -a`
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ "${AGENT_INIT_BENCH_INNER:-}" != 1 ]; then
    [ "$(id -u)" = 0 ] || { echo "bench.sh: run as root" >&2; exit 1; }
    (cd "$ROOT" && cargo build --release -p agent-init >&2)
    home=$(getent passwd 1000 | cut -d: -f6)
    exec unshare --mount --propagation private env AGENT_INIT_BENCH_INNER=1 BENCH_HOME="$home" "$0" "$@"
fi
mkdir -p /run/agent-vault && mount -t tmpfs -o mode=0755 tmpfs /run/agent-vault
[ -n "${BENCH_HOME:-}" ] && [ -d "$BENCH_HOME" ] && mount -t tmpfs -o mode=0755 tmpfs "$BENCH_HOME" && chown 1000:1000 "$BENCH_HOME"
B=$ROOT/target/release/agent-init
W=$(mktemp -d /tmp/agent-init-bench.XXXXXX)
chmod 755 "$W"
trap 'rm -rf "$W"' EXIT
export AGENT_VAULT_PRELOAD=off AGENT_VAULT_LOG=quiet
export PI_CODING_AGENT_DIR=$W/pi-agent CLAUDE_CONFIG_DIR=$W/claude

# Seconds per run of each command: the minimum over N runs, the commands
# interleaved (A B A B ...) so that the noise of a shared VM hits both alike.
# Usage: per_run N :: cmdA... [:: cmdB...]; prints one figure per command.
per_run() {
    python3 - "$@" <<'PY'
import subprocess, sys, time
n = int(sys.argv[1]); rest = sys.argv[3:]
cmds, cur = [], []
for a in rest:
    if a == "::":
        cmds.append(cur); cur = []
    else:
        cur.append(a)
cmds.append(cur)
for c in cmds:
    subprocess.run(c, check=True, stderr=subprocess.DEVNULL)  # warm up
best = [None] * len(cmds)
for _ in range(n):
    for i, c in enumerate(cmds):
        t = time.perf_counter()
        subprocess.run(c, check=True, stderr=subprocess.DEVNULL)
        d = time.perf_counter() - t
        best[i] = d if best[i] is None or d < best[i] else best[i]
print(" ".join("%.6f" % b for b in best))
PY
}
ratio() { python3 -c "print('%.3f' % ($1 / $2))"; }
ms() { python3 -c "print('%.2f' % ($1 * 1000))"; }

policy() { # landlock seccomp extra
    cat > "$W/policy-$1-$2.toml" <<P
[harness]
user = "1000:1000"
[vault]
[filesystem]
read_only = ["/"]
executable = ["/"]
read_write = ["/tmp", "/dev"]
[landlock]
mode = "$1"
[seccomp]
mode = "$2"
[audit]
sink = "off"
$3
P
    echo "$W/policy-$1-$2.toml"
}

echo "== 1. agent-init run -- /bin/true (built-in policy, no seeding; min of 300)"
read -r base init < <(per_run 300 :: /bin/true :: "$B" run -- /bin/true)
echo "/bin/true:                      $(ms "$base") ms"
echo "agent-init run -- /bin/true:    $(ms "$init") ms  (added $(python3 -c "print('%.2f' % (($init-$base)*1000))") ms)"

echo "== 2. seccomp filter: 5,000,000 getppid() calls"
cat > "$W/getppid.c" <<'C'
#include <unistd.h>
#include <sys/syscall.h>
int main(void) { long s = 0; for (long i = 0; i < 5000000; i++) s += syscall(SYS_getppid); return s == 0; }
C
cc -O2 -o "$W/getppid" "$W/getppid.c"
on=$(policy required required "")
off=$(policy required off "")
read -r t_on t_off < <(per_run 7 :: "$B" run --policy "$on" -- "$W/getppid" :: "$B" run --policy "$off" -- "$W/getppid")
echo "no filter: $(ms "$t_off") ms   filter: $(ms "$t_on") ms   ratio $(ratio "$t_on" "$t_off")"

echo "== 3. seccomp filter: git status + grep -r over a checkout (x10 each run)"
git clone -q --no-hardlinks "$ROOT" "$W/checkout" 2>/dev/null || cp -a "$ROOT" "$W/checkout"
chown -R 1000:1000 "$W/checkout"
cat > "$W/work.sh" <<S
cd "$W/checkout"
for i in 1 2 3 4 5 6 7 8 9 10; do
  git -c safe.directory='*' status --short >/dev/null
  grep -r --exclude-dir=.git --exclude-dir=target -c fn . >/dev/null || true
done
S
read -r t_on t_off < <(per_run 15 :: "$B" run --policy "$on" -- /bin/sh "$W/work.sh" :: "$B" run --policy "$off" -- /bin/sh "$W/work.sh")
echo "no filter: $(ms "$t_off") ms   filter: $(ms "$t_on") ms   ratio $(ratio "$t_on" "$t_off")"

echo "== 4. seeding 10,000 small files"
mkdir -p "$W/seed"
python3 - "$W/seed" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(100):
    os.makedirs(os.path.join(root, "d%02d" % d), exist_ok=True)
    for f in range(100):
        with open(os.path.join(root, "d%02d" % d, "f%03d" % f), "w") as fh:
            fh.write("x" * 200)
PY
sync
# Seeding makes its files durable (a syncfs per 256 files) and `cp -a` does
# not, so cp is timed twice: alone, and followed by `sync -f` on its target.
cp_t=0; cps_t=0; seed_t=0
for i in 1 2 3; do
    rm -rf "$W/cp" "$W/seeded"
    sync
    t=$(python3 -c 'import time; print(time.perf_counter())')
    cp -a "$W/seed" "$W/cp"
    cp_i=$(python3 -c "import time; print(time.perf_counter() - $t)")
    sync -f "$W/cp"
    cps_i=$(python3 -c "import time; print(time.perf_counter() - $t)")
    cps_t=$(python3 -c "print(min(x for x in ($cps_t or 1e9, $cps_i)))")
    sp=$(policy off off "[[seed]]
source = \"$W/seed\"
target = \"$W/seeded\"
mode = \"copy-missing\"")
    sync
    t=$(python3 -c 'import time; print(time.perf_counter())')
    "$B" run --policy "$sp" -- /bin/true
    seed_i=$(python3 -c "import time; print(time.perf_counter() - $t)")
    cp_t=$(python3 -c "print(min(x for x in ($cp_t or 1e9, $cp_i)))")
    seed_t=$(python3 -c "print(min(x for x in ($seed_t or 1e9, $seed_i)))")
done
[ "$(find "$W/seeded" -type f | wc -l)" = 10000 ] || { echo "seeding incomplete" >&2; exit 1; }
echo "cp -a: $(ms "$cp_t") ms   cp -a + sync: $(ms "$cps_t") ms   agent-init seed: $(ms "$seed_t") ms"
echo "ratio vs cp -a: $(ratio "$seed_t" "$cp_t")   ratio vs cp -a + sync: $(ratio "$seed_t" "$cps_t")"
