#!/usr/bin/env bash
# Trigger a rebuild and follow it (its event stream): progress (nodes done / total) until the run ends, then a
# summary of what the API recorded. When a run is already in progress, it follows that one instead. Ctrl-C
# cancels the run it started (a run it only follows goes on). Exits 0 when the run succeeded, 1 when it failed or
# was cancelled elsewhere, 2 when the API cannot be reached, 75 when a scripts/dbt.sh command holds the lock
# (no run to follow), 130 on Ctrl-C. Usage: scripts/trigger.sh [URL]  (default $API_URL or http://localhost:8000);
# scripts/trigger.sh --cancel RUN_ID [URL] cancels any run (0 accepted, 1 already ended or unknown).
# Sends API_TOKEN as a bearer token when set. Needs only python3 (no virtualenv).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "${PYTHON:-python3}" "$ROOT/scripts/trigger.py" "$@"
