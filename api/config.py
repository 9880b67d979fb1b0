"""Settings: environment variables only (see .env.example), read once."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


class Settings(BaseSettings):
    """Every setting of the product. Names are the environment variables, case-insensitive."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, env_ignore_empty=True)

    database_url: SecretStr | None = Field(
        default=None, description="postgresql://user:password@host:port/db; unset: embedded Postgres"
    )
    data_dir: Path = Field(default=REPO_ROOT / "seeds", description="folder holding the three CSVs")
    state_dir: Path = Field(default=REPO_ROOT / ".state", description="run logs, dbt targets, docs, embedded db")
    host: str = "127.0.0.1"
    port: int = 8000
    api_token: SecretStr | None = None
    log_level: str = "info"
    pg_port: int | None = Field(default=None, description="port of the embedded Postgres; unset: a free one")
    dbt_threads: int = Field(default=4, ge=1)
    run_timeout: float = Field(default=3600, gt=0, description="seconds; a run still going then is cancelled")
    dbt_target: Literal["default", "spark"] = Field(
        default="default", description="engine dbt builds on: default (Postgres) or spark (dbt-spark, session method)"
    )
    spark_master: str = Field(default="local[*]", description="Spark master URL (DBT_TARGET=spark)")
    spark_driver_memory: str = Field(default="2g", description="memory of the Spark driver (DBT_TARGET=spark)")
    spark_shuffle_partitions: int = Field(default=8, ge=1, description="spark.sql.shuffle.partitions")
    spark_ui_enabled: bool = Field(default=False, description="serve Spark's web UI (port 4040) during dbt commands")

    def resolved(self) -> Settings:
        """The same settings with absolute paths, so that subprocesses see the same folders."""
        return self.model_copy(
            update={
                "data_dir": self.data_dir.expanduser().resolve(),
                "state_dir": self.state_dir.expanduser().resolve(),
            }
        )


@lru_cache
def get_settings() -> Settings:
    return Settings().resolved()
