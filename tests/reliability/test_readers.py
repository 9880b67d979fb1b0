"""Readers during rebuilds: while 5 runs rebuild and publish the mart back to back, readers of `/features`
(HTTP) and of `marts.user_features` (SQL) only ever see the complete, identical data set, and never an error."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import httpx
import pytest
from psycopg.rows import dict_row

from api.core.db.database import Database
from tests.conftest import FINISHED, RUN_TIMEOUT, wait_until
from tests.reliability.conftest import current_step, publish_quickly, trigger

pytestmark = pytest.mark.slow

REBUILDS = 5
READERS = 2  # of each kind
PAUSE = 0.02  # between two reads of one reader, except when a publish is near (then none), to spare 2 cores


class Reads:
    """What the reader threads saw: (reader, started, ended, table oid) per read, and every deviation."""

    def __init__(self) -> None:
        self.done: list[tuple[str, float, float, int | None]] = []
        self.wrong: list[str] = []
        self.stop = threading.Event()
        self.dense = threading.Event()  # set while a publish is near: read without pausing
        self.lock = threading.Lock()

    def record(self, reader: str, started: float, oid: int | None = None, problem: str | None = None) -> None:
        with self.lock:
            self.done.append((reader, started, time.time(), oid))
            if problem:
                self.wrong.append(f"{reader}, read at {started:.3f}: {problem}")

    def count(self, kind: str) -> int:
        return sum(1 for reader, *_ in self.done if reader.startswith(kind))


def read_http(name: str, base_url: str, expected: dict, reads: Reads) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        while not reads.stop.is_set():
            started = time.time()
            try:
                response = http.get("/features", params={"limit": 1000})
                body = response.json()
                problem = None if response.status_code == 200 and body == expected else f"{response.status_code} {body}"
            except Exception as exc:
                problem = repr(exc)
            reads.record(name, started, problem=problem)
            time.sleep(0 if reads.dense.is_set() else PAUSE)


def read_sql(name: str, db: Database, expected: list[dict], reads: Reads) -> None:
    """One long-lived connection, as a BI tool would hold (psycopg prepares the repeated statement)."""
    with db.connect(row_factory=dict_row) as conn:
        while not reads.stop.is_set():
            started, oid = time.time(), None
            try:
                rows = conn.execute(
                    "select tableoid::oid::bigint as _oid, * from marts.user_features order by user_id"
                ).fetchall()
                oid = rows[0]["_oid"] if rows else None
                seen = [{k: v for k, v in r.items() if k != "_oid"} for r in rows]
                problem = None if seen == expected and len({r["_oid"] for r in rows}) == 1 else f"rows {seen}"
            except Exception as exc:
                problem = repr(exc)
            reads.record(name, started, oid, problem)
            time.sleep(0 if reads.dense.is_set() else PAUSE)


def follow(client: httpx.Client, run_id: int, dense: threading.Event) -> dict:
    """Wait for the run to finish; `dense` is set from the last quarter of its test step (the publish comes
    next) until the publish is over."""

    def finished() -> dict | None:
        run = client.get(f"/runs/{run_id}").json()
        step, progress = current_step(run), run["progress"] or {}
        total = progress.get("nodes_total") or 0
        if step == "publish" or (step == "test" and total and progress["nodes_done"] >= 0.75 * total):
            dense.set()
        elif step != "test":
            dense.clear()
        return run if run["status"] in FINISHED else None

    return wait_until(finished, RUN_TIMEOUT, f"run {run_id} to finish", interval=0.1)


def test_readers_see_only_complete_identical_data_while_the_mart_is_rebuilt(serve, settings, database):
    publish_quickly(settings)
    api = serve()
    expected_http = api.client.get("/features", params={"limit": 1000}).json()
    assert expected_http["total"] == len(expected_http["items"]) == 10
    with database.connect(row_factory=dict_row) as conn:
        expected_sql = conn.execute("select * from marts.user_features order by user_id").fetchall()

    reads = Reads()
    readers = []
    for i in range(READERS):
        readers.append(threading.Thread(target=read_http, args=(f"http-{i}", api.base_url, expected_http, reads)))
        readers.append(threading.Thread(target=read_sql, args=(f"sql-{i}", database, expected_sql, reads)))
    for reader in readers:
        reader.start()
    publishes = []
    try:
        for _ in range(REBUILDS):
            run = follow(api.client, trigger(api.client), reads.dense)
            assert run["status"] == "success", run["error"]
            step = next(s for s in run["steps"] if s["name"] == "publish")
            publishes.append(tuple(datetime.fromisoformat(step[k]).timestamp() for k in ("started_at", "finished_at")))
    finally:
        reads.stop.set()
        for reader in readers:
            reader.join(timeout=60)

    during = [r for r in reads.done if any(r[1] <= finished and r[2] >= started for started, finished in publishes)]
    print(f"{len(reads.done)} reads ({reads.count('http')} HTTP, {reads.count('sql')} SQL), {len(during)} in a publish")
    assert not reads.wrong, f"{len(reads.wrong)} of {len(reads.done)} reads went wrong:\n" + "\n".join(reads.wrong[:20])
    assert reads.count("http") > 50 and reads.count("sql") > 50
    # The readers kept reading through every publish: in the second before and after each, and some during one.
    for started, finished in publishes:
        assert any(started - 1 <= end <= started for _, _, end, _ in reads.done), "no read just before a publish"
        assert any(finished <= begin <= finished + 1 for _, begin, _, _ in reads.done), "no read just after one"
    assert during, "no read overlapped a publish"
    # ... and each SQL reader saw every published table in turn (the first, then one per rebuild), never an
    # older one after a newer one.
    for i in range(READERS):
        oids = [oid for reader, _, _, oid in reads.done if reader == f"sql-{i}"]
        generations = [oid for n, oid in enumerate(oids) if n == 0 or oid != oids[n - 1]]
        assert len(generations) == len(set(generations)) == REBUILDS + 1, generations
