"""Budgets, the width search and energy-first pruning (small CNN on the 8x8 digits)."""

from __future__ import annotations

import time

import numpy as np

import pytest
from threadpoolctl import threadpool_limits

from edgebuild.compress.budget import Budget, Costing
from edgebuild.compress.prune import apply_masks, magnitude_masks, weighted_layers, widths
from edgebuild.compress.search import drop_and_error, energy_prune, predicted_drop, search, within_limit
from edgebuild.config import load_recipe
from edgebuild.errors import BudgetError
from edgebuild.train import build_net


@pytest.fixture(scope="module")
def uno():
    return load_recipe("recipes/mnist_uno.yaml")["target"]


@pytest.fixture(scope="module")
def costing(uno):
    return Costing(uno["energy"], uno["f_cpu"])


def test_budget_from_recipe_caps_by_board(uno):
    b = Budget.from_recipe({"flash_bytes": 50000, "sram_bytes": 1000, "energy_uj": None, "latency_ms": 5.0,
                            "max_accuracy_drop": 0.02}, uno["memories"])
    assert b.limits() == {"flash_bytes": 32768 - 512, "sram_bytes": 1000, "latency_ms": 5.0}
    short = b.shortfalls({"flash_bytes": 40000, "sram_bytes": 900, "energy_uj": 1.0, "latency_ms": 7.5})
    assert short == {"flash_bytes": {"value": 40000, "limit": 32256, "over": 7744},
                     "latency_ms": {"value": 7.5, "limit": 5.0, "over": 2.5}}
    assert b.excess({"flash_bytes": 32256 * 2, "sram_bytes": 500, "energy_uj": 0, "latency_ms": 10.0}) == pytest.approx(2.0)


def test_predicted_drop_interpolates_the_curves():
    sens = {("width", "a"): [(0.25, 0.2), (0.5, 0.1), (1.0, 0.0)], ("width", "b"): [(0.5, 0.04), (1.0, 0.0)],
            ("density", "b"): [(0.1, 0.3), (0.5, 0.1), (1.0, 0.0)]}
    assert predicted_drop(sens, {"a": 6, "b": 3}, {"a": 8, "b": 4}) == pytest.approx(0.05 + 0.02)
    assert predicted_drop(sens, {"a": 6, "b": 3}, {"a": 8, "b": 4}, {"b": 0.3}) == pytest.approx(0.05 + 0.02 + 0.2)


def test_impossible_flash_budget_fails_fast_with_the_shortfall(uno, costing, digits, lenet5_arch):
    # LeNet-5 (61,706 parameters) in 2 KiB of flash: even one output per layer needs more (code alone).
    net = build_net(lenet5_arch, (1, 28, 28), seed=0)
    budget = Budget.from_recipe({"flash_bytes": 2048, "max_accuracy_drop": 0.01}, uno["memories"])
    t0 = time.perf_counter()
    with pytest.raises(BudgetError) as err:
        search(net, digits, costing, budget)           # digits never reach the net: fails before
    assert time.perf_counter() - t0 < 5
    short = err.value.shortfalls
    assert set(short) == {"flash_bytes"} and short["flash_bytes"]["limit"] == 2048
    tiny = build_net([{"conv": {"out": 1, "kernel": 5, "pad": 2}}, {"relu": {}},
                      {"maxpool": {"kernel": 2}}, {"conv": {"out": 1, "kernel": 5}},
                      {"relu": {}}, {"maxpool": {"kernel": 2}}, {"flatten": {}},
                      {"dense": {"out": 1}}, {"relu": {}}, {"dense": {"out": 1}},
                      {"relu": {}}, {"dense": {"out": 10}}], (1, 28, 28))
    dense = costing.net_figures(tiny)
    apply_masks(tiny, magnitude_masks(tiny, {n: 0.96 for n in weighted_layers(tiny)}))   # lowest density
    sparse = costing.net_figures(tiny)
    # the 5x5 convs' tables store 3 bytes (count, tap, weight), not 25 (the sparse kernels' code is larger)
    assert sparse["weight_flash_bytes"] < dense["weight_flash_bytes"]
    # the search's floor: one output per layer, dense or sparsest, whichever is smaller
    assert short["flash_bytes"]["over"] == min(sparse["flash_bytes"], dense["flash_bytes"]) - 2048
    assert "flash_bytes" in str(err.value) and "over by" in str(err.value)


def test_search_meets_the_budget_and_is_deterministic(trained, digits, costing, uno):
    full = costing.net_figures(trained)
    budget = Budget(flash_bytes=full["flash_bytes"] - 400, sram_bytes=2048, energy_uj=0.8 * full["energy_uj"],
                    max_accuracy_drop=0.2)     # a mechanics test: the 8x8 digits recover little in 3 epochs
    results = []
    for _ in range(2):
        with threadpool_limits(limits=1):
            best, cands = search(trained, digits, costing, budget, epochs=3, lr=2e-3, seed=0)
        results.append((best.keep, best.val_accuracy))
        assert cands and best in cands
        assert budget.shortfalls(costing.net_figures(best.net)) == {}
        assert widths(best.net) == {**best.keep, "dense2": 10}
        assert best.val_accuracy == max(c.val_accuracy for c in cands)
    assert results[0] == results[1]


