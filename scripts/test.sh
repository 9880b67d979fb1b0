#!/usr/bin/env bash
# Set up as run.sh does (plus the pinned test tools) and run every check: ruff, hadolint and the compose
# schema, sqlfluff on the dbt models, then pytest, whose integration tests run the real dbt and the real API
# against a real Postgres: TEST_DATABASE_URL if set, else an embedded one started (and stopped) here.
# pytest includes schemathesis (tests/api/test_schemathesis.py): every OpenAPI operation fuzzed against the
# served API, with and without the token; no 5xx, every answer matching its schema.
# Then the spark tier: the tests marked `spark` (scripts/bootstrap.sh --spark first; skipped only without Java),
# then the clients tier: dbt Cloud's real clients over HTTPS, each in its own venv (tests/clients/; skipped with
# SKIP_CLIENT_TESTS=1), and the docker tier: the tests marked `docker` on a real Docker engine (scripts/docker-test.sh: it starts one
# when it can, builds stand-in base images when they cannot be pulled, and removes what it started; skipped only
# when no engine runs and none can be started, or with SKIP_DOCKER_TESTS=1).
# Extra arguments go to pytest, e.g. scripts/test.sh -k trigger -x
# scripts/test.sh --fast [pytest args]: the inner loop, the same lint and the tests not marked `slow` (unit
# tests and the quick API tests; no browser, no subprocess scripts, no fault injection), no spark, clients or docker
# tier.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fast=0
if [ "${1:-}" = "--fast" ]; then
  fast=1
  shift
fi
export VENV_DIR="${VENV_DIR:-$ROOT/.venv}"
"$ROOT/scripts/bootstrap.sh" --dev
export PATH="$VENV_DIR/bin:$PATH" DBT_SEND_ANONYMOUS_USAGE_STATS=false
cd "$ROOT"

echo "test: ruff (lint + format)"
ruff check .
ruff format --check .

if [ "$fast" = 0 ] && ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test: installing chromium from Debian's packages (the docs-site browser test renders with it)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
    >/dev/null 2>&1 || echo "test: could not install chromium: the browser check of the docs site is skipped" >&2
fi

echo "test: Dockerfile and compose file (static)"
scripts/lint-docker.sh

# pytest's temporary folders: this run's own, not the shared /tmp/pytest-of-<user>, which every pytest session
# on the machine prunes and resets to 0700 (locking the embedded Postgres's OS user out of another session's
# servers). 0755 so that user can reach the data directories the tests make. A --basetemp given here wins.
PYTEST_TMP="$(mktemp -d "${TMPDIR:-/tmp}/features-mart-pytest.XXXXXX")"
chmod 755 "$PYTEST_TMP"
export PYTEST_ADDOPTS="--basetemp=$PYTEST_TMP/tmp ${PYTEST_ADDOPTS:-}"
TEST_STATE=""
cleanup() {
  if [ -n "$TEST_STATE" ]; then
    STATE_DIR="$TEST_STATE" python -m api.cli db stop >/dev/null 2>&1 || true
    rm -rf "$TEST_STATE"
  fi
  rm -rf "$PYTEST_TMP"
}
trap cleanup EXIT

if [ -z "${TEST_DATABASE_URL:-}" ]; then
  TEST_STATE="$(mktemp -d "${TMPDIR:-/tmp}/features-mart-test.XXXXXX")"
  echo "test: starting an embedded Postgres for the tests in $TEST_STATE"
  env -u DATABASE_URL STATE_DIR="$TEST_STATE" python -m api.cli db start
  # the superuser's URL: the tests make a database each, owned by a role that is not one (tests/conftest.py)
  TEST_DATABASE_URL="$(env -u DATABASE_URL STATE_DIR="$TEST_STATE" python -m api.cli db url --admin)"
  export TEST_DATABASE_URL
  eval "$(env -u DATABASE_URL STATE_DIR="$TEST_STATE" python -m api.cli env)"  # dbt's environment, as the app role
else
  eval "$(DATABASE_URL="$TEST_DATABASE_URL" python -m api.cli env)"  # dbt's environment (api/core/dbt/env.py)
fi

echo "test: sqlfluff (dbt templater) on dbt_project"
lint_tmp="$(mktemp -d)"
if ! DBT_TARGET_PATH="$lint_tmp/target" DBT_LOG_PATH="$lint_tmp/logs" \
    sqlfluff lint dbt_project/models dbt_project/tests --disable-progress-bar >"$lint_tmp/out" 2>&1; then
  tail -n 60 "$lint_tmp/out" >&2
  echo "test: sqlfluff found problems (see above; 'sqlfluff fix dbt_project/models' fixes most)" >&2
  exit 1
fi
rm -rf "$lint_tmp"

if [ "$fast" = 1 ]; then
  echo "test: pytest, the fast tier (not slow, not spark, clients or docker; scripts/test.sh runs everything)"
  pytest -m "not slow and not spark and not docker and not clients" "$@"
  exit 0
fi
echo "test: pytest"
pytest -m "not spark and not docker and not clients" "$@"

# The Spark tier (DBT_TARGET=spark): on by default; skipped, saying so, only when Java is missing.
if [ "${SKIP_SPARK_TESTS:-}" = 1 ]; then
  echo "test: spark tier skipped (SKIP_SPARK_TESTS=1)"
elif ! command -v java >/dev/null 2>&1 && ! { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }; then
  echo "test: SKIPPED the spark tier: Java is missing (install Java 17 or 21, e.g. apt-get install default-jre-headless)" >&2
else
  echo "test: spark tier (dbt-spark in local mode: in-process builds, one API run, killed seeds; then a standalone cluster)"
  "$ROOT/scripts/bootstrap.sh" --spark
  if command -v java >/dev/null 2>&1; then
    pytest -m spark "$@" || [ $? = 5 ]  # 5: the arguments selected no spark test
  else
    echo "test: SKIPPED the spark tier: Java could not be installed (install Java 17 or 21)" >&2
  fi
fi

# The clients tier: dbt Cloud's real clients (dbt-cloud-cli, Airflow's provider) over HTTPS, each in a venv of its
# own made from tests/clients/requirements-*.txt and cached in CLIENT_VENVS_DIR (default .clients/).
if [ "${SKIP_CLIENT_TESTS:-}" = 1 ]; then
  echo "test: clients tier skipped (SKIP_CLIENT_TESTS=1)"
else
  echo "test: clients tier (dbt-cloud-cli, Airflow's dbt Cloud provider over HTTPS; venvs in ${CLIENT_VENVS_DIR:-.clients/})"
  started=$SECONDS
  rc=0
  pytest -m clients "$@" || rc=$?
  echo "test: clients tier took $((SECONDS - started)) s"
  [ "$rc" = 0 ] || [ "$rc" = 5 ] || exit "$rc"  # 5: the arguments selected no clients test
fi

# The Docker tier: on when a Docker engine runs or can be started; it says why when it skips.
if [ "${SKIP_DOCKER_TESTS:-}" = 1 ]; then
  echo "test: docker tier skipped (SKIP_DOCKER_TESTS=1)"
else
  echo "test: docker tier (the image and the README's Docker section on a real engine: scripts/docker-test.sh)"
  "$ROOT/scripts/docker-test.sh" "$@"
fi
