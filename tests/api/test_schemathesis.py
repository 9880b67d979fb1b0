"""Fuzzing with schemathesis: every operation of /openapi.json, against the real API served over HTTP on a real
database holding a published mart, with and without the token, in positive and negative modes (bounded). No
answer may be a 5xx, and every answer must match its schema in the OpenAPI document.

POST/GET /trigger are covered too; a run row holds the run lock meanwhile, so they answer 409 instead of
starting dozens of rebuilds; the dbt Cloud-compatible POST .../jobs/1/run/ queues its runs behind it instead
(they never start: the API is stopped before the lock holder ends)."""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.core.job.steps import step_names
from api.core.runs import history, lock
from tests.reliability.conftest import ApiServer, publish_quickly

pytestmark = pytest.mark.slow

TOKEN = "fuzz-token-long-enough-to-be-accepted-here"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 8}
CHECKS = [not_a_server_error, response_schema_conformance]


def _fuzz(operation, base_url: str, mode: GenerationMode, headers: dict[str, str], failures: list[str]) -> int:
    calls = 0

    @hypothesis_settings(
        max_examples=EXAMPLES[mode], deadline=None, database=None, derandomize=True,
        suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
    )  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=mode, headers=headers or None))
    def run(case) -> None:
        nonlocal calls
        try:
            case.call_and_validate(base_url=base_url, checks=CHECKS, allow_redirects=False, timeout=30)
        except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, UnicodeEncodeError):
            return  # the client library refused to send it: nothing reached the server
        except (AssertionError, FailureGroup) as exc:  # failed checks
            failures.append(
                f"{mode.value} {case.method} {case.formatted_path} {'token' if headers else 'no token'}:"
                f" {str(exc)[:800]}"
            )
        calls += 1

    try:
        run()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE, f"no valid request for {operation.label}"  # nothing to negate
    return calls


def test_every_operation_answers_without_5xx_and_matches_its_schema(settings, database, tmp_path):
    publish_quickly(settings)  # /features has rows to serialise
    server = ApiServer(settings, tmp_path / "api.log", API_TOKEN=TOKEN).start()
    holder = None
    try:
        holder = lock.start_run(
            database, {"source": "schemathesis"}, step_names("default")
        )  # /trigger answers 409 meanwhile
        schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json", headers=BEARER, timeout=30)
        operations = [result.ok() for result in schema.get_all_operations()]
        labels = {f"{op.method.upper()} {op.path}" for op in operations}
        assert {"POST /trigger", "GET /trigger", "GET /features", "GET /runs/{run_id}/logs", "POST /login"} <= labels
        failures: list[str] = []
        calls = 0
        for operation in operations:
            for headers in (BEARER, {}):
                for mode in EXAMPLES:
                    calls += _fuzz(operation, server.base_url, mode, headers, failures)
        assert calls >= len(operations) * 2, "too few requests were sent to mean anything"
        assert not failures, "\n".join(failures[:20])
        assert history.get_run(database, holder.run_id)["status"] == "queued", "a fuzzed trigger started a run"
        others = [r for r in history.list_runs(database, 1000, 0)[0] if r["run_id"] != holder.run_id]
        started = [r["run_id"] for r in others if not (r["waiting"] or r["status"] == "cancelled")]
        assert not started, f"fuzzed triggers started runs {started}"
    finally:
        server.stop()  # first: the runs it queued end with it, before the lock holder lets them start
        if holder is not None:
            holder.update(status="failed", error="schemathesis lock holder", final=True)
            holder.release()
    assert "Traceback" not in server.log_path.read_text(), server.log_tail()
