#!/usr/bin/env bash
# Build the agent-vault images, tagged agent-vault/<name>:latest.
#
#   images/build.sh [options] [NAME...]      NAME: base pi claude opencode all proxy (default: every one)
#
# A harness image (pi, claude, opencode, all) is built FROM agent-vault/base: base
# is built first when it is missing (or when it is named too). The image a
# rebuilt tag pointed at before is removed once nothing uses it (one line
# says so); build stages stay as the engine's cache.
#
# Options:
#   --offline          build without any container registry: first build local
#                      Debian base images with mmdebstrap + `<engine> import`
#                      (cached under $AGENT_VAULT_CACHE), then use them as
#                      BASE_IMAGE (and BUILDER_IMAGE). Needs mmdebstrap and a
#                      Debian mirror. Implies --prebuilt unless --from-source.
#   --prebuilt[=DIR]   do not compile in the image: copy agent-init,
#                      libvault_preload.so and vault-proxy from DIR (default target/release,
#                      built by `cargo build --release`) into images/.prebuilt/
#                      and build with BINARIES=prebuilt.
#   --from-source      compile the workspace inside BUILDER_IMAGE (default
#                      without --offline; with --offline a local Debian image
#                      with rustc and cargo is built, and the build step needs
#                      crates.io).
#   --build-arg K=V    passed to every build (e.g. INSTALL_CLAUDE_CODE=true,
#                      PI_VERSION=0.73.1, BASE_IMAGE=...).
#   --engine E         docker or podman (default: docker when its daemon
#                      answers, else podman; or $CONTAINER_ENGINE).
#   --platform P       build for P (linux/amd64, linux/arm64); with --prebuilt
#                      the binaries come from target/<rust target>/release
#                      (cargo build --release --target aarch64-unknown-linux-gnu).
#                      Running RUN steps of a foreign platform needs qemu-user
#                      registered in binfmt_misc.
#   -q, --quiet        less build output.
#
# Environment:
#   AGENT_VAULT_CACHE          cache dir for rootfs tarballs
#                              (default ${XDG_CACHE_HOME:-~/.cache}/agent-vault)
#   AGENT_VAULT_SUITE          Debian suite for --offline (default trixie)
#   AGENT_VAULT_RUST_SUITE     Debian suite of the --offline --from-source builder
#                              (default AGENT_VAULT_SUITE; its rustc must be new
#                              enough for the workspace, 1.88: trixie has 1.85,
#                              so use sid, or the default --prebuilt)
#   AGENT_VAULT_MIRROR         Debian mirror for mmdebstrap (default: mmdebstrap's)
#   AGENT_VAULT_HOST_CERTS     this CA directory for the RUN steps (default
#                              /etc/ssl/certs when --offline), for hosts whose
#                              egress needs a custom CA: podman bind-mounts it,
#                              docker passes its ca-certificates.crt as the build
#                              secret host_ca; "" to disable
#
# Every image is built with the repository root as context and the
# images/<name>/Dockerfile.dockerignore filter, and labelled (OCI labels) with
# VERSION (the workspace version), REVISION (git rev-parse --short HEAD, also
# compiled into `agent-init --version`), CREATED (now, RFC 3339) and SOURCE
# (AGENT_VAULT_SOURCE, default Cargo.toml's `repository`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ALL=(base pi claude opencode all proxy)
offline=0 prebuilt= from_source=0 quiet=0 engine=${CONTAINER_ENGINE:-} platform=
build_args=() names=()

die() { echo "build.sh: $*" >&2; exit 1; }
log() { echo "build.sh: $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --offline) offline=1 ;;
        --prebuilt) prebuilt="$ROOT/target/release" ;;
        --prebuilt=*) prebuilt="${1#--prebuilt=}" ;;
        --from-source) from_source=1 ;;
        --build-arg) shift; build_args+=(--build-arg "$1") ;;
        --build-arg=*) build_args+=(--build-arg "${1#--build-arg=}") ;;
        --engine) shift; engine=$1 ;;
        --engine=*) engine=${1#--engine=} ;;
        --platform) shift; platform=$1 ;;
        --platform=*) platform=${1#--platform=} ;;
        -q|--quiet) quiet=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) names+=("$1") ;;
    esac
    shift
done
[ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")
for n in "${names[@]}"; do
    [ -f "$ROOT/images/$n/Dockerfile" ] || die "unknown image '$n' (have: ${ALL[*]})"
done
if [ "$offline" = 1 ] && [ "$from_source" = 0 ] && [ -z "$prebuilt" ]; then
    prebuilt="$ROOT/target/release"
fi
case "$platform" in
    ""|linux/amd64) rust_target=x86_64-unknown-linux-gnu ;;
    linux/arm64|linux/arm64/v8) rust_target=aarch64-unknown-linux-gnu ;;
    *) die "--platform $platform: only linux/amd64 and linux/arm64" ;;
