"""Seeds on Spark that fail or are killed mid-write (DBT_TARGET=spark, local mode), run the way the API runs them:
in the warm dbt worker (api/core/dbt/), one forked child per command, each starting its own Spark JVM.

- a seed whose file cannot be read fails, and the old table is still there (it is replaced only after the new
  data has been written);
- a seed whose dbt process alone is killed (SIGKILL) while Spark writes: its JVM ends (and prints) before the
  command is reported finished, never during the next command;
- a seed whose process group (dbt and its JVM) is killed while Spark writes leaves a `_temporary` folder in the
  warehouse: the next seed removes it and succeeds.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from api.config import Settings
from api.core.dbt.client import DbtWorker
from api.core.dbt.env import dbt_env, warehouse_location
from api.core.dbt.invoke import DbtResult, run_dbt
from api.core.dbt.spark_warehouse import clean_killed_writes
from api.core.seeds import prepare_seeds
from tests.datasets import random_dataset

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.timeout(1800)]

#: Rows of the big seed: enough for Spark to spend a moment writing it (the kill lands mid-write).
EXPERIMENTS = 200_000


@pytest.fixture
def worker() -> DbtWorker:
    pytest.importorskip("pyspark", reason="requirements-spark.txt is not installed (scripts/bootstrap.sh --spark)")
    if shutil.which("java") is None:
        pytest.skip("Java is missing: Spark needs a Java runtime (scripts/bootstrap.sh --spark installs one as root)")
    worker = DbtWorker()
    yield worker
    worker.close()


class Seeding:
    """`dbt seed` (and friends) on Spark in `worker`, as the job runs them: same environment, same target."""

    def __init__(self, worker: DbtWorker, tmp_path: Path) -> None:
        self.settings = Settings(
            state_dir=tmp_path / "state", dbt_target="spark", spark_master="local[1]", spark_shuffle_partitions=2
        ).resolved()
        self.seeds = self.settings.spark_shared / "build" / "seeds"
        prepare_seeds(random_dataset(tmp_path / "data", 11, users=2000, experiments=EXPERIMENTS), self.seeds)
        self.warehouse = Path(warehouse_location(self.settings))
        self.env = dbt_env(self.settings, None, seeds_dir=self.seeds, suffix="")
        self.worker = worker

    def dbt(self, *args: str, on_start=None) -> tuple[DbtResult, str]:
        log = io.StringIO()
        clean_killed_writes(str(self.warehouse))  # as the job's seed step and scripts/dbt.sh do
        result = run_dbt(
            list(args),
            env=self.env,
            target_path=self.settings.state_dir / "target",
            log=log,
            worker=self.worker,
            on_start=on_start,
        )
        return result, log.getvalue()

    def writing(self) -> list[Path]:
        return list(self.warehouse.glob("raw.db/*/_temporary"))

    def kill_mid_write(self, kill) -> tuple[DbtResult, str]:
        """`dbt seed`, killed with `kill(pid, SIGKILL)` (os.kill or os.killpg) as soon as Spark writes a table."""
        started: list[int] = []

        def killer() -> None:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline and not (started and self.writing()):
                time.sleep(0.01)
            if started:
                kill(started[0], signal.SIGKILL)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        result, log = self.dbt("seed", on_start=started.append)
        thread.join()
        result.pid = started[0]
        return result, log


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_seed_that_fails_or_is_killed_mid_write_leaves_the_next_one_able_to_succeed(worker, tmp_path):
    seeding = Seeding(worker, tmp_path)
    first, log = seeding.dbt("seed")
    assert first.ok, log[-3000:]

    # 1. the file cannot be read when Spark writes the table (here a value that is not an integer; on a cluster,
    # a file the executors cannot see): the seed fails, and the old table is still there
    compounds = seeding.seeds / "compounds.csv"
    saved = compounds.read_bytes()
    compounds.write_bytes(saved + b"not-a-number,Broken,C\n")
    failed, log = seeding.dbt("seed", "--select", "compounds")
    assert not failed.ok and "ERROR loading seed file raw.compounds" in log, log[-3000:]
    compounds.write_bytes(saved)
    shown, log = seeding.dbt("show", "--inline", "select count(*) as n from raw.compounds", "--output", "json")
    assert shown.ok, f"the failed seed dropped the old table:\n{log[-3000:]}"
    assert '"n": 7' in log, log[-2000:]

    # 2. SIGKILL of the dbt process alone while Spark writes: its JVM outlives it, and shuts down, printing
    killed, log = seeding.kill_mid_write(os.kill)
    assert killed.exit_code == -signal.SIGKILL, "the seed was not killed while writing"
    assert not _alive(killed.pid), "the killed command's JVM outlived it (its output would go to the next command)"

    # 3. SIGKILL of its process group (dbt and its JVM, as a cancel's or RUN_TIMEOUT's escalation does): the write
    # stops where it is, and its _temporary folder stays in the warehouse
    killed, log = seeding.kill_mid_write(os.killpg)
    assert killed.exit_code == -signal.SIGKILL, "the seed was not killed while writing"
    assert "SparkContext" not in log, f"the JVM killed in step 2 printed into this command's log:\n{log[:3000]}"
    assert seeding.writing(), "the killed write left no _temporary folder: nothing was tested"

    # 4. the next seed cleans up and succeeds; nothing of the killed JVMs is in its log
    again, log = seeding.dbt("seed")
    assert again.ok, log[-3000:]
    assert "LOCATION_ALREADY_EXISTS" not in log and "SparkContext" not in log, log[:3000]
    assert f"[CREATE {EXPERIMENTS} in" in log, log[-3000:]
    assert not seeding.writing() and not list(seeding.warehouse.glob("raw.db/*__seeding"))
