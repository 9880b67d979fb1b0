"""The database: which Postgres (database.py), the embedded server (embedded.py), the `ops` schema
(migrations.py) and the advisory-lock keys (locks.py)."""
