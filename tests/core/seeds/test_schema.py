"""api.core.seeds.schema: the expected files and columns."""

from __future__ import annotations

from api.core.seeds import SEED_FILES
from tests.datasets import CANONICAL_DIR, SEED_FILE_NAMES


def test_seed_files_schema_matches_canonical_headers() -> None:
    assert list(SEED_FILES) == list(SEED_FILE_NAMES)
    for name, columns in SEED_FILES.items():
        header = (CANONICAL_DIR / name).read_text(encoding="utf-8").splitlines()[0]
        assert ",".join(column.name for column in columns) == header
