"""The opens root makes in the embedded Postgres' folders (api/core/db/safe_files.py): none follows a planted
link, none truncates through a path, a new secret is written O_EXCL."""

from __future__ import annotations

import os

import pytest

from api.core.db import safe_files


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "victim"
    path.write_text("precious\n")
    return path


def test_no_open_follows_a_planted_link(tmp_path, victim):
    link = tmp_path / "control.lock"
    link.symlink_to(victim)
    for attempt in (
        lambda: safe_files.open_lock(link),
        lambda: safe_files.touch(link),
        lambda: safe_files.read_text(link),
        lambda: safe_files.rewrite_owned(link, "x", owner=os.geteuid()),
        lambda: safe_files.rewrite_owned(link, "x", owner=os.geteuid(), append=True),
    ):
        with pytest.raises(OSError):
            attempt()
    assert victim.read_text() == "precious\n"


def test_a_hard_link_or_another_owners_file_is_not_rewritten(tmp_path, victim):
    hard = tmp_path / "pg_hba.conf"
    os.link(victim, hard)
    with pytest.raises(safe_files.UnsafeFile):
        safe_files.rewrite_owned(hard, "x", owner=os.geteuid())
    mine = tmp_path / "postgresql.conf"
    mine.write_text("a\n")
    with pytest.raises(safe_files.UnsafeFile):
        safe_files.rewrite_owned(mine, "x", owner=os.geteuid() + 1)
    with pytest.raises(safe_files.UnsafeFile):
        safe_files.read_text(mine, owner=os.geteuid() + 1)
    safe_files.rewrite_owned(mine, "b\n", owner=os.geteuid(), append=True)
    assert mine.read_text() == "a\nb\n"
    safe_files.rewrite_owned(mine, "c\n", owner=os.geteuid())
    assert mine.read_text() == "c\n" and victim.read_text() == "precious\n"


def test_a_lock_is_never_truncated_and_a_secret_is_new_and_private(tmp_path):
    lock = tmp_path / "users.lock"
    lock.write_text("kept")
    os.close(safe_files.open_lock(lock))
    assert lock.read_text() == "kept"
    secret = tmp_path / "password"
    safe_files.write_secret(secret, "s3cret\n")
    assert secret.read_text() == "s3cret\n" and secret.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_traversal_problem_names_the_first_folder_that_blocks(tmp_path):
    blocked = tmp_path / "a"
    inner = blocked / "b"
    inner.mkdir(parents=True)
    blocked.chmod(0o700)
    other = os.geteuid() + 12345
    assert safe_files.traversal_problem(inner, other, other) in (blocked, tmp_path, *tmp_path.parents)
    assert safe_files.traversal_problem(inner, os.geteuid(), os.getegid()) is None
