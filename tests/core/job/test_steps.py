"""The job's steps (api/core/job/steps.py): one ordered list, from which every other list of step names derives."""

from __future__ import annotations

import typing

from api.core.job.steps import STEP_NAMES, STEPS, described, step_names, steps_for
from api.schemas import Step


def test_each_engine_runs_the_jobs_steps_in_order():
    assert step_names("default") == ("seed", "run", "test", "publish", "docs")
    assert step_names("spark") == ("seed", "run", "test", "transfer", "publish", "docs")
    assert step_names("spark") == STEP_NAMES, "every step, in the job's order"
    assert [s.name for s in steps_for("default")] == [s.name for s in STEPS if "default" in s.engines]
    assert len(set(STEP_NAMES)) == len(STEP_NAMES)


def test_the_api_schema_names_and_describes_the_same_steps():
    assert typing.get_args(Step.model_fields["name"].annotation) == STEP_NAMES
    assert Step.model_fields["name"].description == described()
    for step in STEPS:
        assert f"{step.name}" in described() and step.description in described()
    assert "transfer (DBT_TARGET=spark only)" in described()
