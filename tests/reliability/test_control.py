"""Run control: cancel (from another API process too), RUN_TIMEOUT, SIGTERM during a `?wait=true` request, and a
full disk under the run's log. Each time the outcome is recorded, dbt is gone, and the published mart is intact."""

from __future__ import annotations

import os
import signal
import threading

import httpx
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from api.core.runs import history
from api.main import create_app
from tests.conftest import LOCAL, wait_for_run, wait_until
from tests.datasets import set_cell
from tests.reliability.conftest import (
    build_schemas,
    dbt_blocked_on,
    dump_published,
    pid_alive,
    publish_quickly,
    run_row,
    trigger,
    trigger_and_wait,
)

pytestmark = pytest.mark.slow

#: A table dbt reads early in the run step: holding a lock on it keeps dbt waiting mid-statement.
BLOCKED_TABLE = "raw__build.users"
#: What the API logs when dbt ignored SIGINT for the whole grace period and was killed.
ESCALATED = "did not stop within"
#: What uvicorn logs when an open request outlived its graceful shutdown.
GRACE_EXCEEDED = "timeout graceful shutdown exceeded"


def active_run(db) -> int | None:
    rows, _ = history.list_runs(db, 1, 0)
    return rows[0]["run_id"] if rows and rows[0]["status"] in history.ACTIVE else None


def dbt_queries(db) -> int:
    """Statements of dbt's connections still in the database (a cancel must cancel them, not orphan them)."""
    with db.connect() as conn:
        return conn.execute(
            "select count(*) from pg_stat_activity where application_name = 'dbt' and state = 'active'"
        ).fetchone()[0]


def test_cancel_from_another_api_process_stops_dbt_and_keeps_the_mart(serve, settings, database, tmp_path):
    publish_quickly(settings)
    published = dump_published(database)
    runner_api, other_api = serve(), serve(STATE_DIR=str(tmp_path / "other-state"))

    run_id = trigger(runner_api.client)
    with dbt_blocked_on(database, run_id, "run", BLOCKED_TABLE) as pid:
        serve.watch_dbt(pid)
        response = other_api.client.post(f"/runs/{run_id}/cancel")
        assert response.status_code == 202, response.text
        assert response.json()["cancel_requested_at"] is not None
        wait_until(lambda: not pid_alive(pid), 60, "dbt, stuck on a lock, to stop on the cancel")
    run = wait_for_run(other_api.client, run_id, timeout=60)
    # SIGINT alone stopped it: the SIGKILL that follows a grace period (api/core/job/control.py) never came
    assert ESCALATED not in runner_api.log_tail(200_000), runner_api.log_tail()
    assert run["status"] == "cancelled", run
    assert run["error"].startswith("cancelled by API request from 127.0.0.1"), run["error"]
    assert [s["status"] for s in run["steps"]] == ["success", "cancelled", "skipped", "skipped", "skipped"]
    assert dbt_queries(database) == 0, "dbt's queries must be cancelled with it"
    assert build_schemas(database) == [], "a cancelled run drops its build schemas"
    assert dump_published(database) == published

    again = other_api.client.post(f"/runs/{run_id}/cancel")
    assert again.status_code == 409 and "already finished (cancelled)" in again.json()["detail"]
    assert other_api.client.post("/runs/999999/cancel").status_code == 404
    assert trigger_and_wait(runner_api.client)["status"] == "success", "the next run must work"


def test_run_timeout_cancels_the_run(settings, database):
    publish_quickly(settings)
    published = dump_published(database)
    # A reader holds an audit table that the test step must replace: the run cannot end before RUN_TIMEOUT,
    # however fast the machine, so it is cancelled mid-way.
    with database.connect(autocommit=False) as reader:
        audit = reader.execute("select tablename from pg_tables where schemaname = 'audit' limit 1").fetchone()
        assert audit, "dbt build keeps its tests' failing rows in audit tables"
        reader.execute(sql.SQL("select * from {} limit 1").format(sql.Identifier("audit", audit[0])))
        with TestClient(create_app(settings.model_copy(update={"run_timeout": 1})), base_url=LOCAL) as client:
            run = wait_for_run(client, trigger(client), timeout=120)
    assert run["status"] == "cancelled", run
    assert run["error"].startswith("timed out after 1 s (RUN_TIMEOUT)"), run["error"]
    assert [s["status"] for s in run["steps"]][-2:] == ["skipped", "skipped"], "nothing was published"
    assert dump_published(database) == published
    assert build_schemas(database) == []


def test_sigterm_during_a_waiting_request_stops_and_records_the_run(serve, settings, database):
    publish_quickly(settings)
    published = dump_published(database)
    api = serve()
    answers: list[httpx.Response | Exception] = []

    def wait_request() -> None:
        try:
            answers.append(httpx.post(f"{api.base_url}/trigger", params={"wait": "true"}, timeout=120))
        except httpx.HTTPError as exc:
            answers.append(exc)

    waiter = threading.Thread(target=wait_request)
    waiter.start()
    run_id = wait_until(lambda: active_run(database), 30, "the run to start")
    with dbt_blocked_on(database, run_id, "run", BLOCKED_TABLE) as pid:
        serve.watch_dbt(pid)
        os.kill(api.proc.pid, signal.SIGTERM)
        api.proc.wait(timeout=60)
    waiter.join(timeout=60)
    # it stopped the run at once, not after uvicorn gave up waiting for the open request
    assert GRACE_EXCEEDED not in api.log_tail(200_000), api.log_tail()
    assert not pid_alive(pid)
    row = run_row(database, run_id)
    assert row["status"] == "failed" and row["error"].startswith("interrupted: the API was stopped"), row
    assert dump_published(database) == published
    assert answers and isinstance(answers[0], httpx.Response) and answers[0].status_code == 200, answers


def test_a_full_disk_under_the_log_does_not_lose_the_outcome(client, settings, database):
    publish_quickly(settings)
    published = dump_published(database)
    set_cell("users.csv", 2, "signup_date", "2023-02-30")(settings.data_dir)  # a failing run: the error path
    next_id = 1  # the first run through the API (publish_quickly used scripts/dbt.sh)
    log_dir = settings.state_dir / "runs" / str(next_id)
    log_dir.mkdir(parents=True)
    (log_dir / "dbt.log").symlink_to("/dev/full")  # every write: ENOSPC, "No space left on device"

    run = trigger_and_wait(client)
    assert run["run_id"] == next_id
    assert run["status"] == "failed", run
    assert "signup_date" in run["error"] and "2023-02-30" in run["error"], run["error"]
    assert build_schemas(database) == []
    assert dump_published(database) == published
