"""dbt-postgres plus one method: `adapter.copy_csv`, which loads a seed with Postgres COPY.

Profile `type: pgcopy`. Declared with `dependencies=["postgres"]`, so every macro dispatch falls back from
`pgcopy__` to `postgres__` to `default__`: docs, the catalog and every stock macro work unchanged. Found by
dbt through `dbt/adapters/__init__.py`'s `pkgutil.extend_path` once installed (scripts/bootstrap.sh installs this
package, dbt_project/adapter/, into the project's .venv)."""

from dbt.adapters.base import AdapterPlugin
from dbt.adapters.pgcopy.impl import PgcopyAdapter, PgcopyCredentials
from dbt.include import pgcopy

Plugin = AdapterPlugin(
    adapter=PgcopyAdapter,  # type: ignore[arg-type]
    credentials=PgcopyCredentials,
    include_path=pgcopy.PACKAGE_PATH,
    dependencies=["postgres"],
)
