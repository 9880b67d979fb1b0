"""The job runner of an API process: starts runs in background threads, lets callers wait for them, and stops
them when the process stops; at start-up it recovers what dead processes left and has the dbt worker parse the
project before the first trigger; after each run it prunes the history to RUNS_KEEP.

The one rule: a run is started only through the run lock (`start_run`, or its turn in the queue of
api/core/runs/queue.py), so one run executes at a time however many processes share the database.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

import psycopg

from api.config import Settings
from api.core.db.database import Database
from api.core.db.migrations import migrate
from api.core.dbt.client import DbtWorker
from api.core.dbt.invoke import run_dbt
from api.core.job.execution import RunExecution, build_env
from api.core.job.files import build_dir, prune_run_dirs
from api.core.job.retry import Retry
from api.core.job.steps import step_names
from api.core.mart import publish
from api.core.runs import history, queue
from api.core.runs.lock import RunBusy, recover_interrupted, run_lock, start_run
from api.core.seeds import SEED_FILES

log = logging.getLogger(__name__)

#: Every JobRunner of this process, for interrupt_all_runs().
_RUNNERS: weakref.WeakSet[JobRunner] = weakref.WeakSet()


def interrupt_all_runs() -> None:
    """Called on SIGTERM/SIGINT: every run of this process stops its dbt and records itself interrupted. Returns
    at once (it may run inside a signal handler); the runs' threads do the recording."""
    for runner in list(_RUNNERS):
        runner.interrupt()


class JobRunner:
    """Starts runs in background threads of this process and lets callers wait for them."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.worker = DbtWorker()
        _RUNNERS.add(self)
        self._threads: dict[int, threading.Thread] = {}
        self._executions: dict[int, RunExecution] = {}
        self._waiting: dict[int, queue.WaitingRun] = {}
        self._stopping = False
        self._lock = threading.Lock()

    def startup(self) -> list[int]:
        """Bring the `ops` schema up to date, mark runs orphaned by a dead process as failed and drop their
        schemas, and warm the dbt worker up."""
        migrate(self.db)
        interrupted = recover_interrupted(self.db)
        if interrupted:
            log.warning("marked runs %s as failed: they were interrupted", interrupted)
        try:
            with run_lock(self.db) as conn:
                dropped = publish.drop_leftovers(conn)
                if dropped:
                    log.info("dropped leftover build schemas %s", dropped)
        except RunBusy:
            pass  # another process is running a job; its schemas are not leftovers
        threading.Thread(target=self._warm_up, name="dbt-warm-up", daemon=True).start()
        return interrupted

    def _warm_up(self) -> None:
        """Have the worker import dbt and parse the project for builds and for docs, before the first trigger."""
        folder = build_dir(self.settings)
        try:
            (folder / "seeds").mkdir(parents=True, exist_ok=True)
            for name, columns in SEED_FILES.items():  # dbt parses a seed only when its file exists
                if not (folder / "seeds" / name).exists():
                    (folder / "seeds" / name).write_text(",".join(c.name for c in columns) + "\n")
            with open(folder / "warm-up.log", "w", encoding="utf-8") as log_file:
                for docs, target in ((False, "target"), (True, "docs")):
                    env = build_env(self.settings, self.db, docs=docs)
                    run_dbt(["parse"], env=env, target_path=folder / target, log=log_file, worker=self.worker)
        except Exception:
            log.warning("the dbt worker could not parse the project ahead of a run", exc_info=True)

    def trigger(self, trigger: dict[str, Any], retry: Retry | None = None) -> int:
        """Start a run (`retry`: a retry of a failed run); raises RunBusy when one is active anywhere."""
        handle = start_run(self.db, trigger, step_names(self.settings.dbt_target))
        execution = RunExecution(self.settings, self.db, handle, self.worker, retry)
        if retry is not None:
            handle.update(retry=retry.record())
        execution.trigger_source = str(trigger.get("source", "unknown"))
        thread = threading.Thread(target=self._execute, args=(execution,), name=f"run-{handle.run_id}", daemon=True)
        with self._lock:
            self._threads[handle.run_id] = thread
            self._executions[handle.run_id] = execution
        thread.start()
        return handle.run_id

    def enqueue(self, trigger: dict[str, Any], retry: Retry | None = None) -> int:
        """Start a run or, while one is active anywhere, queue it: it starts when the runs before it have ended."""
        try:
            return self.trigger(trigger, retry)
        except RunBusy:
            pass
        waiting = queue.enqueue(self.db, trigger, step_names(self.settings.dbt_target))
        if retry is not None:
            with history.connect(self.db) as conn:
                history.update_run(conn, waiting.run_id, {"retry": retry.record()})
        thread = threading.Thread(
            target=self._wait_then_execute, args=(waiting, retry, trigger), name=f"run-{waiting.run_id}"
        )
        thread.daemon = True
        with self._lock:
            self._threads[waiting.run_id] = thread
            self._waiting[waiting.run_id] = waiting
        thread.start()
        return waiting.run_id

    def _wait_then_execute(self, waiting: queue.WaitingRun, retry: Retry | None, trigger: dict[str, Any]) -> None:
        try:
            handle = waiting.wait()
        except Exception:
            log.exception("run %s failed while it waited in the queue", waiting.run_id)
            handle = None
        finally:
            with self._lock:
                self._waiting.pop(waiting.run_id, None)
        if handle is None:
            return
        execution = RunExecution(self.settings, self.db, handle, self.worker, retry)
        execution.trigger_source = str(trigger.get("source", "unknown"))
        with self._lock:
            self._executions[handle.run_id] = execution
            if self._stopping:  # the process began stopping as the run's turn came
                execution.stop()
        self._execute(execution)

    def _execute(self, execution: RunExecution) -> None:
        try:
            execution.execute()
        except Exception:
            log.exception("run %s could not record its outcome", execution.run_id)
        finally:
            execution.handle.release()
            with self._lock:
                self._executions.pop(execution.run_id, None)
            self._prune()

    def wait(self, run_id: int, timeout: float | None = None) -> bool:
        """Wait for a run started by this process; True when it has finished."""
        thread = self._threads.get(run_id)
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def interrupt(self) -> None:
        """End the dbt process of every active run, which then records itself as failed (interrupted)."""
        with self._lock:
            self._stopping = True
            executions = list(self._executions.values())
            waiting = list(self._waiting.values())
        for run in waiting:
            run.stop()
        for execution in executions:
            execution.stop()

    def shutdown(self, timeout: float = 30) -> None:
        """Stop: end the dbt process of an active run, which then records itself as failed."""
        self.interrupt()
        for thread in list(self._threads.values()):
            thread.join(timeout)
        self.worker.close()

    def _prune(self) -> None:
        """Keep RUNS_KEEP runs: older rows of ops.runs and their folders go."""
        try:
            oldest = history.prune(self.db, self.settings.runs_keep)
        except psycopg.Error:
            log.warning("could not prune the run history", exc_info=True)
            return
        if oldest is not None:
            prune_run_dirs(self.settings, oldest)
