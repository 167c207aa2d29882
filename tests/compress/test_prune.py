"""Structured and magnitude pruning against independent references."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from edgebuild.compress.budget import Costing, net_graph
from edgebuild.compress.prune import magnitude_masks, prunable_layers, prune_structured, widths
from edgebuild.config import load_recipe
from edgebuild.train import build_net


def _zero_outputs(net, name, idx):
    """Zero the weights and biases of outputs ``idx`` of layer ``name`` (their L1 norm becomes 0)."""
    layer = next(layer for layer in net.layers if layer.name == name)
    layer.params["weight"][idx] = 0.0
    layer.params["bias"][idx] = 0.0


def test_removing_dead_outputs_keeps_the_function(small_arch):
    # Outputs with zero weights and bias produce 0 after ReLU (and pooling), so deleting them and
    # the next layer's matching inputs (channels, or flattened columns) must not change the logits.
    net = build_net(small_arch, (1, 8, 8), seed=3)
    dead = {"conv1": [1, 4], "conv2": [0, 5, 6], "dense1": list(range(0, 24, 3))}
    for name, idx in dead.items():
        _zero_outputs(net, name, idx)
    keep = {name: widths(net)[name] - len(idx) for name, idx in dead.items()}
    pruned = prune_structured(net, keep)
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(pruned.forward(x), net.forward(x), rtol=1e-5, atol=1e-5)
    assert widths(pruned) == {"conv1": 4, "conv2": 5, "dense1": 16, "dense2": 10}
    # conv2 -> flatten -> dense1: 5 channels x 2x2 inputs remain
    assert pruned.layers[[layer.name for layer in pruned.layers].index("dense1")].params["weight"].shape == (16, 20)


def test_keeps_largest_l1_and_leaves_original_untouched(small_arch):
    net = build_net(small_arch, (1, 8, 8), seed=1)
    before = copy.deepcopy(net.params())
    w = net.params()["conv1.weight"]
    expected = sorted(np.argsort(-np.abs(w).reshape(6, -1).sum(axis=1))[:3])
    pruned = prune_structured(net, {"conv1": 3})
    np.testing.assert_array_equal(pruned.params()["conv1.weight"], w[expected])
    np.testing.assert_array_equal(pruned.params()["conv2.weight"], net.params()["conv2.weight"][:, expected])
    for k, v in before.items():
        np.testing.assert_array_equal(net.params()[k], v)


def test_shrinks_params_macs_and_flash(small_arch):
    uno = load_recipe("recipes/mnist_uno.yaml")["target"]
    costing = Costing(uno["energy"], uno["f_cpu"])
    net = build_net(small_arch, (1, 8, 8), seed=0)
    full, half = costing.net_figures(net), costing.net_figures(prune_structured(net, {"conv1": 3, "conv2": 4}))
    # by hand: conv1 3x9 + conv2 4x3x9 + dense1 24x(4 channels x 2x2) + dense2 10x24
    assert half["params"] == (27 + 3) + (108 + 4) + (24 * 16 + 24) + (240 + 10)
    assert half["macs"] < full["macs"] and half["weight_flash_bytes"] < full["weight_flash_bytes"]


def test_rejects_bad_requests(small_arch):
    net = build_net(small_arch, (1, 8, 8), seed=0)
    assert prunable_layers(net) == ["conv1", "conv2", "dense1"]
    with pytest.raises(ValueError, match="dense2"):
        prune_structured(net, {"dense2": 5})
    with pytest.raises(ValueError, match="1..6"):
        prune_structured(net, {"conv1": 0})


def test_magnitude_masks_keep_exactly_the_largest(small_arch):
    net = build_net(small_arch, (1, 8, 8), seed=2)
    masks = magnitude_masks(net, {"dense1": 0.9, "conv1": 0.5})
    w = net.params()["dense1.weight"]
    k = round(w.size * 0.1)
    assert masks["dense1"].sum() == k
    threshold = np.sort(np.abs(w).reshape(-1))[-k]
    assert np.all(np.abs(w[masks["dense1"] == 1]) >= threshold)
    assert np.all(np.abs(w[masks["dense1"] == 0]) <= threshold)
    assert masks["conv1"].sum() == round(54 * 0.5)


def test_net_graph_round_trip_matches_net(small_arch):
    net = build_net(small_arch, (1, 8, 8), seed=0)
    x = np.random.default_rng(1).standard_normal((3, 1, 8, 8)).astype(np.float32)
    g = net_graph(net)
    np.testing.assert_allclose(g.run({g.inputs[0]: x})[g.outputs[0]], net.forward(x), rtol=1e-5, atol=1e-5)


def test_pruning_passes_through_depthwise_convs():
    """conv(pointwise) -> depthwise -> conv: narrowing the first drops the same depthwise channels
    and the second's inputs; the pruned net equals the full one with those channels zeroed in both."""
    from edgebuild.compress.prune import l1_order
    from edgebuild.train.layers import Conv2d as C, Dense, Flatten, GlobalAvgPool, ReLU as R
    from edgebuild.train.net import Net as N

    rng = np.random.default_rng(0)
    layers = [C(2, 6, 1), R(), C(6, 6, 3, 1, 1, group=6), R(), C(6, 4, 1), R(), GlobalAvgPool(), Flatten(), Dense(4, 3)]
    for layer in layers:
        layer.params = {k: rng.normal(size=v.shape) for k, v in layer.params.items()}
    net = N(layers, (2, 5, 5))
    first, _, dw, _, second = (layer.name for layer in net.layers[:5])
    assert prunable_layers(net) == [first, second]          # the depthwise conv goes with the first
    small = prune_structured(net, {first: 4})
    kept = np.sort(l1_order(net.layers[0])[:4])
    assert small.layers[2].params["weight"].shape == (4, 1, 3, 3) and small.layers[4].params["weight"].shape == (4, 4, 1, 1)
    zeroed = copy.deepcopy(net)
    drop = np.setdiff1d(np.arange(6), kept)
    for i in (0, 2):                       # a dropped channel is zero out of l0 and out of the depthwise
        zeroed.layers[i].params["weight"][drop] = 0
        zeroed.layers[i].params["bias"][drop] = 0
    x = rng.normal(size=(3, 2, 5, 5))
    np.testing.assert_allclose(small.forward(x), zeroed.forward(x), rtol=1e-10, atol=1e-10)
