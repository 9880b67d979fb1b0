#!/usr/bin/env bash
# Trigger a rebuild and follow it: progress (nodes done / total) until the run ends, then a summary.
# Exits 0 when the run succeeded, 1 when it failed, 2 when the API cannot be reached, 75 when a run is
# already in progress. Usage: scripts/trigger.sh [URL]  (default $API_URL or http://localhost:8000);
# sends API_TOKEN as a bearer token when set. Needs only python3 (no virtualenv).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "${PYTHON:-python3}" "$ROOT/scripts/trigger.py" "$@"
