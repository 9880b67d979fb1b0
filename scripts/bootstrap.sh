#!/usr/bin/env bash
# Create the virtualenv ($VENV_DIR, default .venv) and install the pinned requirements into it.
# Skips the install when the venv already holds exactly these pins (stamp file), so reruns are instant.
# Usage: scripts/bootstrap.sh [--dev]     (--dev adds requirements-dev.txt: test and lint tools)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_DIR="${VENV_DIR:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
req="$ROOT/requirements.txt"
[ "${1:-}" = "--dev" ] && req="$ROOT/requirements-dev.txt"

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "bootstrap: $PYTHON not found; install Python 3.10+ or set PYTHON=/path/to/python3" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "bootstrap: $("$PYTHON" --version) is too old; Python 3.10+ is needed (set PYTHON=...)" >&2
  exit 1
fi

if [ ! -x "$VENV_DIR/bin/python" ]; then
  echo "bootstrap: creating virtualenv $VENV_DIR"
  "$PYTHON" -m venv "$VENV_DIR" || {
    echo "bootstrap: could not create a venv; on Debian/Ubuntu: apt-get install python3-venv" >&2
    exit 1
  }
fi

# The stamp covers the requirement files' contents; the dev stamp implies the runtime one.
stamp="$VENV_DIR/.requirements.sha256"
want="$(cat "$ROOT/requirements.txt" "$req" | sha256sum | cut -d' ' -f1) $(basename "$req")"
have="$(cat "$stamp" 2>/dev/null || true)"
dev_want="-"
if [ -f "$ROOT/requirements-dev.txt" ]; then
  dev_want="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" | sha256sum | cut -d' ' -f1) requirements-dev.txt"
fi
if [ "$have" = "$want" ] || [ "$have" = "$dev_want" ]; then
  exit 0
fi
echo "bootstrap: installing $(basename "$req") into $VENV_DIR"
pip_log="$VENV_DIR/pip-install.log"
if ! "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check --no-input -r "$req" >"$pip_log" 2>&1; then
  grep -v "^WARNING: Location" "$pip_log" | tail -n 30 >&2
  echo "bootstrap: pip could not install $(basename "$req") (log: $pip_log); fix the error above and rerun" >&2
  exit 1
fi
echo "$want" > "$stamp"
