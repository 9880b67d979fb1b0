"""Faults in the middle of a run: dbt killed, the API process killed, Postgres restarted. Each time the run
ends `failed` (recorded by the run itself, or as "interrupted" when its process died), the published schemas
are byte for byte what they were, only the failed run's build schemas are left (for a retry), and the next
trigger succeeds and leaves none."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg.rows import dict_row
from pydantic import SecretStr

from api.core.db.database import Database
from api.core.db.embedded import EmbeddedPostgres
from api.core.mart import publish
from api.core.runs import history
from tests.conftest import free_port, mart_rows, wait_for_run, wait_until
from tests.expected import assert_rows_match, compute
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

#: A table of run N that dbt reads early in each step; holding a lock on it keeps dbt mid-statement.
BLOCKED_ON = {"run": "raw__build.users", "test": "marts__build.user_features"}


def assert_failed_in(run: dict, step: str) -> None:
    """The run failed in `step`: earlier steps passed, that one failed, later ones were skipped."""
    assert run["status"] == "failed", run
    names = [s["name"] for s in run["steps"]]
    at = names.index(step)
    expected = ["success"] * at + ["failed"] + ["skipped"] * (len(names) - at - 1)
    assert [s["status"] for s in run["steps"]] == expected, run["steps"]


def assert_kept_for_retry(schemas: list[str]) -> None:
    """A run that failed in `run` or `test` leaves its build schemas for a retry (api/core/job/retry.py), and
    nothing else: no other run's schemas, no half-published ones. The next run drops them (assert_recovers)."""
    assert schemas and set(schemas) <= {f"{s}{publish.BUILD_SUFFIX}" for s in publish.BUILD_SCHEMAS}, schemas


def assert_recovers(client, db: Database, data_dir: Path, scratch: Path) -> None:
    """The next trigger succeeds and publishes the right mart, leaving no build schema behind."""
    run = trigger_and_wait(client)
    assert run["status"] == "success", run["error"]
    assert_rows_match(mart_rows(db), compute(data_dir, scratch / "expected"))
    assert build_schemas(db) == []


class PidWatcher:
    """Polls ops.runs while a run executes and notes every (dbt_pid, progress step) pair it sees."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.seen: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        with self.db.connect(row_factory=dict_row) as conn:
            while not self._stop.wait(0.005):
                for row in conn.execute("select dbt_pid, progress from ops.runs where dbt_pid is not null"):
                    self.seen.append((row["dbt_pid"], (row["progress"] or {}).get("step")))

    def __enter__(self) -> PidWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def stale(self) -> list[tuple[int, str, str]]:
        """(pid, step it was started for, later step it was still recorded in)."""
        started_in: dict[int, str] = {}
        out = []
        for pid, step in self.seen:
            first = started_in.setdefault(pid, step)
            if step != first:
                out.append((pid, first, step))
        return sorted(set(out))


def test_killed_dbt_fails_the_run_and_leaves_the_mart_alone(client, settings, database, tmp_path):
    publish_quickly(settings)
    published = dump_published(database)

    for step in ("run", "test"):  # building the run's models; testing them, just before publishing
        run_id = trigger(client)
        with dbt_blocked_on(database, run_id, step, BLOCKED_ON[step].format(run_id)) as pid:
            os.killpg(pid, signal.SIGKILL)
        run = wait_for_run(client, run_id)
        assert_failed_in(run, step)
        killed = rf"step {step} failed: dbt {step}( --[^\n]*)? was killed \(signal 9\)"
        assert re.match(killed, run["error"]), run["error"]
        assert run["steps"][[s["name"] for s in run["steps"]].index(step)]["exit_code"] == -signal.SIGKILL
        assert run_row(database, run_id)["dbt_pid"] is None
        assert not pid_alive(pid)
        assert dump_published(database) == published
        assert_kept_for_retry(build_schemas(database))

    # The dbt_pid column is what an operator (and this test) kills: it must never name a finished dbt.
    with PidWatcher(database) as watcher:
        assert_recovers(client, database, settings.data_dir, tmp_path)
    assert len({pid for pid, _ in watcher.seen}) >= 4, "the watcher should have seen every dbt command"
    assert watcher.stale() == [], "ops.runs kept the pid of a finished dbt while the next step ran"


def test_killed_api_takes_its_dbt_along_and_the_run_is_marked_interrupted(serve, settings, database, tmp_path):
    publish_quickly(settings)
    api = serve()
    published = dump_published(database)

    run_id = trigger(api.client)
    step = "test"
    with dbt_blocked_on(database, run_id, step, BLOCKED_ON[step].format(run_id)) as pid:
        serve.watch_dbt(pid)  # killed at teardown should the test fail before it dies
        api.kill()
        wait_until(lambda: not pid_alive(pid), 30, f"dbt (pid {pid}) to die with the API (PR_SET_PDEATHSIG)")
    assert run_row(database, run_id)["status"] == "running", "nobody is left to record the end of the run"
    assert dump_published(database) == published

    api = serve()  # start-up finds the orphaned run and its build schemas
    run = api.client.get(f"/runs/{run_id}").json()
    assert_failed_in(run, step)
    assert run["error"].startswith("interrupted"), run["error"]
    assert build_schemas(database) == [], "start-up must drop the build schemas of the dead run"
    assert dump_published(database) == published
    assert_recovers(api.client, database, settings.data_dir, tmp_path)


@pytest.fixture
def private_postgres(pg_tmp) -> Iterator[tuple[EmbeddedPostgres, Database]]:
    """A Postgres server of this test's own (on a fixed port, so that it can be stopped and started)."""
    server = EmbeddedPostgres(pg_tmp / "private", port=free_port())
    port, _ = server.start()
    try:
        yield server, Database(server.url(port))
    finally:
        server.stop()


def test_postgres_restart_and_outage_fail_the_run_and_leave_the_mart_alone(private_postgres, serve, settings, tmp_path):
    server, db = private_postgres
    settings = settings.model_copy(update={"database_url": SecretStr(db.url)})
    publish_quickly(settings)
    api = serve(settings)
    published = dump_published(db)

    def interrupt(step: str, fault) -> None:
        run_id = trigger(api.client)
        with dbt_blocked_on(db, run_id, step, BLOCKED_ON[step].format(run_id)) as pid:
            serve.watch_dbt(pid)
            fault(pid)
        run = wait_for_run(api.client, run_id, timeout=60)  # the API records the failure itself
        assert_failed_in(run, step)
        assert run["error"].startswith(f"step {step} failed"), run["error"]
        assert run_row(db, run_id)["dbt_pid"] is None
        assert_kept_for_retry(build_schemas(db))
        assert dump_published(db) == published

    def outage(pid: int) -> None:
        """Postgres down until well after dbt gave up: the run has to wait for it to record its end."""
        server.stop()
        wait_until(lambda: not pid_alive(pid), 60, "dbt to give up while Postgres is down")
        time.sleep(3)  # the outage goes on while the run tries to record its end
        server.start()

    interrupt("run", lambda pid: server.restart())
    interrupt("test", outage)
    assert_recovers(api.client, db, settings.data_dir, tmp_path)
    assert [r["status"] for r in history.list_runs(db, 10, 0)[0]] == ["success", "failed", "failed"]
