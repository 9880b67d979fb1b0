"""Settings: environment variables only (see .env.example), read once."""

from __future__ import annotations

import ipaddress
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
#: The default PG_SERVER_DIR (api/core/db/placement.py).
DEFAULT_SERVER_DIR = Path("/var/lib/features-mart")
#: The shortest API_TOKEN accepted (secrets.token_urlsafe(32) makes 43 characters).
MIN_TOKEN_LENGTH = 32


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
    allow_unauthenticated: bool = Field(
        default=False, description="serve on a non-loopback HOST without API_TOKEN (refused otherwise)"
    )
    allowed_hosts: str = Field(
        default="", description="comma-separated extra names accepted in the Host header (e.g. mart.example.org)"
    )
    forwarded_allow_ips: str = Field(
        default="",
        description="comma-separated addresses of proxies whose X-Forwarded-For/-Proto are trusted; unset: none",
    )
    max_connections: int = Field(default=200, ge=1, description="connections served at once; beyond: 503")
    runs_keep: int = Field(default=1000, ge=1, description="runs kept in ops.runs and STATE_DIR/runs")
    log_level: str = "info"
    pg_port: int | None = Field(default=None, description="port of the embedded Postgres; unset: a free one")
    pg_server_dir: Path = Field(
        default=DEFAULT_SERVER_DIR,
        description="as root: where the embedded Postgres' data and programs go when its OS user cannot reach them",
    )
    dbt_threads: int = Field(default=4, ge=1)
    run_timeout: float = Field(default=3600, gt=0, description="seconds; a run still going then is cancelled")
    dbt_target: Literal["default", "spark"] = Field(
        default="default", description="engine dbt builds on: default (Postgres) or spark (dbt-spark, session method)"
    )
    spark_master: str = Field(default="local[*]", description="Spark master URL (DBT_TARGET=spark)")
    spark_driver_memory: str = Field(default="2g", description="memory of the Spark driver (DBT_TARGET=spark)")
    spark_shuffle_partitions: int = Field(default=8, ge=1, description="spark.sql.shuffle.partitions")
    spark_ui_enabled: bool = Field(default=False, description="serve Spark's web UI (port 4040) during dbt commands")
    spark_shared_dir: Path | None = Field(
        default=None,
        description="folder every Spark node sees at the same path: the seeds' CSVs, the mart export "
        "(DBT_TARGET=spark); unset: STATE_DIR/spark/shared",
    )
    spark_warehouse_dir: str | None = Field(
        default=None,
        description="Spark's warehouse (a path or a Hadoop URI); unset: spark.sql.warehouse.dir of "
        "spark-defaults.conf, else STATE_DIR/spark/warehouse",
    )
    schedule: str | None = Field(default=None, description="5-field cron expression; unset: no scheduled runs")
    schedule_tz: str = Field(default="UTC", description="time zone SCHEDULE is read in (IANA name)")
    webhook_urls: str | None = Field(default=None, description="comma-separated URLs that get run events")
    webhook_secret: SecretStr | None = Field(default=None, description="HMAC-SHA256 key of the X-Signature header")
    tls_certfile: Path | None = Field(
        default=None, description="PEM certificate (chain): serve HTTPS (with TLS_KEYFILE)"
    )
    tls_keyfile: Path | None = Field(default=None, description="PEM private key of TLS_CERTFILE")
    openlineage_url: str | None = Field(
        default=None, description="send OpenLineage run events over HTTP to this URL (the client adds /api/v1/lineage)"
    )
    openlineage_config: Path | None = Field(
        default=None, description="openlineage-python's YAML config file (any of its transports); wins over the URL"
    )
    openlineage_namespace: str = Field(default="features-mart", min_length=1, description="the jobs' namespace")
    dbt_cloud_account_id: int = Field(
        default=1,
        ge=1,
        le=2**31 - 1,
        description="the account id of the dbt Cloud-compatible API (/api/v2/accounts/N/)",
    )

    @field_validator("spark_shared_dir", mode="before")
    @classmethod
    def _shared_path(cls, value: object) -> object:
        if isinstance(value, str) and "://" in value:
            raise ValueError(
                f"SPARK_SHARED_DIR {value!r} must be a folder path mounted at the same place on every Spark node and "
                "on this machine (the API writes the seeds there and reads the export): a URI is not supported"
            )
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = " ".join(value.split())
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"SCHEDULE {value!r} is not a 5-field cron expression (minute hour day month weekday)")
        return value

    @field_validator("schedule_tz")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"SCHEDULE_TZ {value!r} is not a known time zone (e.g. UTC, Europe/Berlin)") from exc
        return value

    @field_validator("webhook_urls")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        for url in (u.strip() for u in (value or "").split(",")):
            if url and not url.startswith(("http://", "https://")):
                raise ValueError("WEBHOOK_URLS: every URL must start with http:// or https://")
        return value

    @property
    def spark_dir(self) -> Path:
        """Spark's own files on this machine: the Derby metastore, derby.log, and by default the warehouse and
        the shared folder (docs/spark.md)."""
        return self.state_dir / "spark"

    @property
    def spark_shared(self) -> Path:
        """SPARK_SHARED_DIR, or its default for local mode."""
        return self.spark_shared_dir or self.spark_dir / "shared"

    @property
    def webhook_url_list(self) -> list[str]:
        return [u.strip() for u in (self.webhook_urls or "").split(",") if u.strip()]

    @property
    def loopback(self) -> bool:
        """True when HOST is a loopback address (reachable from this machine only)."""
        if self.host.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False

    def exposure_problem(self) -> str | None:
        """Why the API must not start as configured, or None (a non-loopback HOST needs API_TOKEN)."""
        if self.loopback or self.api_token or self.allow_unauthenticated:
            return None
        return (
            f"HOST={self.host} makes the API reachable from the network, and API_TOKEN is not set: anyone "
            "could read the mart and rebuild it. Set API_TOKEN (e.g. API_TOKEN=$(openssl rand -hex 32)), "
            "or HOST=127.0.0.1, or ALLOW_UNAUTHENTICATED=true if the network is trusted."
        )

    def token_problem(self) -> str | None:
        """Why API_TOKEN may not be used (shorter than MIN_TOKEN_LENGTH characters), or None."""
        if not self.api_token or len(self.api_token.get_secret_value()) >= MIN_TOKEN_LENGTH:
            return None
        return (
            f"API_TOKEN is {len(self.api_token.get_secret_value())} characters long: it must have at least "
            f"{MIN_TOKEN_LENGTH}, so that it cannot be guessed. Make one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )

    def tls_problem(self) -> str | None:
        """Why HTTPS cannot be served as configured (one of the two files missing or unreadable), or None."""
        given = {"TLS_CERTFILE": self.tls_certfile, "TLS_KEYFILE": self.tls_keyfile}
        if not any(given.values()):
            return None
        for name, path in given.items():
            if path is None:
                return "TLS_CERTFILE and TLS_KEYFILE go together: set both (PEM files) to serve HTTPS, or neither"
            try:
                path.open("rb").close()
            except OSError as exc:
                return f"{name}={path} cannot be read: {exc.strerror or exc}"
        return None

    @property
    def scheme(self) -> str:
        """How the API is served: https with TLS_CERTFILE and TLS_KEYFILE, else http."""
        return "https" if self.tls_certfile and self.tls_keyfile else "http"

    def state_dir_problem(self) -> str | None:
        """Why the API cannot start with this STATE_DIR (this process cannot create or write it), or None."""
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.state_dir):
                pass
        except OSError as exc:
            uid, gid = os.getuid(), os.getgid()
            return (
                f"STATE_DIR {self.state_dir} is not writable by this process (uid {uid}, gid {gid}): "
                f"{exc.strerror or exc}. Make it writable by that user (chown -R {uid}:{gid} the folder), or set "
                f"STATE_DIR to a folder it can write. In Docker, mount a named volume at {self.state_dir} (a new "
                f"one takes the image's ownership), or chown -R {uid}:{gid} the host folder you bind-mount there."
            )
        return None

    def resolved(self) -> Settings:
        """The same settings with absolute paths, so that subprocesses see the same folders."""
        return self.model_copy(
            update={
                "data_dir": self.data_dir.expanduser().resolve(),
                "state_dir": self.state_dir.expanduser().resolve(),
                "spark_shared_dir": self.spark_shared_dir and self.spark_shared_dir.expanduser().resolve(),
            }
        )


@lru_cache
def get_settings() -> Settings:
    return Settings().resolved()
