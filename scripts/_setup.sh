# Sourced by the scripts that run our Python (after they set ROOT): relative DATA_DIR / STATE_DIR are made
# absolute against the folder the user ran the script from, the venv is set up (scripts/bootstrap.sh; with
# DBT_TARGET=spark also the Spark requirements),
# and the working directory becomes the repo root.
# shellcheck shell=bash
export VENV_DIR="${VENV_DIR:-$ROOT/.venv}"
for _var in DATA_DIR STATE_DIR; do
  if [ -n "${!_var:-}" ] && [ "${!_var#/}" = "${!_var}" ]; then
    export "$_var=$PWD/${!_var}"
  fi
done
unset _var
# DBT_TARGET=spark also needs dbt-spark and pyspark (and Java): requirements-spark.txt.
if [ "${DBT_TARGET:-}" = spark ]; then
  "$ROOT/scripts/bootstrap.sh" --spark
else
  "$ROOT/scripts/bootstrap.sh"
fi
cd "$ROOT"
