"""The run lock and the publish step under a hostile database: a lock taken over while the run's connection
was down stops the run (nothing published), and a reader idling in a transaction on the old mart delays only
the drop of the replaced schemas, never the publish or the recorded outcome."""

from __future__ import annotations

import threading

import psycopg
import pytest
from psycopg import sql

from api.core.db import locks
from api.core.db.database import Database
from api.core.db.migrations import migrate
from api.core.job.steps import step_names
from api.core.mart import publish
from api.core.runs import lock
from tests.conftest import wait_for_run, wait_until
from tests.reliability.conftest import build_schemas, current_step, dump_published, publish_quickly, run_row, trigger

pytestmark = pytest.mark.slow


def _lock_holder_pid(db: Database) -> int | None:
    with db.connect() as conn:
        row = conn.execute(
            "select pid from pg_locks where locktype = 'advisory' and granted and classid::bigint = %s "
            "and objid::bigint = %s and objsubid = 2",
            (locks.LOCK_CLASS, locks.RUN_LOCK),
        ).fetchone()
    return row[0] if row else None


class LockThief:
    """Another session waiting for RUN_LOCK (it gets it the moment the run's connection dies)."""

    def __init__(self, db: Database) -> None:
        self.conn = db.connect()
        self.pid = self.conn.info.backend_pid
        self.got = threading.Event()
        self.thread = threading.Thread(target=self._take, daemon=True)
        self.thread.start()

    def _take(self) -> None:
        self.conn.execute("select pg_advisory_lock(%s, %s)", (locks.LOCK_CLASS, locks.RUN_LOCK))
        self.got.set()

    def close(self) -> None:
        self.thread.join(timeout=30)
        self.conn.close()


def test_a_run_whose_lock_was_taken_over_fails_and_publishes_nothing(settings, database, client):
    publish_quickly(settings)
    before = dump_published(database)
    run_id = trigger(client)
    wait_until(lambda: current_step(run_row(database, run_id)) == "run", 240, f"run {run_id} to reach dbt run")
    owner = _lock_holder_pid(database)
    assert owner is not None
    thief = LockThief(database)
    try:
        wait_until(lambda: _waiting(database, thief.pid), 30, "the other session to wait for the lock")
        with database.connect() as admin:  # the run's connection vanishes (a network cut, a proxy restart)
            admin.execute("select pg_terminate_backend(%s)", (owner,))
        assert thief.got.wait(30), "the other session took the lock"
        run = wait_for_run(client, run_id)
    finally:
        thief.close()
    problems = []
    if run["status"] != "failed":
        problems.append(f"status {run['status']}")
    if "lost the run lock" not in (run["error"] or ""):
        problems.append(f"error does not say why: {run['error']}")
    if next(s for s in run["steps"] if s["name"] == "publish")["status"] != "skipped":
        problems.append(f"publish step: {run['steps']}")
    if dump_published(database) != before:
        problems.append("the published mart changed")
    assert not problems, problems


def _waiting(db: Database, pid: int) -> bool:
    with db.connect() as conn:
        return conn.execute("select wait_event_type = 'Lock' from pg_stat_activity where pid = %s", (pid,)).fetchone()[
            0
        ]


def test_publish_refuses_without_the_run_lock(database):
    migrate(database)
    with database.connect() as conn:
        for schema in publish.BUILD_SCHEMAS:
            conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema + "__r9")))
        with pytest.raises(lock.LockLost):
            publish.publish(conn, "__r9", "r9")
        assert not {"raw", "marts"} & {r[0] for r in conn.execute("select nspname from pg_namespace").fetchall()}


def test_the_lock_connection_has_keepalives(database):
    migrate(database)
    handle = lock.start_run(database, {}, step_names("default"))
    try:
        assert lock.holds_run_lock(handle.conn)
        names = ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count", "tcp_user_timeout")
        server_side = {name: handle.conn.execute(f"show {name}").fetchone()[name] for name in names}
        assert server_side == dict(zip(names, ("10", "5", "3", "30000"), strict=True))
        assert handle.conn.info.get_parameters().get("keepalives_idle") == "10"
    finally:
        handle.release()


def test_a_reader_in_an_open_transaction_does_not_hold_up_publish(settings, database, client, monkeypatch):
    monkeypatch.setattr(publish, "DROP_RETRY_SECONDS", 0.5)
    publish_quickly(settings)
    reader = database.connect(autocommit=False)
    try:
        reader.execute("select count(*) from marts.user_features").fetchone()  # now idle in transaction
        run_id = trigger(client)
        run = wait_for_run(client, run_id)
        assert run["status"] == "success", run["error"]
        assert f"marts__retired_r{run_id}" in build_schemas(database), "the old mart waits for its reader"
        with database.connect() as other:  # everyone else sees the new mart
            assert other.execute("select count(*) from marts.user_features").fetchone()[0] > 0
    finally:
        reader.close()
    wait_until(lambda: not build_schemas(database), 60, "the replaced schemas to be dropped once the reader left")


def test_leftover_schemas_a_reader_holds_are_skipped_at_start_up(database):
    with database.connect() as conn:
        conn.execute("create schema marts__retired_r7; create table marts__retired_r7.t (x int)")
        conn.execute("create schema raw__r8")
    reader = database.connect(autocommit=False)
    try:
        reader.execute("select * from marts__retired_r7.t").fetchall()
        with database.connect() as conn:
            assert publish.drop_leftovers(conn) == ["raw__r8"]
    finally:
        reader.close()
    with database.connect() as conn:
        assert publish.drop_leftovers(conn) == ["marts__retired_r7"]
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("select * from marts__retired_r7.t")
