from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from api.core.db.migrations import migrate
from api.core.job.steps import step_names
from api.core.runs import history, lock
from api.core.seeds import DataError, prepare_seeds
from api.main import create_app
from tests.conftest import LOCAL, run_cli, wait_for_run
from tests.datasets import set_cell

#: How each step's part of the log begins (api/core/job/steps.py writes these lines, or dbt's invocation line).
STEP_LOG_STARTS = {
    "seed": "preparing input files from ",
    "run": "$ dbt run",
    "test": "$ dbt test",
    "publish": "published schemas ",
    "docs": "$ dbt docs generate",
}


@pytest.mark.slow
def test_history_is_newest_first_and_paginated(client):
    ids = []
    for _ in range(2):
        ids.append(client.post("/trigger?wait=true").json()["run_id"])
    page = client.get("/runs").json()
    assert page["total"] == 2 and page["limit"] == 20 and page["offset"] == 0
    assert [r["run_id"] for r in page["items"]] == ids[::-1]
    assert [r["run_id"] for r in client.get("/runs?limit=1&offset=1").json()["items"]] == [ids[0]]
    assert client.get("/runs?limit=0").status_code == 422
    assert client.get("/runs/999999").status_code == 404
    assert client.get("/runs/999999/logs").status_code == 404
    assert client.get(f"/runs/{ids[0]}").json()["links"] == {
        "self": f"/runs/{ids[0]}",
        "logs": f"/runs/{ids[0]}/logs",
        "page": f"/run/{ids[0]}",
    }


@pytest.mark.slow
def test_runs_left_running_by_a_dead_process_are_marked_interrupted(settings, database):
    """A run row whose process died (nobody holds the run lock) is failed at the next start-up."""
    migrate(database)
    handle = lock.start_run(database, {"source": "test"}, step_names("default"))
    handle.update(status="running")
    handle.conn.close()  # the owner "dies": its connection, and so its lock, is gone
    with TestClient(create_app(settings), base_url=LOCAL) as client:
        run = client.get(f"/runs/{handle.run_id}").json()
        assert run["status"] == "failed" and run["error"].startswith("interrupted")
        assert run["finished_at"] is not None
        assert wait_for_run(client, client.post("/trigger").json()["run_id"])["status"] == "success"


@pytest.mark.slow
def test_history_survives_a_restart(settings, client):
    run_id = client.post("/trigger?wait=true").json()["run_id"]
    with TestClient(create_app(settings), base_url=LOCAL) as again:
        assert again.get(f"/runs/{run_id}").json()["status"] == "success"


def test_stopping_the_api_mid_run_records_the_run_as_interrupted(settings, database):
    with TestClient(create_app(settings), base_url=LOCAL) as client:
        run_id = client.post("/trigger").json()["run_id"]
        deadline = time.monotonic() + 120
        while client.get(f"/runs/{run_id}").json()["progress"] is None and time.monotonic() < deadline:
            time.sleep(0.1)
    # the lifespan shutdown stopped the run; its row says so
    row = history.get_run(database, run_id)
    assert row["status"] == "failed" and row["error"].startswith("interrupted: the API was stopped"), row["error"]
    assert [s["status"] for s in row["steps"]].count("failed") <= 1 and "running" not in {
        s["status"] for s in row["steps"]
    }


def test_a_direct_dbt_command_holding_the_lock_gets_a_clear_409(client, database):
    with lock.run_lock(database):
        answer = client.post("/trigger")
    assert answer.status_code == 409
    assert answer.json()["active_run_id"] is None and "scripts/dbt.sh" in answer.json()["detail"]
    assert client.get("/runs").json()["total"] == 0


def test_dbt_sh_refuses_to_write_while_an_api_run_holds_the_lock(settings, database):
    migrate(database)
    handle = lock.start_run(database, {"source": "test"}, step_names("default"))
    try:
        done = run_cli(settings, "dbt", "build")
    finally:
        handle.release()
    assert done.returncode == 1 and f"run {handle.run_id} is already in progress" in done.stderr, done.stderr


def test_cancel_request_is_recorded_once_and_refused_for_finished_or_unknown_runs(client, database):
    """The API side of cancel (the job's reaction is tested with the job): any process can ask."""
    handle = lock.start_run(
        database, {"source": "test"}, step_names("default")
    )  # an active run owned by "another process"
    try:
        first = client.post(f"/runs/{handle.run_id}/cancel", json={"reason": "wrong data"})
        assert first.status_code == 202, first.text
        body = first.json()
        assert body["status"] == "queued" and body["cancel_requested_at"]
        assert body["cancel_reason"] == "cancelled by API request from testclient: wrong data"
        again = client.post(f"/runs/{handle.run_id}/cancel").json()  # no body needed; the first reason stays
        assert (
            again["cancel_reason"] == body["cancel_reason"]
            and again["cancel_requested_at"] == body["cancel_requested_at"]
        )
    finally:
        handle.update(status="failed")
        handle.release()
    finished = client.post(f"/runs/{handle.run_id}/cancel")
    assert finished.status_code == 409 and "already finished (failed)" in finished.json()["detail"]
    assert client.post("/runs/999999/cancel").status_code == 404


