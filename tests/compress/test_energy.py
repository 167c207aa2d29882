"""Cost model: features against hand counts, energy arithmetic, the fit, and the Uno calibration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgebuild.compress.budget import Costing, net_graph
from edgebuild.compress.energy import apply_energy, fit_cycle_model, footprint, layer_costs, predict_cycles
from edgebuild.config import load_recipe
from edgebuild.train import build_net

# Per-layer cycles of recipes/mnist_uno.yaml measured in simavr (build/mnist_uno/report.json,
# report["layers"][i]["cycles"], mean over 500 inferences).
MNIST_UNO_MEASURED = {"conv1": 679038.066, "conv2": 667288.284, "dense1": 22305.3}


@pytest.fixture(scope="module")
def uno():
    return load_recipe("recipes/mnist_uno.yaml")


def _brute_border(h, w, k, pad, cout):
    """Border windows of a stride-1 conv counted by checking every tap of every window."""
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    border = taps = 0
    for oy, ox in itertools.product(range(oh), range(ow)):
        inside = [(oy - pad + i, ox - pad + j) for i in range(k) for j in range(k)]
        valid = sum(0 <= y < h and 0 <= x < w for y, x in inside)
        if valid < k * k:
            border += 1
            taps += valid
    return border * cout, taps * cout


def test_features_match_hand_counts():
    net = build_net([{"conv": {"out": 5, "kernel": 5, "pad": 2}}, {"relu": {}}, {"maxpool": {"kernel": 2}},
                     {"conv": {"out": 7, "kernel": 3, "pad": 1}}, {"relu": {}}, {"flatten": {}},
                     {"dense": {"out": 10}}], (1, 12, 12), seed=0)
    costs = layer_costs(net_graph(net))
    assert [c.name for c in costs] == ["conv1", "conv2", "dense1"]
    c1, c2, d1 = costs
    assert c1.features["macs"] == 5 * 12 * 12 * 1 * 25 and c1.features["windows"] == 5 * 144
    assert c1.out_bytes == 5 * 6 * 6                      # MaxPool fused: pooled output
    assert (c1.features["border_windows"], c1.features["border_taps"]) == _brute_border(12, 12, 5, 2, 5)
    b2, t2 = _brute_border(6, 6, 3, 1, 7)
    assert (c2.features["border_windows"], c2.features["border_taps"] // 5) == (b2, t2)
    assert c2.features["macs"] == 7 * 36 * 5 * 9
    assert d1.features["macs"] == 252 * 10 and d1.params == 2530
    # int8 weights + int32 bias + int32 (multiplier, shift) per output channel
    assert c1.flash_bytes == 125 + 12 * 5 and d1.flash_bytes == 2520 + 12 * 10


def _brute_computed(on, pk, ps):
    """Conv windows per axis the fused-pool kernel computes, by walking each pool window."""
    n = [0] * on
    for p in range((on - pk) // ps + 1):
        for i in range(p * ps, p * ps + pk):
            n[i] += 1
    return n


@pytest.mark.parametrize("pk,ps", [(2, 2), (3, 2)])
def test_window_features_count_the_windows_a_fused_pool_computes(pk, ps):
    """7x7 input, 3x3 unpadded conv -> 5x5: a 2/2 pool covers 4x4 of the windows (one row and
    column never computed), a 3/2 pool computes the middle row and column twice."""
    net = build_net([{"conv": {"out": 3, "kernel": 3}}, {"relu": {}}, {"maxpool": {"kernel": pk, "stride": ps}},
                     {"flatten": {}}, {"dense": {"out": 2}}], (2, 7, 7), seed=0)
    c = layer_costs(net_graph(net))[0]
    per_axis = _brute_computed(5, pk, ps)
    windows = 3 * sum(per_axis) ** 2
    assert c.features["macs"] == 3 * 25 * 2 * 9 and c.features["windows"] == 3 * 25   # nominal: every output
    assert c.features["dot_windows"] == windows and c.features["dot_channels"] == 2 * windows
    assert c.features["dot_macs"] == windows * 2 * 9
    assert c.features["dot_border_windows"] == 0 and c.features["pad_bytes"] == 0


def test_energy_is_power_times_time():
    net = build_net([{"flatten": {}}, {"dense": {"out": 4}}], (1, 4, 4), seed=0)
    costs = layer_costs(net_graph(net))
    energy = {"supply_v": 3.0, "active_current_ma": 2.0, "cycles_per_access": {"flash": 3, "sram": 1, "eeprom": 5},
              "cycle_model": {"dense": {"macs": 10.0, "outputs": 100.0, "one": 50.0}}}
    (c,) = apply_energy(costs, energy, 8_000_000)
    cycles = 10.0 * 64 + 100.0 * 4 + 50.0
    assert c.cycles == pytest.approx(cycles)
    assert c.latency_ms == pytest.approx(cycles / 8e6 * 1e3)
    assert c.energy_uj == pytest.approx(cycles / 8e6 * 3.0 * 2e-3 * 1e6)
    assert c.traffic == {"sram": {"read": 64, "write": 4}, "flash": {"read": 64, "write": 0}}
    (e,) = apply_energy(layer_costs(net_graph(net)), energy, 8_000_000, {"dense1": "eeprom"})
    assert e.cycles == pytest.approx(cycles + (5 - 3) * 64)      # EEPROM reads cost 2 more cycles each
    # a kind the board's model was not fitted on costs cycles_per_mac per MAC, not nothing
    other = dict(energy, cycle_model={"conv": {"macs": 2.0}}, cycles_per_mac=7)
    (f,) = apply_energy(layer_costs(net_graph(net)), other, 8_000_000)
    assert f.cycles == pytest.approx(7 * 64)
    (g,) = apply_energy(layer_costs(net_graph(net)), dict(energy, cycle_model={}), 8_000_000)
    assert g.cycles == 0.0                                          # no model at all: unknown


def test_fit_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    truth = {"macs": 12.5, "outputs": 300.0, "one": 900.0}
    samples = []
    for _ in range(12):
        f = {"macs": float(rng.integers(500, 50000)), "outputs": float(rng.integers(4, 200)), "one": 1.0}
        samples.append(("dense", f, sum(truth[k] * v for k, v in f.items())))
    model = fit_cycle_model(samples)
    for k, v in truth.items():
        assert model["dense"][k] == pytest.approx(v, rel=1e-3)


def test_uno_cycle_model_within_15_percent_of_simavr(uno):
    net = build_net(uno["model"]["train"]["arch"], (1, 14, 14), seed=0)
    model = uno["target"]["energy"]["cycle_model"]
    for c in layer_costs(net_graph(net)):
        measured = MNIST_UNO_MEASURED[c.name]
        assert abs(predict_cycles(c.kind, c.features, model) - measured) / measured < 0.15, c.name


def test_footprint_sram_is_io_plus_pingpong_arena(uno):
    net = build_net(uno["model"]["train"]["arch"], (1, 14, 14), seed=0)
    energy = uno["target"]["energy"]
    fp = footprint(net_graph(net), energy)
    # chain: input 196 B, pooled 8x7x7 = 392 B, pooled 16x3x3 = 144 B, logits 10 B; the AVR kernels
    # copy conv2's input into a zero-point-padded 8 x 9 x 9 buffer (conv1's 18 x 18 one is smaller)
    assert fp["arena_bytes"] == 392 + 144 and fp["pad_copy_bytes"] == 8 * 9 * 9
    assert fp["sram_bytes"] == 196 + 10 + 392 + 144 + 8 * 9 * 9 + energy["sram_overhead_bytes"]
    # measured on simavr for this recipe: 1,465 B peak SRAM, 6,428 B flash; the estimates bound them
    assert 1465 <= fp["sram_bytes"] <= 1465 * 1.1
    assert 6428 <= fp["flash_bytes"] <= 6428 * 1.1
    figs = Costing(energy, uno["target"]["f_cpu"]).net_figures(net)
    assert figs["params"] == 2826 and figs["macs"] == 97088
    # without the padded copy (a board whose kernels do not make one) the buffer is not counted
    assert footprint(net_graph(net), dict(energy, conv_pad_copy=False))["pad_copy_bytes"] == 0


# The same recipe with compression.method=magnitude, ratio=0.2 (every weight table 20% dense, all
# three stored sparse), built and run in simavr: per-layer cycles, firmware flash and peak SRAM.
MAGNITUDE_MEASURED = {"conv1": 1123369, "conv2": 809367, "dense1": 14648}


def test_sparse_kernels_cycle_model_and_footprint_against_simavr(uno):
    from edgebuild.compress.prune import apply_masks, magnitude_masks, weighted_layers

    net = build_net(uno["model"]["train"]["arch"], (1, 14, 14), seed=0)
    apply_masks(net, magnitude_masks(net, {n: 0.8 for n in weighted_layers(net)}))
    energy = uno["target"]["energy"]
    costs = layer_costs(net_graph(net))
    assert [c.kind for c in costs] == ["conv_sparse", "conv_sparse", "dense_sparse"]
    for c in costs:     # the conv_sparse model was fitted on other convs (bench/compress.py kernels)
        measured = MAGNITUDE_MEASURED[c.name]
        assert abs(predict_cycles(c.kind, c.features, energy["cycle_model"]) - measured) / measured < 0.15, c.name
    fp = footprint(net_graph(net), energy)
    assert 5422 <= fp["flash_bytes"] <= 5422 * 1.1 and 870 <= fp["sram_bytes"] <= 870 * 1.1
