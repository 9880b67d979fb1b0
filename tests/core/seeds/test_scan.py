"""api.core.seeds.scan: one pass over big files in flat memory, physical line numbers deep in a file, chunk
and block edges anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.core.seeds import prepare_seeds, reader, scan
from tests.core.seeds.helpers import big_dataset, data_error, outputs
from tests.datasets import COMPOUNDS, EXPERIMENTS, SEED_FILE_NAMES, USERS, bad_variants, copy_canonical, messy_variants

MESSY = messy_variants()
BAD = bad_variants()


def test_memory_does_not_grow_with_the_data(tmp_path: Path) -> None:
    import tracemalloc

    data = big_dataset(tmp_path / "data", experiments=200_000)
    size = sum((data / name).stat().st_size for name in SEED_FILE_NAMES)
    tracemalloc.start()
    try:
        result = prepare_seeds(data, tmp_path / "out")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.row_counts == {"users": 5000, "user_experiments": 200_000, "compounds": 300}
    # Holding the rows (even as bare tuples of strings) takes well over 50 MB here; the
    # streaming reader holds a chunk of text and integer sets of the keys.
    assert size > 5_000_000
    assert peak < 16_000_000, f"peak {peak / 1e6:.1f} MB"
    assert outputs(tmp_path / "out") == outputs(data)  # already clean: copied byte for byte


def test_errors_deep_in_a_big_file_report_physical_lines(tmp_path: Path) -> None:
    data = big_dataset(tmp_path / "data", experiments=150_000, compounds=50)
    text = (data / COMPOUNDS).read_text()
    # a quoted name spanning three lines near the top of compounds.csv, CRLF line ends
    text = text.replace("2,Compound 2,", '2,"Compound\n2\nbis",', 1)
    (data / COMPOUNDS).write_bytes(text.replace("\n", "\r\n").encode())
    lines = (data / EXPERIMENTS).read_text().split("\n")
    lines[140_000] = "140000,1,1;2,fast"  # line 140001
    lines[149_990] = "149990,1,1;51,3"  # line 149991: compound 51 does not exist
    (data / EXPERIMENTS).write_text("\n".join(["", "   ", *lines]))  # two blank lines first
    (data / USERS).write_text((data / USERS).read_text().replace("\n4999,", "\n4999,User,x,2024-02-30\n#", 1))
    error = data_error(data, tmp_path / "out")
    assert [(p.file, p.line, p.column, p.value) for p in error.problems] == [
        (USERS, 5000, "signup_date", "2024-02-30"),
        (USERS, 5001, None, "#User 4999,u4999@example.com,2024-08-16"),
        (EXPERIMENTS, 140_003, "experiment_run_time", "fast"),
        (EXPERIMENTS, 149_993, "experiment_compound_ids", "51"),
    ]
    assert "too few values" in error.problems[1].message
    # users.csv is broken, so user references are not checked; compounds.csv is complete (its
    # quoted newlines and CRLF are fine), so compound references are
    assert str(error.problems[3]) == (
        "user_experiments.csv, line 149993 (experiment_id 149990): compound id 51 in experiment_compound_ids "
        "'1;51' does not exist in compounds.csv (no compound_id 51)"
    )


@pytest.mark.parametrize("variant", sorted(MESSY))
def test_tiny_chunks_and_blocks_change_nothing(
    variant: str, tmp_path: Path, canonical_output: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunk and block edges fall everywhere, also inside quoted values and CRLF pairs."""
    monkeypatch.setattr(reader, "CHUNK_CHARS", 3)
    monkeypatch.setattr(scan, "SMALL_BLOCK", 1)
    monkeypatch.setattr(scan, "FAN_OUT", 2)
    data = copy_canonical(tmp_path / "data")
    MESSY[variant](data)
    prepare_seeds(data, tmp_path / "out")
    assert outputs(tmp_path / "out") == canonical_output


@pytest.mark.parametrize("variant", sorted(BAD))
def test_tiny_chunks_report_the_same_problems(variant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mutation, _ = BAD[variant]
    data = copy_canonical(tmp_path / "data")
    mutation(data)
    expected = str(data_error(data, tmp_path / "out"))
    monkeypatch.setattr(reader, "CHUNK_CHARS", 2)
    monkeypatch.setattr(scan, "SMALL_BLOCK", 1)
    assert str(data_error(data, tmp_path / "out")) == expected
