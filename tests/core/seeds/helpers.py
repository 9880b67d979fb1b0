"""What the validator's tests share: reading an output folder, expecting a DataError, a big valid data set."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from api.core.seeds import DataError, prepare_seeds
from tests.datasets import COMPOUNDS, EXPERIMENTS, SEED_FILE_NAMES, USERS


def hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def outputs(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in SEED_FILE_NAMES}


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def data_error(data: Path, out: Path) -> DataError:
    with pytest.raises(DataError) as caught:
        prepare_seeds(data, out)
    return caught.value


def assert_no_output(out: Path) -> None:
    assert not out.exists() or list(out.iterdir()) == []


def big_dataset(folder: Path, experiments: int, users: int = 5000, compounds: int = 300) -> Path:
    """A valid data set written fast: experiment n (line n + 1) belongs to user n % users + 1."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / USERS).write_text(
        "user_id,name,email,signup_date\n"
        + "".join(
            f"{u},User {u},u{u}@example.com,2024-{u % 12 + 1:02d}-{u % 28 + 1:02d}\n" for u in range(1, users + 1)
        )
    )
    (folder / EXPERIMENTS).write_text(
        "experiment_id,user_id,experiment_compound_ids,experiment_run_time\n"
        + "".join(
            f"{e},{e % users + 1},{e % compounds + 1};{(e * 7) % compounds + 1},{e % 500}.{e % 10}\n"
            for e in range(1, experiments + 1)
        )
    )
    (folder / COMPOUNDS).write_text(
        "compound_id,compound_name,compound_structure\n"
        + "".join(f"{c},Compound {c},C{c}H{c * 2}O\n" for c in range(1, compounds + 1))
    )
    return folder
