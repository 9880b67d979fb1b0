"""api.core.seeds.reader: physical lines (line endings, BOM, blank lines), NUL characters, bytes that are not UTF-8."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.core.seeds import prepare_seeds
from tests.core.seeds.helpers import big_dataset, data_error, hashes, outputs
from tests.datasets import (
    CANONICAL_DIR,
    CANONICAL_ROW_COUNTS,
    COMPOUNDS,
    EXPERIMENTS,
    copy_canonical,
    messy_variants,
    write_file,
)

MESSY = messy_variants()


@pytest.mark.parametrize("variant", sorted(MESSY))
def test_messy_variant_loads_like_canonical(variant: str, tmp_path: Path, canonical_output: dict[str, bytes]) -> None:
    data = copy_canonical(tmp_path / "data")
    MESSY[variant](data)
    assert outputs(data) != outputs(CANONICAL_DIR), "the variant must change the input"
    before = hashes(data)
    result = prepare_seeds(data, tmp_path / "out")
    assert result.row_counts == CANONICAL_ROW_COUNTS
    assert outputs(tmp_path / "out") == canonical_output
    assert hashes(data) == before


def test_line_numbers_count_physical_lines(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    # blank lines before the header, a quoted newline, CR-only line breaks
    write_file(
        COMPOUNDS,
        '\r\r  \rcompound_id,compound_name,compound_structure\r1,"Compound\rA",X\r\r2,Compound B,Y\r3,C,Z,W\r',
    )(data)
    problems = data_error(data, tmp_path / "out").problems
    assert [(p.line, p.value) for p in problems] == [(9, "3,C,Z,W")]


def test_non_utf8_reports_every_bad_line(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    write_file(COMPOUNDS, b"compound_id,compound_name,compound_structure\r\n1,A\xe9,X\r\n2,B,Y\r\n3,\xff\xfeC,Z\r\n")(
        data
    )
    problems = data_error(data, tmp_path / "out").problems
    assert [(p.line, p.value) for p in problems] == [(2, "\\xe9"), (4, "\\xff \\xfe")]
    assert "'1,A\\xe9,X'" in problems[0].message


def test_nul_and_bad_utf8_deep_in_a_big_file(tmp_path: Path) -> None:
    data = big_dataset(tmp_path / "data", experiments=100_000)
    raw = (data / EXPERIMENTS).read_bytes()
    lines = raw.split(b"\n")
    lines[99_000] = lines[99_000].replace(b",", b",\x00", 1)  # line 99001
    (data / EXPERIMENTS).write_bytes(b"\r\n".join(lines))
    problems = data_error(data, tmp_path / "out").problems
    assert [str(p) for p in problems] == [
        "user_experiments.csv, line 99001: the file contains a NUL character (\\x00); is it really a CSV text file?"
    ]
    lines[99_500] = lines[99_500] + b"\xe9"  # a decoding error after the NUL takes precedence
    lines[60_000] = lines[60_000] + b"\xff"
    (data / EXPERIMENTS).write_bytes(b"\r\n".join(lines))
    problems = data_error(data, tmp_path / "out").problems
    assert [(p.line, p.value) for p in problems] == [(60_001, "\\xff"), (99_501, "\\xe9")]
