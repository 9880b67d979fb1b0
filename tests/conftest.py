"""Fixtures that start real services: one Postgres for the session (TEST_DATABASE_URL, or an embedded server
in a temporary folder), a fresh database per test, and settings pointing at them."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from api.config import REPO_ROOT, Settings
from api.core.db.database import Database
from api.core.db.embedded import EmbeddedPostgres, scram_verifier
from api.core.db.port import free_port
from api.core.db.roles import APP_ROLE, ensure_app_role
from tests.datasets import copy_canonical

__all__ = ["LOCAL", "free_port"]  # for the tests: a free TCP port on 127.0.0.1

T = TypeVar("T")

#: Base URL for TestClient: the Host header must name this server (TestClient's default, 'testserver', does not).
LOCAL = "http://localhost"

#: A full successful run takes ~25 s on two cores; allow for a slow machine.
RUN_TIMEOUT = 240
FINISHED = ("success", "failed", "cancelled")


@contextlib.contextmanager
def server_folder(fallback: Path) -> Iterator[Path]:
    """A folder to put an embedded Postgres' STATE_DIR in. As root, a new folder in the temporary directory,
    0711: the server's OS user must pass through every folder above its data, and pytest keeps its own folder
    (/tmp/pytest-of-root) at 0700, which the embedded server never widens. Else `fallback`."""
    if os.geteuid() != 0:
        yield fallback
        return
    folder = Path(tempfile.mkdtemp(prefix="features-mart-test-pg-"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def pg_server_dir() -> Iterator[None]:
    """As root, PG_SERVER_DIR (where the embedded Postgres' files and a copy of its programs go when its OS user
    cannot pass a folder above them, e.g. in a checkout under /root) is a folder of this session's, removed at its
    end, for this process and the subprocesses it starts: nothing is left in /var/lib/features-mart."""
    if os.geteuid() != 0:
        yield
        return
    from api.core.db import placement

    with server_folder(Path()) as folder, pytest.MonkeyPatch.context() as patch:
        patch.setattr(placement, "DEFAULT_SERVER_DIR", folder / "server-dir")
        patch.setenv("PG_SERVER_DIR", str(folder / "server-dir"))
        yield


@pytest.fixture
def pg_tmp(tmp_path) -> Iterator[Path]:
    """Like tmp_path, for the STATE_DIR of an embedded Postgres (see `server_folder`)."""
    with server_folder(tmp_path) as folder:
        yield folder


@dataclass(frozen=True)
class PgServer:
    """The Postgres server of the session. `admin_url`: a superuser's maintenance URL, which creates and drops the
    tests' databases; `owner`: the login (user, password) of the role that owns them and that the code under test
    uses, not a superuser, as in production (api/core/db/roles.py): the embedded server's app role, or TEST_OWNER
    (one per session) on a TEST_DATABASE_URL of a superuser's; None: that URL's own role."""

    admin_url: str
    owner: tuple[str, str] | None = None

    def as_superuser(self, db: Database) -> Database:
        """`db` (one of fresh_database's) as the superuser: for what only a superuser may do there (event
        triggers, to inject faults)."""
        return Database(make_conninfo(self.admin_url, dbname=db.params["dbname"]))

    @contextlib.contextmanager
    def fresh_database(self) -> Iterator[Database]:
        """A new, empty database owned by `owner`, dropped at the end."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        params = {**conninfo_to_dict(self.admin_url), "dbname": name}
        create = sql.SQL("create database {}").format(sql.Identifier(name))
        if self.owner:
            create += sql.SQL(" owner {}").format(sql.Identifier(self.owner[0]))
            params.update(user=self.owner[0], password=self.owner[1])
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(create)
        url = make_conninfo(**params)
        try:
            yield Database(url)
        finally:
            Database(url).close_pool()  # the reading pool of this process, if a test read through it
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


#: The owner of the tests' databases on a TEST_DATABASE_URL that names a superuser (scripts/test.sh gives the
#: embedded server's): like the app role, not a superuser. One per session (a suffix of its own, dropped at the
#: end), so that sessions sharing a server never reset each other's password.
TEST_OWNER = "features_mart_test"


@contextlib.contextmanager
def _test_owner(url: str) -> Iterator[tuple[str, str] | None]:
    """A new TEST_OWNER login, set up through `url` when that is a superuser's (else None: its own role)."""
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone()[0]:
            yield None
            return
        role, password = f"{TEST_OWNER}_{secrets.token_hex(4)}", secrets.token_urlsafe(24)
        ensure_app_role(conn, scram_verifier(password), role=role)
    try:
        yield role, password
    finally:
        with psycopg.connect(url, autocommit=True) as conn, contextlib.suppress(psycopg.Error):
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))  # refused while it owns a database


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory) -> Iterator[PgServer]:
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        with _test_owner(given) as owner:
            yield PgServer(given, owner)
        return
    with server_folder(tmp_path_factory.mktemp("pg")) as folder:
        server = EmbeddedPostgres(folder / "state")
        port, _ = server.start()
        try:
            yield PgServer(server.url(port, "postgres", admin=True), (APP_ROLE, server.app_password()))
        finally:
            server.stop()


