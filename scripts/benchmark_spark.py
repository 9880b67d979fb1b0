"""The Spark part of the benchmark: `scripts/benchmark.sh --engine spark [--experiments N --rounds N ...]`.

The same job as the Postgres benchmark's generated-data section (default 1M experiments), with dbt on Spark
(DBT_TARGET=spark; local mode unless SPARK_MASTER says otherwise) and the extra `transfer` step that moves the
mart into Postgres. It prints the same step table, plus the peak RSS of the Spark JVMs. scripts/benchmark.py
parses the arguments and hands over to `main` here; the helpers both use are in scripts/benchmark_common.py.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from api.config import Settings
from api.core.db.database import open_database
from scripts.benchmark_common import RssSampler, api_runs, count_rows, generate, validation


def _check_spark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SystemExit("benchmark: --engine spark needs scripts/bootstrap.sh --spark") from None
    if shutil.which("java") is None:
        raise SystemExit("benchmark: --engine spark needs Java 17 or 21 on PATH (apt-get install default-jre-headless)")


def main(args: argparse.Namespace) -> int:
    """The generated-data section on Spark: validate, then `args.rounds` API runs, step by step."""
    _check_spark()
    url = os.environ.get("DATABASE_URL") or None
    with tempfile.TemporaryDirectory(prefix="features-mart-bench-spark-") as tmp, RssSampler() as sampler:
        root = Path(tmp)
        data = root / "generated"
        t0 = time.perf_counter()
        generate(data, args.users, args.experiments, args.compounds)
        print(f"(generated the data set in {time.perf_counter() - t0:.1f} s)")
        counts = count_rows(data)
        print("\n== generated data on Spark: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()), flush=True)
        validation(data, root / "validated", counts)
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
            api_runs(settings, db, args.rounds)
    sampler.print_peaks()
    return 0
