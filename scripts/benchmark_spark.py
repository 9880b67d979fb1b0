"""The Spark part of the benchmark: `scripts/benchmark.sh --engine spark [--experiments N --rounds N ...]`.

The same job as the Postgres benchmark's generated-data section (default 1M experiments), with dbt on Spark
(DBT_TARGET=spark; local mode unless SPARK_MASTER says otherwise) and the extra `transfer` step that moves the
mart into Postgres. It prints the same step table, plus the peak RSS of the Spark JVMs. Kept apart from
benchmark.py (which only hands over to `main` here) so the two evolve separately; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import psutil

from api.config import Settings
from api.core.database import open_database
from api.core.jobs import JobRunner
from api.core.spark_mart import STEP_NAMES

ENGINES = ("postgres", "spark")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="postgres",
        help="where dbt builds: postgres (default) or spark (needs scripts/bootstrap.sh --spark and Java)",
    )


def _check_spark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SystemExit("benchmark: --engine spark needs scripts/bootstrap.sh --spark") from None
    if shutil.which("java") is None:
        raise SystemExit("benchmark: --engine spark needs Java 17 or 21 on PATH (apt-get install default-jre-headless)")


def main(args: argparse.Namespace) -> int:
    """The generated-data section on Spark: validate, then `args.rounds` API runs, step by step."""
    from scripts import benchmark as bench  # the shared helpers (data generator, timing, RSS sampler)

    _check_spark()

    class SparkRssSampler(bench.RssSampler):
        @staticmethod
        def role(proc: psutil.Process) -> str | None:
            try:
                if proc.name() == "java":
                    return "Spark JVM (driver and local executors)"
            except (psutil.Error, OSError):
                return None
            return bench.RssSampler.role(proc)

    url = os.environ.get("DATABASE_URL") or None
    with tempfile.TemporaryDirectory(prefix="features-mart-bench-spark-") as tmp, SparkRssSampler() as sampler:
        root = Path(tmp)
        data = root / "generated"
        t0 = time.perf_counter()
        bench.generate(data, args.users, args.experiments, args.compounds)
        print(f"(generated the data set in {time.perf_counter() - t0:.1f} s)")
        counts = bench.count_rows(data)
        print("\n== generated data on Spark: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()), flush=True)
        t0 = time.perf_counter()
        bench.prepare_seeds(data, root / "validated")
        took = time.perf_counter() - t0
        rows = sum(counts.values())
        print(f"  {'validate + normalise (in the API process)':<44} {took:7.2f} s  ({rows / took:,.0f} rows/s)")
        settings = Settings(
            data_dir=data,
            state_dir=root / "state",
            dbt_threads=4,
            dbt_target="spark",
            spark_master=os.environ.get("SPARK_MASTER", "local[*]"),
        ).resolved()
        print(
            f"  engine: spark, master {settings.spark_master}, driver memory {settings.spark_driver_memory}, "
            f"{settings.spark_shuffle_partitions} shuffle partitions; Postgres serves the mart",
            flush=True,
        )
        with open_database(url, root / "pg-state", None) as db:
            runner = JobRunner(settings, db)
            runner.startup()
            print(f"  {'API start-up: dbt worker warm (import, parse)':<44} {bench.wait_warm(runner):7.2f} s")
            try:
                results = [bench.api_run(runner, db) for _ in range(args.rounds)]
            finally:
                runner.shutdown()
        labels = {
            "published": "API: trigger -> published",
            "seed": "  step seed (validate + dbt seed)",
            **{name: f"  step {name}" for name in STEP_NAMES if name not in ("seed", "docs")},
            "docs_after_publish": "API: docs served, after publish",
        }
        for key, label in labels.items():
            print(f"  {label:<44} {bench.describe([r[key] for r in results])}", flush=True)
    print("\n== peak RSS by process (sampled every 50 ms)")
    for role, peak in sorted(sampler.peaks.items()):
        print(f"  {role:<52} {peak:7.0f} MiB")
    return 0
