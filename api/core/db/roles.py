"""The database roles: dbt and the API log in as `features_mart`, a role that is not a superuser and owns the
project's database (so it creates, and owns, every schema dbt and the API write: raw, staging, intermediate,
marts, audit, ops and their __build/__dev/__old copies). The superuser is used only to set that up.

On the embedded server (api/core/db/embedded.py) this is done at every start: the role is created with its own
random password (STATE_DIR/pg/app_password), the database is created owned by it, and a database made by an
older version (everything owned by `postgres`) is handed over to it. For an external server, the same SQL is in
docs/security.md; `superuser_warning` says so at start-up when DATABASE_URL logs in as a superuser.

The one rule: dbt, the API and `db psql` never log in as the superuser; only `python -m api.cli db url --admin`
prints its URL, for setting up.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql

#: The role dbt and the API log in as on the embedded server.
APP_ROLE = "features_mart"
#: What the role may not do: no superuser, no new roles or databases, no replication, no bypassing row security.
_LIMITS = "login nosuperuser nocreatedb nocreaterole noreplication nobypassrls"

#: Hands a database and what the superuser owns in it to the app role (also run by the Compose database's init).
HAND_OVER = Path(__file__).with_name("hand_over.sql")


def ensure_app_role(admin: psycopg.Connection, verifier: str, role: str = APP_ROLE) -> None:
    """Create `role` if it is missing, or bring it back to what it should be: not a superuser, and the password
    whose SCRAM `verifier` is given (the password itself never travels in a statement, nor lands in a server
    log). `admin`: a superuser's autocommit connection."""
    exists = admin.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
    verb = "alter" if exists else "create"
    admin.execute(
        sql.SQL(verb + " role {} " + _LIMITS + " password {}").format(sql.Identifier(role), sql.Literal(verifier))
    )


def ensure_database(admin: psycopg.Connection, dbname: str, admin_url_for, role: str = APP_ROLE) -> None:
    """Create `dbname` owned by `role`, or hand an existing one over to it: its owner, and every schema, table,
    view, sequence, type and function the superuser owns in it, at every start (cheap when there is nothing to
    hand over; it also catches what a process of an older version made since). `admin_url_for(dbname)`: the
    superuser's URL of a database."""
    found = admin.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone()
    if found is None:
        admin.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(dbname), sql.Identifier(role)))
        return
    with psycopg.connect(admin_url_for(dbname), connect_timeout=10, autocommit=True) as conn:
        conn.execute("select set_config('features_mart.app_role', %s, false)", (role,))
        conn.execute(HAND_OVER.read_text())


def superuser_warning(conn: psycopg.Connection) -> str | None:
    """A warning when `conn` is logged in as a superuser (a DATABASE_URL that should name a role of its own)."""
    user, superuser = conn.execute(
        "select current_user, rolsuper from pg_roles where rolname = current_user"
    ).fetchone()
    if not superuser:
        return None
    return (
        f"the database role {user!r} is a superuser: dbt and the API need only a role that owns the project's "
        "database (see 'A role of its own' in docs/security.md); a superuser can run shell commands on the "
        "database server (COPY ... TO PROGRAM) and read its files"
    )
