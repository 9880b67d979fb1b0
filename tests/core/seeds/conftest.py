"""The canonical output, written once per test module."""

from __future__ import annotations

import pytest

from api.core.seeds import prepare_seeds
from tests.core.seeds.helpers import outputs
from tests.datasets import CANONICAL_DIR


@pytest.fixture(scope="module")
def canonical_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("canonical") / "out"
    prepare_seeds(CANONICAL_DIR, out)
    return outputs(out)
