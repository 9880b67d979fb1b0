"""OpenLineage run events for every run: one for the job (START when the run starts, then COMPLETE, FAIL or
ABORT when it ends) and, for each dbt node the run executed, START then COMPLETE or FAIL, with their input and
output datasets. Sent with openlineage-python's client to OPENLINEAGE_URL (its HTTP transport), or to whatever
transport the client's own YAML file OPENLINEAGE_CONFIG describes. Without either, nothing is sent.

The node events are built, when the run ends, from the run's own artifacts (`runs/<id>/artifacts/manifest.json`
and `run_results.json`): a node's inputs are the relations it depends on, its outputs the relation dbt wrote, in
the build schemas (`*__build`) where dbt actually wrote it; a test's inputs are the relations it reads. The
job's inputs are the run's input CSV files; when the run succeeded, its output is the published table,
`marts.user_features`, the one consumers read. Datasets are named as OpenLineage's naming spec says:
namespace `postgres://host:port`, name `database.schema.table`; files: namespace `file`, name the path.

The one rule: lineage never blocks or fails a run. `job_started` and `job_finished` only queue their work; one
daemon thread per process builds and sends the events in order (HTTP timeout 5 s, 2 retries) and logs, never
raises, whatever goes wrong.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import error_message_run, job_type_job, parent_run
from openlineage.client.uuid import generate_new_uuid
from psycopg.conninfo import conninfo_to_dict

from api.config import Settings
from api.core.mart.contract import MART_SCHEMA, MART_TABLE
from api.core.mart.publish import BUILD_SUFFIX
from api.core.seeds.schema import SEED_FILES

log = logging.getLogger(__name__)

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python#features-mart"
TIMEOUT_SECONDS = 5.0
#: The job's name (as the dbt Cloud-compatible API names it); a node's job is `features-mart.<unique_id>`.
JOB = "features-mart"
#: A node's run_results status -> the state its run ends in (skipped nodes never ran: no events).
NODE_END = {"success": RunState.COMPLETE, "pass": RunState.COMPLETE, "warn": RunState.COMPLETE,
            "error": RunState.FAIL, "fail": RunState.FAIL, "runtime error": RunState.FAIL}  # fmt: skip
JOB_END = {"success": RunState.COMPLETE, "failed": RunState.FAIL, "cancelled": RunState.ABORT}


def enabled(settings: Settings) -> bool:
    return bool(settings.openlineage_url or settings.openlineage_config)


def make_client(settings: Settings) -> OpenLineageClient:
    """The client: OPENLINEAGE_CONFIG's transport (the client's YAML format) if set, else HTTP to OPENLINEAGE_URL."""
    if settings.openlineage_config:
        return OpenLineageClient(config=yaml.safe_load(Path(settings.openlineage_config).read_text()))
    transport = {"type": "http", "url": settings.openlineage_url, "timeout": TIMEOUT_SECONDS,
                 "retry": {"total": 2, "connect": 2, "read": 2, "backoff_factor": 0.2}}  # fmt: skip
    return OpenLineageClient(config={"transport": transport})


# -- the events --------------------------------------------------------------------------------------------------
def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def postgres_namespace(database_url: str) -> tuple[str, str]:
    """(dataset namespace `postgres://host:port`, database name) of a database URL or conninfo; no credentials.
    A Unix socket (the embedded Postgres) counts as `localhost`."""
    info = conninfo_to_dict(database_url)
    host = str(info.get("host") or "localhost").split(",")[0]
    host = "localhost" if host.startswith("/") else host
    return f"postgres://{host}:{str(info.get('port') or 5432).split(',')[0]}", str(info.get("dbname") or "postgres")


def job_facets(kind: str) -> dict[str, Any]:
    return {"jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="DBT", jobType=kind)}


def job_event(settings: Settings, state: RunState, run_id: str, when: datetime, database_url: str,
              error: str | None = None) -> RunEvent:  # fmt: skip
    """The job's event: inputs the run's CSV files; outputs, on COMPLETE, the published mart."""
    namespace, database = postgres_namespace(database_url)
    inputs = [InputDataset(namespace="file", name=str(Path(settings.data_dir).resolve() / name)) for name in SEED_FILES]
    outputs = []
    if state == RunState.COMPLETE:
        outputs = [OutputDataset(namespace=namespace, name=f"{database}.{MART_SCHEMA}.{MART_TABLE}")]
    facets = {}
    if error:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(message=error, programmingLanguage="python")
    return RunEvent(
        eventType=state, eventTime=iso(when), producer=PRODUCER,
        run=Run(runId=run_id, facets=facets),
        job=Job(namespace=settings.openlineage_namespace, name=JOB, facets=job_facets("JOB")),
        inputs=inputs, outputs=outputs,
    )  # fmt: skip


def node_results(run_results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each node's result from the merged run_results.json, the first per node: later ones are `dbt docs
    generate`'s compilations of the same nodes, not runs of them."""
    seen: dict[str, dict[str, Any]] = {}
    for result in run_results.get("results", []):
        seen.setdefault(result["unique_id"], result)
    return [r for r in seen.values() if r.get("status") in NODE_END]


