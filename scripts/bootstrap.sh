#!/usr/bin/env bash
# Create the virtualenv ($VENV_DIR, default .venv) and install the pinned requirements into it.
# Skips the install when the venv already holds exactly these pins (stamp file), so reruns are instant.
# Usage: scripts/bootstrap.sh [--dev] [--spark]
#   --dev    adds requirements-dev.txt (test and lint tools)
#   --spark  adds requirements-spark.txt (dbt-spark, pyspark: DBT_TARGET=spark) and, when `java` is
#            missing and this runs as root on Debian/Ubuntu, a Java runtime from the distribution's packages
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_DIR="${VENV_DIR:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
reqs=("$ROOT/requirements.txt")
spark=0
for arg in "$@"; do
  case "$arg" in
    --dev) reqs+=("$ROOT/requirements-dev.txt") ;;
    --spark) reqs+=("$ROOT/requirements-spark.txt"); spark=1 ;;
    *) echo "bootstrap: unknown option $arg (use --dev and/or --spark)" >&2; exit 2 ;;
  esac
done

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

if [ "$spark" = 1 ] && ! command -v java >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing a Java runtime (default-jre-headless) from the distribution's packages for Spark"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        default-jre-headless; } >/dev/null 2>&1 || {
      echo "bootstrap: could not install a Java runtime; install Java 17 or 21 and rerun" >&2
      exit 1
    }
  else
    echo "bootstrap: Spark needs Java 17 or 21 on PATH (e.g. apt-get install default-jre-headless); continuing" >&2
  fi
fi

# The stamp holds one line per installed requirement file: a hash of that file and requirements.txt (which
# the others include), so a rerun with the same pins is instant and a changed file reinstalls.
stamp="$VENV_DIR/.requirements.sha256"
missing=()
for req in "${reqs[@]}"; do
  line="$(cat "$ROOT/requirements.txt" "$req" | sha256sum | cut -d' ' -f1) $(basename "$req")"
  grep -qxF "$line" "$stamp" 2>/dev/null || missing+=("$req")
done
# requirements-dev.txt includes requirements.txt: its stamp line implies the runtime one.
if [ "${missing[0]:-}" = "$ROOT/requirements.txt" ] && [ -f "$ROOT/requirements-dev.txt" ] &&
  grep -qxF "$(cat "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" | sha256sum | cut -d' ' -f1) requirements-dev.txt" \
    "$stamp" 2>/dev/null; then
  missing=("${missing[@]:1}")
fi
[ "${#missing[@]}" = 0 ] && exit 0
pip_log="$VENV_DIR/pip-install.log"
for req in "${missing[@]}"; do
  echo "bootstrap: installing $(basename "$req") into $VENV_DIR"
  if ! "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check --no-input -r "$req" >"$pip_log" 2>&1; then
    grep -v "^WARNING: Location" "$pip_log" | tail -n 30 >&2
    echo "bootstrap: pip could not install $(basename "$req") (log: $pip_log); fix the error above and rerun" >&2
    exit 1
  fi
  line="$(cat "$ROOT/requirements.txt" "$req" | sha256sum | cut -d' ' -f1) $(basename "$req")"
  { grep -v " $(basename "$req")\$" "$stamp" 2>/dev/null || true; echo "$line"; } > "$stamp.tmp"
  mv "$stamp.tmp" "$stamp"
done
