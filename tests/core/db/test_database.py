"""Which Postgres: DATABASE_URL as given (never logged with its password), or the embedded server."""

from __future__ import annotations

from api.config import REPO_ROOT
from api.core.db.database import Database, open_database


def test_database_url_is_used_as_given_and_never_logged_with_its_password():
    db = Database("postgresql://mart:s3cret@db.example:6543/features?sslmode=require")
    assert db.display_url == "postgresql://mart@db.example:6543/features"
    assert "s3cret" not in repr(db)
    assert db.libpq_env() == {
        "PGHOST": "db.example", "PGPORT": "6543", "PGUSER": "mart", "PGPASSWORD": "s3cret",
        "PGDATABASE": "features", "PGSSLMODE": "require",
    }  # fmt: skip
    with open_database("postgresql://u@h/db", REPO_ROOT / "nonexistent-state") as given:
        assert given.url == "postgresql://u@h/db" and not given.embedded
