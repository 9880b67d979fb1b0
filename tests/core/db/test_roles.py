"""dbt and the API log in as a role that is not a superuser and owns the project's database
(api/core/db/roles.py): what a superuser could do through them, they cannot."""

from __future__ import annotations

import logging

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from api.core.db.database import open_database
from api.core.db.embedded import EmbeddedPostgres
from api.core.db.roles import APP_ROLE, superuser_warning
from api.main import create_app
from tests.conftest import LOCAL


def test_the_app_logs_in_as_a_role_that_is_no_superuser_and_cannot_reach_the_servers_os(pg_tmp):
    """The attacks a superuser login allowed (issue: security round 2, 1 and 6): shell commands as the server's OS
    user, reading its files (its environment in /proc), new roles. Each is refused to the app's login."""
    state = pg_tmp / "state"
    with open_database(None, state) as db, db.connect() as conn:
        assert db.params["user"] == APP_ROLE
        row = conn.execute(
            "select rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls from pg_roles "
            "where rolname = current_user"
        ).fetchone()
        assert row == (False, False, False, False, False)
        pid = EmbeddedPostgres(state).running_pid()
        for attack in (
            "copy (select 1) to program 'id > /tmp/features-mart-attack'",
            f"select pg_read_binary_file('/proc/{pid}/environ')",
            "select pg_read_file('postgresql.conf')",
            "copy (select 1) to '/tmp/features-mart-attack'",
            "create role intruder superuser login",
            "alter role current_user superuser",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(attack)
        assert conn.execute("show is_superuser").fetchone() == ("off",)


def test_the_app_role_owns_its_database_and_every_schema_a_run_writes(pg_tmp):
    """What dbt and the API create (the ops schema at start-up, the schemas of a run, the publish's swap) is the
    app role's; nothing of the project's is the superuser's."""
    state = pg_tmp / "state"
    settings = Settings(state_dir=state, data_dir=pg_tmp / "none").resolved()
    with TestClient(create_app(settings), base_url=LOCAL) as client:
        assert client.get("/health").status_code == 200
        db = client.app.state.db
        with db.connect() as conn:
            conn.execute("create schema raw; create table raw.t (id serial primary key); drop schema raw cascade")
            owner = conn.execute("select pg_get_userbyid(datdba) from pg_database where datname = current_database()")
            assert owner.fetchone() == (APP_ROLE,)
            found = dict(
                conn.execute(
                    "select nspname, pg_get_userbyid(nspowner) from pg_namespace "
                    "where nspname <> 'information_schema' and nspname !~ '^pg_'"
                ).fetchall()
            )
    assert found["ops"] == APP_ROLE, found
    assert set(found.values()) <= {APP_ROLE, "pg_database_owner"}, found  # `public` belongs to the db's owner


def test_a_database_an_older_version_made_as_the_superuser_is_handed_to_the_app_role(pg_tmp):
    """Before, everything was the `postgres` superuser's: at the next start the database, its schemas, tables,
    views, sequences and functions become the app role's, and the app can go on (rebuild, drop, publish)."""
    state = pg_tmp / "state"
    server = EmbeddedPostgres(state)
    with open_database(None, state) as db:
        port = int(db.params["port"])
        with psycopg.connect(server.url(port, admin=True), autocommit=True) as conn:  # the old layout
            conn.execute("alter database features owner to postgres")
            conn.execute(
                "create schema marts; create table marts.user_features (id serial primary key, n int);"
                "insert into marts.user_features (n) values (7);"
                "create view marts.v as select n from marts.user_features;"
                "create sequence marts.loose; create function marts.f() returns int language sql as 'select 1';"
                "create schema ops; create table ops.runs (id bigint generated always as identity);"
                "create table public.leftover (x int); create extension vector;"
                "create type marts.mood as enum ('ok'); create domain marts.positive as int check (value > 0);"
                "create type marts.pair as (a int, b int);"
                "create table marts.parted (d date) partition by range (d);"
                "create table marts.parted_2026 partition of marts.parted for values from ('2026-01-01') to "
                "('2027-01-01')"
            )
    with open_database(None, state) as db, db.connect() as conn:
        owners = conn.execute(
            "select c.relname, pg_get_userbyid(c.relowner) from pg_class c join pg_namespace n on n.oid = "
            "c.relnamespace where n.nspname in ('marts', 'ops', 'public') and c.relkind in ('r', 'v', 'S')"
        ).fetchall()
        assert {name for name, _ in owners} >= {"user_features", "v", "loose", "user_features_id_seq", "runs"}
        assert {who for _, who in owners} == {APP_ROLE}, owners
        others = conn.execute(
            "select c.relname from pg_class c where c.relname like 'parted%' and c.relowner <> current_user::regrole "
            "union all select t.typname from pg_type t where t.typname in ('mood', 'positive', 'pair') "
            "and t.typowner <> current_user::regrole"
        ).fetchall()
        assert others == [], f"still the superuser's: {others}"
        members = conn.execute(
            "select distinct pg_get_userbyid(p.proowner) from pg_proc p join pg_depend d on d.classid = "
            "'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e' join pg_extension e on e.oid = d.refobjid "
            "where e.extname = 'vector'"
        ).fetchall()
        assert members == [("postgres",)], "an extension's members stay with the extension's owner"
        assert conn.execute("select pg_get_userbyid(proowner) from pg_proc where proname = 'f'").fetchone() == (
            APP_ROLE,
        )
        conn.execute("insert into marts.user_features (n) values (8)")  # its sequence is usable
        conn.execute("alter schema marts rename to marts__old; drop schema marts__old cascade; drop schema ops cascade")
        owner = conn.execute("select pg_get_userbyid(datdba) from pg_database where datname = 'features'")
        assert owner.fetchone() == (APP_ROLE,)


def test_a_superuser_database_url_is_warned_about_at_start(pg_server, database, tmp_path, caplog):
    """With DATABASE_URL naming a superuser, the API starts (it works) but says why it should not."""
    with psycopg.connect(database.url) as conn:
        assert superuser_warning(conn) is None or pg_server.owner is None
    if pg_server.owner is None:
        pytest.skip("TEST_DATABASE_URL: the tests' databases use its own role")
    admin = psycopg.conninfo.make_conninfo(pg_server.admin_url, dbname=database.params["dbname"])
    settings = Settings(database_url=admin, state_dir=tmp_path / "state", data_dir=tmp_path / "none").resolved()
    with caplog.at_level(logging.WARNING), TestClient(create_app(settings), base_url=LOCAL) as client:
        assert client.get("/health").status_code == 200
    warned = [r.getMessage() for r in caplog.records if "superuser" in r.getMessage()]
    assert warned and "docs/security.md" in warned[0] and "'postgres'" in warned[0], caplog.text
