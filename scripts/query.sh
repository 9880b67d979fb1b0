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
