"""Two third-party-style MNIST models (CNN and MLP, as PyTorch exports them): Graph.run and the
optimised Graph.run agree with onnxruntime on the original model; batch-1000 speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
from model_builders import assert_close, mnist_cnn, mnist_mlp, ort_run

from edgebuild.model import from_onnx, optimise


@pytest.mark.parametrize("make, fused_nodes", [(mnist_cnn, 7), (mnist_mlp, 3)],
                         ids=["cnn", "mlp"])
def test_mnist_matches_onnxruntime(make, fused_nodes):
    model = make()
    x = np.random.default_rng(5).random((16, 1, 28, 28), dtype=np.float32)
    want = ort_run(model, {"input": x})["logits"]
    graph = from_onnx(model, source=make.__name__)
    assert graph.shapes["logits"] == (1, 10)
    assert_close(graph.run({"input": x})["logits"], want)
    opt = optimise(graph)
    assert len(opt.nodes) == fused_nodes
    assert_close(opt.run({"input": x})["logits"], want)
    assert np.array_equal(opt.run({"input": x[:1]})["logits"].argmax(1), want[:1].argmax(1))


def test_mlp_becomes_gemm_with_relu():
    opt = optimise(from_onnx(mnist_mlp()))
    assert [n.op_type for n in opt.nodes] == ["Reshape", "Gemm", "Gemm"]
    assert opt.nodes[1].post == [("Relu", {})]


def test_cnn_batch_1000_under_a_second():
    """A small CNN on 1000 images of 14x14 (the brief's speed target)."""
    from model_builders import Builder
    b = Builder(3)
    h = b.node("Conv", ["x", b.weight("w1", (8, 1, 3, 3)), b.weight("b1", (8,))], ["c1"],
               pads=[1, 1, 1, 1])
    h = b.node("Relu", [h], ["r1"])
    h = b.node("MaxPool", [h], ["p1"], kernel_shape=[2, 2], strides=[2, 2])
    h = b.node("Conv", [h, b.weight("w2", (16, 8, 3, 3)), b.weight("b2", (16,))], ["c2"],
               pads=[1, 1, 1, 1])
    h = b.node("Relu", [h], ["r2"])
    h = b.node("Flatten", [h], ["f"])
    b.node("Gemm", [h, b.weight("w3", (10, 16 * 7 * 7), 0.05), b.weight("b3", (10,))], ["y"],
           transB=1)
    model = b.model([("x", ["N", 1, 14, 14])], [("y", ["N", 10])])
    graph = optimise(from_onnx(model))
    x = np.random.default_rng(0).random((1000, 1, 14, 14), dtype=np.float32)
    graph.run({"x": x[:10]})
    start = time.perf_counter()
    y = graph.run({"x": x})["y"]
    elapsed = time.perf_counter() - start
    assert_close(y, ort_run(model, {"x": x})["y"])
    assert elapsed < 0.5, f"{elapsed:.3f} s for 1000 images"
