"""The Spark part of the benchmark (scripts/benchmark.sh --engine spark): the same job and step table, with
dbt on Spark (DBT_TARGET=spark, local mode unless SPARK_MASTER says otherwise) and the extra `transfer` step
that moves the mart into Postgres. Kept apart from benchmark.py so the two evolve separately."""

from __future__ import annotations

import argparse
import os
import shutil

from api.config import Settings

ENGINES = ("postgres", "spark")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="postgres",
        help="where dbt builds: postgres (default) or spark (needs requirements-spark.txt and Java)",
    )


def configure(settings: Settings, engine: str) -> Settings:
    """The benchmark's settings for `engine`; exits with a message when Spark cannot run here."""
    if engine != "spark":
        return settings
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SystemExit("benchmark: --engine spark needs scripts/bootstrap.sh --spark") from None
    if shutil.which("java") is None:
        raise SystemExit("benchmark: --engine spark needs Java 17 or 21 on PATH (apt-get install default-jre-headless)")
    return settings.model_copy(
        update={
            "dbt_target": "spark",
            "spark_master": os.environ.get("SPARK_MASTER", settings.spark_master),
        }
    )


def describe(settings: Settings) -> str:
    if settings.dbt_target != "spark":
        return "engine: postgres"
    return (
        f"engine: spark (master {settings.spark_master}, driver memory {settings.spark_driver_memory}, "
        f"{settings.spark_shuffle_partitions} shuffle partitions); the mart is copied into Postgres (step transfer)"
    )
