#!/usr/bin/env bash
# Create the virtualenv ($VENV_DIR, default .venv) and install the pinned requirements into it, then the
# project's dbt adapter plugin (dbt_project/adapter, package dbt-pgcopy: seeds by COPY).
# Skips an install when the venv already holds exactly these pins and this adapter (stamp file), so reruns
# are instant.
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
pip_log="$VENV_DIR/pip-install.log"
for req in ${missing[@]+"${missing[@]}"}; do
  echo "bootstrap: installing $(basename "$req") into $VENV_DIR (a first install takes a few minutes)"
  # pip's own progress, one line per package it fetches; its whole output goes to the log
  if ! "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check --no-input --progress-bar off -r "$req" 2>&1 |
      tee "$pip_log" | sed -un -e 's/^Collecting \([^ ]*\).*/bootstrap:   collecting \1/p' \
        -e 's/^Installing collected packages.*/bootstrap:   installing the collected packages/p'; then
    grep -v "^WARNING: Location" "$pip_log" | tail -n 30 >&2
    echo "bootstrap: pip could not install $(basename "$req") (log: $pip_log); fix the error above and rerun" >&2
    exit 1
  fi
  line="$(cat "$ROOT/requirements.txt" "$req" | sha256sum | cut -d' ' -f1) $(basename "$req")"
  { grep -v " $(basename "$req")\$" "$stamp" 2>/dev/null || true; echo "$line"; } > "$stamp.tmp"
  mv "$stamp.tmp" "$stamp"
done

# The adapter plugin, from its folder (a copy, so the build leaves nothing in the source tree); reinstalled when
# any of its files changes.
adapter="$ROOT/dbt_project/adapter"
line="$(cd "$adapter" && find . -type f ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum \
  | sha256sum | cut -d' ' -f1) dbt-pgcopy"
if ! grep -qxF "$line" "$stamp" 2>/dev/null; then
  echo "bootstrap: installing the dbt adapter plugin dbt-pgcopy (dbt_project/adapter) into $VENV_DIR"
  build="$(mktemp -d "${TMPDIR:-/tmp}/dbt-pgcopy.XXXXXX")"
  cp -R "$adapter" "$build/dbt-pgcopy"
  find "$build" -name __pycache__ -prune -exec rm -rf {} +
  if ! "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check --no-input --no-deps \
      "$build/dbt-pgcopy" >"$pip_log" 2>&1; then
    grep -v "^WARNING: Location" "$pip_log" | tail -n 30 >&2
    rm -rf "$build"
    echo "bootstrap: pip could not install dbt_project/adapter (log: $pip_log); fix the error above and rerun" >&2
    exit 1
  fi
  rm -rf "$build"
  { grep -v " dbt-pgcopy\$" "$stamp" 2>/dev/null || true; echo "$line"; } > "$stamp.tmp"
  mv "$stamp.tmp" "$stamp"
fi
