"""scripts/dbt.sh as users call it: from any folder, with relative DATA_DIR / STATE_DIR, on messy and bad data."""

from __future__ import annotations

import subprocess

import pytest

from api.config import REPO_ROOT
from api.core.db.database import Database
from api.core.runs import lock
from tests.conftest import loose_modes, python_env, wait_until
from tests.datasets import copy_canonical, messy_variants, set_cell

pytestmark = pytest.mark.slow


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
    assert f"input {data} ok" in done.stderr
    assert "dbt.sh: built into raw__dev, staging__dev, intermediate__dev, marts__dev on postgresql://" in done.stderr
    assert (tmp_path / "my-state" / "cli" / "target" / "manifest.json").is_file()
    # the normalised CSV copies (personal data), the log and dbt's target: this account only
    assert (tmp_path / "my-state" / "cli" / "seeds" / "users.csv").is_file()
    assert not loose_modes(tmp_path / "my-state")


def test_a_writing_command_takes_the_run_lock_whatever_options_precede_it(settings, tmp_path):
    with lock.run_lock(Database(settings.database_url.get_secret_value())):
        for args in (
            ["--debug", "build"],
            ["--log-level", "debug", "seed"],
            ["-t", "default", "--no-partial-parse", "run"],
        ):
            done = dbt_sh(settings, tmp_path, *args)
            assert done.returncode == 1 and "try again when it has finished" in done.stderr, (args, done.stderr[-2000:])
        done = dbt_sh(settings, tmp_path, "--log-level", "warn", "ls", "--select", "user_features")
        assert done.returncode == 0, done.stderr[-2000:]  # a reading command needs no lock


def test_dbt_sh_bad_input_names_the_experiment(settings, tmp_path):
    set_cell("user_experiments.csv", 6, "experiment_compound_ids", "1;;2")(settings.data_dir)
    done = dbt_sh(settings, tmp_path, "build")
    assert done.returncode == 1
    assert "user_experiments.csv, line 6 (experiment_id 5): experiment_compound_ids '1;;2'" in done.stderr


def test_the_embedded_postgres_stops_only_when_its_last_user_exits(settings, tmp_path, pg_tmp):
    """The API and scripts/dbt.sh share one embedded Postgres (same STATE_DIR, no DATABASE_URL): dbt.sh ending
    leaves it to the API; the API ending stops it; one orphaned by a SIGKILLed API is adopted by the next user
    and stopped when that one ends."""
    from api.core.db.embedded import EmbeddedPostgres
    from tests.reliability.conftest import ApiServer

    embedded = settings.model_copy(update={"database_url": None, "state_dir": pg_tmp / "state"})
    postgres = EmbeddedPostgres(embedded.state_dir)
    # dbt.sh starts it, for a query that lasts; the API reuses it meanwhile
    slow = subprocess.Popen(
        [str(REPO_ROOT / "scripts" / "dbt.sh"), "show", "--inline", "select pg_sleep(15) as slept"],
        cwd=tmp_path, env=python_env(embedded), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: postgres.running_port(), 120, "dbt.sh to start the embedded Postgres")
        api = ApiServer(embedded, tmp_path / "api.log").start()
        overlapped = slow.poll() is None
    finally:
        output, _ = slow.communicate(timeout=300)
    try:
        assert slow.returncode == 0, output[-2000:]
        assert overlapped, "dbt.sh ended before the API was up: the test proved nothing (machine too slow?)"
        assert api.client.get("/health").json() == {"status": "ok", "database": "ok"}, "dbt.sh stopped it"
        done = dbt_sh(embedded, tmp_path, "ls", "--select", "user_features")
        assert done.returncode == 0, done.stderr[-2000:]
        assert api.client.get("/health").json() == {"status": "ok", "database": "ok"}, "dbt.sh stopped it"
    finally:
        api.stop()
    assert postgres.running_port() is None, "the API was its last user"

    api = ApiServer(embedded, tmp_path / "api-2.log").start()
    try:
        port = postgres.running_port()
    finally:
        api.kill()
    assert postgres.running_port() == port, "orphaned, still running"
    done = dbt_sh(embedded, tmp_path, "ls", "--select", "user_features")
    assert done.returncode == 0, done.stderr[-2000:]
    assert postgres.running_port() is None, "adopted by dbt.sh and stopped when it ended"


@pytest.mark.spark
def test_dbt_sh_on_spark_selects_the_spark_target_without_postgres_for_reading_commands(settings, tmp_path):
    """DBT_TARGET=spark picks the profile's spark target; `ls` (no writes, no Spark session needed) starts no
    Postgres, and bad input is refused by the same validation as on Postgres."""
    state = tmp_path / "state"
    # DATABASE_URL unset: were Postgres needed, an embedded one would start in state/pg
    spark = {"DBT_TARGET": "spark", "STATE_DIR": str(state), "DATABASE_URL": ""}
    done = dbt_sh(settings, tmp_path, "ls", "--resource-type", "seed", **spark)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"on Spark (local[*], warehouse {state / 'spark' / 'warehouse'})" in done.stderr
    assert (state / "spark" / "shared" / "cli" / "seeds" / "users.csv").exists(), "the input is where executors see it"
    assert "features_mart.users" in done.stdout and "target='spark'" not in done.stderr
    assert not (state / "pg").exists(), "a reading command on Spark must not start Postgres"
    manifest = (state / "cli" / "target" / "manifest.json").read_text()
    assert '"adapter_type": "spark"' in manifest

    set_cell("user_experiments.csv", 6, "experiment_compound_ids", "1:3")(settings.data_dir)
    done = dbt_sh(settings, tmp_path, "build", DBT_TARGET="spark", STATE_DIR=str(state))
    assert done.returncode == 1
    assert "user_experiments.csv, line 6 (experiment_id 5): experiment_compound_ids '1:3'" in done.stderr


