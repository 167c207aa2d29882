"""Shared fixtures for tests/model and the conformance summary printed at the end of a run."""

from __future__ import annotations

import collections

import pytest

CONFORMANCE = collections.Counter()


def pytest_terminal_summary(terminalreporter):
    """Print how many ONNX backend conformance cases ran, passed and were skipped."""
    if CONFORMANCE:
        c = CONFORMANCE
        terminalreporter.write_line(
            f"ONNX backend conformance: {c['ran']} graph runs ({c['passed']} passed; loaded and "
            f"optimised graphs each count), {c['skipped']} cases skipped as unsupported")


@pytest.fixture
def conformance():
    """Counter of conformance outcomes (ran/passed/skipped) for the end-of-run summary."""
    return CONFORMANCE
