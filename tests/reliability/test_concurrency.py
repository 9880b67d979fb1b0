"""One run at a time: 50 triggers fired at once, over real HTTP, at two API processes sharing one database,
start exactly one run; every other trigger is refused with 409 naming that run."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import wait_for_run

pytestmark = pytest.mark.slow

TRIGGERS = 50


def test_fifty_simultaneous_triggers_on_two_processes_start_exactly_one_run(serve, tmp_path):
    apis = [serve(), serve(STATE_DIR=str(tmp_path / "state-2"))]  # two servers, one database
    start = threading.Barrier(TRIGGERS)

    def fire(i: int) -> tuple[int, int, dict]:
        api = apis[i % 2]
        with httpx.Client(base_url=api.base_url, timeout=60) as http:
            start.wait(timeout=30)
            response = http.post("/trigger")
        return i % 2, response.status_code, response.json()

    with ThreadPoolExecutor(TRIGGERS) as pool:
        answers = list(pool.map(fire, range(TRIGGERS)))

    accepted = [body for _, status, body in answers if status == 202]
    assert len(accepted) == 1, [(status, body) for _, status, body in answers]
    winner = accepted[0]["run_id"]
    refused = [(api, body) for api, status, body in answers if status == 409]
    assert len(refused) == TRIGGERS - 1, [status for _, status, _ in answers]
    assert all(body["active_run_id"] == winner for _, body in refused), refused
    assert all(f"run {winner} is already in progress" in body["detail"] for _, body in refused)
    assert {api for api, _ in refused} == {0, 1}, "both processes must have refused triggers"

    for api in apis:  # both processes see the same history: the one run
        history = api.client.get("/runs").json()
        assert [r["run_id"] for r in history["items"]] == [winner], history
    run = wait_for_run(apis[0].client, winner)
    assert run["status"] == "success", run["error"]
    assert apis[1].client.get("/runs").json()["total"] == 1
