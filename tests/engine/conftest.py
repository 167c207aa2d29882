"""Fixtures for the engine tests."""

import pytest
from engine_testlib import HERE, Project


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A scratch Project; demo actions log to its event file and are importable."""
    monkeypatch.setenv("EB_TEST_LOG", str(tmp_path / "events.jsonl"))
    monkeypatch.syspath_prepend(str(HERE))
    return Project(tmp_path)
