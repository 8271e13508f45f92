#!/usr/bin/env bash
# agent-vault container tests: the single entry point (.ci/run calls it).
#
#   tests/container/run.sh [--engine podman|docker] [CASE...]
#       cases: selftest nonroot adopt pi pi-restart claude claude-oauth stop exec proxy-*
#       (proxy_cases.py) all-* (all_cases.py)
#
# The engine (default $CONTAINER_ENGINE, else podman, else a working docker)
# builds the images (images/build.sh --engine) and runs every case; tests/run.sh
# calls this once per engine. Artifacts go to $AGENT_VAULT_CACHE/artifacts/<engine>/.
#
# 1. `cargo build --release -p agent-init -p vault-preload -p agent-vault-proxy` (the images get the host's binaries; skip with
#    AGENT_VAULT_SKIP_CARGO=1 when target/release is already current).
# 2. `gcc -static` the raw-syscall attacker (tests/container/attack/rawread.c).
# 3. `images/build.sh --offline --prebuilt`: local Debian base image from
#    mmdebstrap (rootfs cached in tests/container/.cache), then base, pi,
#    claude, opencode, all, proxy (layer cache keeps reruns fast).
# 4. tests/container/containers.py runs the cases against the images.
#
# Needs: podman (or a working docker), mmdebstrap, gcc with static glibc,
# python3, a Debian mirror and the npm registry (Pi and OpenCode are installed
# at image build time, Claude Code at its first start into a cached volume).
# No container registry. Network tests only use 127.0.0.1 (--network host).
#
# Environment: CONTAINER_ENGINE (podman|docker), AGENT_VAULT_CACHE (default
# tests/container/.cache), AGENT_VAULT_SKIP_CARGO=1, AGENT_VAULT_SKIP_BUILD=1
# (reuse the images as they are). Artifacts (logs, tool results, requests)
# land in $AGENT_VAULT_CACHE/artifacts/<case>/.
# Exit status: 0 all passed, 1 a case failed (or no container engine), 77 no
# container engine and the skip declared (AGENT_VAULT_ALLOW_SKIP=containers).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/tests/container"
export AGENT_VAULT_CACHE=${AGENT_VAULT_CACHE:-$HERE/.cache}
mkdir -p "$AGENT_VAULT_CACHE"
t_start=$SECONDS
phase() { echo "--- [$((SECONDS - t_start))s] $*" >&2; }

engine=${CONTAINER_ENGINE:-}
cases=()
while [ $# -gt 0 ]; do
    case "$1" in
        --engine) shift; engine=${1:?--engine needs podman or docker} ;;
        --engine=*) engine=${1#--engine=} ;;
        *) cases+=("$1") ;;
    esac
    shift
done
if [ -n "$engine" ] && ! command -v "$engine" >/dev/null 2>&1; then
    if [[ ",${AGENT_VAULT_ALLOW_SKIP:-}," == *",containers,"* ]]; then
        echo "container tests: SKIP (containers, declared in AGENT_VAULT_ALLOW_SKIP): no $engine" >&2; exit 77
    fi
    echo "container tests: cannot run: no $engine. Install it: tests/setup.sh (as root), or declare the skip: AGENT_VAULT_ALLOW_SKIP=containers" >&2; exit 1
fi
case "$engine" in
    ""|podman) ;;
    docker)
        docker info >/dev/null 2>&1 || {
            echo "container tests: --engine docker: the Docker daemon does not answer (docker info); start it: tests/setup.sh (as root)" >&2; exit 1; } ;;
    *) echo "container tests: --engine $engine: podman or docker" >&2; exit 2 ;;
esac
if [ -z "$engine" ]; then
    if command -v podman >/dev/null 2>&1; then engine=podman
    elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then engine=docker
    elif [[ ",${AGENT_VAULT_ALLOW_SKIP:-}," == *",containers,"* ]]; then
        echo "container tests: SKIP (containers, declared in AGENT_VAULT_ALLOW_SKIP): no podman and no working docker" >&2; exit 77
    else
        echo "container tests: cannot run: no podman and no working docker. Install podman, or declare the skip: AGENT_VAULT_ALLOW_SKIP=containers" >&2; exit 1
    fi
fi
export CONTAINER_ENGINE=$engine

if [ "${AGENT_VAULT_SKIP_CARGO:-0}" != 1 ]; then
    phase "cargo build --release -p agent-init -p vault-preload -p agent-vault-proxy"
    locked=; [ -f "$ROOT/Cargo.lock" ] && locked=--locked
    (cd "$ROOT" && cargo build --release $locked -p agent-init -p vault-preload -p agent-vault-proxy)
fi
for f in agent-init libvault_preload.so vault-proxy; do
    [ -f "$ROOT/target/release/$f" ] || { echo "missing target/release/$f" >&2; exit 1; }
done

rawread="$AGENT_VAULT_CACHE/rawread"
if [ ! -x "$rawread" ] || [ "$HERE/attack/rawread.c" -nt "$rawread" ]; then
    phase "gcc -static rawread"
    gcc -static -O2 -Wall -o "$rawread.tmp" "$HERE/attack/rawread.c"
    mv "$rawread.tmp" "$rawread"
fi

if [ "${AGENT_VAULT_SKIP_BUILD:-0}" != 1 ]; then
    phase "images/build.sh --offline --prebuilt"
    "$ROOT/images/build.sh" --engine "$engine" --offline --prebuilt -q
fi

phase "container cases"
# the plain Debian + Node image the `adopt` case adds agent-vault to
export AGENT_VAULT_TEST_BASE_IMAGE="localhost/agent-vault/offline-node:${AGENT_VAULT_SUITE:-trixie}"
rc=0
PYTHONDONTWRITEBYTECODE=1 python3 "$HERE/containers.py" --engine "$engine" --rawread "$rawread" \
    --artifacts "$AGENT_VAULT_CACHE/artifacts/$engine" "${cases[@]}" || rc=$?
phase "done with $engine (exit $rc)"
exit $rc
