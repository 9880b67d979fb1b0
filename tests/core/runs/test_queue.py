"""The run queue (api/core/runs/queue.py): runs asked for while one is active wait for it, start in order, and
are recorded when they end before starting (cancelled, stopped, their process gone). No dbt here: the active run
is a lock holder, as another API process's run would be."""

from __future__ import annotations

import threading

import pytest

from api.core.job.steps import step_names
from api.core.runs import history, lock, queue
from api.core.runs.lock import RunHandle
from tests.conftest import wait_until

STEPS = step_names("default")


class Waiter:
    """A queued run waiting in a thread, as the API's runner waits for it."""

    def __init__(self, db) -> None:
        self.run = queue.enqueue(db, {"source": "test"}, STEPS)
        self.handle: RunHandle | None = None
        self.returned = threading.Event()
        self.thread = threading.Thread(target=self._wait, daemon=True)
        self.thread.start()

    def _wait(self) -> None:
        self.handle = self.run.wait()
        self.returned.set()


def _finish(handle: RunHandle) -> None:
    handle.update(status="success", final=True)
    handle.release()


def test_queued_runs_wait_for_the_active_run_and_start_in_order(database, holder):
    first, second = Waiter(database), Waiter(database)
    rows = {r["run_id"]: r for r in history.list_runs(database, 10, 0)[0]}
    assert rows[first.run.run_id]["status"] == rows[second.run.run_id]["status"] == "queued"
    assert rows[first.run.run_id]["waiting"] and rows[second.run.run_id]["waiting"]
    with pytest.raises(lock.RunBusy) as busy:  # POST /trigger is still refused, naming the active run
        lock.start_run(database, {"source": "test"}, STEPS)
    assert busy.value.active_run_id == holder.run_id
    assert not first.returned.wait(1.5) and not second.returned.is_set()

    _finish(holder)
    wait_until(first.returned.is_set, 30, "the first queued run to start")
    assert first.handle is not None and first.handle.run_id == first.run.run_id
    assert history.get_run(database, first.run.run_id)["waiting"] is False
    assert not second.returned.wait(1.5), "the second queued run started while the first held the lock"
    with pytest.raises(lock.RunBusy) as busy:
        lock.start_run(database, {"source": "test"}, STEPS)
    assert busy.value.active_run_id == first.run.run_id

    _finish(first.handle)
    wait_until(second.returned.is_set, 30, "the second queued run to start")
    assert second.handle is not None
    _finish(second.handle)


def test_a_new_trigger_does_not_overtake_a_queued_run(database, holder):
    """Between the active run's end and the queued run's next look, RUN_LOCK is free: a trigger must not take it."""
    waiting = queue.enqueue(database, {"source": "test"}, STEPS)  # nobody polls for it yet
    _finish(holder)
    with pytest.raises(lock.RunBusy) as busy:
        lock.start_run(database, {"source": "test"}, STEPS)
    assert busy.value.active_run_id == waiting.run_id and "queued" in str(busy.value)
    handle = waiting.wait()
    assert handle is not None and handle.run_id == waiting.run_id
    _finish(handle)


def test_a_cancelled_queued_run_ends_cancelled_without_starting(database, holder):
    waiter = Waiter(database)
    history.request_cancel(database, waiter.run.run_id, "cancelled by a test")
    wait_until(waiter.returned.is_set, 30, "the queued run to notice its cancel")
    assert waiter.handle is None
    row = history.get_run(database, waiter.run.run_id)
    assert row["status"] == "cancelled" and row["finished_at"] is not None and not row["waiting"]
    assert row["error"] == "cancelled by a test (while queued)"
    assert {s["status"] for s in row["steps"]} == {"skipped"}


def test_a_queued_run_of_a_stopping_api_is_recorded_interrupted(database, holder):
    waiter = Waiter(database)
    waiter.run.stop()
    wait_until(waiter.returned.is_set, 30, "the queued run to stop")
    row = history.get_run(database, waiter.run.run_id)
    assert row["status"] == "failed" and row["error"] == queue.STOPPED


def test_a_queued_run_whose_process_died_is_recorded_failed_and_does_not_block_the_queue(database, holder):
    dead = queue.enqueue(database, {"source": "test"}, STEPS)
    dead.conn.close()  # its process died: the session holding its queue lock is gone
    alive = Waiter(database)
    _finish(holder)
    wait_until(alive.returned.is_set, 30, "the live queued run to start")
    assert alive.handle is not None and alive.handle.run_id == alive.run.run_id
    row = history.get_run(database, dead.run_id)
    assert row["status"] == "failed" and row["error"].startswith("interrupted: the process that queued it stopped")
    _finish(alive.handle)


def test_start_up_recovery_leaves_live_queued_runs_alone(database, holder):
    live = queue.enqueue(database, {"source": "test"}, STEPS)
    dead = queue.enqueue(database, {"source": "test"}, STEPS)
    dead.conn.close()
    assert lock.recover_interrupted(database) == [dead.run_id]
    assert history.get_run(database, live.run_id)["status"] == "queued"
    live.stop()
    assert live.wait() is None
