"""Run history in ops.runs: bounded to RUNS_KEEP runs, rows and folders."""

from __future__ import annotations

from api.core import runs
from api.core.jobs import JobRunner


def test_history_keeps_runs_keep_runs_rows_and_folders(settings, database):
    kept = settings.model_copy(update={"runs_keep": 2})
    runs.ensure_schema(database)
    ids = []
    for _ in range(4):
        handle = runs.start_run(database, {"source": "test"})
        handle.update(status="failed", final=True)
        handle.release()
        ids.append(handle.run_id)
        (kept.state_dir / "runs" / str(handle.run_id)).mkdir(parents=True)
    (kept.state_dir / "runs" / "notes").mkdir()
    JobRunner(kept, database)._prune()
    rows, total = runs.list_runs(database, 10, 0)
    assert [r["run_id"] for r in rows] == ids[:1:-1] and total == 2
    folders = sorted(p.name for p in (kept.state_dir / "runs").iterdir())
    assert folders == sorted([str(ids[2]), str(ids[3]), "notes"])


def test_an_active_run_is_never_pruned(database):
    runs.ensure_schema(database)
    active = runs.start_run(database, {"source": "test"})
    try:
        for _ in range(2):
            with database.connect() as conn:
                conn.execute("insert into ops.runs (status) values ('failed')")
        assert runs.prune(database, 1) is not None
        assert runs.get_run(database, active.run_id) is not None
        assert runs.list_runs(database, 10, 0)[1] == 2
    finally:
        active.release()