def node_events(settings: Settings, manifest: dict[str, Any], run_results: dict[str, Any], parent_run_id: str,
                database_url: str) -> list[RunEvent]:  # fmt: skip
    """START then COMPLETE or FAIL for each node that ran, timed by its run_results, child of the job's run."""
    namespace, database = postgres_namespace(database_url)
    nodes = {**manifest.get("nodes", {}), **manifest.get("sources", {})}
    suffix = "" if settings.dbt_target == "spark" else BUILD_SUFFIX
    seeds_dir = (Path(settings.state_dir) / "build" / "seeds").resolve()

    def relation(unique_id: str) -> str | None:
        node = nodes.get(unique_id)
        if node is None or node["resource_type"] not in ("model", "seed", "snapshot", "source"):
            return None
        schema = node["schema"] if node["resource_type"] == "source" else node["schema"].removesuffix(suffix) + suffix
        return f"{database}.{schema}.{node.get('alias') or node.get('identifier') or node['name']}"

    parent = parent_run.ParentRunFacet(
        run=parent_run.Run(runId=parent_run_id),
        job=parent_run.Job(namespace=settings.openlineage_namespace, name=JOB),
    )
    events = []
    for result in node_results(run_results):
        node = nodes.get(result["unique_id"])
        if node is None:
            continue
        depends = node.get("depends_on", {}).get("nodes", [])
        inputs = [InputDataset(namespace=namespace, name=name) for name in filter(None, map(relation, depends))]
        if node["resource_type"] == "seed":
            inputs.append(InputDataset(namespace="file", name=str(seeds_dir / f"{node['name']}.csv")))
        own = relation(node["unique_id"])
        outputs = [OutputDataset(namespace=namespace, name=own)] if own else []
        started, ended = node_times(result)
        run_id = str(generate_new_uuid(started))
        end_state = NODE_END[result["status"]]
        job = Job(
            namespace=settings.openlineage_namespace,
            name=f"{JOB}.{node['unique_id']}",
            facets=job_facets(node["resource_type"].upper()),
        )
        end_facets: dict[str, Any] = {"parent": parent}
        if end_state == RunState.FAIL:
            message = result.get("message") or f"{node['unique_id']}: {result['status']}"
            error = error_message_run.ErrorMessageRunFacet(message=message, programmingLanguage="SQL")
            end_facets["errorMessage"] = error
        for state, when, facets in ((RunState.START, started, {"parent": parent}), (end_state, ended, end_facets)):
            events.append(RunEvent(
                eventType=state, eventTime=iso(when), producer=PRODUCER, run=Run(runId=run_id, facets=facets),
                job=job, inputs=inputs, outputs=outputs,
            ))  # fmt: skip
    return events


def node_times(result: dict[str, Any]) -> tuple[datetime, datetime]:
    """When a node's execution started and ended (its compile phase if it never executed)."""
    timing = {t["name"]: t for t in result.get("timing") or []}
    phase = timing.get("execute") or timing.get("compile")
    if not phase or not phase.get("started_at"):
        now = datetime.now(timezone.utc)
        return now, now
    parse = lambda text: datetime.fromisoformat(text.replace("Z", "+00:00"))  # noqa: E731
    return parse(phase["started_at"]), parse(phase.get("completed_at") or phase["started_at"])


def read_artifacts(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's manifest.json and run_results.json (empty when the run stopped before dbt wrote them)."""
    found = []
    for name in ("manifest.json", "run_results.json"):
        path = run_dir / "artifacts" / name
        found.append(json.loads(path.read_text()) if path.exists() else {})
    return found[0], found[1]


def run_end_events(settings: Settings, run_dir: Path, run_id: str, status: str, error: str | None,
                   database_url: str, finished: datetime) -> list[RunEvent]:  # fmt: skip
    """Every event a run sends when it ends: its nodes', then the job's COMPLETE, FAIL or ABORT."""
    manifest, run_results = read_artifacts(run_dir)
    events = node_events(settings, manifest, run_results, run_id, database_url) if manifest else []
    events.append(job_event(settings, JOB_END.get(status, RunState.FAIL), run_id, finished, database_url, error))
    return events


# -- sending, in the background ----------------------------------------------------------------------------------
_work: queue.Queue[Callable[[], None]] = queue.Queue()
_sender: threading.Thread | None = None
_sender_lock = threading.Lock()


def _send_forever() -> None:
    while True:
        task = _work.get()
        try:
            task()
        except Exception:  # lineage never fails a run, nor this thread
            log.warning("OpenLineage: could not send the events", exc_info=True)


def _submit(task: Callable[[], None]) -> None:
    global _sender
    with _sender_lock:
        if _sender is None or not _sender.is_alive():
            _sender = threading.Thread(target=_send_forever, name="openlineage", daemon=True)
            _sender.start()
    _work.put(task)


def send(settings: Settings, build: Callable[[], list[RunEvent]], what: str) -> None:
    """Build the events and emit them one by one, in the sender thread; log the first failure and stop."""

    def task() -> None:
        events = build()
        client = make_client(settings)
        for number, event in enumerate(events, 1):
            try:
                client.emit(event)
            except Exception as exc:
                log.warning("OpenLineage: %s: event %d of %d not sent (%s: %s); the rest of them dropped",
                            what, number, len(events), type(exc).__name__, exc)  # fmt: skip
                return
        log.info("OpenLineage: %s: %d events sent", what, len(events))

    _submit(task)


def job_started(settings: Settings, run_id: int, database_url: str) -> str | None:
    """Queue the job's START event; returns the OpenLineage run id (None: lineage is off)."""
    if not enabled(settings):
        return None
    lineage_id, when = str(generate_new_uuid()), datetime.now(timezone.utc)
    send(settings, lambda: [job_event(settings, RunState.START, lineage_id, when, database_url)], f"run {run_id} start")
    return lineage_id


def job_finished(settings: Settings, run_id: int, lineage_id: str | None, run_dir: Path, status: str,
                 error: str | None, database_url: str) -> None:  # fmt: skip
    """Queue the events of the run's end: its nodes' (from its artifacts) and the job's."""
    if lineage_id is None:
        return
    when = datetime.now(timezone.utc)
    send(settings, lambda: run_end_events(settings, run_dir, lineage_id, status, error, database_url, when),
         f"run {run_id} end")  # fmt: skip
