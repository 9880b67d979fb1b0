"""The environment dbt runs with. `dbt_env` is the one function that sets what dbt_project/ reads (the profile's
connection, the engine, the input folder, the schema suffix, the threads); the job, the CLI (`scripts/dbt.sh`)
and `scripts/test.sh` (`python -m api.cli env`, for sqlfluff's dbt templater) all take it from here.

The one rule: dbt gets the database password in its environment (DBT_PGPASSWORD), never on a command line, and
never sees secrets it does not need (DATABASE_URL, API_TOKEN).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from api.config import DBT_PROJECT_DIR, Settings
from api.core.db.database import Database

#: Session settings for dbt's connections: room to hash and sort a million rows in memory, and no JIT
#: compilation (it costs more than it saves on queries of a few seconds). PGOPTIONS in the environment wins.
DBT_SESSION_OPTIONS = "-c work_mem=128MB -c jit=off"
#: One entry of a Java properties file (spark-defaults.conf): the key, then whitespace, `=` or `:`, the value.
_PROPERTY = re.compile(r"^([^\s=:]+)\s*[\s=:]\s*(.*)$")
#: Environment variables of ours that dbt must not see (secrets it does not need).
HIDDEN_FROM_DBT = ("DATABASE_URL", "API_TOKEN")
#: The profile's development target (plain dbt, scripts/dbt.sh) and its default schema suffix: it builds into
#: raw__dev, ..., marts__dev, never into the published schemas (macros/generate_schema_name.sql).
DEV_TARGET = "dev"
DEV_SUFFIX = "__dev"
#: What `. scripts/activate` exports: the connection that profiles.yml reads, and where dbt finds the project.
CONNECTION_VARIABLES = ("DBT_PGHOST", "DBT_PGPORT", "DBT_PGUSER", "DBT_PGPASSWORD", "DBT_PGDATABASE", "DBT_PGSSLMODE")


def dev_suffix() -> str:
    """The schema suffix of the dev target: DBT_SCHEMA_SUFFIX, or `__dev` when it is unset or empty."""
    return os.environ.get("DBT_SCHEMA_SUFFIX", "").strip() or DEV_SUFFIX


def session_options() -> str:
    """The session settings (libpq's PGOPTIONS) of dbt's connections."""
    return os.environ.get("PGOPTIONS", DBT_SESSION_OPTIONS)


def profile_env(db: Database) -> dict[str, str]:
    """The DBT_PG* variables that dbt_project/profiles.yml reads for `db`, and the session settings of dbt's
    connections (PGOPTIONS, read by libpq)."""
    p = db.params
    return {
        "PGOPTIONS": session_options(),
        "DBT_PGHOST": p.get("host", "localhost"),
        "DBT_PGPORT": p.get("port", "5432"),
        "DBT_PGUSER": p.get("user", os.environ.get("USER", "postgres")),
        "DBT_PGPASSWORD": p.get("password", ""),
        "DBT_PGDATABASE": p.get("dbname", p.get("user", "postgres")),
        "DBT_PGSSLMODE": p.get("sslmode", "prefer"),
    }


def spark_defaults() -> dict[str, str]:
    """The settings of `$SPARK_CONF_DIR/spark-defaults.conf` (else `$SPARK_HOME/conf/`), which Spark reads when it
    starts; {} when there is none. A Java properties file: `key value`, `key=value` or `key: value`, `#` or `!`
    comments (line continuations are not read)."""
    conf_dir = os.environ.get("SPARK_CONF_DIR") or (
        os.path.join(os.environ["SPARK_HOME"], "conf") if os.environ.get("SPARK_HOME") else None
    )
    path = Path(conf_dir, "spark-defaults.conf") if conf_dir else None
    if path is None or not path.is_file():
        return {}
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = _PROPERTY.match(line.strip())
        if entry and not line.strip().startswith(("#", "!")):
            found[entry.group(1)] = entry.group(2).strip()
    return found


def warehouse_location(settings: Settings) -> str:
    """Spark's warehouse: SPARK_WAREHOUSE_DIR, else spark-defaults.conf's, else STATE_DIR/spark/warehouse."""
    return (
        settings.spark_warehouse_dir
        or spark_defaults().get("spark.sql.warehouse.dir")
        or str(settings.spark_dir / "warehouse")
    )


def spark_env(settings: Settings) -> dict[str, str]:
    """dbt's settings for Spark (DBT_TARGET=spark; profiles.yml reads them). The warehouse and the metastore's
    database come from spark-defaults.conf when it sets them (the profile's parameters would win over it), else
    they live under STATE_DIR/spark (embedded Derby). With `spark.hadoop.hive.metastore.uris` there, Spark uses
    that Hive metastore and the Derby URL is unused."""
    derby = f"jdbc:derby:;databaseName={settings.spark_dir}/metastore_db;create=true"
    return {
        "DBT_SPARK_DIR": str(settings.spark_dir),
        "DBT_SPARK_WAREHOUSE_DIR": warehouse_location(settings),
        "DBT_SPARK_METASTORE_URL": spark_defaults().get("spark.hadoop.javax.jdo.option.ConnectionURL", derby),
        "SPARK_MASTER": settings.spark_master,
        "SPARK_DRIVER_MEMORY": settings.spark_driver_memory,
        "SPARK_SHUFFLE_PARTITIONS": str(settings.spark_shuffle_partitions),
        "SPARK_UI_ENABLED": str(settings.spark_ui_enabled).lower(),
    }


def dbt_env(
    settings: Settings, db: Database | None, *, seeds_dir: Path | None, suffix: str, dev: bool = False
) -> dict[str, str]:
    """Every variable dbt_project/ reads, for `settings` on `db` (None: no Postgres, e.g. a read-only command
    on Spark): the CSVs dbt seeds from `seeds_dir` (None: the project's default, the canonical seeds), schemas
    named with `suffix` (macros/generate_schema_name.sql). DBT_SEEDS_DIR and DBT_SCHEMA_SUFFIX are fixed when
    dbt parses the project. `dev`: on Postgres, the profile's dev target (never the published schemas; an
    empty suffix means `__dev` there)."""
    target = DEV_TARGET if dev and settings.dbt_target == "default" else settings.dbt_target
    env = {
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "DBT_PROJECT_DIR": str(DBT_PROJECT_DIR),
        "DBT_TARGET": target,
        "DBT_SCHEMA_SUFFIX": suffix,
        "DBT_THREADS": str(settings.dbt_threads),
    }
    if seeds_dir is not None:
        env["DBT_SEEDS_DIR"] = str(seeds_dir)
    if db is not None:
        env.update(profile_env(db))
    if settings.dbt_target == "spark":
        env.update(spark_env(settings))
    return env


def process_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The whole environment of a dbt process: ours, minus secrets dbt does not need, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in HIDDEN_FROM_DBT}
    env.update(extra)
    return env
