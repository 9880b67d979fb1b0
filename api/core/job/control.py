"""Run control: cancel a run or time it out, from any API process on the database.

The one rule: a cancel is a request written into the run's row (`runs.request_cancel`), so that any process can
make it; only the process that executes the run acts on it. Its `Watchdog` notices the request (or the run's
timeout), and the run interrupts its dbt the way a user at a terminal would: SIGINT, on which dbt cancels its
queries in the warehouse, then SIGKILL if dbt is still there after a grace period.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable

import psycopg

from api.core.db.database import Database
from api.core.runs import history

log = logging.getLogger(__name__)

#: How long dbt has to stop after SIGINT before it gets SIGKILL.
GRACE_SECONDS = 10.0
#: How often the watchdog looks for a cancel request.
POLL_SECONDS = 0.5


def _alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def interrupt(pid: int, grace: float = GRACE_SECONDS) -> None:
    """SIGINT the process group `pid` (a dbt command); SIGKILL it if it is still alive `grace` seconds later.
    Returns at once: the escalation runs in a thread of its own."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGINT)

    def escalate() -> None:
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.1)
        log.warning("dbt (pid %s) did not stop within %.0f s of SIGINT: killing it", pid, grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)

    threading.Thread(target=escalate, name=f"interrupt-{pid}", daemon=True).start()


class Watchdog:
    """Watches one run while it executes: calls `on_cancel(reason)` once, when someone asked to cancel it or when
    it has run longer than `timeout` seconds."""

    def __init__(self, db: Database, run_id: int, timeout: float, on_cancel: Callable[[str], None]) -> None:
        self.db = db
        self.run_id = run_id
        self.timeout = timeout
        self.on_cancel = on_cancel
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"watchdog-{run_id}", daemon=True)

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        deadline = time.monotonic() + self.timeout
        conn: psycopg.Connection | None = None
        while True:
            reason = None
            if time.monotonic() >= deadline:
                reason = f"timed out after {self.timeout:g} s (RUN_TIMEOUT)"
            else:
                try:
                    conn = conn or self.db.connect()
                    reason = history.cancel_reason(conn, self.run_id)
                except psycopg.Error:  # the database is away for a moment: look again next time
                    with contextlib.suppress(Exception):
                        conn and conn.close()
                    conn = None
            if reason:
                self.on_cancel(reason)
                break
            if self._done.wait(POLL_SECONDS):
                break
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
