#!/usr/bin/env bash
# Print the features mart (marts.user_features) as a table: with psql when it is installed, else Python.
# Works against DATABASE_URL, the embedded Postgres, or the compose stack's db container.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SQL="select * from marts.user_features order by user_id"
if [ -z "${DATABASE_URL:-}" ] && command -v docker >/dev/null 2>&1 \
   && docker compose -f "$ROOT/docker-compose.yml" ps --status running db 2>/dev/null | grep -q db; then
  echo "query: using the compose stack's db container"
  exec docker compose -f "$ROOT/docker-compose.yml" exec -T db \
    sh -c 'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "$0"' "$SQL"
fi
export VENV_DIR="${VENV_DIR:-$ROOT/.venv}"
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
if command -v psql >/dev/null 2>&1; then
  url="${DATABASE_URL:-}"
  if [ -z "$url" ]; then
    url="$("$VENV_DIR/bin/python" -m api.cli db url)" || {
      echo "query: no DATABASE_URL and the embedded Postgres is not running; start scripts/run.sh first" >&2
      exit 1
    }
  fi
  exec psql "$url" -X -P pager=off -c "$SQL"
fi
exec "$VENV_DIR/bin/python" -m api.cli query "$@"