esac
# Another platform than the host's: --offline makes a Debian rootfs of that
# architecture (mmdebstrap runs its maintainer scripts through qemu-user in
# binfmt_misc), and --prebuilt takes the cross-compiled binaries.
deb_arch= arch_suffix=
if [ -n "$platform" ] && [ "$rust_target" != "$(uname -m)-unknown-linux-gnu" ]; then
    deb_arch=${rust_target%%-*}; [ "$deb_arch" = aarch64 ] && deb_arch=arm64
    arch_suffix=-$deb_arch
fi
# --prebuilt for another platform than the host's: the cross-compiled binaries.
if [ -n "$platform" ] && [ "$prebuilt" = "$ROOT/target/release" ] \
    && [ "$rust_target" != "$(uname -m)-unknown-linux-gnu" ]; then
    prebuilt="$ROOT/target/$rust_target/release"
fi

if [ -z "$engine" ]; then
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        engine=docker
    elif command -v podman >/dev/null 2>&1; then
        engine=podman
    else
        die "neither a working docker nor podman found: install one (apt-get install podman)"
    fi
fi
command -v "$engine" >/dev/null 2>&1 || die "$engine not found (install it: apt-get install podman, or docker.io)"
case "$(basename "$engine")" in
    podman|docker) ;;
    *) die "--engine $engine: docker or podman (a name or a path)" ;;
esac
is_podman() { [ "$(basename "$engine")" = podman ]; }

# Docker builds with BuildKit (the Dockerfiles use RUN --mount and
# Dockerfile.dockerignore; the classic builder also builds unused stages).
# A client with the buildx plugin does that by default; a client older than
# 23 does it with DOCKER_BUILDKIT=1; a newer one without buildx cannot, so
# take Debian docker.io's /usr/bin/docker when that is an older client.
if ! is_podman && ! "$engine" buildx version >/dev/null 2>&1; then
    client_major() { "$1" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1; }
    major=$(client_major "$engine")
    if [ -n "$major" ] && [ "$major" -lt 23 ] 2>/dev/null; then
        export DOCKER_BUILDKIT=1
    elif [ -x /usr/bin/docker ] && m=$(client_major /usr/bin/docker) && [ -n "$m" ] && [ "$m" -lt 23 ] 2>/dev/null; then
        log "$(command -v "$engine") (client $major) has no buildx plugin: building with /usr/bin/docker (client $m, BuildKit built in)"
        engine=/usr/bin/docker
        export DOCKER_BUILDKIT=1
    else
        die "$engine: client ${major:-?} without the buildx plugin cannot use BuildKit, which the Dockerfiles need (install docker-buildx, or use podman)"
    fi
fi

# A harness image needs agent-vault/base: build it first when it is missing.
image_exists() { "$engine" image inspect "$1" >/dev/null 2>&1; }
need_base=0
for n in "${names[@]}"; do [ "$n" != base ] && need_base=1; done
if [ "$need_base" = 1 ] && ! [[ " ${names[*]} " == *" base "* ]] && ! image_exists agent-vault/base:latest; then
    log "agent-vault/base:latest is missing: building it first"
    names=(base "${names[@]}")
fi

# Build each image once per run, in dependency order (base first).
ordered=()
for n in "${ALL[@]}"; do
    for m in "${names[@]}"; do [ "$m" = "$n" ] && ordered+=("$n") && break; done
done

common=()
[ "$quiet" = 1 ] && common+=(-q)
[ -n "$platform" ] && common+=(--platform "$platform")
# Docker without its bridge network (dockerd --bridge=none): RUN steps use the host's.
if ! is_podman && ! "$engine" network inspect bridge >/dev/null 2>&1; then
    common+=(--network host)
fi

