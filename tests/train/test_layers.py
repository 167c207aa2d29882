"""Every layer's backward against central finite differences in float64, and the loss gradient."""

from __future__ import annotations

import numpy as np
import pytest

from edgebuild.train.layers import (AvgPool2d, Conv2d, Dense, Flatten, GlobalAvgPool, MaxPool2d, ReLU,
                                    softmax_cross_entropy)

EPS = 1e-6


def numeric_grad(f, array: np.ndarray) -> np.ndarray:
    """Central differences of scalar f() with respect to every element of ``array`` (perturbed in place)."""
    grad = np.zeros_like(array)
    for idx in np.ndindex(array.shape):
        old = array[idx]
        array[idx] = old + EPS
        plus = f()
        array[idx] = old - EPS
        minus = f()
        array[idx] = old
        grad[idx] = (plus - minus) / (2 * EPS)
    return grad


def check_layer(layer, x: np.ndarray, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for key, value in layer.params.items():
        layer.params[key] = rng.normal(size=value.shape)                 # float64 parameters
    upstream = rng.normal(size=layer.forward(x).shape)

    def loss():
        return float((layer.forward(x) * upstream).sum())

    layer.forward(x, train=True)
    dx = layer.backward(upstream)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-5, atol=1e-7)
    for key in layer.params:
        np.testing.assert_allclose(layer.grads[key], numeric_grad(loss, layer.params[key]), rtol=1e-5, atol=1e-7)


def distinct_input(shape, seed=1):
    """Inputs whose values are well separated, so max/relu kinks are far from the EPS steps."""
    rng = np.random.default_rng(seed)
    values = rng.permutation(np.prod(shape)).astype(np.float64) * 0.1 - 0.05 * np.prod(shape)
    return values.reshape(shape) + 0.01


@pytest.mark.parametrize("kernel,stride,pad", [(3, 1, 1), (3, 2, 1), (2, 2, 0), (3, 1, 0), (1, 1, 0)])
def test_conv_backward(kernel, stride, pad):
    x = np.random.default_rng(2).normal(size=(2, 3, 6, 5))
    check_layer(Conv2d(3, 4, kernel, stride, pad), x)


@pytest.mark.parametrize("kernel,stride,pad,group", [
    ((10, 4), 2, (5, 1, 4, 2), 1),        # DS-CNN's first conv: 10x4, stride 2, asymmetric pads
    ((3, 2), (1, 2), (0, 1, 1, 0), 1),
    (3, 1, 1, 3),                         # depthwise 3x3
    (3, 2, (0, 0, 1, 1), 3),              # depthwise, stride 2, TF "SAME"-style pads
    ((2, 3), (2, 1), 0, 3)])
def test_general_conv_backward(kernel, stride, pad, group):
    x = np.random.default_rng(7).normal(size=(2, 3, 12, 7))
    check_layer(Conv2d(3, 3 if group > 1 else 4, kernel, stride, pad, group=group), x)


def test_depthwise_forward_matches_onnxruntime():
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(8)
    w, b = rng.normal(size=(4, 1, 3, 2)).astype(np.float32), rng.normal(size=4).astype(np.float32)
    x = rng.normal(size=(2, 4, 9, 7)).astype(np.float32)
    layer = Conv2d(4, 4, (3, 2), (2, 1), (1, 0, 1, 1), group=4)
    layer.params = {"weight": w, "bias": b}
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], group=4, kernel_shape=[3, 2], strides=[2, 1],
                            pads=[1, 0, 1, 1])
    g = helper.make_graph([node], "dw", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 9, 7])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    ref = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(layer.forward(x), ref, rtol=1e-5, atol=1e-5)
    assert layer.out_shape((4, 9, 7)) == ref.shape[1:]


def test_global_average_pool_backward():
    check_layer(GlobalAvgPool(), np.random.default_rng(9).normal(size=(2, 3, 5, 4)))


