"""api.core.seeds.fast: the block path accepts only what the careful path would write the same way."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from api.core.seeds import prepare_seeds
from api.core.seeds.fast import _SPACES_BUT_LF
from tests.core.seeds.helpers import outputs
from tests.datasets import SEED_FILE_NAMES


@pytest.mark.parametrize("seed", range(6))
def test_fast_path_writes_what_the_careful_path_writes(seed: int, tmp_path: Path) -> None:
    """Blocks of ordinary lines are copied as they are; checking every row one by one must give
    the same bytes (columns reordered for odd seeds)."""
    from tests.datasets import random_dataset

    data = random_dataset(tmp_path / "data", seed, users=300, experiments=2000, compounds=40)
    if seed % 2:
        for name in SEED_FILE_NAMES:
            with (data / name).open(encoding="utf-8", newline="") as stream:
                rows = [row[::-1] for row in csv.reader(stream)]
            with (data / name).open("w", encoding="utf-8", newline="") as stream:
                csv.writer(stream, lineterminator="\n").writerows(rows)
    fast = prepare_seeds(data, tmp_path / "fast")
    careful = prepare_seeds(data, tmp_path / "careful", careful=True)
    assert fast.row_counts == careful.row_counts == {"users": 300, "user_experiments": 2000, "compounds": 40}
    assert outputs(tmp_path / "fast") == outputs(tmp_path / "careful")


def test_whitespace_trimmed_by_the_block_path_is_what_strip_trims() -> None:
    assert "".join(c for c in map(chr, range(0x110000)) if c.isspace() and c != "\n") == _SPACES_BUT_LF