# --- labels: version, revision, created, source ------------------------------
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
source=$(sed -n '/^\[workspace.package\]/,/^\[/s/^repository *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
revision=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
build_args=(--build-arg "VERSION=${version:-unknown}" --build-arg "REVISION=$revision" \
    --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --build-arg "SOURCE=${AGENT_VAULT_SOURCE:-$source}" "${build_args[@]}")

# --- offline base images -----------------------------------------------------
cache=${AGENT_VAULT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agent-vault}
suite=${AGENT_VAULT_SUITE:-trixie}

# local_image NAME PACKAGES: mmdebstrap a rootfs (cached) and import it as
# localhost/agent-vault/offline-NAME:SUITE unless that image already holds
# this very tarball.
local_image() {
    local name=$1 pkgs=$2 suite=${3:-$suite} tar tag stamp have
    tar="$cache/rootfs-$suite-$name$arch_suffix.tar"
    tag="localhost/agent-vault/offline-$name:$suite$arch_suffix"
    mkdir -p "$cache"
    if [ ! -s "$tar" ]; then
        command -v mmdebstrap >/dev/null 2>&1 || die "--offline needs mmdebstrap (apt-get install mmdebstrap)"
        log "mmdebstrap $suite ($pkgs) -> $tar"
        local t0=$SECONDS
        # shellcheck disable=SC2086
        mmdebstrap --quiet --variant=minbase ${deb_arch:+--architectures=$deb_arch} --include="$pkgs" "$suite" "$tar.tmp.tar" ${AGENT_VAULT_MIRROR:-} \
            || { rm -f "$tar.tmp.tar"; die "mmdebstrap failed"; }
        mv "$tar.tmp.tar" "$tar"
        log "rootfs built in $((SECONDS - t0))s"
    fi
    stamp="$(stat -c '%s-%Y' "$tar")-$pkgs"
    have=$("$engine" image inspect --format '{{ index .Config.Labels "agent-vault.rootfs" }}' "$tag" 2>/dev/null || true)
    if [ "$have" != "$stamp" ]; then
        log "importing $tar as $tag"
        local as=()
        if [ -n "$deb_arch" ]; then
            if is_podman; then as=(--arch "$deb_arch"); else as=(--platform "$platform"); fi
        fi
        "$engine" import "${as[@]}" --change "LABEL agent-vault.rootfs=\"$stamp\"" \
            --change 'CMD ["/bin/bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            "$tar" "$tag" >/dev/null 2>&1 || die "$engine import $tar failed"
    fi
    echo "$tag"
}

if [ "$offline" = 1 ]; then
    node_image=$(local_image node "ca-certificates,nodejs,npm")
    build_args=(--build-arg "BASE_IMAGE=$node_image" "${build_args[@]}")
    if [ "$from_source" = 1 ]; then
        rust_image=$(local_image rust "ca-certificates,rustc,cargo,gcc,libc6-dev" "${AGENT_VAULT_RUST_SUITE:-$suite}")
        build_args=(--build-arg "BUILDER_IMAGE=$rust_image" "${build_args[@]}")
    else
        # never used (BINARIES=prebuilt) but keeps every FROM resolvable offline
        build_args=(--build-arg "BUILDER_IMAGE=$node_image" "${build_args[@]}")
    fi
    certs=${AGENT_VAULT_HOST_CERTS-/etc/ssl/certs}
else
    certs=${AGENT_VAULT_HOST_CERTS:-}
fi
# A host CA directory for the RUN steps that fetch from npm: podman
# bind-mounts it; Docker has no build-time bind mount from the host, so its
# bundle goes in as the optional build secret `host_ca` (NODE_EXTRA_CA_CERTS).
if [ -n "${certs:-}" ] && [ -d "$certs" ]; then
    if is_podman; then
        common+=(-v "$certs:/etc/ssl/certs:ro")
    elif [ -f "$certs/ca-certificates.crt" ]; then
        common+=(--secret "id=host_ca,src=$certs/ca-certificates.crt")
    fi
fi

# --- prebuilt binaries -------------------------------------------------------
if [ -n "$prebuilt" ]; then
    for f in agent-init libvault_preload.so vault-proxy; do
        [ -f "$prebuilt/$f" ] || die "--prebuilt: $prebuilt/$f missing (run: cargo build --release)"
    done
    mkdir -p "$ROOT/images/.prebuilt"
    cp -f "$prebuilt/agent-init" "$prebuilt/libvault_preload.so" "$prebuilt/vault-proxy" "$ROOT/images/.prebuilt/"
    build_args=(--build-arg BINARIES=prebuilt "${build_args[@]}")
else
    # explicit: buildah 1.28 does not expand a global ARG's default in `FROM stage-${ARG}`
    build_args=(--build-arg BINARIES=build "${build_args[@]}")
fi

# --- build -------------------------------------------------------------------
# A rebuilt tag leaves its previous image untagged; those are removed once
# every image is built (children first: an older harness image holds the
# older base), so rebuilding does not fill the disk.
image_id() { "$engine" image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }
previous=()
for n in "${ordered[@]}"; do
    file="$ROOT/images/$n/Dockerfile"
    ignore=()
    if is_podman && [ -f "$file.dockerignore" ]; then
        ignore=(--ignorefile "$file.dockerignore")
    fi
    previous+=("$n=$(image_id "agent-vault/$n:latest")")
    log "building agent-vault/$n:latest with $engine"
    t0=$SECONDS
    "$engine" build "${common[@]}" "${ignore[@]}" "${build_args[@]}" \
        -f "$file" -t "agent-vault/$n:latest" "$ROOT"
    log "agent-vault/$n:latest built in $((SECONDS - t0))s"
done

for ((i = ${#previous[@]} - 1; i >= 0; i--)); do
    n=${previous[$i]%%=*} old=${previous[$i]#*=}
    [ -n "$old" ] && [ "$old" != "$(image_id "agent-vault/$n:latest")" ] || continue
    # still tagged elsewhere (another name for the same image): not ours to remove
    tags=$("$engine" image inspect --format '{{len .RepoTags}}' "$old" 2>/dev/null || echo gone)
    [ "$tags" = 0 ] || continue
    short=${old#sha256:} && short=${short:0:12}
    if out=$("$engine" rmi "$old" 2>&1); then
        log "removed the previous agent-vault/$n:latest ($short)"
    else
        log "kept the previous agent-vault/$n:latest ($short): $engine rmi: ${out##*$'\n'}"
    fi
done
