"""Which Postgres: DATABASE_URL as given, or the embedded server, started once, reused, stopped by its starter."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from api.config import REPO_ROOT
from api.core.database import Database, EmbeddedPostgres, free_port, open_database


def test_database_url_is_used_as_given_and_never_logged_with_its_password(monkeypatch):
    monkeypatch.delenv("PGOPTIONS", raising=False)
    db = Database("postgresql://mart:s3cret@db.example:6543/features?sslmode=require")
    assert db.display_url == "postgresql://mart@db.example:6543/features"
    assert db.dbt_env() == {
        "PGOPTIONS": "-c work_mem=128MB -c jit=off",
        "DBT_PGHOST": "db.example",
        "DBT_PGPORT": "6543",
        "DBT_PGUSER": "mart",
        "DBT_PGPASSWORD": "s3cret",
        "DBT_PGDATABASE": "features",
        "DBT_PGSSLMODE": "require",
    }
    monkeypatch.setenv("PGOPTIONS", "-c work_mem=1GB")  # the user's own session settings win
    assert db.dbt_env()["PGOPTIONS"] == "-c work_mem=1GB"
    with open_database("postgresql://u@h/db", REPO_ROOT / "nonexistent-state") as given:
        assert given.url == "postgresql://u@h/db" and not given.embedded


def test_embedded_server_is_started_once_reused_and_stopped_by_its_starter(tmp_path):
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
            "from pathlib import Path; from api.core.database import open_database\n"
            f"with open_database(None, Path({str(state)!r})) as db: db.ping(); print(db.url)"
        )
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == outer.url
        outer.ping()
    assert EmbeddedPostgres(state).running_port() is None, "the starter stops it"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(outer.url, connect_timeout=2)


def test_embedded_server_listens_on_loopback_tcp_only_and_honours_pg_port(tmp_path):
    wanted = free_port()
    with open_database(None, tmp_path / "state", pg_port=wanted) as db:
        assert int(db.params["port"]) == wanted
        with db.connect() as conn:
            assert conn.execute("show listen_addresses").fetchone()[0] == "127.0.0.1"
            assert conn.execute("show unix_socket_directories").fetchone()[0] == ""


def test_data_survives_a_restart_of_the_embedded_server(tmp_path):
    state = tmp_path / "state"
    with open_database(None, state) as db, db.connect() as conn:
        conn.execute("create table kept (x int); insert into kept values (42)")
    with open_database(None, state) as db, db.connect() as conn:
        assert conn.execute("select x from kept").fetchone() == (42,)
