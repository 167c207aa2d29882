import pytest
from toymodel import load_target


@pytest.fixture(scope="session")
def uno():
    return load_target("uno")


@pytest.fixture(scope="session")
def host():
    return load_target("host")
