# Sourced by the scripts that run our Python (after they set ROOT): relative DATA_DIR / STATE_DIR are made
# absolute against the folder the user ran the script from, the venv is set up (scripts/bootstrap.sh),
# and the working directory becomes the repo root.
# shellcheck shell=bash
export VENV_DIR="${VENV_DIR:-$ROOT/.venv}"
for _var in DATA_DIR STATE_DIR; do
  if [ -n "${!_var:-}" ] && [ "${!_var#/}" = "${!_var}" ]; then
    export "$_var=$PWD/${!_var}"
  fi
done
unset _var
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
