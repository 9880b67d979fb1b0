# Sourced by docker-up.sh, docker-down.sh, query.sh and lint-docker.sh: the one place that finds Docker Compose.
# Compose v2 (`docker compose`, the plugin) when present, else v1 (`docker-compose`, what Debian 12 packages).
# shellcheck shell=bash

# compose_command: sets the array `compose` to the Compose command, or returns 1 with `compose_problem` set.
# Needs no engine (`config` works without one).
compose_command() {
    compose=()
    compose_problem=""
    if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
        compose=(docker compose)
    elif command -v docker-compose >/dev/null 2>&1; then
        compose=(docker-compose)
    else
        compose_problem="Docker Compose not found: install Compose v2 (the docker-compose-plugin package of Docker's repository) or v1 (Debian's docker-compose package), and re-run"
        return 1
    fi
}

# compose_find: as compose_command, after checking that Docker is installed and its engine answers.
compose_find() {
    compose=()
    if ! command -v docker >/dev/null 2>&1; then
        compose_problem="docker not found: install Docker Engine (https://docs.docker.com/engine/install/, or Debian's docker.io package) and re-run"
        return 1
    fi
    if ! docker info >/dev/null 2>&1; then
        compose_problem="no Docker engine reachable (docker info failed): start it (e.g. 'sudo systemctl start docker' or Docker Desktop), check you may use it (docker group), then re-run"
        return 1
    fi
    compose_command
}

# compose_project DIR: the project name Compose gives the stack of the compose file in DIR (COMPOSE_PROJECT_NAME,
# else the folder's name, lower-cased, only [a-z0-9_-], as v1 and v2 both make it).
compose_project() {
    local name="${COMPOSE_PROJECT_NAME:-$(basename "$1")}"
    printf '%s' "$name" | tr '[:upper:]' '[:lower:]' | tr -cd 'a-z0-9_-' | sed 's/^[-_]*//'
    echo
}

# compose_volume DIR VOLUME: the name of that project's volume VOLUME (e.g. pgdata) when it exists, else nothing.
compose_volume() {
    docker volume ls -q --filter "label=com.docker.compose.project=$(compose_project "$1")" \
        --filter "label=com.docker.compose.volume=$2" 2>/dev/null | head -n 1
}
