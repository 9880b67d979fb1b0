"""The API's handle on the warm dbt worker (api/core/dbt/worker.py): it starts the worker process, hands it one
command at a time and streams back what dbt prints.

The one rule: the worker is spawned by a thread of its own that lives as long as the handle, because
PR_SET_PDEATHSIG fires when the spawning *thread* ends: a worker spawned by a run's thread would be killed with
that thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from api.config import DBT_PROJECT_DIR, REPO_ROOT
from api.core.dbt.env import process_env
from api.core.dbt.worker import CONTROL, die_with_parent


class DbtWorker:
    """The API's handle on a warm dbt worker process (`api.core.dbt.worker`): dbt imported once and the project
    parsed once, each command forked into a child that `ps` shows as `dbt seed`, `dbt run`, ...

    One command at a time (callers queue on a lock). The worker is started on first use (the job's warm-up
    parse), and started again after it died. It is spawned by a thread of its own that lives as long as this
    object, because PR_SET_PDEATHSIG fires when the spawning *thread* ends: a worker spawned by a run's thread
    would be killed with that thread."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._spawns: queue.Queue[Future[subprocess.Popen[str]] | None] = queue.Queue()
        self._spawner = threading.Thread(target=self._spawn_loop, name="dbt-worker-spawner", daemon=True)
        self._spawner.start()

    def _spawn_loop(self) -> None:
        while (future := self._spawns.get()) is not None:
            try:
                future.set_result(
                    subprocess.Popen(
                        [sys.executable, "-m", "api.core.dbt.worker"],
                        cwd=DBT_PROJECT_DIR,
                        env=self._worker_env(),
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                        encoding="utf-8",
                        errors="replace",
                        bufsize=1,
                        start_new_session=True,
                        preexec_fn=die_with_parent,
                    )
                )
            except BaseException as exc:
                future.set_exception(exc)

    def _worker_env(self) -> dict[str, str]:
        env = process_env({})
        # for `-m api.core.dbt.worker`
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        return env

    def _ensure(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            future: Future[subprocess.Popen[str]] = Future()
            self._spawns.put(future)
            self._proc = future.result(timeout=60)
        return self._proc

    def stream(self, args: Sequence[str], env: Mapping[str, str], target_path: Path) -> Iterator[tuple[str, Any]]:
        """Run one command; yields ("line", text), ("started", child pid) and last ("exit", code)."""
        with self._lock:
            proc = self._ensure()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(json.dumps({"args": list(args), "env": dict(env), "target_path": str(target_path)}))
                proc.stdin.write("\n")
                proc.stdin.flush()
            except OSError:
                yield ("line", "the dbt worker is not running; it is started again for the next command")
                yield ("exit", -signal.SIGKILL)
                return
            finished = False
            try:
                for raw in proc.stdout:
                    if raw.startswith(CONTROL):
                        message = json.loads(raw[len(CONTROL) :])
                        if "exit" in message:
                            finished = True
                            yield ("exit", int(message["exit"]))
                            return
                        yield ("started", int(message["started"]))
                    else:
                        yield ("line", raw.rstrip("\n"))
                finished = True
                code = proc.wait()
                yield ("line", f"the dbt worker died (exit code {code}); it is started again for the next command")
                yield ("exit", -signal.SIGKILL)
            finally:
                if not finished:  # the caller gave up mid-command: the rest of its output would confuse the next
                    self._kill()

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def close(self) -> None:
        """Stop the worker (its children die with it)."""
        self._spawns.put(None)
        self._kill()
