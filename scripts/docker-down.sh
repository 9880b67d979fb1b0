#!/usr/bin/env bash
# Stop and remove the Docker Compose services (db + app).
# Usage: scripts/docker-down.sh [--volumes]   --volumes also deletes the database and app state volumes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() {
    echo "docker-down: $*" >&2
    exit 1
}

down_args=(--remove-orphans)
what="stopping db + app (data volumes kept)"
while [[ $# -gt 0 ]]; do
    case "$1" in
        -v | --volumes)
            down_args+=(--volumes)
            what="stopping db + app and deleting their volumes (database and app state)"
            shift
            ;;
        -h | --help)
            sed -n '2,3s/^# \{0,1\}//p' "$0"
            exit 0
            ;;
        *) die "unknown argument '$1'; usage: scripts/docker-down.sh [--volumes]" ;;
    esac
done

command -v docker >/dev/null 2>&1 \
    || die "docker not found: install Docker Engine (https://docs.docker.com/engine/install/) and re-run"
docker info >/dev/null 2>&1 \
    || die "no Docker engine reachable (docker info failed): start it (e.g. 'sudo systemctl start docker' or Docker Desktop) and re-run"
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
else
    die "Docker Compose not found: install the compose plugin (package docker-compose-plugin) and re-run"
fi

# Interpolation needs POSTGRES_PASSWORD; without .env, point compose at the placeholders so down still works.
env_args=()
[[ -f .env ]] || env_args=(--env-file .env.example)

echo "$what"
"${compose[@]}" ${env_args[@]+"${env_args[@]}"} down "${down_args[@]}"
echo "stopped; start again with scripts/docker-up.sh"
