"""prepare_seeds as a whole: the canonical data, one-fault data sets, files missing, references across files,
and the first line of a duplicated key."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.core.seeds import PreparedSeeds, Problem, prepare_seeds
from tests.core.seeds.helpers import assert_no_output, big_dataset, data_error, hashes, outputs
from tests.datasets import (
    CANONICAL_DIR,
    CANONICAL_ROW_COUNTS,
    COMPOUNDS,
    EXPERIMENTS,
    SEED_FILE_NAMES,
    USERS,
    bad_variants,
    chain,
    copy_canonical,
    set_cell,
)

EXPECTED_COMPOUNDS = (
    "compound_id,compound_name,compound_structure\n"
    "1,Compound A,C20H25N3O\n"
    "2,Compound B,C21H30O2\n"
    "3,Compound C,C8H11NO2\n"
)
EXPECTED_EXPERIMENTS_HEAD = (
    "experiment_id,user_id,experiment_compound_ids,experiment_run_time\n1,1,1;2,10\n2,1,2;3,15\n"
)
EXPECTED_USERS_TAIL = "10,Judy,judy@example.com,2023-10-01\n"

BAD = bad_variants()


def test_canonical_output_is_exact(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    before = hashes(data)
    result = prepare_seeds(data, tmp_path / "out")
    assert result == PreparedSeeds(directory=tmp_path / "out", row_counts=CANONICAL_ROW_COUNTS)
    out = outputs(tmp_path / "out")
    assert out[COMPOUNDS].decode("utf-8") == EXPECTED_COMPOUNDS
    assert out[EXPERIMENTS].decode("utf-8").startswith(EXPECTED_EXPERIMENTS_HEAD)
    assert out[USERS].decode("utf-8").endswith(EXPECTED_USERS_TAIL)
    for name in SEED_FILE_NAMES:  # the canonical files are already clean
        assert out[name] == (CANONICAL_DIR / name).read_bytes(), name
        assert b"\r" not in out[name] and not out[name].startswith(b"\xef\xbb\xbf")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(SEED_FILE_NAMES)  # no temp files
    assert hashes(data) == before


#: The faults the issue lists, by their name in bad_variants(): the matrix must keep covering them.
ISSUE_FAULTS = {
    "missing_users", "empty_users", "header_only_experiments", "missing_column", "renamed_column", "extra_column",
    "duplicate_user_id", "duplicate_experiment_id", "duplicate_compound_id", "unknown_user", "unknown_compound",
    "compound_list_colon", "compound_list_double_semicolon", "compound_list_only_semicolon", "compound_list_letter",
    "run_time_text", "run_time_negative", "date_impossible", "non_utf8_ff_byte", "too_many_fields",
    "too_few_fields", "unterminated_quote",
}  # fmt: skip


def test_there_are_enough_bad_variants() -> None:
    assert len(BAD) >= 24
    assert set(BAD) >= ISSUE_FAULTS


@pytest.mark.parametrize("variant", sorted(BAD))
def test_bad_variant_is_reported(variant: str, tmp_path: Path) -> None:
    mutation, expected = BAD[variant]
    data = copy_canonical(tmp_path / "data")
    mutation(data)
    before = hashes(data)
    error = data_error(data, tmp_path / "out")
    text = str(error)
    assert expected in text
    assert any(name in text for name in SEED_FILE_NAMES)
    assert error.problems and all(isinstance(p, Problem) for p in error.problems)
    assert error.problems[0].file in SEED_FILE_NAMES
    assert_no_output(tmp_path / "out")
    assert hashes(data) == before


def test_references_are_checked_against_complete_files(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    chain(
        set_cell(EXPERIMENTS, 2, "user_id", "42"),
        set_cell(EXPERIMENTS, 3, "experiment_compound_ids", "4;2;5"),
    )(data)
    messages = [str(p) for p in data_error(data, tmp_path / "out").problems]
    assert messages == [
        "user_experiments.csv, line 2 (experiment_id 1): user_id 42 does not exist in users.csv (no user_id 42)",
        "user_experiments.csv, line 3 (experiment_id 2): compound id 4 in experiment_compound_ids '4;2;5' "
        "does not exist in compounds.csv (no compound_id 4)",
        "user_experiments.csv, line 3 (experiment_id 2): compound id 5 in experiment_compound_ids '4;2;5' "
        "does not exist in compounds.csv (no compound_id 5)",
    ]


def test_missing_referenced_file_gives_no_follow_up_errors(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    (data / USERS).unlink()
    error = data_error(data, tmp_path / "out")
    assert [str(p) for p in error.problems] == [
        "users.csv: the file is missing from the data folder; "
        "expected the files users.csv, user_experiments.csv, compounds.csv"
    ]


def test_all_files_missing(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "Users.csv").write_text("x")
    error = data_error(tmp_path / "data", tmp_path / "out")
    assert [p.file for p in error.problems] == list(SEED_FILE_NAMES)
    assert "found 'Users.csv'; file names are case-sensitive" in str(error.problems[0])


def test_out_dir_must_differ_from_data_dir(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    before = hashes(data)
    with pytest.raises(ValueError):
        prepare_seeds(data, data / ".." / "data")
    assert hashes(data) == before


def test_missing_data_dir(tmp_path: Path) -> None:
    error = data_error(tmp_path / "nowhere", tmp_path / "out")
    assert "the data folder does not exist" in str(error)
    assert_no_output(tmp_path / "out")


def test_duplicate_keys_at_scale_name_their_first_line(tmp_path: Path) -> None:
    data = big_dataset(tmp_path / "data", experiments=120_000)
    lines = (data / EXPERIMENTS).read_text().split("\n")
    # line n + 1 holds experiment n; repeat experiment 9 at line 100001 (written 009, with
    # spaces) and line 110001, and experiment 60000 at line 119001
    for line, key in ((100_001, " 009 "), (110_001, "9"), (119_001, "60000")):
        lines[line - 1] = key + lines[line - 1][lines[line - 1].index(",") :]
    (data / EXPERIMENTS).write_text("\n".join(lines))
    error = data_error(data, tmp_path / "out")
    assert [str(p) for p in error.problems] == [
        "user_experiments.csv, line 100001 (experiment_id 9): experiment_id 9 appears more than once "
        "(lines 10 and 100001)",
        "user_experiments.csv, line 110001 (experiment_id 9): experiment_id 9 appears more than once "
        "(lines 10 and 110001)",
        "user_experiments.csv, line 119001 (experiment_id 60000): experiment_id 60000 appears more than once "
        "(lines 60001 and 119001)",
    ]
    assert error.problems[0].value == "009" and error.total == 3
    assert_no_output(tmp_path / "out")
