"""scripts/psql.sh: psql on the current database, the password in psql's environment, never on a command line
(where `ps` shows it to every user of the machine)."""

from __future__ import annotations

import subprocess

import pytest

from api.config import REPO_ROOT
from api.core.db.embedded import EmbeddedPostgres
from tests.conftest import python_env

pytestmark = pytest.mark.slow

#: Run by psql's `\\!` in a shell whose parent is psql: psql's command line and environment, and its parent's
#: (our Python) command line, one per line.
SHOW_PROCESSES = (
    r"\! tr '\0' ' ' < /proc/$PPID/cmdline; echo; tr '\0' '\n' < /proc/$PPID/environ | grep '^PGPASSWORD=';"
    r" parent=$(awk '/^PPid/ {print $2}' /proc/$PPID/status); tr '\0' ' ' < /proc/$parent/cmdline; echo"
)


def test_psql_sh_opens_the_embedded_postgres_with_the_password_only_in_its_environment(settings, tmp_path, pg_tmp):
    state = pg_tmp / "state"
    env = python_env(settings, DATABASE_URL="", STATE_DIR=str(state))  # no DATABASE_URL: the embedded one
    done = subprocess.run(
        [str(REPO_ROOT / "scripts" / "psql.sh"), "-Atc", "select current_database(), inet_server_port()"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    postgres = EmbeddedPostgres(state)
    password = postgres.app_password()  # the app role's: psql opens as the role dbt and the API use
    port = int(postgres.root.joinpath("port").read_text())
    assert done.stdout.strip() == f"features|{port}"
    assert postgres.running_port() is None, "started for the session, stopped after it"

    shown = subprocess.run(
        [str(REPO_ROOT / "scripts" / "psql.sh"), "-c", SHOW_PROCESSES],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr[-2000:]
    psql_line, secret, parent_line = shown.stdout.splitlines()[:3]
    assert "psql" in psql_line and password not in psql_line
    assert "api.cli db psql" in parent_line and password not in parent_line
    assert secret == f"PGPASSWORD={password}", "psql gets the password from its environment"
    assert password not in shown.stderr


def test_psql_sh_uses_database_url_and_passes_psql_its_arguments(settings, database, tmp_path):
    with database.connect() as conn:
        conn.execute("create table t (x int); comment on table t is 'a described table'")
    done = subprocess.run(
        [str(REPO_ROOT / "scripts" / "psql.sh"), "-c", r"\dt+ t"],
        cwd=tmp_path, env=python_env(settings), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "a described table" in done.stdout
    assert database.params["password"] not in done.stdout + done.stderr
