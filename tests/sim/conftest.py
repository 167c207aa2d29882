import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "firmware"))
from toymodel import load_target  # noqa: E402


@pytest.fixture(scope="session")
def uno():
    return load_target("uno")
