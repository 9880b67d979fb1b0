"""The `ops` schema (run history, webhook deliveries, schedule ticks), in one place and versioned.

Each migration is numbered; `migrate` applies, in order, those a database has not recorded in
`ops.schema_migrations`, each in its own transaction together with its record. It runs at every start-up of
the API (and wherever a process needs the `ops` tables), holding TRIGGER_LOCK for the transaction, so that two
processes starting together apply each migration once and no trigger sees a half-migrated table.

The one rule: a migration is never edited once released; a change to the schema is a new migration at the
end. The first three are written to also bring a database made before this table existed (by the DDL the
modules used to run at start-up, with `if not exists`) to the same shape.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from api.core.db.database import Database
from api.core.db.locks import LOCK_CLASS, TRIGGER_LOCK

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "run history",
        """
        create schema if not exists ops;
        create table if not exists ops.runs (
            run_id bigint generated always as identity primary key,
            status text not null,
            trigger jsonb not null default '{}',
            created_at timestamptz not null default now(),
            started_at timestamptz,
            finished_at timestamptz,
            steps jsonb not null default '[]',
            progress jsonb,
            error text,
            failures jsonb,
            log_path text,
            dbt_pid integer,
            worker text,
            cancel_requested_at timestamptz,
            cancel_reason text
        );
        -- databases made before cancel existed
        alter table ops.runs add column if not exists cancel_requested_at timestamptz;
        alter table ops.runs add column if not exists cancel_reason text;
        alter table ops.runs drop constraint if exists runs_status_check;
        alter table ops.runs add constraint runs_status_check
            check (status in ('queued', 'running', 'success', 'failed', 'cancelled'));
        create index if not exists runs_active on ops.runs (status) where status in ('queued', 'running');
        comment on table ops.runs is 'One row per triggered run of the features-mart job (written by the API).';
        """,
    ),
    Migration(
        2,
        "webhook deliveries",
        """
        create table if not exists ops.webhook_deliveries (
            delivery_id bigint generated always as identity primary key,
            run_id bigint not null,
            event_id text not null,
            event_type text not null,
            url text not null,
            attempt integer not null,
            status_code integer,
            error text,
            attempted_at timestamptz not null default now()
        );
        create index if not exists webhook_deliveries_run on ops.webhook_deliveries (run_id);
        comment on table ops.webhook_deliveries is 'One row per webhook delivery attempt (written by the API).';
        """,
    ),
    Migration(
        3,
        "schedule ticks",
        """
        create table if not exists ops.schedule_ticks (
            scheduled_for timestamptz primary key,
            schedule text not null,
            worker text not null,
            fired_at timestamptz not null default now(),
            run_id bigint,
            outcome text
        );
        comment on table ops.schedule_ticks is
            'One row per SCHEDULE tick, claimed by the API process that fired it.';
        """,
    ),
    Migration(
        4,
        "input problems of a run",
        """
        alter table ops.runs add column input_problems jsonb;
        comment on column ops.runs.input_problems is
            'When the seed step rejected the input: {"total": N, "items": [{file, line, column, value, key, message}]}';
        """,
    ),
    Migration(
        5,
        "queued runs and retries",
        """
        alter table ops.runs add column waiting boolean not null default false;
        alter table ops.runs add column retry jsonb;
        create index runs_waiting on ops.runs (run_id) where waiting;
        comment on column ops.runs.waiting is
            'A queued run waiting for the active run to end (triggered while one was active); its process holds '
            'the advisory lock api/core/db/locks.py queue_key(run_id) while it waits.';
        comment on column ops.runs.retry is
            'A retry of a failed run: {"of": run_id, "mode": "failed nodes" | "whole job", "reason", "reused": [...]}';
        """,
    ),
    Migration(
        6,
        "browser sessions",
        """
        create table ops.sessions (
            session_hash text primary key,
            token_key text not null,
            created_at timestamptz not null default now(),
            expires_at timestamptz not null
        );
        create index sessions_expires_at on ops.sessions (expires_at);
        comment on table ops.sessions is
            'Browser sessions (api/core/sessions.py): the cookie''s SHA-256, never the cookie; logout deletes the row';
        comment on column ops.sessions.token_key is 'HMAC of API_TOKEN: a new token ends every session';
        """,
    ),
)

_HISTORY = """
create schema if not exists ops;
create table if not exists ops.schema_migrations (
    version integer primary key,
    name text not null,
    applied_at timestamptz not null default now()
);
comment on table ops.schema_migrations is 'The migrations of the ops schema applied to this database.';
"""


def migrate(db: Database, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply the migrations this database lacks, in order; returns the versions applied now."""
    applied: list[int] = []
    with db.connect() as conn:
        for migration in migrations:
            with conn.transaction():
                conn.execute("select pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, TRIGGER_LOCK))
                conn.execute(_HISTORY)
                done = conn.execute(
                    "select 1 from ops.schema_migrations where version = %s", (migration.version,)
                ).fetchone()
                if done:
                    continue
                conn.execute(migration.sql)
                conn.execute(
                    "insert into ops.schema_migrations (version, name) values (%s, %s)",
                    (migration.version, migration.name),
                )
            applied.append(migration.version)
            log.info("ops schema: applied migration %s (%s)", migration.version, migration.name)
    return applied


def applied_versions(db: Database) -> list[int]:
    """The versions recorded in this database, in order (empty before the first `migrate`)."""
    with db.connect() as conn:
        if conn.execute("select to_regclass('ops.schema_migrations') is null").fetchone()[0]:
            return []
        return [row[0] for row in conn.execute("select version from ops.schema_migrations order by 1").fetchall()]