def test_dbt_sh_build_never_replaces_the_mart_the_api_serves_and_publish_is_a_recorded_run(settings, database):
    """The issue's case: `scripts/dbt.sh build` on other input while the API serves. It builds into marts__dev;
    the API's mart and its run id stay. `build --publish` is a run like an API one (trigger source `cli`), which
    the API serves and lists."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from tests.conftest import LOCAL, mart_rows

    with TestClient(create_app(settings), base_url=LOCAL) as api:
        done = dbt_sh(settings, REPO_ROOT, "build", "--publish")
        assert done.returncode == 0, done.stderr[-3000:]
        first = api.get("/features", params={"limit": 100})
        assert first.status_code == 200 and first.json()["total"] == 10
        run_id = int(first.headers["X-Mart-Run-Id"])
        run = api.get(f"/runs/{run_id}").json()
        assert run["status"] == "success" and run["trigger"]["source"] == "cli", run
        assert run["trigger"]["command"] == "scripts/dbt.sh build --publish"
        assert f"run {run_id} success: published raw, staging, intermediate, marts" in done.stderr
        assert_published_tables_carry_dbts_descriptions(settings, database, run_id)

        with open(settings.data_dir / "users.csv", "a") as users:  # an 11th user, without experiments
            users.write("11,Zed,zed@example.com,2024-01-01\n")
        done = dbt_sh(settings, REPO_ROOT, "build")
        assert done.returncode == 0, done.stderr[-3000:]
        assert len(mart_rows(database, "marts__dev")) == 11
        again = api.get("/features", params={"limit": 100})
        assert again.json()["total"] == 10 and again.headers["X-Mart-Run-Id"] == str(run_id), "replaced behind its back"
        assert api.get("/runs").json()["total"] == 1

        done = dbt_sh(settings, REPO_ROOT, "build", "--publish")
        assert done.returncode == 0, done.stderr[-3000:]
        last = api.get("/features", params={"limit": 100})
        assert last.json()["total"] == 11 and int(last.headers["X-Mart-Run-Id"]) > run_id
        assert [r["trigger"]["source"] for r in api.get("/runs").json()["items"]] == ["cli", "cli"]


def test_dbt_sh_publish_refuses_while_a_run_is_active_and_takes_no_dbt_arguments(settings, database):
    from api.core.db.migrations import migrate
    from api.core.job.steps import step_names

    migrate(database)
    handle = lock.start_run(database, {"source": "test"}, step_names("default"))
    try:
        done = dbt_sh(settings, REPO_ROOT, "build", "--publish")
    finally:
        handle.release()
    assert done.returncode == 1 and f"run {handle.run_id} is already in progress" in done.stderr, done.stderr
    done = dbt_sh(settings, REPO_ROOT, "build", "--publish", "--select", "user_features")
    assert done.returncode == 2 and "takes no dbt arguments" in done.stderr


def test_dbt_sh_output_is_fit_for_pipes(settings, tmp_path):
    """dbt.sh's own lines go to stderr; with -q, `ls` and `show` with `--output json` leave only JSON on stdout,
    as plain dbt does (`scripts/dbt.sh -q show ... --output json | python3 -m json.tool`)."""
    import json

    listed = dbt_sh(settings, tmp_path, "-q", "ls", "--resource-type", "model", "--output", "json")
    assert listed.returncode == 0, listed.stderr[-2000:]
    names = {json.loads(line)["name"] for line in listed.stdout.splitlines()}
    assert {"user_features", "stg_lab__users"} <= names
    assert "dbt.sh: input" in listed.stderr
    assert dbt_sh(settings, tmp_path, "build", "--select", "+user_features").returncode == 0
    shown = dbt_sh(settings, tmp_path, "-q", "show", "--select", "user_features", "--limit", "3", "--output", "json")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert [row["user_id"] for row in json.loads(shown.stdout)["show"]] == [1, 2, 3]


def assert_published_tables_carry_dbts_descriptions(settings, database, run_id: int) -> None:
    """persist_docs: every table, view and column of the published schemas has dbt's description as its comment
    (what `\\d+ marts.user_features` shows); the mart's ends with the line naming the publishing run."""
    import json

    from api.core.job.files import build_dir

    manifest = json.loads((build_dir(settings) / "docs" / "manifest.json").read_text())  # the docs step's
    wrong = []
    with database.connect() as conn:
        for node in manifest["nodes"].values():
            if node["resource_type"] not in ("model", "seed"):
                continue
            relation = f"{node['schema']}.{node['name']}"
            comment = conn.execute("select obj_description(%s::regclass, 'pg_class')", (relation,)).fetchone()[0]
            if not (comment or "").startswith(node["description"].strip()):
                wrong.append(f"{relation}: {comment!r}")
            for column in node["columns"].values():
                found = conn.execute(
                    "select col_description(%s::regclass, attnum) from pg_attribute "
                    "where attrelid = %s::regclass and attname = %s",
                    (relation, relation, column["name"]),
                ).fetchone()
                if not found or (found[0] or "").strip() != column["description"].strip():
                    wrong.append(f"{relation}.{column['name']}: {found}")
        mart = conn.execute("select obj_description('marts.user_features'::regclass, 'pg_class')").fetchone()[0]
    assert not wrong, wrong
    assert mart.endswith(f"\n\npublished by features-mart run {run_id}"), mart
