#!/usr/bin/env bash
# Install and start what tests/run.sh needs on a Debian/Ubuntu machine, as
# root: the packages (podman, runc, mmdebstrap, docker.io, gcc, ...),
# cargo-nextest and cargo-deny, podman's runtime settings, and a Docker
# daemon (dockerd --iptables=false --bridge=none: the tests use --network
# host or none). Idempotent; .ci/run calls it before tests/run.sh.
#
#   tests/setup.sh      (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

[ "$(id -u)" = 0 ] || { echo "tests/setup.sh: needs root (it runs apt-get and starts dockerd): run it as root" >&2; exit 1; }
command -v apt-get >/dev/null || { echo "tests/setup.sh: needs apt-get (Debian/Ubuntu); elsewhere install the tools tests/run.sh names" >&2; exit 1; }

echo "=== packages"
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  podman runc mmdebstrap uidmap slirp4netns fuse-overlayfs docker.io \
  strace git gcc libc6-dev python3 python3-yaml bubblewrap util-linux procps \
  ca-certificates openssl >/dev/null
command -v node >/dev/null || apt-get install -y -qq nodejs npm >/dev/null
cargo nextest --version >/dev/null 2>&1 || cargo install --locked cargo-nextest >/dev/null
cargo deny --version >/dev/null 2>&1 || cargo install --locked cargo-deny@=0.20.2 >/dev/null

echo "=== podman setup (runc; crun fails on this host's cgroups)"
mkdir -p /etc/containers
cat > /etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]

[engine]
runtime = "runc"
CONF

echo "=== docker daemon"
if ! docker info >/dev/null 2>&1; then
  # Docker's own defaults (seccomp profile, fd limit): the cases run under both engines as users get them.
  nohup dockerd --iptables=false --bridge=none >/var/log/agent-vault-dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "tests/setup.sh: dockerd did not start (see /var/log/agent-vault-dockerd.log)" >&2; exit 1; }
fi
docker version --format 'docker: client {{.Client.Version}}, server {{.Server.Version}}'
