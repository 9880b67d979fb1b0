#!/usr/bin/env bash
# Measure the job on a generated data set and print figures: validation throughput, the time of each step
# of a full run (seed, run, test, publish, docs), rows per second, peak memory. Uses a throwaway embedded
# Postgres (or DATABASE_URL) and a temporary STATE_DIR; your .state/ and data are not touched.
# Usage: scripts/benchmark.sh [--users N] [--experiments N] [--compounds N] [--rounds N] [--engine spark] ...
#   (defaults 100000 / 1000000 / 5000, 3 rounds; scripts/benchmark.sh --help lists every option and default)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/_setup.sh
source "$ROOT/scripts/_setup.sh"
case " $* " in  # --engine spark: the job on Spark (scripts/benchmark_spark.py) needs the Spark requirements
  *" --engine spark "* | *" --engine=spark "*) "$ROOT/scripts/bootstrap.sh" --spark ;;
esac
exec "$VENV_DIR/bin/python" "$ROOT/scripts/benchmark.py" "$@"
