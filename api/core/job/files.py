"""A run's files under STATE_DIR: its text log and dbt artifacts (`runs/<run_id>/`), what every run reuses
(`build/`), and the docs site of the last successful run (`docs/current`).

The one rule: files are for reading, the database is the record. Nothing here may fail a run: a log that cannot
be written is cut short, artifacts that cannot be kept are skipped with a warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import IO

from api.config import Settings
from api.core.dbt.invoke import DbtResult

log = logging.getLogger(__name__)

#: What a docs site is: dbt's page and the two files it fetches.
DOCS_FILES = ("index.html", "manifest.json", "catalog.json")


def build_dir(settings: Settings) -> Path:
    """What every run reuses: the normalised input (`seeds/`) and dbt's targets (`target/` for the build, `docs/`
    for the docs of the published schemas), so that dbt's parsed manifests stay valid from run to run."""
    return settings.state_dir / "build"


def exchange_dir(settings: Settings) -> Path:
    """Where a run puts the files dbt's engine reads and writes: the normalised input (`seeds/`) and, on Spark,
    the mart export (`mart-export/`). On Postgres `build/`; on Spark `SPARK_SHARED_DIR/build`, which every Spark
    node sees at the same path (docs/spark.md)."""
    return settings.spark_shared / "build" if settings.dbt_target == "spark" else build_dir(settings)


def docs_dir(settings: Settings) -> Path:
    """The dbt docs site of the last successful run (a symlink switched atomically)."""
    return settings.state_dir / "docs" / "current"


def runs_dir(settings: Settings) -> Path:
    """One folder per run, named by its id: `dbt.log` and `artifacts/`."""
    return settings.state_dir / "runs"


class BestEffortLog:
    """The run's text log. Writing to it never raises: on a full disk (ENOSPC) or any other I/O error the run
    goes on, and records its outcome in the database, with the log cut short."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        except OSError:
            log.warning("cannot write the log %s", path, exc_info=True)

    def write(self, text: str) -> None:
        if self._file is None:
            return
        try:
            self._file.write(text)
            self._file.flush()
        except OSError:
            log.warning("cannot write the log %s any more", self.path, exc_info=True)
            self.close()

    def flush(self) -> None:
        pass  # every write is flushed

    def offset(self) -> int | None:
        """The log's size in bytes: where the next line will begin (None once the log cannot be written)."""
        if self._file is None:
            return None
        try:
            return os.fstat(self._file.fileno()).st_size
        except OSError:
            return None

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()


def keep_artifacts(run_dir: Path, result: DbtResult) -> None:
    """Keep a run's dbt artifacts in its own folder: manifest.json and catalog.json as dbt wrote them last,
    run_results.json with the results of every step of the run so far. A command that wrote no results (killed,
    cancelled, crashed before it ran) adds none, quietly."""
    folder = run_dir / "artifacts"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("manifest.json", "catalog.json"):
            if (result.target_path / name).exists() and result.args[0] in ("seed", "docs"):  # new ones
                shutil.copyfile(result.target_path / name, folder / name)
        results = result.target_path / "run_results.json"
        if not results.exists():  # run_dbt deleted the previous one: this command wrote none
            return
        merged_path = folder / "run_results.json"
        fresh = json.loads(results.read_text())
        if merged_path.exists():
            fresh["results"] = json.loads(merged_path.read_text())["results"] + fresh["results"]
        merged_path.write_text(json.dumps(fresh))
    except (OSError, ValueError, KeyError):
        log.warning("run %s: could not keep the dbt artifacts of %s", run_dir.name, result.args, exc_info=True)


def install_docs(settings: Settings, run_id: int, generated: Path) -> None:
    """Make the docs dbt generated into `generated` the site served at /dbt-docs/: copied into a folder of the
    run's own, then the `current` symlink switched to it in one rename; older sites go."""
    root = settings.state_dir / "docs"
    site = root / f"run-{run_id}"
    site.mkdir(parents=True, exist_ok=True)
    for name in DOCS_FILES:
        shutil.copy2(generated / name, site / name)
    link = root / f".current-{run_id}"
    link.unlink(missing_ok=True)
    link.symlink_to(site.name)
    os.replace(link, docs_dir(settings))
    for old in root.glob("run-*"):
        if old != site:
            shutil.rmtree(old, ignore_errors=True)


def prune_run_dirs(settings: Settings, oldest_kept: int) -> None:
    """Delete the folders of runs older than `oldest_kept`."""
    for old in runs_dir(settings).glob("*"):
        if old.name.isdigit() and int(old.name) < oldest_kept:
            shutil.rmtree(old, ignore_errors=True)
