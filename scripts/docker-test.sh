#!/usr/bin/env bash
# The Docker tier of scripts/test.sh: the tests marked `docker` (tests/docker/) on a real Docker engine. The image
# alone (its embedded Postgres as uid 10001 in a named volume, a separate Postgres container, an unwritable
# /app/.state) and the README's "With Docker" section on a fresh copy of the project, with Compose v1 and v2
# (where present).
# The engine: the running one; else, as root on Debian, Debian's docker.io and docker-compose (Compose v1) are
# installed when missing and dockerd is started in the background. The base images: scripts/docker-standins.sh
# (pulled, or stand-ins built offline from Debian's packages and kept as the cache of later runs). Afterwards it
# removes everything it started: the containers, volumes, networks and images made meanwhile (the stand-ins
# stay), and the daemon if it started it. Skipped, saying why, only when no engine runs and none can be started.
# Usage: scripts/docker-test.sh [pytest args]   (the dev venv first: scripts/bootstrap.sh --dev)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export VENV_DIR="${VENV_DIR:-$ROOT/.venv}"
export PATH="$VENV_DIR/bin:$PATH"

say() { echo "docker-test: $*"; }
skip() {
    echo "docker-test: SKIPPED the docker tier: $*" >&2
    exit 0
}

command -v pytest >/dev/null 2>&1 || {
    echo "docker-test: pytest not found in $VENV_DIR: run scripts/bootstrap.sh --dev first" >&2
    exit 1
}

# One Docker tier at a time on a machine: they share the engine, and one of them may stop it.
exec 9>"${TMPDIR:-/tmp}/features-mart-docker-tier.lock"
flock 9

work="$(mktemp -d "${TMPDIR:-/tmp}/features-mart-docker-tier.XXXXXX")"
dockerd_pid=""
started=$SECONDS
phase=$SECONDS
# say_done WHAT: WHAT, with the seconds since the previous say_done (or the start)
say_done() {
    say "$1 in $((SECONDS - phase)) s"
    phase=$SECONDS
}

snapshot() {
    docker ps -aq --no-trunc | sort >"$1.containers"
    docker volume ls -q | sort >"$1.volumes"
    docker network ls -q --no-trunc | sort >"$1.networks"
    docker images -aq --no-trunc | sort -u >"$1.images"
}

# Remove what appeared since the snapshot `before` (the tests remove their own; this catches what they left).
remove_new() {
    local kind left=()
    snapshot "$work/after"
    for kind in containers networks volumes images; do
        mapfile -t new < <(comm -13 "$work/before.$kind" "$work/after.$kind")
        [[ ${#new[@]} -gt 0 ]] || continue
        left+=("${#new[@]} $kind")
        case "$kind" in
            containers) docker rm -f -v "${new[@]}" >/dev/null 2>&1 || true ;;
            networks) docker network rm "${new[@]}" >/dev/null 2>&1 || true ;;
            volumes) docker volume rm -f "${new[@]}" >/dev/null 2>&1 || true ;;
            images)
                # newest first, so children go before the layers they were built on
                for _ in 1 2 3; do
                    mapfile -t new < <(comm -12 <(docker images -aq --no-trunc | sort -u) <(comm -13 "$work/before.images" "$work/after.images"))
                    [[ ${#new[@]} -gt 0 ]] || break
                    docker rmi -f "${new[@]}" >/dev/null 2>&1 || true
                done
                ;;
        esac
    done
    if [[ ${#left[@]} -gt 0 ]]; then
        say "removed what the tests left or built: ${left[*]}"
    fi
    snapshot "$work/final"
    for kind in containers networks volumes images; do
        if [[ -n "$(comm -13 "$work/before.$kind" "$work/final.$kind")" ]]; then
            echo "docker-test: could not remove these $kind: $(comm -13 "$work/before.$kind" "$work/final.$kind" | tr '\n' ' ')" >&2
        fi
    done
}

cleanup() {
    local rc=$?
    if [[ -f "$work/before.images" ]] && docker info >/dev/null 2>&1; then
        remove_new
    fi
    if [[ -n "$dockerd_pid" ]]; then
        say "stopping the dockerd it started (pid $dockerd_pid)"
        kill -TERM "$dockerd_pid" 2>/dev/null || true
        for _ in $(seq 1 60); do
            kill -0 "$dockerd_pid" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$dockerd_pid" 2>/dev/null; then
            echo "docker-test: dockerd did not stop within 30 s: killing it" >&2
            kill -KILL "$dockerd_pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$work"
    say_done "cleaned up"
    say "done in $((SECONDS - started)) s"
    exit "$rc"
}
trap cleanup EXIT

can_install() { [[ "$(id -u)" = 0 ]] && command -v apt-get >/dev/null 2>&1; }
install_debs() {
    say "installing $* from Debian's packages"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >"$work/apt.log" 2>&1; then
        tail -n 20 "$work/apt.log" >&2
        return 1
    fi
}

# ---- the engine
if docker info >/dev/null 2>&1; then
    say "using the running Docker engine $(docker version -f '{{.Server.Version}}' 2>/dev/null)"
else
    if ! command -v dockerd >/dev/null 2>&1; then
        can_install || skip "no Docker engine runs, and none can be installed here (as root on Debian this tier installs docker.io)"
        install_debs docker.io docker-compose || skip "no Docker engine runs, and Debian's docker.io could not be installed (apt output above)"
    fi
    [[ "$(id -u)" = 0 ]] || skip "no Docker engine runs, and only root can start dockerd here (start Docker, or run as root)"
    say "starting dockerd in the background"
    setsid dockerd --pidfile "$work/dockerd.pid" >"$work/dockerd.log" 2>&1 </dev/null 9>&- &
    dockerd_pid=$!
    for _ in $(seq 1 120); do
        docker info >/dev/null 2>&1 && break
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 0.5
    done
    if ! docker info >/dev/null 2>&1; then
        tail -n 20 "$work/dockerd.log" >&2
        skip "dockerd could not be started here (its log above)"
    fi
    dockerd_pid="$(cat "$work/dockerd.pid" 2>/dev/null || echo "$dockerd_pid")"
    say_done "dockerd $(docker version -f '{{.Server.Version}}') ready"
fi
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1 && can_install; then
    install_debs docker-compose || echo "docker-test: could not install docker-compose: the Compose tests will skip" >&2
fi

# ---- the base images
scripts/docker-standins.sh
say_done "base images ready"

# ---- the tests
snapshot "$work/before"
rc=0
FEATURES_MART_DOCKER_TIER=1 pytest -m docker "$@" || rc=$?
[[ $rc != 5 ]] || rc=0 # 5: the arguments selected no docker test
say_done "tests done"
exit "$rc"
