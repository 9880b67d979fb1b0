#!/usr/bin/env bash
# psql on the current database: DATABASE_URL's, or the embedded Postgres (started for the session if it is not
# running, and stopped after it unless another process still uses it). The password goes to psql in its
# environment, never on its command line. Arguments go to psql.
# Examples: scripts/psql.sh | scripts/psql.sh -c '\d+ marts.user_features' | scripts/psql.sh -f query.sql
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/_setup.sh
source "$ROOT/scripts/_setup.sh"
exec "$VENV_DIR/bin/python" -m api.cli db psql "$@"
