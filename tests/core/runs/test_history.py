"""Run history in ops.runs: bounded to RUNS_KEEP runs, rows and folders."""

from __future__ import annotations

from api.core.db.migrations import migrate
from api.core.job.runner import JobRunner
from api.core.job.steps import step_names
from api.core.runs import history, lock


def test_history_keeps_runs_keep_runs_rows_and_folders(settings, database):
    kept = settings.model_copy(update={"runs_keep": 2})
    migrate(database)
    ids = []
    for _ in range(4):
        handle = lock.start_run(database, {"source": "test"}, step_names("default"))
        handle.update(status="failed", final=True)
        handle.release()
        ids.append(handle.run_id)
        (kept.state_dir / "runs" / str(handle.run_id)).mkdir(parents=True)
    (kept.state_dir / "runs" / "notes").mkdir()
    JobRunner(kept, database)._prune()
    rows, total = history.list_runs(database, 10, 0)
    assert [r["run_id"] for r in rows] == ids[:1:-1] and total == 2
    folders = sorted(p.name for p in (kept.state_dir / "runs").iterdir())
    assert folders == sorted([str(ids[2]), str(ids[3]), "notes"])


def test_an_active_run_is_never_pruned(database):
    migrate(database)
    active = lock.start_run(database, {"source": "test"}, step_names("default"))
    try:
        for _ in range(2):
            with database.connect() as conn:
                conn.execute("insert into ops.runs (status) values ('failed')")
        assert history.prune(database, 1) is not None
        assert history.get_run(database, active.run_id) is not None
        assert history.list_runs(database, 10, 0)[1] == 2
    finally:
        active.release()
