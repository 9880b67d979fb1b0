"""scripts/dbt.sh as users call it: from any folder, with relative DATA_DIR / STATE_DIR, on messy and bad data."""

from __future__ import annotations

import subprocess

import pytest

from api.config import REPO_ROOT
from tests.conftest import python_env
from tests.datasets import copy_canonical, messy_variants, set_cell


def dbt_sh(settings, cwd, *args, **env):
    return subprocess.run(
        [str(REPO_ROOT / "scripts" / "dbt.sh"), *args],
        cwd=cwd,
        env=python_env(settings, **env),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_dbt_sh_build_with_relative_paths_and_messy_input(settings, tmp_path):
    data = copy_canonical(tmp_path / "my-data")
    messy_variants()["all_combined"](data)
    done = dbt_sh(settings, tmp_path, "build", DATA_DIR="my-data", STATE_DIR="my-state")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"input {data} ok" in done.stdout
    assert "dbt.sh: built into raw, staging, intermediate, marts on postgresql://" in done.stdout
    assert (tmp_path / "my-state" / "cli" / "target" / "manifest.json").is_file()


def test_dbt_sh_bad_input_names_the_experiment(settings, tmp_path):
    set_cell("user_experiments.csv", 6, "experiment_compound_ids", "1;;2")(settings.data_dir)
    done = dbt_sh(settings, tmp_path, "build")
    assert done.returncode == 1
    assert "user_experiments.csv, line 6 (experiment_id 5): experiment_compound_ids '1;;2'" in done.stderr


@pytest.mark.spark
def test_dbt_sh_on_spark_selects_the_spark_target_without_postgres_for_reading_commands(settings, tmp_path):
    """DBT_TARGET=spark picks the profile's spark target; `ls` (no writes, no Spark session needed) starts no
    Postgres, and bad input is refused by the same validation as on Postgres."""
    state = tmp_path / "state"
    # DATABASE_URL unset: were Postgres needed, an embedded one would start in state/pg
    spark = {"DBT_TARGET": "spark", "STATE_DIR": str(state), "DATABASE_URL": ""}
    done = dbt_sh(settings, tmp_path, "ls", "--resource-type", "seed", **spark)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"on Spark (local[*], in {state / 'spark'})" in done.stdout
    assert "features_mart.users" in done.stdout and "target='spark'" not in done.stderr
    assert not (state / "pg").exists(), "a reading command on Spark must not start Postgres"
    manifest = (state / "cli" / "target" / "manifest.json").read_text()
    assert '"adapter_type": "spark"' in manifest

    set_cell("user_experiments.csv", 6, "experiment_compound_ids", "1:3")(settings.data_dir)
    done = dbt_sh(settings, tmp_path, "build", DBT_TARGET="spark", STATE_DIR=str(state))
    assert done.returncode == 1
    assert "user_experiments.csv, line 6 (experiment_id 5): experiment_compound_ids '1:3'" in done.stderr
