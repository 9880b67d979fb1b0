"""Fixtures that start real services: one Postgres for the session (TEST_DATABASE_URL, or an embedded server
in a temporary folder), a fresh database per test, and settings pointing at them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from api.config import REPO_ROOT, Settings
from api.core.database import Database, EmbeddedPostgres
from tests.datasets import copy_canonical


@pytest.fixture(scope="session")
def server_url(tmp_path_factory) -> Iterator[str]:
    """Maintenance URL of the Postgres server the tests use."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg"))
    port, _ = server.start()
    try:
        yield server.url(port)
    finally:
        server.stop()


@pytest.fixture
def database(server_url) -> Iterator[Database]:
    """A fresh, empty database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    url = make_conninfo(**params)
    yield Database(url)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


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
