"""Shared fixtures of the compression tests: a small digits dataset and a quickly trained CNN."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits

from edgebuild.data import load_dataset
from edgebuild.train import build_net, fit

SMALL_ARCH = [{"conv": {"out": 6, "kernel": 3, "pad": 1}}, {"relu": {}}, {"maxpool": {"kernel": 2}},
              {"conv": {"out": 8, "kernel": 3, "pad": 0}}, {"relu": {}}, {"flatten": {}},
              {"dense": {"out": 24}}, {"relu": {}}, {"dense": {"out": 10}}]

LENET5 = [{"conv": {"out": 6, "kernel": 5, "pad": 2}}, {"relu": {}}, {"maxpool": {"kernel": 2}},
          {"conv": {"out": 16, "kernel": 5}}, {"relu": {}}, {"maxpool": {"kernel": 2}}, {"flatten": {}},
          {"dense": {"out": 120}}, {"relu": {}}, {"dense": {"out": 84}}, {"relu": {}}, {"dense": {"out": 10}}]


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits: 1,297 train, 200 val, 300 test."""
    return load_dataset({"name": "digits8x8", "split": {"test": 300, "val": 200, "seed": 0}})


@pytest.fixture(scope="session")
def trained(digits):
    """SMALL_ARCH trained for 15 epochs on the digits (about 2 s)."""
    net = build_net(SMALL_ARCH, digits.x_train.shape[1:], seed=0)
    with threadpool_limits(limits=1):
        fit(net, digits, {"epochs": 15, "lr": 0.005, "seed": 0})
    return net


@pytest.fixture(scope="session")
def small_arch():
    return SMALL_ARCH


@pytest.fixture(scope="session")
def lenet5_arch():
    return LENET5
