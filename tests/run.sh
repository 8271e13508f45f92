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
# (deny.toml: licenses, banned crates, sources), and for the
# container tests podman, runc and mmdebstrap (.ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

containers=1
for a in "$@"; do
  case "$a" in
    --no-containers) containers=0 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "tests/run.sh: unknown option $a (try --help)" >&2; exit 2 ;;
  esac
done

step() { printf '\n=== %s\n' "$*"; }

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

if [ "$containers" = 1 ]; then
  step "container tests"
  tests/container/run.sh
fi
echo
echo "tests/run.sh: all passed"
