"""Shared fixtures of the compression tests: a small digits dataset and a quickly trained CNN."""

from __future__ import annotations

import pytest
from edgebuild_testlib import digits8x8, trained_net

SMALL_ARCH = [{"conv": {"out": 6, "kernel": 3, "pad": 1}}, {"relu": {}}, {"maxpool": {"kernel": 2}},
              {"conv": {"out": 8, "kernel": 3, "pad": 0}}, {"relu": {}}, {"flatten": {}},
              {"dense": {"out": 24}}, {"relu": {}}, {"dense": {"out": 10}}]

LENET5 = [{"conv": {"out": 6, "kernel": 5, "pad": 2}}, {"relu": {}}, {"maxpool": {"kernel": 2}},
          {"conv": {"out": 16, "kernel": 5}}, {"relu": {}}, {"maxpool": {"kernel": 2}}, {"flatten": {}},
          {"dense": {"out": 120}}, {"relu": {}}, {"dense": {"out": 84}}, {"relu": {}}, {"dense": {"out": 10}}]


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits: 1,297 train, 200 val, 300 test."""
    return digits8x8()


@pytest.fixture(scope="session")
def trained(digits):
    """SMALL_ARCH trained for 15 epochs on the digits (about 2 s)."""
    return trained_net(SMALL_ARCH, digits)


@pytest.fixture(scope="session")
def small_arch():
    return SMALL_ARCH


@pytest.fixture(scope="session")
def lenet5_arch():
    return LENET5
