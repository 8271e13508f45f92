#!/usr/bin/env bash
# The overhead a user feels, measured the way users run agent-vault.
#
#   sudo bench/run.sh           # full run (several minutes)
#   sudo bench/run.sh --quick   # smoke run (< 60 s after the build)
#   sudo bench/run.sh --cpu     # only the CPU time per spawn, by variant (needs perf)
#   sudo bench/run.sh --cpu --ab a=A.so,b=B.so [--rounds N]
#                               # the same for a harness and a tool spawning, per preload
#                               # build (each copied over the release preload in turn)
#   sudo bench/run.sh --profile # where a spawn's CPU time goes, by process, library and
#                               # symbol, against the floors (perf record; needs perf)
#   sudo bench/run.sh --container [--quick]   # the same figures in a container
#                                             # built from images/ (bench/container.sh)
#
# Builds agent-init and the preload (release), then, inside a private mount
# namespace (nothing on the host changes): tmpfs over /tmp, /srv (the vault's
# parent), /run/agent-vault and the harness user's home; three copies of /etc: one plain, one with an
# /etc/ld.so.preload naming the release preload (as the images have it), one naming an empty
# library (the floors).
# Every sample starts each arm in its own nested mount namespace with one of
# the /etc copies bind-mounted, so the arms differ only by agent-vault:
#   with:    agent-init run -q --user UID:GID -- HARNESS ...  (/etc with ld.so.preload)
#   without: setpriv --reuid UID --regid GID --clear-groups -- HARNESS ...
# and both under the same `prlimit --nofile=SOFT:1048576`, for SOFT = 1024
# and 1048576. bench/timing.py times and prints; bench/README.md explains.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_UID=${BENCH_UID:-1000}

case " $* " in *" --container "*)
    args=()
    for x in "$@"; do [ "$x" = --container ] || args+=("$x"); done
    exec "$ROOT/bench/container.sh" "${args[@]}" ;;
esac

if [ "${AV_BENCH_INNER:-}" != 1 ]; then
    [ "$(id -u)" = 0 ] || { echo "bench/run.sh: needs root (agent-init switches users; the run uses mount namespaces)" >&2; exit 1; }
    missing=()
    for t in gcc make git node strace autoconf setpriv prlimit unshare cargo; do
        command -v "$t" >/dev/null || missing+=("$t")
    done
    [ -x /usr/bin/python3 ] || missing+=("/usr/bin/python3")
    case " $* " in *" --cpu "*|*" --profile "*) command -v perf >/dev/null || missing+=("perf (Debian: linux-perf)") ;; esac
    if [ ${#missing[@]} -gt 0 ]; then
        echo "bench/run.sh: missing: ${missing[*]} (Debian: apt-get install gcc make git nodejs strace autoconf util-linux python3)" >&2
        exit 1
    fi
    home=$(getent passwd "$BENCH_UID" | cut -d: -f6)
    [ -n "$home" ] && [ -d "$home" ] || { echo "bench/run.sh: uid $BENCH_UID needs an /etc/passwd entry with an existing home (set BENCH_UID)" >&2; exit 1; }
    (cd "$ROOT" && cargo build --release -p agent-init -p vault-preload >&2)
    exec unshare --mount --propagation private env AV_BENCH_INNER=1 BENCH_HOME="$home" BENCH_UID="$BENCH_UID" "$0" "$@"
fi

# Inside the private mount namespace.
gid=$(getent passwd "$BENCH_UID" | cut -d: -f4)
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /run/agent-vault && mount -t tmpfs -o mode=0755 tmpfs /run/agent-vault
mount -t tmpfs -o mode=0755 tmpfs "$BENCH_HOME" && chown "$BENCH_UID:$gid" "$BENCH_HOME"
# The vault directories (images: /pi-agent and /claude) go in /srv, a tmpfs
# here: one directory below / as in the images, and not inside a directory
# that tools write to (the tool layer keeps tools from creating entries next
# to a vault entry, so a vault in /tmp would break every tool's temp files).
[ -d /srv ] || { echo "bench/run.sh: needs an /srv directory to mount a tmpfs on (the vault's parent)" >&2; exit 1; }
mount -t tmpfs -o mode=0755 tmpfs /srv
W=/tmp/av-bench
mkdir -m 0755 "$W" "$W/bin"

echo "setting up $W" >&2
mkdir "$W/etc-plain" "$W/etc-vault" "$W/etc-empty"
cp -a /etc/. "$W/etc-plain/"
cp -a /etc/. "$W/etc-vault/"
cp -a /etc/. "$W/etc-empty/"
rm -f "$W/etc-plain/ld.so.preload"
echo "$ROOT/target/release/libvault_preload.so" > "$W/etc-vault/ld.so.preload"
# The floors: an empty library, preloaded the way agent-vault's is.
echo "$W/bin/empty.so" > "$W/etc-empty/ld.so.preload"
chmod 0644 "$W/etc-vault/ld.so.preload" "$W/etc-empty/ld.so.preload"

for p in spawner openloop llreplay; do
    gcc -O2 -Wall -o "$W/bin/$p" "$ROOT/bench/c/$p.c"
done
gcc -O2 -shared -fPIC -o "$W/bin/empty.so" "$ROOT/bench/c/empty.c"

# Policies for the breakdown: the built-in policy with one layer off.
awk '/^\[landlock\]/{s=1} /^\[seccomp\]/{s=0} {if (s && $0=="mode = \"required\"") $0="mode = \"off\""; print}' \
    "$ROOT/policy/default.toml" > "$W/landlock-off.toml"
awk '/^\[seccomp\]/{s=1} /^\[audit\]/{s=0} {if (s && $0=="mode = \"required\"") $0="mode = \"off\""; print}' \
    "$ROOT/policy/default.toml" > "$W/seccomp-off.toml"
for f in landlock-off seccomp-off; do
    [ "$(diff "$ROOT/policy/default.toml" "$W/$f.toml" | grep -c '^>')" = 1 ] || { echo "bench/run.sh: could not derive $f.toml from policy/default.toml" >&2; exit 1; }
done

"$ROOT/bench/workspace.sh" "$W/ws" "$ROOT"
chown -R "$BENCH_UID:$gid" "$W/ws"

export PATH=/usr/local/bin:/usr/bin:/bin
exec /usr/bin/python3 "$ROOT/bench/timing.py" --root "$ROOT" --dir "$W" --uid "$BENCH_UID" --gid "$gid" --home "$BENCH_HOME" "$@"
