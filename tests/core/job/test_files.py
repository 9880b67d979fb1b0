"""A run's files (api/core/job/files.py): dbt artifacts kept per run."""

from __future__ import annotations

import json
import logging

from api.core.dbt.invoke import DbtResult
from api.core.job.files import keep_artifacts


def test_artifacts_are_kept_and_a_killed_command_without_results_is_skipped_quietly(tmp_path, caplog):
    target, run_dir = tmp_path / "target", tmp_path / "runs" / "7"
    target.mkdir()
    (target / "manifest.json").write_text("{}")
    (target / "run_results.json").write_text(json.dumps({"results": [{"unique_id": "seed.a"}]}))
    keep_artifacts(run_dir, DbtResult(args=["seed"], exit_code=0, target_path=target))
    (target / "run_results.json").unlink()  # run_dbt removes it before each command; a killed one writes none
    with caplog.at_level(logging.INFO, logger="api.core.job.files"):
        keep_artifacts(run_dir, DbtResult(args=["run"], exit_code=-9, target_path=target))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    kept = json.loads((run_dir / "artifacts" / "run_results.json").read_text())
    assert kept["results"] == [{"unique_id": "seed.a"}], "the results so far are kept"
    assert (run_dir / "artifacts" / "manifest.json").exists()
