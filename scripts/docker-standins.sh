#!/usr/bin/env bash
# Test fixtures of the Docker tier: make sure the base images that the Dockerfile (FROM) and docker-compose.yml
# (the services it does not build) name are in the local Docker engine. A missing one is pulled; when it cannot
# be pulled (no registry), a STAND-IN is built offline from Debian's packages and tagged with the same name:
# debian:bookworm-slim with debootstrap, python:*-slim-bookworm and postgres:* on it. Their differences from the
# official images are written at the top of their recipes, tests/docker/standins/*.Dockerfile, and in the
# image's label `features-mart.standin`. They trust this machine's extra CA certificates (for pip behind a
# TLS-inspecting proxy). Stand-ins stay in the engine as the cache of later runs; one is rebuilt when its
# recipe, its base or those certificates change. They are test fixtures, never what the README tells users to run.
# Usage: scripts/docker-standins.sh [--list]   --list: print the base images and what the engine has, build nothing
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RECIPES="$ROOT/tests/docker/standins"
# Bump when the debootstrap recipe below changes (the Dockerfile recipes are hashed).
DEBIAN_RECIPE=1
LABEL=features-mart.standin
HOST_CAS=/usr/local/share/ca-certificates

die() {
    echo "docker-standins: $*" >&2
    exit 1
}

list=0
case "${1:-}" in
    "") ;;
    --list) list=1 ;;
    -h | --help)
        sed -n '2,10s/^# \{0,1\}//p' "$0"
        exit 0
        ;;
    *) die "unknown argument '$1'; usage: scripts/docker-standins.sh [--list]" ;;
esac

docker info >/dev/null 2>&1 || die "no Docker engine reachable (docker info failed); scripts/docker-test.sh starts one"

# The base images: every FROM of the Dockerfile that is not an earlier stage, and the image of every compose
# service without a build section.
base_images() {
    awk 'toupper($1) == "FROM" {
             image = ($2 ~ /^--/) ? $3 : $2
             if (!(image in stage)) print image
             for (i = 1; i <= NF; i++) if (toupper($i) == "AS") stage[$(i + 1)] = 1
         }' Dockerfile
    awk '/^services:/ { in_services = 1; next }
         /^[^ #]/ { in_services = 0 }
         in_services && /^  [A-Za-z0-9_.-]+:/ { service = $1 }
         in_services && /^    image:/ { image[service] = $2 }
         in_services && /^    build:/ { built[service] = 1 }
         END { for (s in image) if (!(s in built)) print image[s] }' docker-compose.yml
}

recipe_of() {
    case "$1" in
        debian:bookworm-slim) echo debian ;;
        python:*-slim-bookworm) echo python ;;
        postgres:*) echo postgres ;;
        *) echo none ;;
    esac
}