def test_dense_backward():
    check_layer(Dense(7, 4), np.random.default_rng(3).normal(size=(3, 7)))


@pytest.mark.parametrize("cls", [MaxPool2d, AvgPool2d])
@pytest.mark.parametrize("kernel,stride", [(2, 2), (3, 1), (2, 1), (3, 2)])
def test_pool_backward(cls, kernel, stride):
    check_layer(cls(kernel, stride), distinct_input((2, 2, 6, 7)))


def test_relu_and_flatten_backward():
    check_layer(ReLU(), distinct_input((2, 3, 4, 4)))
    check_layer(Flatten(), np.random.default_rng(4).normal(size=(2, 3, 2, 2)))


def test_conv_forward_matches_direct_loops():
    rng = np.random.default_rng(5)
    x, layer = rng.normal(size=(2, 2, 5, 6)), Conv2d(2, 3, 3, 2, 1)
    w, b = rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    layer.params = {"weight": w, "bias": b}
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = layer.forward(x)
    assert out.shape == (2, 3, 3, 3)
    for n in range(2):
        for o in range(3):
            for i in range(3):
                for j in range(3):
                    ref = (xp[n, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3] * w[o]).sum() + b[o]
                    assert out[n, o, i, j] == pytest.approx(ref)


def test_softmax_cross_entropy():
    rng = np.random.default_rng(6)
    logits, labels = rng.normal(size=(4, 5)) * 3, np.array([0, 3, 4, 3])
    loss, grad = softmax_cross_entropy(logits, labels)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.log(probs[np.arange(4), labels]).mean())
    np.testing.assert_allclose(grad, numeric_grad(lambda: softmax_cross_entropy(logits, labels)[0], logits),
                               rtol=1e-5, atol=1e-8)


def test_whole_net_gradient_in_float64():
    from edgebuild.train import build_net

    arch = [{"conv": {"out": 3, "kernel": 3, "pad": 1}}, {"relu": {}}, {"maxpool": {"kernel": 2}},
            {"conv": {"out": 4, "kernel": 3, "stride": 2}}, {"relu": {}}, {"flatten": {}}, {"dense": {"out": 5}}]
    net = build_net(arch, (1, 8, 8), seed=0).astype(np.float64)
    rng = np.random.default_rng(8)
    x, labels = rng.normal(size=(3, 1, 8, 8)), np.array([0, 4, 2])

    def loss():
        return softmax_cross_entropy(net.forward(x), labels)[0]

    _, dlogits = softmax_cross_entropy(net.forward(x, train=True), labels)
    net.backward(dlogits)
    grads = {k: v.copy() for k, v in net.grads().items()}
    assert set(grads) == set(net.params()) and all(v.dtype == np.float64 for v in net.params().values())
    for name, param in net.params().items():
        np.testing.assert_allclose(grads[name], numeric_grad(loss, param), rtol=1e-4, atol=1e-7, err_msg=name)


def test_copies_carry_parameters_not_training_caches():
    """A deep copy (or pickle) of a net after a training step has the same parameters and no
    backward caches, computes the same outputs, and trains again after its own forward."""
    import copy
    import pickle

    from edgebuild.train import build_net

    net = build_net([{"conv": {"out": 3, "kernel": 3, "pad": 1}}, {"relu": {}}, {"maxpool": {"kernel": 2}},
                     {"flatten": {}}, {"dense": {"out": 4}}], (1, 6, 6), seed=0)
    x = np.random.default_rng(0).normal(size=(5, 1, 6, 6)).astype(np.float32)
    net.forward(x, train=True)
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert all(not k.startswith("_") for layer in clone.layers for k in vars(layer))
        for name, value in net.params().items():
            np.testing.assert_array_equal(clone.params()[name], value)
        np.testing.assert_array_equal(clone.forward(x), net.forward(x))
        clone.forward(x, train=True)
        clone.backward(np.ones((5, 4), np.float32))
        assert clone.grads()["conv1.weight"].shape == (3, 1, 3, 3)
