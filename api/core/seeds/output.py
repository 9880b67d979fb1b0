"""The clean copies being written: temporary files in the output folder, published all together.

The rule it keeps: the outputs are replaced all together or not at all. Each file's clean rows go
to a temporary copy as they are checked; the first problem abandons (deletes) every copy, and
only when nothing was wrong are they made durable and renamed into place. A failed call leaves
the previous outputs as they were (and no output folder it created).
"""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from pathlib import Path
from typing import IO

from api.core.seeds.schema import SEED_FILES


class Output:
    """The temporary copies being written, abandoned (deleted) as soon as any problem is found,
    renamed into place all together at the end otherwise."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.failed = False
        self.published = False
        self.created_dir = False
        self.temporary: dict[str, tuple[Path, IO[str]]] = {}

    def open(self, name: str) -> IO[str] | None:
        if self.failed:
            return None
        if not self.out_dir.exists():
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.created_dir = True
        handle, tmp_name = tempfile.mkstemp(dir=self.out_dir, prefix=f".{name}.", suffix=".tmp")
        stream = os.fdopen(handle, "w", encoding="utf-8", newline="")
        self.temporary[name] = (Path(tmp_name), stream)
        csv.writer(stream, lineterminator="\n").writerow([column.name for column in SEED_FILES[name]])
        return stream

    def fail(self) -> None:
        if self.failed:
            return
        self.failed = True
        for tmp_path, stream in self.temporary.values():
            stream.close()
            tmp_path.unlink(missing_ok=True)

    def discard(self) -> None:
        if self.published:
            return
        self.fail()
        if self.created_dir:
            with contextlib.suppress(OSError):
                self.out_dir.rmdir()  # only if still empty

    def publish(self) -> None:
        for tmp_path, stream in self.temporary.values():
            stream.flush()
            os.fsync(stream.fileno())
            stream.close()
            os.chmod(tmp_path, 0o600)
        for name, (tmp_path, _) in self.temporary.items():
            os.replace(tmp_path, self.out_dir / name)
        self.temporary.clear()
        self.published = True
