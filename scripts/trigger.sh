#!/usr/bin/env bash
# Trigger a rebuild and follow it (its event stream): progress (nodes done / total) until the run ends, then a
# summary. Ctrl-C cancels the run it started. Exits 0 when the run succeeded, 1 when it failed or was
# cancelled elsewhere, 2 when the API cannot be reached, 75 when a run is already in progress, 130 when Ctrl-C
# cancelled it. Usage: scripts/trigger.sh [URL]  (default $API_URL or http://localhost:8000);
# scripts/trigger.sh --cancel RUN_ID [URL] cancels any run (0 accepted, 1 already ended or unknown).
# Sends API_TOKEN as a bearer token when set. Needs only python3 (no virtualenv).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "${PYTHON:-python3}" "$ROOT/scripts/trigger.py" "$@"
