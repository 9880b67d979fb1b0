"""api.core.seeds.fast: the block path accepts only what the careful path (``careful=True``) accepts and
writes it the same way, so that every data set gives the same files and the same messages either way."""

from __future__ import annotations

import csv
import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from api.core.seeds import DataError, prepare_seeds, scan
from api.core.seeds.fast import SPACES_BUT_LF
from tests.core.seeds.helpers import outputs
from tests.datasets import (
    EXPERIMENTS,
    SEED_FILE_NAMES,
    Mutation,
    bad_variants,
    copy_canonical,
    messy_random_dataset,
    messy_variants,
    quoted_value_variants,
    random_dataset,
    replace_line,
)


def _mutated(mutation: Mutation, dest: Path) -> Path:
    mutation(copy_canonical(dest))
    return dest


def _data_sets() -> dict[str, Callable[[Path], Path]]:
    """Every data set of tests/datasets.py, by name: each writes itself into a folder and returns it."""
    sets: dict[str, Callable[[Path], Path]] = {"canonical": copy_canonical}
    groups = {
        "messy": messy_variants(),
        "quoted": {name: mutation for name, (mutation, _) in quoted_value_variants().items()},
        "bad": {name: mutation for name, (mutation, _) in bad_variants().items()},
    }
    for group, mutations in groups.items():
        for name, mutation in mutations.items():
            sets[f"{group}/{name}"] = functools.partial(_mutated, mutation)
    for seed in range(4):
        sets[f"random/{seed}"] = functools.partial(random_dataset, seed=seed)
    for seed in range(40):
        for faults in (False, True):
            sets[f"messy_random/{seed}/{'faults' if faults else 'clean'}"] = functools.partial(
                messy_random_dataset, seed=seed, faults=faults
            )
    return sets


DATA_SETS = _data_sets()


def _outcome(data: Path, out: Path, *, careful: bool) -> dict[str, Any]:
    """What prepare_seeds says and writes: the error's text, total and problems, or the rows and files."""
    try:
        prepared = prepare_seeds(data, out, careful=careful)
    except DataError as err:
        problems = [dataclasses.astuple(problem) for problem in err.problems]
        return {"error": str(err), "total": err.total, "problems": problems}
    return {"rows": prepared.row_counts, "files": outputs(out)}


@pytest.mark.parametrize("name", sorted(DATA_SETS))
def test_fast_and_careful_paths_agree(name: str, tmp_path: Path) -> None:
    """The same files (byte for byte) or the same messages, problem by problem, on every data set."""
    data = DATA_SETS[name](tmp_path / "data")
    fast = _outcome(data, tmp_path / "fast", careful=False)
    careful = _outcome(data, tmp_path / "careful", careful=True)
    assert fast.keys() == careful.keys()
    if "error" in fast:
        assert fast["error"] == careful["error"]
        assert fast["total"] == careful["total"]
        assert len(fast["problems"]) == len(careful["problems"])
        for number, (seen_fast, seen_careful) in enumerate(zip(fast["problems"], careful["problems"], strict=True)):
            assert seen_fast == seen_careful, f"problem {number}"
    else:
        assert fast["rows"] == careful["rows"]
        for file in SEED_FILE_NAMES:
            assert fast["files"][file] == careful["files"][file], file


def test_there_are_data_sets_of_every_kind() -> None:
    kinds = {name.split("/")[0] for name in DATA_SETS}
    assert kinds == {"canonical", "messy", "quoted", "bad", "random", "messy_random"}
    assert sum(name.startswith("messy_random/") for name in DATA_SETS) == 80


def test_careful_never_takes_the_fast_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """careful=True reads every record one by one, also in the pass that finds a duplicated key's first line."""
    data = copy_canonical(tmp_path / "data")
    replace_line(EXPERIMENTS, 12, "1,2,1;3,30")(data)  # experiment 1 again
    fast_error = _outcome(data, tmp_path / "fast", careful=False)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the fast path was used")

    monkeypatch.setattr(scan, "fast_block", refuse)
    monkeypatch.setattr(scan, "none_located", refuse)
    careful_error = _outcome(data, tmp_path / "careful", careful=True)
    assert careful_error == fast_error
    assert "experiment_id 1 appears more than once (lines 2 and 12)" in careful_error["error"]


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
    assert "".join(c for c in map(chr, range(0x110000)) if c.isspace() and c != "\n") == SPACES_BUT_LF
