"""The Spark warehouse on disk (DBT_TARGET=spark): what a killed write leaves there, removed before the next
command that writes tables.

A Spark write that is killed (SIGKILL, a cancel that escalates, RUN_TIMEOUT) stops before the metastore records
the table, and leaves its folder under `<warehouse>/<schema>.db/<table>/` with a `_temporary` folder in it. Spark
then refuses every later `create table` of that name ([LOCATION_ALREADY_EXISTS]) until the folder is gone.

The one rule: only what no finished write can leave is removed. A finished write never keeps a `_temporary`
folder (Spark's committer deletes it), and a `<seed>__seeding` table is a seed's work table
(dbt_project/macros/spark/seed.sql), never read: its folder is removed whole, and the seed then drops the
table, if the metastore still knows it. It must run while no Spark writes into this warehouse: the job and
`scripts/dbt.sh` call it holding the run lock.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from urllib.parse import urlparse

log = logging.getLogger(__name__)

#: The suffix of a seed's work table (dbt_project/macros/spark/seed.sql).
SEEDING_SUFFIX = "__seeding"


def local_path(location: str) -> Path | None:
    """The local folder of a warehouse location (a path or a file: URI); None for other file systems (hdfs:,
    s3a:, ...), whose leftovers this module cannot see."""
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else location)
    return None


def killed_writes(warehouse: Path) -> list[Path]:
    """The folders under `warehouse` that killed writes left: seeds' work tables, and `_temporary` folders."""
    found: list[Path] = []
    for table in sorted(warehouse.glob("*.db/*")):
        if not table.is_dir():
            continue
        if table.name.endswith(SEEDING_SUFFIX):
            found.append(table)
        elif (table / "_temporary").is_dir():
            found.append(table / "_temporary")
    return found


def clean_killed_writes(location: str) -> list[Path]:
    """Remove what killed writes left in the warehouse at `location` (and a table folder that is then empty,
    which Spark would refuse to create a table in as well). Returns what was removed, for the log."""
    warehouse = local_path(location)
    if warehouse is None or not warehouse.is_dir():
        return []
    removed = []
    for path in killed_writes(warehouse):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
        table = path.parent if path.name == "_temporary" else None
        if table is not None and not any(table.iterdir()):
            table.rmdir()
        log.info("removed %s, left by a killed Spark write", path)
    return removed