@pytest.fixture
def database(pg_server) -> Iterator[Database]:
    """A fresh, empty database for one test, owned by the role the code logs in as (PgServer)."""
    with pg_server.fresh_database() as db:
        yield db


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """A private copy of the canonical CSVs (tests may damage it)."""
    return copy_canonical(tmp_path / "data")


@pytest.fixture
def settings(database, data_dir, tmp_path) -> Settings:
    return Settings(
        database_url=database.url, data_dir=data_dir, state_dir=tmp_path / "state", dbt_threads=4
    ).resolved()


def python_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for a subprocess of ours (scripts, the CLI, the API) using `settings`."""
    env = {k: v for k, v in os.environ.items() if k not in ("API_TOKEN", "DATABASE_URL", "PG_PORT")}
    env.update(
        DATABASE_URL=settings.database_url.get_secret_value() if settings.database_url else "",
        DATA_DIR=str(settings.data_dir),
        STATE_DIR=str(settings.state_dir),
        VENV_DIR=str(Path(sys.executable).parent.parent),
    )
    env.update(extra)
    return {k: v for k, v in env.items() if v != ""}


def run_cli(settings: Settings, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """`scripts/dbt.sh`-style call of the CLI, as a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=REPO_ROOT,
        env=python_env(settings, **extra_env),
        capture_output=True,
        text=True,
        timeout=600,
    )


def loose_modes(state_dir: Path) -> list[str]:
    """Files under STATE_DIR (but the embedded Postgres' own folder) not 0600, and folders not 0700."""
    found = []
    for path in sorted(state_dir.rglob("*")):
        if path.is_symlink() or path.relative_to(state_dir).parts[0] == "pg":
            continue
        mode = path.stat().st_mode & 0o777
        if mode != (0o700 if path.is_dir() else 0o600):
            found.append(f"{path.relative_to(state_dir)}: {mode:o}")
    return found


def mart_rows(db: Database, schema: str = "marts") -> list[dict]:
    """The features mart (published, or a run's build schema), ordered by user_id."""
    with db.connect(row_factory=dict_row) as conn:
        return conn.execute(f"select * from {schema}.user_features order by user_id").fetchall()  # noqa: S608


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.02) -> T:
    """Call `check` until it returns something truthy (returned), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def wait_for_run(client: Any, run_id: int, timeout: float = RUN_TIMEOUT) -> dict[str, Any]:
    """Poll GET /runs/{run_id} (TestClient or httpx.Client) until the run has finished; return its JSON."""

    def finished() -> dict[str, Any] | None:
        response = client.get(f"/runs/{run_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        return body if body["status"] in FINISHED else None

    return wait_until(finished, timeout, f"run {run_id} to finish", interval=0.1)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:  # noqa: S310 - loopback (the test's server)
        return json.loads(r.read())


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # the test CA's certificate: what clients trust (REQUESTS_CA_BUNDLE, SSL_CERT_FILE)
    cert: Path  # the server's certificate (TLS_CERTFILE), for localhost and 127.0.0.1
    key: Path  # its private key (TLS_KEYFILE)


@pytest.fixture
def tls(tmp_path) -> TlsFiles:
    """A throwaway CA (trustme) and a server certificate it signed, as PEM files."""
    import trustme

    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    files = TlsFiles(ca=tmp_path / "ca.pem", cert=tmp_path / "server.pem", key=tmp_path / "server.key")
    ca.cert_pem.write_to_path(str(files.ca))
    server.private_key_pem.write_to_path(str(files.key))
    server.cert_chain_pems[0].write_to_path(str(files.cert))
    for more in server.cert_chain_pems[1:]:
        more.write_to_path(str(files.cert), append=True)
    return files


@pytest.fixture
def served_api(settings, tmp_path) -> Iterator[str]:
    """The API served by uvicorn in a subprocess (`api.cli serve`) on the test's database; yields its URL."""
    port = free_port()
    log = open(tmp_path / "api.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve"],
        cwd=REPO_ROOT,
        env=python_env(settings, PORT=str(port), HOST="127.0.0.1"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return get_json(url + "/health")["status"] == "ok"
        except OSError:
            assert proc.poll() is None, (tmp_path / "api.log").read_text()
            return False

    try:
        wait_until(up, 120, "the API", interval=0.3)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()


@pytest.fixture
def holder(database):
    """An active run of "another process" (it holds the run lock): queued runs wait for it."""
    from api.core.db.migrations import migrate
    from api.core.job.steps import step_names
    from api.core.runs import lock

    migrate(database)
    handle = lock.start_run(database, {"source": "another process"}, step_names("default"))
    yield handle
    handle.release()
