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

# shellcheck source=scripts/_compose.sh
source "$ROOT/scripts/_compose.sh"
compose_find || die "$compose_problem"

# Interpolation needs POSTGRES_PASSWORD; without .env, point compose at the placeholders so down still works.
env_args=()
[[ -f .env ]] || env_args=(--env-file .env.example)

echo "$what"
"${compose[@]}" ${env_args[@]+"${env_args[@]}"} down "${down_args[@]}"
echo "stopped; start again with scripts/docker-up.sh"
