#!/usr/bin/env bash
# The benchmark's figures inside a container built from images/, started as
# users start one (called by `bench/run.sh --container [--quick]`; see
# bench/README.md "In a container").
#
# Builds, with podman (your storage: set CONTAINERS_STORAGE_CONF):
#   agent-vault/base             images/build.sh --offline base (the Debian+Node
#                                image it makes, offline-node, is the runtime base)
#   agent-vault/bench-tools      that runtime base + gcc, make, git, python3,
#                                strace (bench/container/Dockerfile.tools); no agent-vault
#   agent-vault/bench            images/base/Dockerfile, unchanged, with
#                                BASE_IMAGE=agent-vault/bench-tools and the
#                                host's release binaries (BINARIES=prebuilt)
# then, in a scratch directory on the host: the bench's C programs (built
# here: the host's glibc must not be newer than the image's), the workspace
# (mounted as /workspace), an empty file for the "without" arm's
# /etc/ld.so.preload, and the image's own policy with one layer off for the
# breakdown. bench/timing.py --container then runs every arm as a
# `podman run` of agent-vault/bench:
#   with:    podman run ... --ulimit nofile=S:S agent-vault/bench HARNESS ...
#            (the image's ENTRYPOINT, `agent-init run --`, its policy)
#   without: podman run ... --ulimit nofile=S:S --user 1000:1000
#            -v EMPTY:/etc/ld.so.preload:ro --entrypoint HARNESS agent-vault/bench ...
# for S = 1024 and 1048576.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
IMAGE=localhost/agent-vault/bench:latest

die() { echo "bench/container.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (rootful podman: only root can give a container --ulimit nofile=1048576:1048576)"
missing=()
for t in podman gcc autoconf cargo git; do command -v "$t" >/dev/null || missing+=("$t"); done
[ -x /usr/bin/python3 ] || missing+=("/usr/bin/python3")
[ ${#missing[@]} -eq 0 ] || die "missing: ${missing[*]} (Debian: apt-get install podman gcc autoconf git python3; mmdebstrap for images/build.sh --offline)"
nr_open=$(cat /proc/sys/fs/nr_open)
[ "$nr_open" -ge 1048576 ] || die "fs.nr_open is $nr_open: a container cannot get nofile=1048576 (sysctl -w fs.nr_open=1048576)"
export CONTAINER_ENGINE=podman

# Images. images/build.sh --offline: the base image from the host's release
# binaries, on a Debian rootfs made with mmdebstrap (cached in AGENT_VAULT_CACHE).
(cd "$ROOT" && cargo build --release -p agent-init -p vault-preload -p agent-vault-proxy >&2)
"$ROOT/images/build.sh" --engine podman --offline -q base >&2
runtime=localhost/agent-vault/offline-node:${AGENT_VAULT_SUITE:-trixie}
podman image exists "$runtime" || die "images/build.sh did not leave $runtime"
echo "bench/container.sh: building agent-vault/bench-tools and agent-vault/bench" >&2
podman build -q --build-arg "BASE_IMAGE=$runtime" -f "$ROOT/bench/container/Dockerfile.tools" \
    -t agent-vault/bench-tools:latest "$ROOT/bench/container" >/dev/null
revision=$(git -C "$ROOT" rev-parse --short HEAD)
# images/build.sh --offline left the release binaries in images/.prebuilt/.
# The image this replaces (new binaries, new labels) is removed, not left
# behind untagged on every run.
old_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
podman build -q --ignorefile "$ROOT/images/base/Dockerfile.dockerignore" \
    --build-arg BINARIES=prebuilt --build-arg BASE_IMAGE=localhost/agent-vault/bench-tools:latest \
    --build-arg BUILDER_IMAGE="$runtime" --build-arg "REVISION=$revision" \
    -f "$ROOT/images/base/Dockerfile" -t "$IMAGE" "$ROOT" >/dev/null
if [ -n "$old_id" ] && [ "$old_id" != "$(podman image inspect --format '{{.Id}}' "$IMAGE")" ]; then
    podman rmi "$old_id" >/dev/null 2>&1 || true
fi

# The scratch directory (removed on exit).
W=$(mktemp -d /var/tmp/av-bench-container.XXXXXX)
trap 'rm -rf "$W"' EXIT
chmod 0755 "$W"
mkdir -m 0755 "$W/bin" "$W/policies"
mkdir -m 1777 "$W/out"
for p in spawner openloop llreplay; do
    gcc -O2 -Wall -o "$W/bin/$p" "$ROOT/bench/c/$p.c"
done
gcc -O2 -shared -fPIC -o "$W/bin/empty.so" "$ROOT/bench/c/empty.c"
: > "$W/empty-preload"
echo /bench/bin/empty.so > "$W/empty-lib-preload"
chmod 0644 "$W/empty-preload" "$W/empty-lib-preload"

# The image's policy (the built-in one with the proxy on) with one layer off.
podman run --rm --network=none -v "$W/empty-preload:/etc/ld.so.preload:ro" --entrypoint cat "$IMAGE" \
    /etc/agent-vault/policy.toml > "$W/policies/image.toml"
awk '/^\[landlock\]/{s=1} /^\[seccomp\]/{s=0} {if (s && $0=="mode = \"required\"") $0="mode = \"off\""; print}' \
    "$W/policies/image.toml" > "$W/policies/landlock-off.toml"
awk '/^\[seccomp\]/{s=1} /^\[audit\]/{s=0} {if (s && $0=="mode = \"required\"") $0="mode = \"off\""; print}' \
    "$W/policies/image.toml" > "$W/policies/seccomp-off.toml"
for f in landlock-off seccomp-off; do
    [ "$(diff "$W/policies/image.toml" "$W/policies/$f.toml" | grep -c '^>')" = 1 ] \
        || die "could not derive $f.toml from the image's /etc/agent-vault/policy.toml"
done
chmod 0644 "$W/policies/"*

"$ROOT/bench/workspace.sh" "$W/ws" "$ROOT" /workspace
chown -R 1000:1000 "$W/ws"

export BENCH_ENGINE="$(podman --version)"
export BENCH_IMAGE_NOTE="images/base/Dockerfile at $revision on agent-vault/bench-tools ($runtime + gcc make git python3 strace)"
/usr/bin/python3 "$ROOT/bench/timing.py" --container "$IMAGE" --root "$ROOT" --dir "$W" \
    --uid 1000 --gid 1000 --home /home/agent "$@"
