#!/usr/bin/env bash
# Control the embedded Postgres (data in $STATE_DIR/pg; its port is kept there too, see docs/configuration.md).
# Usage: scripts/db.sh start | stop | restart | url [--admin]
#   start  start it (or find it running) and keep it running until `stop`; prints its address
#   stop   stop it now, whoever uses it
#   url    print its URL, password included (for a program's config, not for logs; psql: scripts/psql.sh):
#          the role dbt and the API log in as, `features_mart` (not a superuser); --admin: the superuser's
#          (`postgres`), for setting up only (docs/security.md)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/_setup.sh
source "$ROOT/scripts/_setup.sh"
exec "$VENV_DIR/bin/python" -m api.cli db "$@"
