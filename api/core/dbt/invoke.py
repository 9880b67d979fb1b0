"""Running one dbt command to completion: `run_dbt`, the one function everything else (the job, the CLI, the
benchmark) calls.

dbt never runs inside the API process. A run's commands go to the warm worker (api/core/dbt/client.py and
worker.py), which forks one child per command; scripts/dbt.sh runs the plain dbt CLI as a subprocess. Either way
dbt gets an argument list (never a shell string) and `--log-format json`, so progress is read from its
structured events; the human message of every event is written to a text log. Each caller passes its own target
directory: two dbt processes must never share one.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from api.config import DBT_PROJECT_DIR
from api.core.dbt.client import DbtWorker
from api.core.dbt.env import process_env
from api.core.dbt.worker import die_with_parent


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


#: dbt's events that are output rather than log lines (dbt_common.events.logger.PRINT_EVENT_NAMES): dbt prints
#: them without a timestamp, and even with --quiet.
PRINT_EVENTS = ("PrintEvent", "ShowNode", "CompiledNode")


def dbt_executable() -> str:
    """dbt from the same environment as this interpreter."""
    candidate = Path(sys.executable).parent / "dbt"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("dbt")
    if not found:
        raise FileNotFoundError("dbt is not installed in this environment; run scripts/bootstrap.sh")
    return found


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
    debug_log: bool = True,
    on_message: Callable[[str], None] | None = None,
) -> DbtResult:
    """Run `dbt ARGS` to completion, in `worker` if given, else as a CLI process; write its messages to `log`
    (and `echo`, if given, with dbt's output events as plain dbt prints them). `env` is what api/core/dbt/env.py's
    `dbt_env` gives. `debug_log=False`: no dbt debug log file (`log` keeps every info-level line).
    `on_message` gets the text of each of dbt's events.

    Exit code 0 is success; 1 (handled failure, e.g. a failed test) and 2 (crash) are failures, and so is
    death by a signal (negative code)."""
    args = list(args)
    target_path.mkdir(parents=True, exist_ok=True)
    # a command that writes no run_results.json (cancelled, crashed) must not pass for the previous one's
    (target_path / "run_results.json").unlink(missing_ok=True)
    full_env = process_env(
        {
            **env,
            "DBT_TARGET_PATH": str(target_path),
            "DBT_LOG_PATH": str(target_path / "logs"),
            "DBT_LOG_FORMAT": "json",
            "DBT_USE_COLORS": "false",
            **({} if debug_log else {"DBT_LOG_LEVEL_FILE": "none"}),
        }
    )

    def write(line: str, *, echoed: bool = True) -> None:
        log.write(line + "\n")
        log.flush()
        if echo is not None and echoed:
            echo.write(line + "\n")
            echo.flush()

    write(f"{_stamp()}  $ dbt {' '.join(args)}", echoed=False)  # `echo` gets dbt's own output only
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
        if msg and info.get("name") in PRINT_EVENTS:
            write(msg)  # as plain dbt prints them: no timestamp (`dbt -q ls --output json | jq` works)
        elif msg:
            write(f"{info.get('ts', '')[11:19] or _stamp()}  {msg}")
            if on_message:
                on_message(msg)
        if _event_progress(event, progress) and on_progress:
            on_progress(progress)
    if code < 0:
        write(f"{_stamp()}  dbt was killed by signal {-code}", echoed=False)
    write(f"{_stamp()}  dbt {args[0]} exited with code {code}", echoed=False)
    if code != 0 and plain and not errors:
        errors.append("\n".join(plain[-20:]).strip())
    return DbtResult(args=args, exit_code=code, target_path=target_path, errors=errors)
