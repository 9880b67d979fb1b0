"""The one place that runs dbt. Everything else (the job, the CLI, the API) calls `run_dbt`.

dbt never runs inside the API process. A run's commands go to a warm worker process (`DbtWorker`, see
api/core/dbt_worker.py) that forks one child per command; scripts/dbt.sh runs the plain dbt CLI as a subprocess.
Either way dbt gets an argument list (never a shell string) and `--log-format json`, so progress is read from its
structured events; the human message of every event is written to a text log. Each caller passes its own target
directory: two dbt processes must never share one.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from api.config import DBT_PROJECT_DIR, REPO_ROOT
from api.core.dbt_worker import CONTROL, die_with_parent

#: The dbt adapter plugin `pgcopy` (seeds by COPY): on PYTHONPATH for every dbt we start.
ADAPTER_DIR = DBT_PROJECT_DIR / "adapter"

#: Environment variables of ours that dbt must not see (secrets it does not need).
_HIDDEN_FROM_DBT = ("DATABASE_URL", "API_TOKEN")


@dataclass
class Progress:
    """What a running dbt command has done so far, read from its JSON events."""

    nodes_done: int = 0
    nodes_total: int = 0
    current_node: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"nodes_done": self.nodes_done, "nodes_total": self.nodes_total, "current_node": self.current_node}


@dataclass
class DbtResult:
    args: list[str]
    exit_code: int
    target_path: Path
    errors: list[str] = field(default_factory=list)  # error-level messages dbt printed

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def run_results(self) -> list[dict[str, Any]]:
        try:
            return json.loads((self.target_path / "run_results.json").read_text())["results"]
        except (OSError, ValueError, KeyError):
            return []

    def manifest_nodes(self) -> dict[str, Any]:
        try:
            manifest = json.loads((self.target_path / "manifest.json").read_text())
        except (OSError, ValueError):
            return {}
        return {**manifest.get("nodes", {}), **manifest.get("unit_tests", {})}


def dbt_executable() -> str:
    """dbt from the same environment as this interpreter."""
    candidate = Path(sys.executable).parent / "dbt"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("dbt")
    if not found:
        raise FileNotFoundError("dbt is not installed in this environment; run scripts/bootstrap.sh")
    return found


def dbt_environment(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _HIDDEN_FROM_DBT}
    env.update(
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        DBT_PROFILES_DIR=str(DBT_PROJECT_DIR),
        DBT_PROJECT_DIR=str(DBT_PROJECT_DIR),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ADAPTER_DIR), os.environ.get("PYTHONPATH")])),
    )
    env.update(extra)
    return env


def _event_progress(event: dict[str, Any], progress: Progress) -> bool:
    """Update `progress` from one dbt event; True when it changed."""
    name = event.get("info", {}).get("name", "")
    data = event.get("data", {})
    total = data.get("total", data.get("num_models"))  # LogTestResult calls it num_models
    if total is None or "index" not in data:
        return False
    progress.nodes_total = int(total)
    node = data.get("node_info", {}).get("node_name") or data.get("node_name")
    if name == "LogStartLine":
        progress.current_node = node
    elif name.endswith("Result") or name == "SkippingDetails":
        progress.nodes_done = min(progress.nodes_done + 1, progress.nodes_total)
        if progress.nodes_done >= progress.nodes_total:
            progress.current_node = None
    else:
        return False
    return True


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%H:%M:%S")


class DbtWorker:
    """The API's handle on a warm dbt worker process (`api.core.dbt_worker`): dbt imported once and the project
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
                        [sys.executable, "-m", "api.core.dbt_worker"],
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
        env = dbt_environment({})
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env["PYTHONPATH"]])  # for `-m api.core.dbt_worker`
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


def _subprocess_stream(args: Sequence[str], env: Mapping[str, str]) -> Iterator[tuple[str, Any]]:
    """Run `dbt ARGS` as a plain CLI process (scripts/dbt.sh); yields what DbtWorker.stream yields."""
    proc = subprocess.Popen(
        [dbt_executable(), *args],
        cwd=DBT_PROJECT_DIR,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,  # its own process group: a Ctrl-C to the API does not hit dbt first
        preexec_fn=die_with_parent,
    )
    yield ("started", proc.pid)
    assert proc.stdout is not None
    for raw in proc.stdout:
        yield ("line", raw.rstrip("\n"))
    yield ("exit", proc.wait())


def run_dbt(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    target_path: Path,
    log: IO[str],
    on_progress: Callable[[Progress], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    echo: IO[str] | None = None,
    worker: DbtWorker | None = None,
) -> DbtResult:
    """Run `dbt ARGS` to completion, in `worker` if given, else as a CLI process; write its messages to `log`
    (and `echo`, if given).

    Exit code 0 is success; 1 (handled failure, e.g. a failed test) and 2 (crash) are failures, and so is
    death by a signal (negative code)."""
    args = list(args)
    target_path.mkdir(parents=True, exist_ok=True)
    full_env = dbt_environment(
        {
            **env,
            "DBT_TARGET_PATH": str(target_path),
            "DBT_LOG_PATH": str(target_path / "logs"),
            "DBT_LOG_FORMAT": "json",
            "DBT_USE_COLORS": "false",
        }
    )

    def write(line: str) -> None:
        log.write(line + "\n")
        log.flush()
        if echo is not None:
            echo.write(line + "\n")
            echo.flush()

    write(f"{_stamp()}  $ dbt {' '.join(args)}")
    stream = worker.stream(args, full_env, target_path) if worker else _subprocess_stream(args, full_env)
    progress = Progress()
    errors: list[str] = []
    plain: list[str] = []  # lines that are not dbt events (tracebacks, the worker's own messages)
    code = -signal.SIGKILL
    for kind, value in stream:
        if kind == "started":
            if on_start:
                on_start(value)
            continue
        if kind == "exit":
            code = value
            break
        try:
            event = json.loads(value)
        except ValueError:
            plain.append(value)
            write(value)
            continue
        info = event.get("info", {})
        msg = info.get("msg", "")
        if info.get("level") == "error" and msg.strip():
            errors.append(msg.strip())
        if msg:
            write(f"{info.get('ts', '')[11:19] or _stamp()}  {msg}")
        if _event_progress(event, progress) and on_progress:
            on_progress(progress)
    if code < 0:
        write(f"{_stamp()}  dbt was killed by signal {-code}")
    write(f"{_stamp()}  dbt {args[0]} exited with code {code}")
    if code != 0 and plain and not errors:
        errors.append("\n".join(plain[-20:]).strip())
    return DbtResult(args=args, exit_code=code, target_path=target_path, errors=errors)