def test_search_passes_a_fitting_model_through(trained, digits, costing):
    best, cands = search(trained, digits, costing, Budget(flash_bytes=32256, sram_bytes=2048))
    assert best.net is trained and cands == [] and best.origin == "unpruned"


def test_accuracy_budget_miss_names_the_drop(trained, digits, costing):
    full = costing.net_figures(trained)
    budget = Budget(energy_uj=0.3 * full["energy_uj"], max_accuracy_drop=0.0)
    with threadpool_limits(limits=1), pytest.raises(BudgetError) as err:
        search(trained, digits, costing, budget, epochs=1, lr=2e-3)
    assert "max_accuracy_drop" in err.value.shortfalls


def test_energy_first_prunes_until_the_energy_budget(trained, digits, costing):
    full = costing.net_figures(trained)
    budget = Budget(energy_uj=0.8 * full["energy_uj"], max_accuracy_drop=0.2)
    with threadpool_limits(limits=1):
        best = energy_prune(trained, digits, costing, budget, epochs=3, lr=2e-3)
    assert best.figures["energy_uj"] <= budget.energy_uj
    # conv1 and conv2 hold most of the energy: energy-first pruning starts there
    assert best.keep["conv1"] < 6 or best.keep["conv2"] < 8


class _Fixed:
    """A stand-in net whose predictions are given: forward returns one-hot logits."""

    def __init__(self, pred):
        self.pred = np.asarray(pred)

    def forward(self, x):
        return np.eye(10)[self.pred[:len(x)]]


def test_accuracy_limit_counts_the_paired_noise():
    y = np.zeros(400, int)
    base = _Fixed(np.r_[np.zeros(392, int), np.ones(8, int)])          # 392 / 400 right
    # the candidate gets 12 of base's right digits wrong and 8 of its wrong ones right: 4 fewer right
    cand_pred = np.zeros(400, int)
    cand_pred[:12] = 1
    cand = _Fixed(cand_pred)
    drop, se = drop_and_error(base, cand, np.zeros((400, 1)), y)
    assert drop == pytest.approx(4 / 400)
    assert se == pytest.approx(np.sqrt(12 + 8) / 400)                  # 20 discordant digits
    x = np.zeros((400, 1))
    assert not within_limit(base, cand, x, y, 0.01)                    # drop 1 point + 1.1 s.e.
    assert within_limit(base, cand, x, y, 0.01 + np.sqrt(20) / 400)
    assert within_limit(base, base, x, y, 0.0)                         # no change: no drop, no noise


def test_sensitivity_covers_conv_and_dense_densities(trained, digits):
    from edgebuild.compress.search import sensitivity

    sens = sensitivity(trained, digits.x_val, digits.y_val)
    assert {n for kind, n in sens if kind == "density"} == {"conv1", "conv2", "dense1", "dense2"}
    assert {n for kind, n in sens if kind == "width"} == {"conv1", "conv2", "dense1"}
    # keeping 4% of conv1's 54 weights hurts more than keeping 45%
    curve = dict(sens["density", "conv1"])
    assert curve[0.04] > curve[0.45]


def test_admm_polish_reaches_the_searched_densities_or_keeps_the_search_result(trained, digits, costing):
    from edgebuild.compress.search import Candidate, admm_polish, realise

    keep = {"conv1": 4, "conv2": 6, "dense1": 24}
    density = {"conv2": 0.3, "dense1": 0.2}
    magnitude = realise(trained, keep, density)
    figures = costing.net_figures(magnitude)
    best = Candidate(keep, figures, "search#1", 0.0, magnitude, density)    # accuracy 0: any net beats it
    budget = Budget(flash_bytes=figures["flash_bytes"])
    with threadpool_limits(limits=1):
        out = admm_polish(trained, best, digits, costing, budget, epochs=1, lr=2e-3, seed=0, rounds=1)
    assert out.origin == "search#1+admm" and out.val_accuracy > 0
    assert widths(out.net) == {**keep, "dense2": 10}
    w = out.net.params()
    # ADMM keeps round(density * size) weights: conv2 6 x 4 x 3 x 3 = 216 -> 65; dense1 reads conv2's
    # 6 x 2 x 2 outputs: 24 x 24 = 576 -> 115
    assert int(np.count_nonzero(w["conv2.weight"])) == 65
    assert int(np.count_nonzero(w["dense1.weight"])) == 115
    assert out.figures["flash_bytes"] == figures["flash_bytes"]          # the same sparse storage
    # a result that does not beat the search's own one is not taken
    better = Candidate(keep, figures, "search#1", 1.0, magnitude, density)
    with threadpool_limits(limits=1):
        assert admm_polish(trained, better, digits, costing, budget, epochs=1, lr=2e-3, seed=0, rounds=1) is better
