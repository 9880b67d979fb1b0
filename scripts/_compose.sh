# Sourced by docker-up.sh and docker-down.sh: checks for Docker and sets `compose` to the Compose command.
# shellcheck shell=bash
command -v docker >/dev/null 2>&1 \
    || die "docker not found: install Docker Engine (https://docs.docker.com/engine/install/) and re-run"
docker info >/dev/null 2>&1 \
    || die "no Docker engine reachable (docker info failed): start it (e.g. 'sudo systemctl start docker' or Docker Desktop), check you may use it (docker group), then re-run"
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
else
    die "Docker Compose not found: install the compose plugin (package docker-compose-plugin) and re-run"
fi
