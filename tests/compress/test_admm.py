"""ADMM pruning: the projections against brute force, and a short run on the digits."""

from __future__ import annotations

import copy
import itertools

import numpy as np
from threadpoolctl import threadpool_limits

from edgebuild.compress.admm import admm_prune, project, project_rows
from edgebuild.compress.prune import widths
from edgebuild.train import evaluate


def test_projection_is_the_nearest_sparse_point():
    w = np.random.default_rng(0).standard_normal((2, 3))
    best = min((np.where(np.isin(np.arange(6), s), w.reshape(-1), 0.0) for s in itertools.combinations(range(6), 2)),
               key=lambda z: np.linalg.norm(z - w.reshape(-1)))
    np.testing.assert_array_equal(project(w, 2).reshape(-1), best)


def test_row_projection_is_the_nearest_row_sparse_point():
    w = np.random.default_rng(1).standard_normal((5, 2, 2))
    best = min((np.where(np.isin(np.arange(5), s)[:, None, None], w, 0.0) for s in itertools.combinations(range(5), 2)),
               key=lambda z: np.linalg.norm(z - w))
    np.testing.assert_array_equal(project_rows(w, 2), best)


def test_admm_unstructured_reaches_the_sparsity(trained, digits):
    net = copy.deepcopy(trained)
    with threadpool_limits(limits=1):
        out = admm_prune(net, digits, {"dense1": 0.2, "conv2": 0.5}, rounds=2, retrain_epochs=2, lr=2e-3)
    w = out.params()
    assert int((w["dense1.weight"] != 0).sum()) <= round(w["dense1.weight"].size * 0.2)
    assert int((w["conv2.weight"] != 0).sum()) <= round(w["conv2.weight"].size * 0.5)
    assert evaluate(out, digits.x_test, digits.y_test) > 0.85          # still a digit classifier


def test_admm_filters_shrinks_and_is_deterministic(trained, digits):
    runs = []
    for _ in range(2):
        with threadpool_limits(limits=1):
            runs.append(admm_prune(copy.deepcopy(trained), digits, {"conv1": 0.5, "dense1": 0.5},
                                   structure="filters", rounds=2, retrain_epochs=1, seed=4))
    assert widths(runs[0]) == {"conv1": 3, "conv2": 8, "dense1": 12, "dense2": 10}
    for k, v in runs[0].params().items():
        np.testing.assert_array_equal(v, runs[1].params()[k])
