"""OpenLineage from served runs (api/core/lineage.py): with OPENLINEAGE_URL at a local HTTP receiver that
validates every event against the spec's JSON schemas (tests/lineage_receiver.py), a successful run sends the
job's START then COMPLETE and each node's START then COMPLETE; a run whose model fails sends that node's FAIL
and the job's FAIL. With the receiver refusing connections or never answering, runs still succeed and the
failure is logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.conftest import LOCAL, wait_until
from tests.lineage_receiver import Receiver, hanging_receiver, receiver, refused_url
from tests.reliability.test_retry import FAULTY, _clear_fault, _inject_fault

pytestmark = pytest.mark.slow
JOB = "features-mart"


@contextmanager
def served(settings, url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"openlineage_url": url})), base_url=LOCAL) as client:
        yield client


def job_ended(got: Receiver, count: int) -> list[dict] | None:
    """The events, once the job's end event of `count` runs arrived."""
    events = got.snapshot()
    ends = [e for e in events if e["job"]["name"] == JOB and e["eventType"] != "START"]
    return events if len(ends) >= count else None


def by_run(events: list[dict]) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {}
    for event in events:
        runs.setdefault(event["run"]["runId"], []).append(event)
    return runs


def test_runs_send_valid_events_for_the_job_and_each_node(settings, database, pg_server):
    with receiver() as (url, got), served(settings, url) as client:
        ok = client.post("/trigger?wait=true").json()
        assert ok["status"] == "success", ok
        events = wait_until(lambda: job_ended(got, 1), 120, "the first run's lineage")
        client.get("/health")  # the ops schema exists for the fault's function
        _inject_fault(pg_server.as_superuser(database))
        try:
            failed = client.post("/trigger?wait=true").json()
        finally:
            _clear_fault(pg_server.as_superuser(database))
        assert failed["status"] == "failed" and FAULTY in failed["error"], failed
        both = wait_until(lambda: job_ended(got, 2), 120, "the failed run's lineage")

    assert got.problems == [] and got.paths == {"/api/v1/lineage"}
    first, second = both[: len(events)], both[len(events) :]
    assert first == events
    for run_events, end in ((first, "COMPLETE"), (second, "FAIL")):
        job = [e for e in run_events if e["job"]["name"] == JOB]
        assert [e["eventType"] for e in job] == ["START", end]
        assert run_events[0] is job[0] and run_events[-1] is job[1]  # the job's run brackets its nodes'
        assert job[0]["run"]["runId"] == job[1]["run"]["runId"]
        assert {d["name"].rsplit("/", 1)[1] for d in job[0]["inputs"]} == {
            "users.csv", "user_experiments.csv", "compounds.csv"
        }  # fmt: skip
        nodes = {k: v for k, v in by_run(run_events[1:-1]).items()}
        assert nodes and all(e["run"]["facets"]["parent"]["run"]["runId"] == job[0]["run"]["runId"]
                             for evs in nodes.values() for e in evs)  # fmt: skip
        for evs in nodes.values():
            assert evs[0]["eventType"] == "START" and len(evs) == 2, evs
            assert evs[0]["job"]["name"].startswith(f"{JOB}.") and evs[0]["job"]["name"] == evs[1]["job"]["name"]

    first_nodes = {evs[0]["job"]["name"]: evs for evs in by_run(first[1:-1]).values()}
    assert all(evs[1]["eventType"] == "COMPLETE" for evs in first_nodes.values())
    assert len(by_run(first[1:-1])) == len(first_nodes) > 30  # one run per node
    mart = first_nodes[f"{JOB}.model.features_mart.user_features"]
    assert [d["name"].split(".", 1)[1] for d in mart[1]["outputs"]] == ["marts__build.user_features"]
    assert len(mart[1]["inputs"]) == 5
    published = [d["name"].split(".", 1)[1] for d in first[-1]["outputs"]]
    assert published == ["marts.user_features"]
    assert first[-1]["outputs"][0]["namespace"].startswith("postgres://")

    second_nodes = {evs[0]["job"]["name"]: evs for evs in by_run(second[1:-1]).values()}
    faulty = second_nodes[f"{JOB}.model.features_mart.{FAULTY}"]
    assert (
        faulty[1]["eventType"] == "FAIL" and "injected fault" in faulty[1]["run"]["facets"]["errorMessage"]["message"]
    )
    assert f"{JOB}.model.features_mart.user_features" not in second_nodes  # skipped: it never ran
    assert second[-1]["outputs"] == [] and "errorMessage" in second[-1]["run"]["facets"]


@pytest.mark.parametrize("down", ["refused", "hanging"])
def test_a_receiver_that_is_down_neither_blocks_nor_fails_runs(settings, caplog, down):
    caplog.set_level(logging.INFO, logger="api.core.lineage")
    with hanging_receiver() if down == "hanging" else _nothing(refused_url()) as url, served(settings, url) as client:
        run = client.post("/trigger?wait=true").json()
        assert run["status"] == "success", run

        def failures() -> list[str]:
            return [
                r.getMessage() for r in caplog.records if r.name == "api.core.lineage" and "not sent" in r.getMessage()
            ]

        if down == "hanging":  # the run ended first: its end events could only fail after their timeouts
            assert not [m for m in failures() if " end: " in m], failures()
        logged = wait_until(lambda: len(failures()) >= 2, 180, "the failures to be logged") and failures()
    assert "start: event 1 of 1 not sent" in logged[0], logged
    assert "end: event 1 of" in logged[1] and "the rest of them dropped" in logged[1], logged
    assert ("timed out" if down == "hanging" else "refused") in logged[0], logged


@contextmanager
def _nothing(value: str) -> Iterator[str]:
    yield value
