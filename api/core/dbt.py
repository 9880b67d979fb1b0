"""The one place that runs dbt. Everything else (the job, the CLI, the API) calls `run_dbt`.

dbt runs as a subprocess with an argument list (never a shell string), with `--log-format json` so that
progress can be read from its structured events; the human message of every event is written to a text log.
Each caller passes its own target directory: two dbt processes must never share one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from api.config import DBT_PROJECT_DIR

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


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGKILL dbt when the thread that started it dies (e.g. the API process is killed), so an
    orphaned dbt never keeps writing into the database."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


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


def run_dbt(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    target_path: Path,
    log: IO[str],
    on_progress: Callable[[Progress], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    echo: IO[str] | None = None,
) -> DbtResult:
    """Run `dbt ARGS` to completion; write its messages to `log` (and `echo`, if given).

    Exit code 0 is success; 1 (handled failure, e.g. a failed test) and 2 (crash) are failures, and so is
    death by a signal (negative code)."""
    args = list(args)
    cmd = [dbt_executable(), *args]
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
    proc = subprocess.Popen(
        cmd,
        cwd=DBT_PROJECT_DIR,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,  # its own process group: a Ctrl-C to the API does not hit dbt first
        preexec_fn=_die_with_parent,
    )
    if on_start:
        on_start(proc.pid)
    stderr_lines: list[str] = []
    reader = threading.Thread(target=lambda: stderr_lines.extend(proc.stderr or []), daemon=True)
    reader.start()

    progress = Progress()
    errors: list[str] = []
    assert proc.stdout is not None
    for raw in proc.stdout:
        raw = raw.rstrip("\n")
        try:
            event = json.loads(raw)
        except ValueError:
            write(raw)
            continue
        info = event.get("info", {})
        msg = info.get("msg", "")
        if info.get("level") == "error" and msg.strip():
            errors.append(msg.strip())
        if msg:
            write(f"{info.get('ts', '')[11:19] or _stamp()}  {msg}")
        if _event_progress(event, progress) and on_progress:
            on_progress(progress)
    code = proc.wait()
    reader.join(timeout=5)
    for line in stderr_lines:
        write(line.rstrip("\n"))
    if code < 0:
        write(f"{_stamp()}  dbt was killed by signal {-code}")
    write(f"{_stamp()}  dbt {args[0]} exited with code {code}")
    if code != 0 and stderr_lines and not errors:
        errors.append("".join(stderr_lines[-20:]).strip())
    return DbtResult(args=args, exit_code=code, target_path=target_path, errors=errors)
