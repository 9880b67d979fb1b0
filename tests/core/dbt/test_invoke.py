"""run_dbt (api/core/dbt/invoke.py): what a command leaves in its target folder is its own."""

from __future__ import annotations

import io
import json

from api.core.dbt.env import dbt_env
from api.core.dbt.invoke import run_dbt


def test_a_command_that_writes_no_results_leaves_none_of_the_previous_ones(settings, database, tmp_path):
    """A cancelled or crashed dbt writes no run_results.json: the one the command before it wrote must not be
    read as this command's (the run's artifacts would hold the earlier step's nodes twice)."""
    target = tmp_path / "target"
    target.mkdir()
    (target / "run_results.json").write_text(json.dumps({"results": [{"unique_id": "seed.x.earlier"}]}))
    log = io.StringIO()
    env = dbt_env(settings, database, seeds_dir=None, suffix="")
    result = run_dbt(["run", "--no-such-option"], env=env, target_path=target, log=log)
    assert result.exit_code != 0, log.getvalue()
    assert not (target / "run_results.json").exists()
    assert result.run_results() == []