# The recipe label of a stand-in; empty for an official image (or none).
label_of() {
    local label
    label="$(docker image inspect -f "{{index .Config.Labels \"$LABEL-recipe\"}}" "$1" 2>/dev/null || true)"
    [[ "$label" == "<no value>" ]] || echo "$label"
}

# What a stand-in of this kind is built from; a stand-in whose label differs is stale.
recipe_hash() {
    local kind="$1"
    {
        echo "$kind"
        if [[ "$kind" == debian ]]; then
            echo "$DEBIAN_RECIPE"
        else
            cat "$RECIPES/$kind.Dockerfile"
            [[ "$kind" != postgres ]] || cat "$RECIPES/postgres-entrypoint.sh"
            [[ "$kind" != python ]] || cat "$HOST_CAS"/*.crt 2>/dev/null || true
            docker image inspect -f '{{.Id}}' debian:bookworm-slim
        fi
    } | sha256sum | cut -c1-16
}

# Debian's mirror as this machine's apt is configured (else debootstrap's default).
debian_mirror() {
    apt-cache policy 2>/dev/null | awk '$3 == "bookworm/main" && $2 ~ /^https?:/ { print $2; exit }'
}

build_debian() {
    local tag="$1" hash="$2" rootfs
    if ! command -v debootstrap >/dev/null 2>&1; then
        if [[ "$(id -u)" = 0 ]] && command -v apt-get >/dev/null 2>&1; then
            echo "docker-standins: installing debootstrap from Debian's packages"
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; } >/dev/null 2>&1 ||
                die "could not install debootstrap (apt-get install debootstrap)"
        else
            die "$tag cannot be pulled and debootstrap is missing to build a stand-in (apt-get install debootstrap, as root)"
        fi
    fi
    rootfs="$(mktemp -d "${TMPDIR:-/tmp}/standin-debian.XXXXXX")"
    # shellcheck disable=SC2064
    trap "rm -rf '$rootfs'" EXIT
    local mirror
    mirror="$(debian_mirror)"
    echo "docker-standins: debootstrap bookworm (minbase) from ${mirror:-the default mirror of debootstrap}"
    if ! debootstrap --variant=minbase bookworm "$rootfs" ${mirror:+"$mirror"} >"$rootfs.log" 2>&1; then
        tail -n 20 "$rootfs.log" >&2
        die "debootstrap failed (log above)"
    fi
    rm -f "$rootfs.log"
    # As the official slim image: no docs, man pages or translations from later installs, apt caches cleaned
    # after each install, no services started by package scripts.
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
EOF
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
    chmod 755 "$rootfs/usr/sbin/policy-rc.d"
    find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
    rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda,locale}/* "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
    tar -C "$rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' \
        --change "LABEL $LABEL=\"test fixture: Debian 12 minbase from debootstrap, slimmed like the official image\"" \
        --change "LABEL $LABEL-recipe=$hash" \
        - "$tag" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
}

build_from_recipe() {
    local kind="$1" tag="$2" hash="$3" context
    context="$(mktemp -d "${TMPDIR:-/tmp}/standin-$kind.XXXXXX")"
    cp "$RECIPES/$kind.Dockerfile" "$context/Dockerfile"
    [[ "$kind" != postgres ]] || cp "$RECIPES/postgres-entrypoint.sh" "$context/"
    mkdir "$context/ca"
    cp "$HOST_CAS"/*.crt "$context/ca/" 2>/dev/null || true
    local differs
    differs="$(sed -n '/^# How it differs/,/^# The same/{/^# The same/d;s/^# *//p}' "$context/Dockerfile" | tr '\n' ' ')"
    if ! docker build --quiet --label "$LABEL=test fixture, not the official image. $differs" \
        --label "$LABEL-recipe=$hash" -t "$tag" "$context" >"$context.log" 2>&1; then
        tail -n 30 "$context.log" >&2
        rm -rf "$context" "$context.log"
        return 1
    fi
    rm -rf "$context" "$context.log"
}

mapfile -t images < <(base_images | sort -u)
[[ ${#images[@]} -gt 0 ]] || die "found no base image in Dockerfile and docker-compose.yml"

# debian:bookworm-slim first: the other stand-ins are built on it.
declare -A seen=()
needed=()
for image in "${images[@]}"; do
    kind="$(recipe_of "$image")"
    if [[ "$kind" == python || "$kind" == postgres ]] && [[ -z "${seen[debian:bookworm-slim]:-}" ]]; then
        needed=(debian:bookworm-slim ${needed[@]+"${needed[@]}"})
        seen[debian:bookworm-slim]=1
    fi
    [[ -n "${seen[$image]:-}" ]] || needed+=("$image")
    seen[$image]=1
done

if [[ $list = 1 ]]; then
    for image in "${needed[@]}"; do
        if ! docker image inspect "$image" >/dev/null 2>&1; then
            echo "$image: missing"
        elif [[ -n "$(label_of "$image")" ]]; then
            echo "$image: stand-in (recipe $(label_of "$image"))"
        else
            echo "$image: official"
        fi
    done
    exit 0
fi

pids=()
kinds=()
for image in "${needed[@]}"; do
    kind="$(recipe_of "$image")"
    have="$(label_of "$image")"
    if docker image inspect "$image" >/dev/null 2>&1 && [[ -z "$have" ]]; then
        echo "docker-standins: $image: the official image is here"
        continue
    fi
    if [[ "$kind" != none ]]; then
        want="$(recipe_hash "$kind")"
        if [[ "$have" == "$want" ]]; then
            echo "docker-standins: $image: stand-in cached"
            continue
        fi
    fi
    if timeout 120 docker pull -q "$image" >/dev/null 2>&1; then
        echo "docker-standins: $image: pulled"
        continue
    fi
    [[ "$kind" != none ]] || die "$image cannot be pulled and there is no stand-in recipe for it"
    echo "docker-standins: $image cannot be pulled: building a stand-in (a test fixture; how it differs from the official image: tests/docker/standins/)"
    if [[ "$kind" == debian ]]; then
        build_debian "$image" "$want"
    else
        # The stand-ins on debian are built side by side.
        build_from_recipe "$kind" "$image" "$want" &
        pids+=($!)
        kinds+=("$image")
    fi
done
failed=0
for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then
        echo "docker-standins: ${kinds[$i]}: stand-in built"
    else
        echo "docker-standins: building the stand-in ${kinds[$i]} failed (output above)" >&2
        failed=1
    fi
done
[[ $failed = 0 ]] || exit 1
