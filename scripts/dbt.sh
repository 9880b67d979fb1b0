#!/usr/bin/env bash
# Run any dbt command against the product's database (DATABASE_URL, or the embedded Postgres, started for
# the command if needed and stopped after it unless another process of ours still uses it). The input CSVs in $DATA_DIR are validated and
# normalised first. Examples: scripts/dbt.sh build | scripts/dbt.sh docs generate | scripts/dbt.sh show --select user_features
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/_setup.sh
source "$ROOT/scripts/_setup.sh"
exec "$VENV_DIR/bin/python" -m api.cli dbt "$@"
