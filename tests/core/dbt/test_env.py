"""dbt's environment (api/core/dbt/env.py): one function for the job, the CLI and scripts/test.sh."""

from __future__ import annotations

from api.config import DBT_PROJECT_DIR, Settings
from api.core.db.database import Database
from api.core.dbt.env import dbt_env, dev_suffix, process_env, profile_env, spark_defaults, spark_env
from api.core.job.execution import build_env


def test_dbt_env_selects_the_engine(tmp_path):
    db = Database("postgresql://u:p@h:5/d")
    postgres = dbt_env(Settings(state_dir=tmp_path), db, seeds_dir=None, suffix="__b")
    assert not [k for k in postgres if k.startswith(("SPARK_", "DBT_SPARK"))], "no Spark settings on Postgres"
    assert postgres["DBT_TARGET"] == "default" and postgres["DBT_SCHEMA_SUFFIX"] == "__b"
    spark = Settings(state_dir=tmp_path, dbt_target="spark", spark_master="spark://h:7077")
    env = dbt_env(spark, db, seeds_dir=tmp_path / "seeds", suffix="")
    assert env["DBT_TARGET"] == "spark" and env["SPARK_MASTER"] == "spark://h:7077"
    assert env["DBT_SPARK_DIR"] == str(tmp_path / "spark"), "the metastore lives under STATE_DIR"
    assert env["DBT_SPARK_WAREHOUSE_DIR"] == str(tmp_path / "spark" / "warehouse"), "and so does the warehouse"
    assert build_env(spark, db)["DBT_SEEDS_DIR"] == str(tmp_path / "spark" / "shared" / "build" / "seeds")
    assert build_env(spark, db)["DBT_SCHEMA_SUFFIX"] == "", "Spark builds in place; the swap happens in Postgres"
    assert build_env(Settings(state_dir=tmp_path), db)["DBT_SCHEMA_SUFFIX"] == "__build"


def test_the_profile_reads_the_url_and_the_users_session_settings_win(monkeypatch):
    monkeypatch.delenv("PGOPTIONS", raising=False)
    db = Database("postgresql://mart:s3cret@db.example:6543/features?sslmode=require")
    assert profile_env(db) == {
        "PGOPTIONS": "-c work_mem=128MB -c jit=off",
        "DBT_PGHOST": "db.example",
        "DBT_PGPORT": "6543",
        "DBT_PGUSER": "mart",
        "DBT_PGPASSWORD": "s3cret",
        "DBT_PGDATABASE": "features",
        "DBT_PGSSLMODE": "require",
    }
    monkeypatch.setenv("PGOPTIONS", "-c work_mem=1GB")  # the user's own session settings win
    assert profile_env(db)["PGOPTIONS"] == "-c work_mem=1GB"


def test_dbt_env_holds_what_the_project_reads(tmp_path):
    db = Database("postgresql://mart:s3cret@db.example:6543/features?sslmode=require")
    env = dbt_env(Settings(state_dir=tmp_path, dbt_threads=7), db, seeds_dir=tmp_path / "in", suffix="__dev")
    assert {k: v for k, v in env.items() if k.startswith(("DBT_PG", "PGOPTIONS"))} == profile_env(db)
    assert env["DBT_SEEDS_DIR"] == str(tmp_path / "in") and env["DBT_THREADS"] == "7"
    assert env["DBT_PROFILES_DIR"] == env["DBT_PROJECT_DIR"] == str(DBT_PROJECT_DIR)
    assert env["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false"
    assert "DBT_SEEDS_DIR" not in dbt_env(Settings(state_dir=tmp_path), db, seeds_dir=None, suffix="")


def test_secrets_dbt_does_not_need_stay_out_of_its_process(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:secret@h/d")
    monkeypatch.setenv("API_TOKEN", "t" * 40)
    env = process_env({"DBT_PGPASSWORD": "p"})
    assert "DATABASE_URL" not in env and "API_TOKEN" not in env and env["DBT_PGPASSWORD"] == "p"


def test_the_cli_builds_on_the_dev_target_and_its_suffix_is_never_empty(tmp_path, monkeypatch):
    """scripts/dbt.sh (and plain dbt) use the profile's dev target: schemas `*__dev`, or DBT_SCHEMA_SUFFIX's;
    on Spark the target stays spark."""
    db = Database("postgresql://u:p@h:5/d")
    assert dbt_env(Settings(state_dir=tmp_path), db, seeds_dir=None, suffix="__dev", dev=True)["DBT_TARGET"] == "dev"
    spark = Settings(state_dir=tmp_path, dbt_target="spark")
    assert dbt_env(spark, db, seeds_dir=None, suffix="", dev=True)["DBT_TARGET"] == "spark"
    monkeypatch.delenv("DBT_SCHEMA_SUFFIX", raising=False)
    assert dev_suffix() == "__dev"
    monkeypatch.setenv("DBT_SCHEMA_SUFFIX", " ")
    assert dev_suffix() == "__dev", "an empty suffix would be the published schemas"
    monkeypatch.setenv("DBT_SCHEMA_SUFFIX", "__alice")
    assert dev_suffix() == "__alice"


def test_spark_warehouse_and_metastore_come_from_the_settings_then_spark_defaults(tmp_path, monkeypatch):
    """SPARK_WAREHOUSE_DIR wins; else spark-defaults.conf's (the profile's parameters would override it, so the
    value is passed on); else STATE_DIR. A metastore database set there is used instead of Derby."""
    monkeypatch.delenv("SPARK_HOME", raising=False)
    conf = tmp_path / "conf"
    conf.mkdir()
    monkeypatch.setenv("SPARK_CONF_DIR", str(conf))
    spark = Settings(state_dir=tmp_path, dbt_target="spark")
    derby = f"jdbc:derby:;databaseName={tmp_path}/spark/metastore_db;create=true"
    assert spark_env(spark)["DBT_SPARK_METASTORE_URL"] == derby, "no spark-defaults.conf: Derby"
    (conf / "spark-defaults.conf").write_text(
        "# a comment\n"
        "spark.sql.warehouse.dir      hdfs://nn:8020/warehouse\n"
        "spark.hadoop.javax.jdo.option.ConnectionURL=jdbc:postgresql://meta/hive\n"
        "spark.driver.host: 10.0.0.5\n"
    )
    assert spark_defaults()["spark.driver.host"] == "10.0.0.5"
    env = spark_env(spark)
    assert env["DBT_SPARK_WAREHOUSE_DIR"] == "hdfs://nn:8020/warehouse"
    assert env["DBT_SPARK_METASTORE_URL"] == "jdbc:postgresql://meta/hive"
    shared = Settings(
        state_dir=tmp_path, dbt_target="spark", spark_warehouse_dir="/mnt/shared/wh", spark_shared_dir="/mnt/shared/x"
    )
    assert spark_env(shared)["DBT_SPARK_WAREHOUSE_DIR"] == "/mnt/shared/wh", "SPARK_WAREHOUSE_DIR wins"
    assert build_env(shared, Database("postgresql://u:p@h:5/d"))["DBT_SEEDS_DIR"] == "/mnt/shared/x/build/seeds"