FORGED = "2026-01-01 00:00:00 INFO api: run 1 succeeded"


@pytest.mark.slow
def test_a_cancel_reason_cannot_forge_a_log_line(client, caplog):
    """The attack: a newline in a cancel reason wrote a line of the sender's choosing into the API's log and the
    run's log. Control characters from the request are escaped: each stays one line."""
    run_id = client.post("/trigger").json()["run_id"]
    reason = f"stop\n{FORGED}\r\x1b[2J"
    with caplog.at_level("INFO"):
        answer = client.post(f"/runs/{run_id}/cancel", json={"reason": reason})
        assert answer.status_code == 202, answer.text
        run = wait_for_run(client, run_id)
    assert run["status"] == "cancelled"
    assert "stop\\n2026-01-01" in run["error"] and "\\x1b[2J" in run["error"], run["error"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "cancelling" in logged
    assert not [line for line in logged.splitlines() if line.startswith(FORGED)], logged
    run_log = client.get(f"/runs/{run_id}/logs").text
    assert not [line for line in run_log.splitlines() if line.startswith(FORGED)], run_log
    assert "\x1b" not in run_log


def test_status_check_of_an_old_database_is_upgraded(database):
    """A database created before 'cancelled' existed accepts it after the migrations."""
    with database.connect() as conn:
        conn.execute(
            "create schema ops; create table ops.runs (run_id bigint generated always as identity primary key,"
            " status text not null check (status in ('queued', 'running', 'success', 'failed')),"
            " trigger jsonb not null default '{}', created_at timestamptz not null default now(),"
            " started_at timestamptz, finished_at timestamptz, steps jsonb not null default '[]', progress jsonb,"
            " error text, failures jsonb, log_path text, dbt_pid integer, worker text)"
        )
        conn.commit()
    migrate(database)
    migrate(database)  # idempotent
    with database.connect() as conn:
        conn.execute("insert into ops.runs (status, cancel_reason) values ('cancelled', 'x')")


@pytest.mark.slow
def test_each_step_has_its_part_of_the_log(client):
    run = client.post("/trigger?wait=true").json()
    assert run["status"] == "success", run["error"]
    whole = client.get(f"/runs/{run['run_id']}/logs").text
    parts = {}
    for step in run["steps"]:
        answer = client.get(f"/runs/{run['run_id']}/logs", params={"step": step["name"]})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
        parts[step["name"]] = answer.text
        first_line = answer.text.split("\n", 1)[0]
        assert STEP_LOG_STARTS[step["name"]] in first_line, (step["name"], first_line)
    assert "".join(parts[s["name"]] for s in run["steps"]) == whole, "the steps' parts are the whole log, in order"
    assert [s["log_offset"] for s in run["steps"]] == sorted(s["log_offset"] for s in run["steps"])
    lines = parts["run"].splitlines(keepends=True)
    for n in (1, 3, len(lines), len(lines) + 5):
        tail = client.get(f"/runs/{run['run_id']}/logs", params={"step": "run", "tail": n})
        assert tail.text == "".join(lines[-n:]), n
    assert client.get(f"/runs/{run['run_id']}/logs?step=transfer").status_code == 404  # not a step of this run
    assert client.get(f"/runs/{run['run_id']}/logs?step=nope").status_code == 422


def test_a_rejected_input_is_recorded_problem_by_problem(client, settings, tmp_path):
    set_cell("users.csv", 3, "signup_date", "2021-02-30")(settings.data_dir)
    set_cell("users.csv", 5, "user_id", "x7")(settings.data_dir)
    set_cell("user_experiments.csv", 6, "experiment_compound_ids", "1:3")(settings.data_dir)
    with pytest.raises(DataError) as rejected:
        prepare_seeds(settings.data_dir, tmp_path / "out")
    run = client.post("/trigger?wait=true").json()
    assert run["status"] == "failed"
    expected = [
        {"file": p.file, "line": p.line, "column": p.column, "value": p.value, "key": p.key, "message": p.message}
        for p in rejected.value.problems
    ]
    assert run["input_problems"] == {"total": rejected.value.total, "items": expected}
    assert len(expected) >= 3 and {p["column"] for p in expected} >= {"signup_date", "user_id"}
    assert str(rejected.value) in run["error"], "the error text stays as it was"
    assert [s["status"] for s in run["steps"]] == ["failed", "skipped", "skipped", "skipped", "skipped"]
    assert client.get(f"/runs/{run['run_id']}/logs?step=run").status_code == 404  # skipped: no log of its own
    assert client.get(f"/runs/{run['run_id']}/logs?step=seed").text.startswith("preparing input files")
