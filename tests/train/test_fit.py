"""Trainer behaviour: optimiser steps, determinism, masks, augmentation, config errors, learning."""

from __future__ import annotations

import numpy as np
import pytest

from edgebuild.data import load_dataset
from edgebuild.errors import ConfigError
from edgebuild.train import build_net, evaluate, fit
from edgebuild.train.fit import SGD, Adam, shift_images

SMALL_ARCH = [{"conv": {"out": 4, "kernel": 3, "pad": 1}}, {"relu": {}}, {"maxpool": {"kernel": 2}},
              {"flatten": {}}, {"dense": {"out": 10}}]


@pytest.fixture(scope="module")
def digits():
    return load_dataset({"name": "digits8x8", "split": {"test": 300, "val": 200, "seed": 0}})


def test_sgd_momentum_two_steps():
    p = {"w": np.array([1.0, -2.0])}
    opt = SGD(lr=0.1, momentum=0.5)
    g1, g2 = np.array([1.0, 2.0]), np.array([-1.0, 4.0])
    opt.step(p, {"w": g1}, 0.1)
    opt.step(p, {"w": g2}, 0.1)
    # p2 = p0 - lr*g1 - (lr*g2 + momentum*lr*g1)
    np.testing.assert_allclose(p["w"], np.array([1.0, -2.0]) - 0.1 * g1 - (0.1 * g2 + 0.5 * 0.1 * g1))


def test_adam_first_step_moves_by_lr_times_sign():
    p = {"w": np.array([0.5, 0.5, 0.5])}
    Adam(lr=0.01).step(p, {"w": np.array([3.0, -0.2, 1e-3])}, 0.01)
    np.testing.assert_allclose(p["w"], [0.49, 0.51, 0.49], atol=1e-6)


def test_shift_images_are_edge_padded_crops():
    rng = np.random.default_rng(0)
    x = rng.random((50, 1, 5, 6))
    out = shift_images(x, 2, np.random.default_rng(1))
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
    seen = set()
    for n in range(50):
        matches = [(dy, dx) for dy in range(5) for dx in range(5)
                   if np.array_equal(out[n], padded[n, :, dy:dy + 5, dx:dx + 6])]
        assert matches, f"sample {n} is not a shifted copy"
        seen.add(matches[0])
    assert len(seen) > 10
    assert shift_images(x, 0, rng) is x


def test_fit_learns_and_is_deterministic(digits):
    cfg = {"epochs": 5, "batch_size": 32, "lr": 0.01, "seed": 3}
    a, b = build_net(SMALL_ARCH, (1, 8, 8), seed=3), build_net(SMALL_ARCH, (1, 8, 8), seed=3)
    before = evaluate(a, digits.x_test, digits.y_test)
    lines = []
    history = fit(a, digits, cfg, progress=lines.append)
    fit(b, digits, cfg)
    for name, value in a.params().items():
        assert np.array_equal(value, b.params()[name]), name
    assert len(lines) == 5 and "epoch 5/5" in lines[-1]
    assert set(history) >= {"loss", "train_acc", "val_acc", "seconds", "total_seconds"}
    assert len(history["loss"]) == 5 and history["loss"][-1] < history["loss"][0]
    assert before < 0.3 and evaluate(a, digits.x_test, digits.y_test) > 0.85


def test_augmented_fit_is_deterministic_per_seed(digits):
    def run(seed):
        net = build_net(SMALL_ARCH, (1, 8, 8), seed=0)
        fit(net, digits, {"epochs": 1, "augment": {"shift": 1}, "seed": seed})
        return net.params()["conv1.weight"]

    assert np.array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


def test_sgd_with_weight_decay_learns(digits):
    net = build_net(SMALL_ARCH, (1, 8, 8), seed=0)
    fit(net, digits, {"epochs": 5, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4})
    assert evaluate(net, digits.x_val, digits.y_val) > 0.85


def test_masked_weights_stay_zero(digits):
    net = build_net(SMALL_ARCH, (1, 8, 8), seed=0)
    w = net.params()["dense1.weight"]
    mask = (np.random.default_rng(0).random(w.shape) > 0.5).astype(np.float32)
    net.set_mask("dense1.weight", mask)
    start = w.copy()
    fit(net, digits, {"epochs": 1, "weight_decay": 1e-3})
    w = net.params()["dense1.weight"]
    assert np.all(w[mask == 0] == 0)
    assert np.all(w[mask == 1] != start[mask == 1])
    with pytest.raises(ValueError):
        net.set_mask("dense1.weight", np.ones(3))


def test_build_net_shapes_and_params():
    arch = [{"conv": {"out": 8, "kernel": 3, "stride": 1, "pad": 1}}, {"relu": {}}, {"maxpool": {"kernel": 2}},
            {"conv": {"out": 16, "kernel": 3, "pad": 1}}, {"relu": {}}, {"avgpool": {"kernel": 2}},
            {"flatten": {}}, {"dense": {"out": 10}}]
    net = build_net(arch, (1, 14, 14), seed=0)
    assert [s for _, s in net.shapes()] == [(8, 14, 14), (8, 14, 14), (8, 7, 7), (16, 7, 7), (16, 7, 7),
                                            (16, 3, 3), (144,), (10,)]
    assert net.num_params() == (8 * 9 + 8) + (16 * 72 + 16) + (144 * 10 + 10)
    assert [layer.name for layer in net.layers][:4] == ["conv1", "relu1", "maxpool1", "conv2"]
    assert net.arch()[2] == {"maxpool": {"kernel": 2, "stride": 2}}
    assert net.forward(np.zeros((2, 1, 14, 14), np.float32)).shape == (2, 10)


@pytest.mark.parametrize("arch,match", [
    ([{"dense": {"out": 10}}], "flatten"),
    ([{"conv": {"outs": 3}}], "takes"),
    ([{"conv": {"out": 0}}], "positive"),
    ([{"bogus": {}}], "unknown layer"),
    ([{"conv": {"out": 2}, "relu": {}}], "one-key"),
    ([{"maxpool": {"kernel": 20}}], "turns shape"),
    ([{"flatten": {}}, {"conv": {"out": 2}}], "image input"),
])
def test_build_net_errors_name_the_layer(arch, match):
    with pytest.raises(ConfigError, match=match) as err:
        build_net(arch, (1, 14, 14))
    assert "model.train.arch[" in str(err.value)


def test_unknown_optimizer(digits):
    with pytest.raises(ConfigError, match="optimizer"):
        fit(build_net(SMALL_ARCH, (1, 8, 8)), digits, {"optimizer": "rmsprop"})
