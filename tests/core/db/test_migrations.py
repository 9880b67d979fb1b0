"""The `ops` schema's migrations (api/core/db/migrations.py): applied once each, in order, recorded; a database made
by the DDL that ran before them ends in the same shape as a new one; concurrent start-ups apply each once."""

from __future__ import annotations

import threading

import pytest

from api.core.db.database import Database
from api.core.db.migrations import MIGRATIONS, applied_versions, migrate

#: What the modules ran at every start-up before the migrations existed (runs, webhooks, scheduler), verbatim.
LEGACY_DDL = """
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
    worker text
);
-- Added after the first release: existing databases get them here.
alter table ops.runs add column if not exists cancel_requested_at timestamptz;
alter table ops.runs add column if not exists cancel_reason text;
do $$
begin
    if not exists (select from pg_constraint where conrelid = 'ops.runs'::regclass and conname = 'runs_status_check'
                   and pg_get_constraintdef(oid) like '%cancelled%') then
        alter table ops.runs drop constraint if exists runs_status_check;
        alter table ops.runs add constraint runs_status_check
            check (status in ('queued', 'running', 'success', 'failed', 'cancelled'));
    end if;
end $$;
create index if not exists runs_active on ops.runs (status) where status in ('queued', 'running');
comment on table ops.runs is 'One row per triggered run of the features-mart job (written by the API).';

create schema if not exists ops;
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

create schema if not exists ops;
create table if not exists ops.schedule_ticks (
    scheduled_for timestamptz primary key,
    schedule text not null,
    worker text not null,
    fired_at timestamptz not null default now(),
    run_id bigint,
    outcome text
);
comment on table ops.schedule_ticks is 'One row per SCHEDULE tick, claimed by the API process that fired it.';
"""


@pytest.fixture
def second_database(pg_server):
    with pg_server.fresh_database() as db:
        yield db


def shape(db: Database) -> dict[str, list]:
    """Tables, columns (type, nullability, default), constraints, indexes and comments of the ops schema."""
    with db.connect() as conn:
        return {
            "columns": conn.execute(
                "select table_name, column_name, data_type, is_nullable, column_default, is_identity "
                "from information_schema.columns where table_schema = 'ops' and table_name <> 'schema_migrations' "
                "order by table_name, column_name"
            ).fetchall(),
            "constraints": conn.execute(
                "select conrelid::regclass::text, conname, pg_get_constraintdef(oid) from pg_constraint "
                "where connamespace = 'ops'::regnamespace and conrelid <> 'ops.schema_migrations'::regclass "
                "order by 1, 2"
            ).fetchall(),
            "indexes": conn.execute(
                "select indexname, indexdef from pg_indexes where schemaname = 'ops' "
                "and tablename <> 'schema_migrations' order by 1"
            ).fetchall(),
            "comments": conn.execute(
                "select c.relname, obj_description(c.oid) from pg_class c "
                "where c.relnamespace = 'ops'::regnamespace and c.relkind = 'r' order by 1"
            ).fetchall(),
        }


def test_migrations_apply_once_in_order_and_are_recorded(database):
    versions = [m.version for m in MIGRATIONS]
    # numbered in order, each once (numbers are reserved per branch: one may be missing until its branch merges)
    assert versions == list(range(1, len(versions) + 1)), "numbered 1, 2, 3, ... in order, no gaps"
    assert applied_versions(database) == []
    assert migrate(database) == versions
    assert applied_versions(database) == versions
    assert migrate(database) == [], "a second start-up applies nothing"
    with database.connect() as conn:
        names = [r[0] for r in conn.execute("select name from ops.schema_migrations order by version").fetchall()]
    assert names == [m.name for m in MIGRATIONS]


def test_a_database_made_before_the_migrations_ends_like_a_new_one(database, second_database):
    with second_database.connect() as conn:
        conn.execute(LEGACY_DDL)
        conn.execute("insert into ops.runs (status) values ('success')")
    migrate(database)
    assert migrate(second_database) == [m.version for m in MIGRATIONS]
    assert shape(second_database) == shape(database)
    with second_database.connect() as conn:
        assert conn.execute("select count(*) from ops.runs").fetchone()[0] == 1, "the history is kept"


def test_concurrent_start_ups_apply_each_migration_once(database):
    applied: list[list[int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        try:
            barrier.wait()
            applied.append(migrate(database))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sorted(v for versions in applied for v in versions) == [m.version for m in MIGRATIONS]
