"""Run by tests/clients/test_airflow.py with the Python of the Airflow venv (not by pytest): drives
apache-airflow-providers-dbt-cloud against the API outside a scheduler, the connection in
AIRFLOW_CONN_DBT_CLOUD_DEFAULT. Usage: python airflow_driver.py ACTION [ARGS]; prints one JSON object.

lookup                      the job id found by project, environment and job name (v3 + v2 lookups)
run CAUSE                   DbtCloudRunJobOperator(wait_for_termination=True): the run id, or the exception
sense RUN_ID                DbtCloudJobRunSensor.poke
artifact RUN_ID PATH OUT    DbtCloudGetJobRunArtifactOperator into OUT
cancel                      hook.trigger_job_run, then hook.cancel_job_run, then wait for status 30
retry                       DbtCloudRunJobOperator(retry_from_failure=True) on a task retry (try_number 2)
"""

from __future__ import annotations

import json
import sys
from unittest.mock import MagicMock

from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudHook, DbtCloudJobRunStatus
from airflow.providers.dbt.cloud.operators.dbt import DbtCloudGetJobRunArtifactOperator, DbtCloudRunJobOperator
from airflow.providers.dbt.cloud.sensors.dbt import DbtCloudJobRunSensor


def _operator(cause: str, **kwargs) -> DbtCloudRunJobOperator:
    return DbtCloudRunJobOperator(
        task_id="run",
        job_id=1,
        trigger_reason=cause,
        check_interval=1,
        timeout=600,
        wait_for_termination=True,
        **kwargs,
    )


def main(action: str, *args: str) -> dict:
    hook = DbtCloudHook()
    if action == "lookup":
        job = hook.get_job_by_name(
            project_name="features-mart", environment_name="production", job_name="features-mart"
        )
        return {"job_id": job["id"], "name": job["name"]}
    if action in ("run", "retry"):
        ti = MagicMock(try_number=2 if action == "retry" else 1)
        operator = _operator(args[0], retry_from_failure=action == "retry")
        try:
            run_id = operator.execute({"ti": ti})
        except Exception as exc:  # the operator's verdict on a failed run, and the steps Airflow would log
            steps = hook.get_job_run(run_id=operator.run_id, include_related=["run_steps"]).json()["data"]["run_steps"]
            failed = [(s["index"], s["name"], s["status_humanized"]) for s in steps if s["status"] == 20]
            return {"error": f"{type(exc).__name__}: {exc}", "run_id": operator.run_id, "failed_steps": failed}
        return {"run_id": run_id, "url": next(c.kwargs["value"] for c in ti.xcom_push.call_args_list)}
    if action == "sense":
        sensor = DbtCloudJobRunSensor(task_id="sense", run_id=int(args[0]), deferrable=False)
        return {"done": sensor.poke({})}
    if action == "artifact":
        operator = DbtCloudGetJobRunArtifactOperator(
            task_id="artifact", run_id=int(args[0]), path=args[1], output_file_name=args[2]
        )
        return {"file": operator.execute({})}
    if action == "cancel":
        run_id = hook.trigger_job_run(job_id=1, cause="to be cancelled").json()["data"]["id"]
        hook.cancel_job_run(run_id=run_id)
        reached = hook.wait_for_job_run_status(
            run_id=run_id, expected_statuses=DbtCloudJobRunStatus.CANCELLED.value, check_interval=1, timeout=120
        )
        return {"run_id": run_id, "cancelled": reached}
    raise SystemExit(f"unknown action {action!r}")


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:])))
