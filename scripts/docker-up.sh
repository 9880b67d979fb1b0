#!/usr/bin/env bash
# Build the image and start Postgres + the app with Docker Compose, then wait until the app is healthy.
# Usage: scripts/docker-up.sh [--timeout SECONDS]   (default 180)
# Creates .env from .env.example with a random POSTGRES_PASSWORD, APP_DB_PASSWORD and API_TOKEN when .env is
# missing (and adds an API_TOKEN or APP_DB_PASSWORD to an older .env without one; for the latter it sets the app's
# role up in the existing database); refuses to while the stack's database volume exists (that database keeps
# the passwords of the .env that is gone). Compose v2 (`docker compose`) or v1 (`docker-compose`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() {
    echo "docker-up: $*" >&2
    exit 1
}

timeout=180
while [[ $# -gt 0 ]]; do
    case "$1" in
        --timeout)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || die "--timeout needs a number of seconds, e.g. --timeout 300"
            timeout="$2"
            shift 2
            ;;
        -h | --help)
            sed -n '2,6s/^# \{0,1\}//p' "$0"
            exit 0
            ;;
        *) die "unknown argument '$1'; usage: scripts/docker-up.sh [--timeout SECONDS]" ;;
    esac
done

# shellcheck source=scripts/_compose.sh
source "$ROOT/scripts/_compose.sh"
compose_find || die "$compose_problem"

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

if [[ ! -f .env ]]; then
    volume="$(compose_volume "$ROOT" pgdata)"
    if [[ -n "$volume" ]]; then
        die "there is no .env, but the database volume '$volume' exists: its database keeps the passwords (POSTGRES_PASSWORD, APP_DB_PASSWORD) of the .env that is gone, and new random ones would lock the app out. Put that .env back (or cp .env.example .env and set the old passwords and an API_TOKEN), or delete the database and start afresh with scripts/docker-down.sh --volumes (its data is lost); then re-run"
    fi
    echo "creating .env from .env.example with a random POSTGRES_PASSWORD, APP_DB_PASSWORD and API_TOKEN"
    (umask 077 && sed -e "s/^POSTGRES_PASSWORD=.*/POSTGRES_PASSWORD=$(random_hex 16)/" \
        -e "s/^APP_DB_PASSWORD=.*/APP_DB_PASSWORD=$(random_hex 16)/" \
        -e "s/^API_TOKEN=.*/API_TOKEN=$(random_hex 32)/" .env.example >.env)
else
    if grep -qx 'POSTGRES_PASSWORD=change-me' .env; then
        echo "warning: POSTGRES_PASSWORD in .env is still the placeholder 'change-me'; set a real one" >&2
    fi
    if ! grep -q '^API_TOKEN=.' .env; then
        echo "adding a random API_TOKEN to .env (the API refuses to serve the network without one)"
        (umask 077 && echo "API_TOKEN=$(random_hex 32)" >>.env)
    elif grep -qx 'API_TOKEN=change-me' .env; then
        echo "warning: API_TOKEN in .env is still the placeholder 'change-me', which the API refuses (fewer than 32 characters); set a real one" >&2
    fi
    if ! grep -q '^APP_DB_PASSWORD=.' .env; then
        echo "adding a random APP_DB_PASSWORD to .env (the app logs in as a role of its own, not the superuser)"
        (umask 077 && echo "APP_DB_PASSWORD=$(random_hex 16)" >>.env)
    elif grep -qx 'APP_DB_PASSWORD=change-me' .env; then
        echo "warning: APP_DB_PASSWORD in .env is still the placeholder 'change-me'; set a real one" >&2
    fi
fi

if [[ -n "$(compose_volume "$ROOT" pgdata)" ]]; then
    # An existing database: the postgres image sets the app's role up only on a new volume. When the role does
    # not own the database yet (made before the app had a role of its own, or a set-up that failed halfway), run
    # its init script now (docker/postgres-init/app-role.sh; as the superuser, on the local socket).
    "${compose[@]}" up -d db
    deadline=$((SECONDS + timeout))
    until "${compose[@]}" exec -T db sh -c 'pg_isready -q -U "$POSTGRES_USER"' 2>/dev/null; do
        ((SECONDS < deadline)) || die "the db service did not accept connections within ${timeout}s; see '${compose[*]} logs db'"
        sleep 2
    done
    # the query goes to psql on its stdin inside the container, where `:'role'` quotes APP_DB_USER safely
    owner_sql="select count(*) from pg_database d join pg_roles r on r.oid = d.datdba where d.datname = current_database() and r.rolname = :'role'"
    owned="$("${compose[@]}" exec -T db sh -c 'printf "%s;\n" "$0" | psql -XAtq -U "$POSTGRES_USER" -d "${POSTGRES_DB:-$POSTGRES_USER}" -v role="${APP_DB_USER:?}"' "$owner_sql")" \
        || die "could not ask the db service who owns its database (output above); see '${compose[*]} logs db'"
    if [[ "$(tr -d '[:space:]' <<<"$owned")" != 1 ]]; then
        echo "setting up the app's role in the existing database (docker/postgres-init/app-role.sh)"
        "${compose[@]}" exec -T db sh /docker-entrypoint-initdb.d/app-role.sh \
            || die "setting up the app's role failed (output above); fix the cause and re-run scripts/docker-up.sh"
    fi
fi

echo "building the image and starting db + app (${compose[*]} up -d --build)"
"${compose[@]}" up -d --build

app_id="$("${compose[@]}" ps -q app)"
[[ -n "$app_id" ]] || die "the app container was not created; see '${compose[*]} logs app', fix, and re-run"

echo "waiting up to ${timeout}s for the app to report healthy"
deadline=$((SECONDS + timeout))
while :; do
    state="$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$app_id" 2>/dev/null || echo "missing")"
    case "$state" in
        "running healthy") break ;;
        exited* | dead* | restarting* | missing | *unhealthy)
            logs="$("${compose[@]}" logs --tail 50 app 2>&1 || true)"
            echo "$logs" >&2
            if grep -q 'password authentication failed' <<<"$logs"; then
                die "the app is '${state}': the database refuses the APP_DB_PASSWORD of .env (logs above). Its volume was created with another one: put that one back in .env, or delete the database with scripts/docker-down.sh --volumes (its data is lost), then re-run scripts/docker-up.sh"
            fi
            die "the app is '${state}' (logs above); fix the cause, then re-run scripts/docker-up.sh (scripts/docker-down.sh stops everything)"
            ;;
    esac
    if ((SECONDS >= deadline)); then
        "${compose[@]}" logs --tail 50 app >&2 || true
        die "the app was not healthy after ${timeout}s (state: ${state}; logs above); re-run with --timeout 600 or check '${compose[*]} logs app'"
    fi
    sleep 2
done

published="$("${compose[@]}" port app 8000 2>/dev/null | tail -n 1)"
port="${published##*:}"
[[ "$port" =~ ^[0-9]+$ ]] || port=8000
base="http://localhost:${port}"

echo "app is healthy"
echo "  API:        ${base}  (GET ${base}/health)"
echo "  OpenAPI:    ${base}/docs"
echo "  dbt docs:   ${base}/dbt-docs/"
echo "  rebuild:    scripts/trigger.sh, or curl -X POST -H \"Authorization: Bearer \$API_TOKEN\" ${base}/trigger"
echo "  browser:    log in at ${base}/login with the API_TOKEN from .env (for /docs and /dbt-docs/)"
echo "  logs:       ${compose[*]} logs -f app"
echo "  stop:       scripts/docker-down.sh   (--volumes also drops the data)"
