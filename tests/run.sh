#!/usr/bin/env bash
# The whole test suite: lints, every workspace test (policy golden tests,
# agent-init's PID 1 / seeding / privilege tests, the preload's attack suite),
# then the container tests with the real harnesses.
#
#   tests/run.sh                 everything
#   tests/run.sh --no-containers skip the container tests (no podman here)
#
# Needs root for the privilege, Landlock and seccomp tests (they skip, and
# say so, where the kernel lacks a feature), cargo-nextest, cargo-deny
# (deny.toml: licenses, banned crates, sources), and for the container
# tests podman, runc, mmdebstrap, gcc, python3 and a running Docker daemon
# (they run under both engines). `tests/setup.sh` (as root) installs and starts
# all of it (.ci/run calls it); anything missing stops this script at once
# with one line naming it. AGENT_VAULT_ALLOW_SKIP=docker runs the container
# tests under podman only. A full run writes up to 11 GB (target/ and both
# engines' images); too little free space stops it first, naming where.
set -euo pipefail
cd "$(dirname "$0")/.."

containers=1
for a in "$@"; do
  case "$a" in
    --no-containers) containers=0 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "tests/run.sh: unknown option $a (try --help)" >&2; exit 2 ;;
  esac
done

step() { printf '\n=== %s\n' "$*"; }
declared() { [[ ",${AGENT_VAULT_ALLOW_SKIP:-}," == *",$1,"* ]]; }

# What this run needs, checked before anything runs.
missing=()
have() { command -v "$1" >/dev/null 2>&1; }
python3 -c 'import yaml' 2>/dev/null || missing+=("python3-yaml")
[ "$(id -u)" = 0 ] || declared root || missing+=("root (or declare AGENT_VAULT_ALLOW_SKIP=root)")
have cargo || missing+=("cargo (install Rust with rustup; tests/setup.sh does not)")
have cargo && ! cargo nextest --version >/dev/null 2>&1 && missing+=(cargo-nextest)
have cargo && ! cargo deny --version >/dev/null 2>&1 && missing+=(cargo-deny)
if [ "$containers" = 1 ] && ! declared containers; then
  for t in podman runc mmdebstrap gcc python3; do have "$t" || missing+=("$t"); done
  [ -n "$(gcc -print-file-name=libc.a 2>/dev/null | grep /)" ] || missing+=("libc6-dev (static libc)")
  if ! declared docker; then
    if ! have docker; then missing+=(docker)
    elif ! docker info >/dev/null 2>&1; then missing+=("a running Docker daemon")
    fi
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  list=$(printf '%s; ' "${missing[@]}")
  echo "tests/run.sh: missing: ${list%; }. Install and start them with: tests/setup.sh (as root)" >&2
  exit 1
fi

# Disk: what a run writes at most (measured: target/ 2.6 GB without
# incremental builds; podman's images 3 GB; Docker's images and build
# cache 2.7 GB), summed per file system, checked before anything is built.
declare -A need_gb=() where=() dir_of=()
need() {  # need DIR GB: DIR (or its nearest existing parent) gets GB more
  local d=$1
  while [ ! -e "$d" ]; do d=$(dirname "$d"); done
  local dev; dev=$(stat -c %d "$d")
  need_gb[$dev]=$(( ${need_gb[$dev]:-0} + $2 )); where[$dev]="${where[$dev]:+${where[$dev]}, }$1"
  [ -n "${dir_of[$dev]:-}" ] || dir_of[$dev]=$d
}
need "${CARGO_TARGET_DIR:-$PWD/target}" 3
if [ "$containers" = 1 ] && ! declared containers; then
  need "$(podman info --format '{{.Store.GraphRoot}}' 2>/dev/null || echo /var/lib/containers)" 4
  declared docker || need "$(docker info --format '{{.DockerRootDir}}' 2>/dev/null || echo /var/lib/docker)" 4
fi
for dev in "${!need_gb[@]}"; do
  free=$(df -B1G --output=avail "${dir_of[$dev]}" | tail -1 | tr -d ' ')
  if [ "$free" -lt "${need_gb[$dev]}" ]; then
    echo "tests/run.sh: ${free} GB free on the file system of ${where[$dev]}; this run writes up to ${need_gb[$dev]} GB there. Free space first (old images: podman image prune; docker image prune; docker builder prune; an old target/: cargo clean)" >&2
    exit 1
  fi
done

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --locked
# advisories are left out: they need the RustSec database from github.com
# (`cargo deny check advisories` where the network allows).
cargo deny check bans licenses sources

step "build (debug and release: the tests load the release preload)"
cargo build --workspace --locked
cargo build --workspace --release --locked

step "workspace tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

step "agent-init check on every example policy"
for f in policy/default.toml policy/examples/*.toml; do
  target/release/agent-init check --policy "$f" >/dev/null
  echo "ok: $f"
done
for f in policy/tests/broken/*.toml; do
  if out=$(target/release/agent-init check --policy "$f" 2>&1); then
    echo "FAIL: $f was accepted"; exit 1
  fi
  grep -qE "^$f:[0-9]+:[0-9]+: " <<<"$out" || { echo "FAIL: $f: no FILE:LINE:COL in: $out"; exit 1; }
  echo "ok (rejected): $out"
done

step "examples: pod.yaml against Pod Security \"restricted\", compose.yaml's mounts"
python3 tests/container/pod_security.py
python3 tests/container/compose_check.py

if [ "$containers" = 1 ]; then
  # Every case under each engine; images are built by each engine.
  engines=(podman)
  declared docker || engines+=(docker)
  for e in "${engines[@]}"; do
    step "container tests ($e)"
    t0=$SECONDS
    rc=0
    tests/container/run.sh --engine "$e" || rc=$?
    [ "$rc" = 77 ] && continue   # no engine, and the skip declared (containers)
    [ "$rc" = 0 ] || exit "$rc"
    echo "container tests ($e): $((SECONDS - t0)) s"
  done
fi
echo
echo "tests/run.sh: all passed"
