"""Settings (api/config.py): the start-up checks that refuse a configuration with a message saying what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.config import REPO_ROOT, Settings


def test_a_writable_state_dir_is_created_and_accepted(tmp_path: Path) -> None:
    state = tmp_path / "a" / "state"
    assert Settings(state_dir=state).state_dir_problem() is None
    assert state.is_dir()


def test_a_state_dir_that_cannot_be_written_says_who_must_own_it(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    state = tmp_path / "file" / "state"
    problem = Settings(state_dir=state).state_dir_problem()
    assert problem is not None
    uid, gid = os.getuid(), os.getgid()
    assert f"STATE_DIR {state} is not writable" in problem
    assert f"uid {uid}" in problem and f"chown -R {uid}:{gid}" in problem and "named volume" in problem


def test_the_server_refuses_an_unwritable_state_dir_at_once_without_a_traceback(tmp_path: Path) -> None:
    """The container's start-up path (scripts/run.sh -> api.cli serve) with a STATE_DIR it cannot create: exit
    2 and the message, before any database is touched (the Docker tier does it with a root-owned bind mount)."""
    (tmp_path / "file").write_text("not a folder")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "API_TOKEN")}
    env.update(STATE_DIR=str(tmp_path / "file" / "state"), HOST="127.0.0.1", PORT="1")
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "serve"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "serve: refusing to start: STATE_DIR" in done.stderr and "chown -R" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_tls_needs_both_files_and_readable_ones(tmp_path: Path) -> None:
    pem = tmp_path / "cert.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n")
    assert Settings(tls_certfile=pem).tls_problem() == (
        "TLS_CERTFILE and TLS_KEYFILE go together: set both (PEM files) to serve HTTPS, or neither"
    )
    missing = tmp_path / "nope.key"
    problem = Settings(tls_certfile=pem, tls_keyfile=missing).tls_problem()
    assert problem == f"TLS_KEYFILE={missing} cannot be read: No such file or directory"
    assert Settings().tls_problem() is None and Settings().scheme == "http"
    assert Settings(tls_certfile=pem, tls_keyfile=pem).scheme == "https"


def test_the_server_refuses_a_missing_tls_file_at_once_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "API_TOKEN")}
    env.update(
        STATE_DIR=str(tmp_path / "state"), HOST="127.0.0.1", PORT="1",
        TLS_CERTFILE=str(tmp_path / "cert.pem"), TLS_KEYFILE=str(tmp_path / "key.pem"),
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "serve"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"serve: refusing to start: TLS_CERTFILE={tmp_path / 'cert.pem'} cannot be read" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_spark_shared_dir_must_be_a_path_every_node_mounts() -> None:
    with pytest.raises(ValidationError, match="SPARK_SHARED_DIR 'hdfs://nn:8020/shared' must be a folder path"):
        Settings(spark_shared_dir="hdfs://nn:8020/shared")
    assert Settings(state_dir="/s").spark_shared == Path("/s/spark/shared")
    assert Settings(spark_shared_dir="/mnt/shared").spark_shared == Path("/mnt/shared")
