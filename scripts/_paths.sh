# Sourced by the scripts before they cd to the repo root: relative DATA_DIR / STATE_DIR mean relative to
# where the user ran the script, so make them absolute first.
# shellcheck shell=bash
for _var in DATA_DIR STATE_DIR; do
  if [ -n "${!_var:-}" ] && [ "${!_var#/}" = "${!_var}" ]; then
    export "$_var=$PWD/${!_var}"
  fi
done
unset _var
