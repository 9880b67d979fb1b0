"""The dbt project end to end: real dbt (through the CLI that scripts/dbt.sh calls) on a real Postgres, building
into the development schemas (raw__dev, ..., marts__dev) as scripts/dbt.sh does."""

from __future__ import annotations

import io
import json
import shutil

import pytest

from api.core.dbt.env import dbt_env
from api.core.dbt.failures import collect, summarize
from api.core.dbt.invoke import run_dbt
from tests.conftest import mart_rows, run_cli
from tests.datasets import copy_canonical, messy_variants, quoted_value_variants, random_dataset, set_cell
from tests.expected import CANONICAL, assert_rows_match, compute

pytestmark = pytest.mark.slow
#: Where scripts/dbt.sh builds the mart (the profile's dev target).
DEV = "marts__dev"


def build(settings) -> None:
    done = run_cli(settings, "dbt", "build")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "built into raw__dev, staging__dev, intermediate__dev, marts__dev" in done.stderr


def test_build_canonical_matches_the_issue(settings, database, tmp_path):
    build(settings)
    rows = mart_rows(database, DEV)
    assert len(rows) == 10
    for row in rows:
        name, n, share, avg_time, top, top_name, top_n, tied = CANONICAL[row["user_id"]]
        assert (row["name"], row["total_experiments"], row["most_common_compound_id"]) == (name, n, top)
        assert float(row["experiment_share"]) == pytest.approx(float(share), abs=1e-12)
        assert float(row["avg_experiment_run_time"]) == avg_time
        assert float(row["avg_experiments_per_user"]) == pytest.approx(1.1, abs=1e-12)
        assert row["most_common_compound_name"] == top_name
        assert row["most_common_compound_experiments"] == top_n
        assert row["tied_compound_ids"] == tied
    assert_rows_match(rows, compute(settings.data_dir, tmp_path / "expected"))
    # the raw seeds hold typed columns, loaded into the raw schema (raw__dev)
    with database.connect() as conn:
        types = dict(
            conn.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'raw__dev' and table_name = 'users'"
            ).fetchall()
        )
    assert types == {"user_id": "integer", "name": "text", "email": "text", "signup_date": "date"}


@pytest.mark.parametrize("variant", ["all_combined", "tabs_around_values", "cr_only"])
def test_messy_input_builds_the_same_mart(variant, settings, database, tmp_path):
    messy_variants()[variant](settings.data_dir)
    before = {p.name: p.read_bytes() for p in settings.data_dir.iterdir()}
    build(settings)
    assert_rows_match(mart_rows(database, DEV), compute(copy_canonical(tmp_path / "clean"), tmp_path / "expected"))
    assert {p.name: p.read_bytes() for p in settings.data_dir.iterdir()} == before, "user files must not change"


def test_quoted_fields_with_commas_and_newlines_load(settings, database):
    mutate, names = quoted_value_variants()["quoted_fields_messy"]
    mutate(settings.data_dir)
    build(settings)
    with database.connect() as conn:
        loaded = dict(conn.execute("select compound_id, compound_name from raw__dev.compounds").fetchall())
    assert loaded == names


@pytest.mark.parametrize("seed", [7, 2024])
def test_unseen_data_sets_are_computed_correctly(seed, settings, database, tmp_path):
    shutil.rmtree(settings.data_dir)
    random_dataset(settings.data_dir, seed)
    build(settings)
    rows = mart_rows(database, DEV)
    assert any(r["total_experiments"] == 0 for r in rows), "the data set should include users without experiments"
    assert_rows_match(rows, compute(settings.data_dir, tmp_path / "expected"))


@pytest.mark.parametrize(
    ("value", "needle"),
    [("1:3", "'1:3'"), ("1;;2", "'1;;2'"), ("x", "'x'")],
)
def test_bad_compound_list_fails_naming_the_experiment(value, needle, settings, database):
    build(settings)
    good = mart_rows(database, DEV)
    set_cell("user_experiments.csv", 6, "experiment_compound_ids", value)(settings.data_dir)
    done = run_cli(settings, "dbt", "build")
    assert done.returncode == 1
    assert "user_experiments.csv, line 6 (experiment_id 5)" in done.stderr and needle in done.stderr
    assert mart_rows(database, DEV) == good, "a rejected input must not touch the mart"


def test_dbt_tests_catch_a_malformed_list_that_skipped_validation(settings, database, tmp_path):
    """Defence in depth: data loaded without the Python validator still fails a dbt test (not a cast in a
    model), and the failing rows, kept in the audit schema, name the experiment."""
    seeds = copy_canonical(tmp_path / "unvalidated")
    set_cell("user_experiments.csv", 6, "experiment_compound_ids", "1:3")(seeds)
    env = dbt_env(settings, database, seeds_dir=seeds, suffix="__t")
    log = io.StringIO()
    target = tmp_path / "target"
    for command in (["seed"], ["run"]):
        assert run_dbt(command, env=env, target_path=target, log=log).ok, log.getvalue()[-3000:]
    result = run_dbt(["test"], env=env, target_path=target, log=log)
    assert result.exit_code == 1
    with database.connect() as conn:
        failures = collect(result, conn)
    text = summarize("test", result, failures)
    assert "experiment 5" in text and "1:3" in text, text
    assert any(f["relation"] and f["relation"].startswith('"') and "audit" in f["relation"] for f in failures)
    rows = mart_rows(database, "marts__t")
    assert len(rows) == 10  # the models themselves did not crash


def test_docs_generate_describes_every_column(settings, database):
    build(settings)
    done = run_cli(settings, "dbt", "docs", "generate")
    assert done.returncode == 0, done.stdout[-2000:]
    target = settings.state_dir / "cli" / "target"
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert {"stg_lab__users", "int_experiment_compounds_unnested", "user_features"} <= set(models)
    for node in models.values():
        assert node["description"], f"model {node['name']} has no description"
        assert node["columns"], f"model {node['name']} documents no columns"
        for col in node["columns"].values():
            assert col["description"], f"{node['name']}.{col['name']} has no description"
    mart_columns = catalog["nodes"]["model.features_mart.user_features"]["columns"]
    assert set(mart_columns) == set(models["user_features"]["columns"])
    assert manifest["parent_map"]["model.features_mart.user_features"], "lineage is missing"
