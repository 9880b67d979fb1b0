"""Prometheus metrics: the runs, read from `ops.runs` at scrape time, and HTTP requests per route.

The one rule: run metrics come from the database, not from counters in this process, so every API process on
one database reports the same, right numbers (a run started by process A is counted by process B), and they
survive restarts. Request metrics are per process (label your scrape targets by instance, as usual).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import psycopg
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg.rows import tuple_row

from api.core.db.database import Database
from api.core.job.steps import STEP_NAMES
from api.core.mart.contract import MART
from api.core.runs.history import STATUSES

log = logging.getLogger(__name__)

RUN_BUCKETS = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
STEP_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)

_RUN_DURATIONS = """
with d as (
    select extract(epoch from finished_at - started_at)::float8 as s
    from ops.runs where started_at is not null and finished_at is not null
)
select b.le, count(d.s) filter (where d.s <= b.le), count(d.s), coalesce(sum(d.s), 0)
from unnest(%s::float8[]) as b(le) left join d on true
group by b.le order by b.le
"""

_STEP_DURATIONS = """
with s as (
    select e->>'name' as step,
           extract(epoch from (e->>'finished_at')::timestamptz - (e->>'started_at')::timestamptz)::float8 as secs
    from ops.runs, jsonb_array_elements(steps) as e
    where e->>'started_at' is not null and e->>'finished_at' is not null
)
select s.step, b.le, count(*) filter (where s.secs <= b.le), count(*), sum(s.secs)
from s cross join unnest(%s::float8[]) as b(le)
group by s.step, b.le order by s.step, b.le
"""


def _buckets(rows: list[tuple], bounds: tuple[float, ...]) -> tuple[list[tuple[str, float]], float]:
    """[(le, cumulative count)...] with +Inf, and the sum, from rows (le, count_le, count, sum)."""
    counts = {float(r[0]): r[1] for r in rows}
    total = rows[0][2] if rows else 0
    total_sum = float(rows[0][3] or 0) if rows else 0.0
    return [*((str(b), counts.get(b, 0)) for b in bounds), ("+Inf", total)], total_sum


class RunCollector(Collector):
    """Run metrics computed from `ops.runs` (and the mart) at each scrape."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("features_mart_database_up", "1 when the last scrape could read the database")
        try:
            metrics = list(self._from_database())
        except psycopg.Error as exc:
            log.warning("metrics: cannot read the database: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from metrics

    def _from_database(self) -> Iterator[Metric]:
        with self.db.connect(row_factory=tuple_row) as conn:
            by_status = dict(conn.execute("select status, count(*) from ops.runs group by status").fetchall())
            total = CounterMetricFamily("features_mart_runs", "Runs by status (run history)", labels=["status"])
            for status in STATUSES:
                total.add_metric([status], by_status.get(status, 0))
            yield total

            active = GaugeMetricFamily("features_mart_run_active", "1 while a run is queued or running")
            active.add_metric([], 1 if by_status.get("queued", 0) + by_status.get("running", 0) else 0)
            yield active

            rows = conn.execute(_RUN_DURATIONS, (list(RUN_BUCKETS),)).fetchall()
            duration = HistogramMetricFamily(
                "features_mart_run_duration_seconds", "Duration of finished runs (any outcome), start to end"
            )
            buckets, total_sum = _buckets(rows, RUN_BUCKETS)
            duration.add_metric([], buckets, total_sum)
            yield duration

            steps = HistogramMetricFamily(
                "features_mart_step_duration_seconds", "Duration of finished steps of runs", labels=["step"]
            )
            per_step: dict[str, list[tuple]] = {}
            for row in conn.execute(_STEP_DURATIONS, (list(STEP_BUCKETS),)).fetchall():
                per_step.setdefault(row[0], []).append(row[1:])
            for step in sorted(per_step, key=lambda s: STEP_NAMES.index(s) if s in STEP_NAMES else 99):
                buckets, total_sum = _buckets(per_step[step], STEP_BUCKETS)
                steps.add_metric([step], buckets, total_sum)
            yield steps

            last = conn.execute(
                "select extract(epoch from max(finished_at))::float8 from ops.runs where status = 'success'"
            ).fetchone()[0]
            if last is not None:
                success = GaugeMetricFamily(
                    "features_mart_last_success_timestamp_seconds", "When the last successful run finished (unix)"
                )
                success.add_metric([], last)
                yield success

            if conn.execute("select to_regclass(%s) is not null", (MART,)).fetchone()[0]:
                rows_now = conn.execute(f"select count(*) from {MART}").fetchone()[0]  # noqa: S608 - a constant
                mart_rows = GaugeMetricFamily("features_mart_mart_rows", "Rows in the published features mart")
                mart_rows.add_metric([], rows_now)
                yield mart_rows


#: The `method` label's values: the standard HTTP methods; any other name a client sends counts as `other`, so
#: made-up methods cannot grow the label set (each new value would be a new series, kept for good).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})


def method_label(method: str) -> str:
    """The request's method as a label from a closed set: a standard method, else `other`."""
    method = method.upper()
    return method if method in METHODS else "other"


class RequestMetrics:
    """HTTP request counts and latencies per route template (`/runs/{run_id}`, never the raw path) and method
    (`method_label`): every label comes from a closed set."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "features_mart_http_requests",
            "HTTP requests by method, route template and status code",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "features_mart_http_request_duration_seconds",
            "HTTP request latency (to the end of the response body) by method and route template",
            ["method", "route"],
            registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method_label(method)
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
