#!/usr/bin/env bash
# Print the features mart (marts.user_features) as a table: with psql when it is installed, else Python.
# Works against DATABASE_URL, the embedded Postgres, or the compose stack's db container.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SQL="select * from marts.user_features order by user_id"
# The compose stack's db container, when this folder's stack runs (Compose v1 or v2, as docker-up.sh finds it).
# shellcheck source=scripts/_compose.sh
source "$ROOT/scripts/_compose.sh"
if [ -z "${DATABASE_URL:-}" ] && compose_find 2>/dev/null; then
  # without .env, Compose needs the placeholders to read the file (as docker-down.sh does)
  env_args=()
  [ -f "$ROOT/.env" ] || env_args=(--env-file "$ROOT/.env.example")
  db_id="$(cd "$ROOT" && "${compose[@]}" ${env_args[@]+"${env_args[@]}"} ps -q db 2>/dev/null | head -n 1 || true)"
  if [ -n "$db_id" ] && [ "$(docker inspect -f '{{.State.Running}}' "$db_id" 2>/dev/null)" = true ]; then
    echo "query: using the compose stack's db container"
    cd "$ROOT"
    exec "${compose[@]}" ${env_args[@]+"${env_args[@]}"} exec -T db \
      sh -c 'psql -X -P pager=off -v ON_ERROR_STOP=1 -U "${APP_DB_USER:-$POSTGRES_USER}" -d "$POSTGRES_DB" -c "$0"' "$SQL"
  fi
fi
# shellcheck source=scripts/_setup.sh
source "$ROOT/scripts/_setup.sh"
url="${DATABASE_URL:-}"
if [ -z "$url" ]; then
  # the embedded Postgres of a running scripts/run.sh, if any (else Python starts it for the query)
  url="$("$VENV_DIR/bin/python" -m api.cli db url 2>/dev/null || true)"
fi
if [ -n "$url" ] && command -v psql >/dev/null 2>&1; then
  # the URL (and its password) goes to psql through libpq's PG* variables, never on a command line
  eval "$(QUERY_URL="$url" "$VENV_DIR/bin/python" - <<'PY'
import os, shlex
from api.core.db.database import Database
for key, value in Database(os.environ["QUERY_URL"]).libpq_env().items():
    print(f"export {key}={shlex.quote(value)}")
PY
)"
  exec psql -X -P pager=off -v ON_ERROR_STOP=1 -c "$SQL"
fi
exec "$VENV_DIR/bin/python" -m api.cli query "$@"
