"""Opening the embedded Postgres' files without being led astray by its OS user.

As root, the embedded server runs as the `pgserver` OS user, and its `postgres` role is a superuser: anything
that user can do (`COPY ... TO PROGRAM`), the database can do. So root's own files live in a folder that user
cannot write (STATE_DIR/pg: root-owned, 0710, group pgserver: it may pass through to its data, not list or add),
and every open here is one no planted link can redirect: O_NOFOLLOW, never O_TRUNC on a path, O_EXCL for a new
secret. A file in the server's own data directory is rewritten only when it is a plain file the server's user
owns, with one link (so the write touches nothing that user could not touch anyway).

The one rule: no open by root follows a symlink or truncates what a path happens to name.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeFile(OSError):
    """A path that is not the plain file it should be (a symlink, another owner, a hard link)."""


def open_lock(path: Path) -> int:
    """A lock file's descriptor (created 0600 if missing; never truncated, never through a symlink)."""
    return os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o600)


def touch(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | _NOFOLLOW, 0o600))


def read_text(path: Path, owner: int | None = None) -> str:
    """A small text file's content, never through a symlink; with `owner`, only if that uid owns it."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    with os.fdopen(fd, encoding="utf-8") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or (owner is not None and info.st_uid != owner):
            raise UnsafeFile(f"{path} is not a plain file owned by uid {owner}")
        return fh.read()


def write_secret(path: Path, text: str) -> None:
    """Write a new secret file (0600) next to `path` under a random name with O_EXCL, then move it in place."""
    tmp = path.with_name(f".{path.name}-{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create_for(path: Path, uid: int, gid: int) -> None:
    """Create an empty file (0600) for another user (the server's log), unless it exists; in a root-owned folder."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    except FileExistsError:
        return
    try:
        os.fchown(fd, uid, gid)
    finally:
        os.close(fd)


def rewrite_owned(path: Path, text: str, owner: int, append: bool = False) -> None:
    """Replace (or append to) the content of a file another user owns (a file in the server's data directory):
    only if it is a plain file of `owner` with one link, opened without following a symlink and truncated
    through the descriptor, never through the path."""
    fd = os.open(path, os.O_WRONLY | _NOFOLLOW | (os.O_APPEND if append else 0))
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != owner or info.st_nlink != 1:
            raise UnsafeFile(f"{path} is not a plain file of uid {owner} with one link: not written")
        if not append:
            os.ftruncate(fh.fileno(), 0)
        fh.write(text)


def traversal_problem(path: Path, uid: int, gid: int) -> Path | None:
    """The first folder on the way to `path` (itself included) that user `uid` (group `gid`) may not pass
    through, or None."""
    for folder in [*reversed(path.parents), path]:
        info = folder.stat()
        if info.st_uid == uid:
            ok = info.st_mode & stat.S_IXUSR
        elif info.st_gid == gid:
            ok = info.st_mode & stat.S_IXGRP
        else:
            ok = info.st_mode & stat.S_IXOTH
        if not ok:
            return folder
    return None
