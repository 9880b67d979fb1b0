"""The warm dbt worker: a process that keeps dbt imported and the project parsed, and runs each dbt command in a
forked child of its own (the dbt-server pattern). Started and supervised by `api.core.dbt.client.DbtWorker`; run
it as `python -m api.core.dbt.worker`. It never runs inside the API process.

The one rule: a command always runs in a fresh child forked from a single-threaded parent, so a crash, a kill or
state that dbt leaves behind (adapters, compiled SQL written into the manifest) dies with the child, and the next
command starts from the same clean parsed manifest. What the child started (Spark's JVM) ends before the command
is reported finished, so nothing of it can print into the next command's output (`end_group`).

Protocol (one request at a time): the API writes one JSON line on stdin,
`{"args": [...], "env": {...}, "target_path": "..."}`; args `["parse"]` only parse (a warm-up). The worker
answers on stdout with whatever dbt prints (JSON log lines), framed by control lines that start with CONTROL:
`{"started": pid}` from the child before it runs dbt, and `{"exit": code}` from the worker after the child ended
(a negative code is the signal that killed it). Manifests are cached per target path and parse-time environment
(DBT_SCHEMA_SUFFIX, DBT_SEEDS_DIR, the profile's DBT_* values); a changed value parses again, so a manifest never
builds into stale schemas.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import sys
import threading
import time
from typing import Any

#: Prefix of the worker's control lines on stdout (dbt's own lines are JSON objects or plain text).
CONTROL = "\x1edbt-worker "
#: With this flag dbt skips writing manifest.json and run_results.json (0.1-0.5 s a command, most of it the
#: manifest); the child then writes run_results.json itself, and manifest.json stays the one parse wrote.
NO_WRITE_JSON = "--no-write-json"
#: How long what a command started (Spark's JVM) has to end after the command itself, before it is killed.
GROUP_GRACE_SECONDS = 15.0
#: Environment variables read when dbt runs a command, not when it parses: they do not key the manifest cache.
INVOKE_ONLY = frozenset(
    {
        "DBT_THREADS",
        "DBT_LOG_FORMAT",
        "DBT_LOG_PATH",
        "DBT_LOG_LEVEL_FILE",
        "DBT_USE_COLORS",
        "DBT_TARGET_PATH",
        "DBT_PGPASSWORD",
    }
)


def control(message: dict[str, Any]) -> None:
    sys.stdout.write(CONTROL + json.dumps(message) + "\n")
    sys.stdout.flush()


def _exit_code(result: Any) -> int:
    """dbt's CLI exit codes: 0 success, 1 a handled failure (a failed test, a model error), 2 a crash."""
    if result.success:
        return 0
    return 2 if result.exception is not None else 1


def _set_env(env: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(env)


class Worker:
    def __init__(self) -> None:
        self.manifests: dict[str, Any] = {}

    def _manifest(self, request: dict[str, Any]) -> Any:
        env = request["env"]
        parse_env = sorted((k, v) for k, v in env.items() if k.startswith("DBT_") and k not in INVOKE_ONLY)
        key = json.dumps([request["target_path"], parse_env])
        if key not in self.manifests:
            from dbt.adapters.factory import reset_adapters
            from dbt.cli.main import dbtRunner

            _set_env(env)
            result = dbtRunner().invoke(["parse"], target_path=request["target_path"])
            reset_adapters()
            if not result.success or result.result is None:
                return None
            self.manifests[key] = result.result
        return self.manifests[key]

    def handle(self, request: dict[str, Any]) -> int:
        manifest = self._manifest(request)
        if manifest is None:
            return 2  # dbt printed why the project does not parse
        if request["args"] == ["parse"]:
            return 0  # parsed (and cached) just now, or earlier: nothing more to run
        if threading.active_count() != 1:  # forking a process with other threads can deadlock the child
            print(f"dbt worker: {threading.active_count()} threads alive; refusing to fork", flush=True)
            return 2
        sys.stdout.flush()
        gc.freeze()  # the child's garbage collector leaves the parent's objects (and their pages) alone
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; covered by the integration tests, not by coverage
            self._child(manifest, request)
        _, status = os.waitpid(pid, 0)
        end_group(pid)
        return os.waitstatus_to_exitcode(status)

    def _child(self, manifest: Any, request: dict[str, Any]) -> None:
        code = 2
        try:
            os.setsid()  # its own process group: killpg(pid) ends it and nothing else
            die_with_parent()
            signal.signal(signal.SIGINT, signal.default_int_handler)  # SIGINT cancels dbt's queries, as in a shell
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            args = request["args"]
            from setproctitle import setproctitle

            setproctitle("dbt " + " ".join(args))  # `ps` shows `dbt seed`, `dbt run`, ...
            control({"started": os.getpid()})
            _set_env(request["env"])
            from dbt.adapters.factory import reset_adapters
            from dbt.cli.main import dbtRunner

            reset_adapters()
            result = dbtRunner(manifest=manifest).invoke(list(args))
            if NO_WRITE_JSON in args and hasattr(result.result, "write"):
                result.result.write(os.path.join(request["target_path"], "run_results.json"))
            code = _exit_code(result)
        except KeyboardInterrupt:
            code = 130
        except BaseException as exc:  # a crash of dbt itself: report it like the CLI would
            print(f"dbt worker: {type(exc).__name__}: {exc}", flush=True)
            code = 2
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            import multiprocessing.util

            multiprocessing.util._run_finalizers(0)  # release dbt's semaphores; os._exit skips the exit hooks
            os._exit(code)


def end_group(pgid: int, grace: float = GROUP_GRACE_SECONDS) -> None:
    """Wait until every process left in the command's process group `pgid` has ended (SIGKILL after `grace`
    seconds), reaping them: they are the worker's children once the command's child is gone, because the worker
    is their subreaper. So the exit line is written only when nothing of the command can still print: the JVM
    that Spark's session method starts (in the child's group) shuts down after the child, printing, and a killed
    command's JVM would otherwise write its stack traces into the next command's output."""
    deadline = time.monotonic() + grace
    while True:
        try:
            reaped, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:  # none left (or none of ours: those get the SIGKILL below)
            break
        if reaped == 0:
            if time.monotonic() >= deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
            time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def die_with_parent() -> None:
    """Linux: SIGKILL this process when the thread that started it ends (PR_SET_PDEATHSIG), so no dbt of ours
    outlives the API or keeps writing into the database. Also the preexec_fn of the processes api/core/dbt/
    starts."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main() -> int:
    die_with_parent()
    if sys.platform.startswith("linux"):  # the orphans of a command's child (Spark's JVM) become ours to reap
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a cancel is sent to the child, never to the worker
    os.dup2(1, 2)  # dbt's stderr goes to the same stream, in order
    from setproctitle import setproctitle

    setproctitle("dbt-worker (features-mart)")
    import dbt.cli.main  # noqa: F401 - the import is the warm-up (about 1.3 s)

    worker = Worker()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            code = worker.handle(json.loads(line))
        except Exception as exc:
            print(f"dbt worker: {type(exc).__name__}: {exc}", flush=True)
            code = 2
        control({"exit": code})
    return 0


if __name__ == "__main__":
    sys.exit(main())
