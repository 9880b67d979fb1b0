#!/usr/bin/env bash
# Serve the API: set up .venv (pinned requirements), start an embedded Postgres when DATABASE_URL is unset,
# and run uvicorn on $HOST:$PORT (default 127.0.0.1:8000). Ctrl-C / SIGTERM stops the API and the embedded
# Postgres it started. This is also the container's entrypoint.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/_setup.sh
source "$ROOT/scripts/_setup.sh"
if [ -z "${DATABASE_URL:-}" ]; then
  echo "run: DATABASE_URL is unset: using the embedded Postgres in ${STATE_DIR:-$ROOT/.state}/pg (as root, maybe moved: the server says where)"
fi
scheme=http
if [ -n "${TLS_CERTFILE:-}" ] || [ -n "${TLS_KEYFILE:-}" ]; then scheme=https; fi
echo "run: serving the API on $scheme://${HOST:-127.0.0.1}:${PORT:-8000} (try: curl -X POST $scheme://localhost:${PORT:-8000}/trigger)"
exec "$VENV_DIR/bin/python" -m api.cli serve
