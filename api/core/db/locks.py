"""The advisory-lock keys of this product: one namespace (LOCK_CLASS), so no other application's locks on the
same database collide with ours. What each lock guards is told where it is taken (api/core/runs/lock.py)."""

LOCK_CLASS = 0x46454154  # "FEAT"
#: Transaction-level: triggers and migrations serialise on it.
TRIGGER_LOCK = 1
#: Session-level: held for a whole run (or a writing `scripts/dbt.sh` command) by the connection running it.
RUN_LOCK = 2


def queue_key(run_id: int) -> int:
    """Session-level, bigint form (same LOCK_CLASS in its high half): held by the process whose queued run waits for
    RUN_LOCK, so that any process can tell a live waiting run from one whose process died."""
    return (LOCK_CLASS << 32) | run_id
