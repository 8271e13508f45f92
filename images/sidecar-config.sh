#!/usr/bin/env bash
# Write the files the sidecar form needs (images/compose.sidecar.yaml,
# images/kubernetes/pod-sidecar.yaml): vault-proxy's config with the real
# Anthropic API key, and the agent's side with a placeholder only.
#
#   ANTHROPIC_API_KEY=sk-ant-... images/sidecar-config.sh [DIR]     (DIR default: ./sidecar)
#
# Environment:
#   ANTHROPIC_API_KEY   the real key (required); it goes into DIR/vault-proxy.toml only
#   ANTHROPIC_BASE_URL  where the proxy sends requests (default https://api.anthropic.com)
#   VAULT_PROXY_PORT    the proxy's port on the shared loopback (default 8787)
#
# Writes, in DIR (mode 0700, so other host users cannot open it):
#   vault-proxy.toml   the proxy's config: mount it only into the proxy container,
#                      at /etc/vault-proxy/config.toml. Mode 0444 so that uid 64990
#                      can read it in the container; the 0700 directory keeps it
#                      from other host users (kubectl create secret reads it from here).
#   pi-agent/          Pi's seed for the agent container (/pi-agent-ro): auth.json
#                      with the placeholder as its "anthropic" key, models.json
#                      pointing the "anthropic" provider at the proxy. No secret.
#   claude.env         ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY (the placeholder)
#                      for Claude Code in the agent container. No secret.
#
# The placeholder is 256 random bits; the proxy answers 401 to any request
# without it. Running the script again makes a new one (restart both
# containers). For an OAuth login, write the [route.credential] by hand with
# kind = "oauth" (vault-proxy/README.md) and give the harness an OAuth
# placeholder (sk-ant-oat01-...) instead.
set -euo pipefail

key=${ANTHROPIC_API_KEY:?set ANTHROPIC_API_KEY to the real key}
upstream=${ANTHROPIC_BASE_URL:-https://api.anthropic.com}
port=${VAULT_PROXY_PORT:-8787}
dir=${1:-sidecar}

case "$key" in *'"'*|*'\'*|*[[:space:]]*) echo "sidecar-config.sh: ANTHROPIC_API_KEY has quotes, backslashes or spaces" >&2; exit 1 ;; esac
case "$upstream" in *'"'*|*'\'*|*[[:space:]]*) echo "sidecar-config.sh: ANTHROPIC_BASE_URL has quotes, backslashes or spaces" >&2; exit 1 ;; esac
placeholder="sk-ant-api03-av-$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
[ ${#placeholder} -eq 80 ] || { echo "sidecar-config.sh: could not read /dev/urandom" >&2; exit 1; }

umask 077
mkdir -p "$dir/pi-agent"
chmod 0700 "$dir"
cat > "$dir/vault-proxy.toml.tmp" <<EOF
# vault-proxy config (vault-proxy/README.md), written by images/sidecar-config.sh.
# Holds the real key: mount it into the proxy container only.
listen = "127.0.0.1:$port"
state_dir = "/var/lib/agent-vault/proxy"

[[route]]
name = "anthropic"
prefix = "/anthropic"
upstream = "${upstream%/}"
placeholder = "$placeholder"
[route.credential]
kind = "api-key"
header = "x-api-key"
key = "$key"
EOF
chmod 0444 "$dir/vault-proxy.toml.tmp"
mv -f "$dir/vault-proxy.toml.tmp" "$dir/vault-proxy.toml"

base="http://127.0.0.1:$port/anthropic"
printf '{"anthropic": {"type": "api_key", "key": "%s"}}\n' "$placeholder" > "$dir/pi-agent/auth.json"
printf '{"providers": {"anthropic": {"baseUrl": "%s"}}}\n' "$base" > "$dir/pi-agent/models.json"
printf 'ANTHROPIC_BASE_URL=%s\nANTHROPIC_API_KEY=%s\n' "$base" "$placeholder" > "$dir/claude.env"
chmod 0755 "$dir/pi-agent"
chmod 0644 "$dir/pi-agent/auth.json" "$dir/pi-agent/models.json" "$dir/claude.env"
echo "sidecar-config.sh: wrote $dir/vault-proxy.toml (the real key: proxy container only), $dir/pi-agent/ and $dir/claude.env (placeholder $base)" >&2
