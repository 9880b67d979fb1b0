"""Plain dbt as dbt users run it: `. scripts/activate` in a clean shell (only PATH and HOME, as a new terminal
has), then `dbt debug`, `build`, `ls`, `show`, `docs generate` in dbt_project/, into the development schemas;
and dbt without that line, failing with a message that names it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from api.config import REPO_ROOT
from api.core.db.embedded import EmbeddedPostgres
from api.core.db.roles import APP_ROLE

pytestmark = pytest.mark.slow

VENV = Path(sys.executable).parent.parent
PUBLISHED = {"raw", "staging", "intermediate", "marts", "audit"}
DEV = {"raw__dev", "staging__dev", "intermediate__dev", "marts__dev", "audit__dev"}


def clean_shell(script: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`bash -c script` in the repo root with only PATH and HOME (plus `env`), as a new terminal has; dbt's
    target/ and logs/ go to tmp_path (dbt's own variables), so the test leaves the working tree alone."""
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path / "home")}
    if VENV != REPO_ROOT / ".venv":  # the tests' venv is not the default one
        base["VENV_DIR"] = str(VENV)
    base.update(DBT_TARGET_PATH=str(tmp_path / "target"), DBT_LOG_PATH=str(tmp_path / "logs"), **env)
    (tmp_path / "home").mkdir(exist_ok=True)
    return subprocess.run(
        ["bash", "-c", script], cwd=REPO_ROOT, env=base, capture_output=True, text=True, timeout=600, check=False
    )


def schemas(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("select nspname from pg_namespace where nspname !~ '^(pg_|information_schema)'")
        return {r[0] for r in rows.fetchall()} - {"public"}


def test_plain_dbt_after_activate_builds_into_the_dev_schemas_of_the_embedded_postgres(tmp_path, pg_tmp):
    state = pg_tmp / "state"
    script = """
        set -e
        . scripts/activate
        cd dbt_project
        dbt debug
        dbt build
        dbt -q ls --select user_features --resource-type model --output json > "$OUT/ls.json"
        dbt show --select user_features --limit 3
        dbt docs generate
        echo "PASSWORD-IN-ENV=${DBT_PGPASSWORD:+yes}"
        deactivate
        echo "AFTER: $(command -v dbt || echo no-dbt) password=${DBT_PGPASSWORD:-unset}"
    """
    postgres = EmbeddedPostgres(state)
    try:
        done = clean_shell(script, tmp_path, STATE_DIR=str(state), OUT=str(tmp_path))
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        port = postgres.running_port()
        assert port, "activate leaves the embedded Postgres running"
        assert "scripts/db.sh stop" in done.stdout + done.stderr, "activate says how to stop it"
        assert f"on postgresql://{APP_ROLE}@127.0.0.1:{port}/features" in done.stdout
        assert "All checks passed!" in done.stdout and "Completed successfully" in done.stdout
        assert json.loads((tmp_path / "ls.json").read_text())["name"] == "user_features"
        assert "Previewing node 'user_features'" in done.stdout
        assert (tmp_path / "target" / "catalog.json").is_file()
        assert "PASSWORD-IN-ENV=yes" in done.stdout
        assert "AFTER: no-dbt password=unset" in done.stdout, "deactivate undoes PATH and the profile's variables"
        url = postgres.url(port)
        found = schemas(url)
        assert found >= DEV and not found & PUBLISHED, f"plain dbt built into {sorted(found)}"
        with psycopg.connect(url) as conn:
            assert conn.execute("select count(*) from marts__dev.user_features").fetchone()[0] == 10
            owners = conn.execute(
                "select distinct pg_get_userbyid(nspowner) from pg_namespace where nspname like '%\\_\\_dev'"
            ).fetchall()
            assert owners == [(APP_ROLE,)], "plain dbt logs in as the app role, which owns what it builds"
    finally:
        stop = subprocess.run(
            [str(REPO_ROOT / "scripts" / "db.sh"), "stop"],
            env=clean_shell_env(state),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert stop.returncode == 0, stop.stderr
    assert postgres.running_port() is None, "scripts/db.sh stop stops it"


def clean_shell_env(state: Path) -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(state.parent / "home"), "STATE_DIR": str(state)}
    if VENV != REPO_ROOT / ".venv":
        env["VENV_DIR"] = str(VENV)
    return env


def test_activate_with_database_url_uses_that_database_and_starts_no_postgres(settings, database, tmp_path):
    script = ". scripts/activate && cd dbt_project && dbt debug && dbt seed --select users"
    done = clean_shell(
        script, tmp_path, DATABASE_URL=database.url, STATE_DIR=str(tmp_path / "state"), DBT_SCHEMA_SUFFIX="__alice"
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert not (tmp_path / "state" / "pg").exists(), "no embedded Postgres with DATABASE_URL"
    assert "raw__alice, staging__alice, intermediate__alice, marts__alice" in done.stdout
    assert schemas(database.url) == {"raw__alice"}, "DBT_SCHEMA_SUFFIX picks the dev suffix"


def test_dbt_without_activate_fails_naming_the_line(tmp_path):
    """As an editor calls it: the venv's dbt in dbt_project/, with none of the profile's variables."""
    done = clean_shell(f"cd dbt_project && {VENV}/bin/dbt debug", tmp_path)
    assert done.returncode != 0
    assert "set by running `. scripts/activate` in the repository root first" in done.stdout, done.stdout[-2000:]


def test_the_dev_target_refuses_the_api_s_own_suffixes(settings, database, tmp_path):
    done = clean_shell(
        ". scripts/activate && cd dbt_project && dbt ls --select user_features",
        tmp_path,
        DATABASE_URL=database.url,
        DBT_SCHEMA_SUFFIX="__build",
    )
    assert done.returncode != 0
    assert "DBT_SCHEMA_SUFFIX '__build' is one the API uses for its runs" in done.stdout, done.stdout[-2000:]
