"""Optimiser: rewritten graphs compute what onnxruntime computes on the ORIGINAL model, the node
count falls as expected, and the input graph is never mutated."""

from __future__ import annotations

import numpy as np
import pytest
from model_builders import Builder, assert_close, ort_run, pytorch_flatten

from edgebuild.model import from_onnx, optimise


def _check(model, shape, expect_ops, batch=4, seed=0):
    """Optimise ``model``; compare with onnxruntime; return the optimised graph."""
    x = np.random.default_rng(seed).standard_normal((batch, *shape[1:])).astype(np.float32)
    want = ort_run(model, {"x": x})["y"]
    graph = from_onnx(model)
    def state(g):
        return [(n.op_type, list(n.inputs), list(n.outputs), list(n.post)) for n in g.nodes]
    before = state(graph)
    opt = optimise(graph)
    assert state(graph) == before
    assert [n.op_type for n in opt.nodes] == expect_ops, opt.log
    assert_close(opt.run({"x": x})["y"], want)
    assert len(opt.log) >= (len(opt.nodes) < len(graph.nodes))
    return opt


def _bn(b, x, c, out):
    return b.node("BatchNormalization", [x, b.weight(f"{out}_s", (c,), low=0.5),
                                         b.weight(f"{out}_b", (c,)), b.weight(f"{out}_m", (c,)),
                                         b.weight(f"{out}_v", (c,), low=0.5)], [out], epsilon=1e-3)


def test_conv_bn_relu_chain():
    b = Builder(1)
    h = b.node("Conv", ["x", b.weight("w1", (4, 3, 3, 3)), b.weight("b1", (4,))], ["c1"],
               pads=[1, 1, 1, 1])
    h = b.node("Relu", [_bn(b, h, 4, "bn1")], ["r1"])
    h = b.node("Conv", [h, b.weight("w2", (6, 2, 3, 3))], ["c2"], group=2, strides=[2, 2])
    b.node("Relu", [_bn(b, h, 6, "bn2")], ["y"])
    opt = _check(b.model([("x", ["N", 3, 9, 9])], [("y", ["N", 6, 4, 4])]), (1, 3, 9, 9),
                 ["Conv", "Conv"])
    assert all(n.post == [("Relu", {})] for n in opt.nodes)
    assert not any("bn" in k and k.endswith(("_s", "_m", "_v")) for k in opt.initializers)


def test_depthwise_conv_bn_clip6():
    b = Builder(2, opset=11)
    h = b.node("Conv", ["x", b.weight("w", (4, 1, 3, 3)), b.weight("bias", (4,))], ["c"],
               group=4, auto_pad="SAME_UPPER")
    b.node("Clip", [_bn(b, h, 4, "bn"), b.const("lo", np.float32(0)), b.const("hi", np.float32(6))],
           ["y"])
    opt = _check(b.model([("x", ["N", 4, 5, 5])], [("y", ["N", 4, 5, 5])]), (1, 4, 5, 5), ["Conv"])
    assert opt.nodes[0].post == [("Clip", {"min": 0.0, "max": 6.0})]


def test_clip_attributes_before_opset_11():
    b = Builder(3, opset=10)
    h = b.node("Conv", ["x", b.weight("w", (2, 1, 1, 1))], ["c"])
    b.node("Clip", [h], ["y"], min=-0.5, max=0.25)
    model = b.model([("x", ["N", 1, 3, 3])], [("y", ["N", 2, 3, 3])])
    opt = _check(model, (1, 1, 3, 3), ["Conv"])
    assert opt.nodes[0].post == [("Clip", {"min": -0.5, "max": 0.25})]
    x = np.random.default_rng(1).standard_normal((1, 1, 3, 3)).astype(np.float32)
    assert_close(ort_run(opt.to_onnx(), {"x": x})["y"], ort_run(model, {"x": x})["y"])


def test_bn_not_folded_when_conv_output_is_shared():
    b = Builder(4)
    h = b.node("Conv", ["x", b.weight("w", (2, 2, 1, 1))], ["c"])
    n = _bn(b, h, 2, "bn")
    b.node("Add", [h, n], ["y"])
    _check(b.model([("x", ["N", 2, 3, 3])], [("y", ["N", 2, 3, 3])]), (1, 2, 3, 3),
           ["Conv", "BatchNormalization", "Add"])


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_bn(trans_b):
    b = Builder(5)
    w = b.weight("w", (5, 8) if trans_b else (8, 5))
    h = b.node("Gemm", ["x", w, b.weight("c", (5,))], ["g"], transB=trans_b, alpha=0.5, beta=2.0)
    b.node("Sigmoid", [_bn(b, h, 5, "bn")], ["y"])
    opt = _check(b.model([("x", ["N", 8])], [("y", ["N", 5])]), (1, 8), ["Gemm"])
    assert opt.nodes[0].post == [("Sigmoid", {})]


def test_matmul_add_to_gemm_and_bare_matmul():
    b = Builder(6)
    h = b.node("MatMul", ["x", b.weight("w1", (6, 4))], ["m1"])
    h = b.node("Add", [b.weight("b1", (4,)), h], ["a1"])
    h = b.node("LeakyRelu", [h], ["l1"], alpha=0.2)
    h = b.node("MatMul", [h, b.weight("w2", (4, 3))], ["m2"])
    b.node("Tanh", [h], ["y"])
    opt = _check(b.model([("x", ["N", 6])], [("y", ["N", 3])]), (1, 6), ["Gemm", "Gemm"])
    assert opt.nodes[0].post == [("LeakyRelu", {"alpha": pytest.approx(0.2)})]
    assert opt.nodes[1].post == [("Tanh", {})]


def test_pytorch_flatten_collapses_and_keeps_batch():
    b = Builder(7)
    h = b.node("Conv", ["x", b.weight("w", (3, 2, 3, 3))], ["c"])
    h = pytorch_flatten(b, h, "f")
    h = b.node("Dropout", [h], ["d"])
    h = b.node("Identity", [h], ["i"])
    b.node("Gemm", [h, b.weight("fw", (4, 12)), b.weight("fb", (4,))], ["y"], transB=1)
    model = b.model([("x", ["N", 2, 4, 4])], [("y", ["N", 4])])
    opt = _check(model, (1, 2, 4, 4), ["Conv", "Reshape", "Gemm"], batch=7)
    assert len(from_onnx(model).nodes) == 9


def test_identity_feeding_graph_output_is_removed():
    b = Builder(8)
    h = b.node("Gemm", ["x", b.weight("w", (3, 2))], ["g"])
    h = b.node("Relu", [h], ["r"])
    h = b.node("Reshape", [h, b.const("s", np.array([-1, 2], np.int64))], ["same"])
    b.node("Identity", [h], ["y"])
    opt = _check(b.model([("x", ["N", 3])], [("y", ["N", 2])]), (1, 3), ["Gemm"])
    assert opt.nodes[0].outputs == ["y"]


def test_optimised_graph_exports_to_onnxruntime():
    b = Builder(9, opset=13)
    h = b.node("Conv", ["x", b.weight("w", (2, 1, 3, 3))], ["c"])
    h = b.node("Relu", [h], ["r"])
    b.node("Clip", [h, "", b.const("hi", np.float32(0.5))], ["y"])
    model = b.model([("x", [1, 1, 5, 5])], [("y", [1, 2, 3, 3])])
    opt = optimise(from_onnx(model))
    assert opt.nodes[0].post == [("Relu", {}), ("Clip", {"min": None, "max": 0.5})]
    x = np.random.default_rng(0).standard_normal((1, 1, 5, 5)).astype(np.float32)
    exported = opt.to_onnx()
    assert [n.op_type for n in exported.graph.node] == ["Conv", "Relu", "Clip"]
    assert_close(ort_run(exported, {"x": x})["y"], ort_run(model, {"x": x})["y"])


def test_optimise_is_idempotent():
    from model_builders import mnist_cnn
    once = optimise(from_onnx(mnist_cnn()))
    twice = optimise(once)
    assert [(n.op_type, n.post) for n in twice.nodes] == [(n.op_type, n.post) for n in once.nodes]
    assert twice.log == once.log


def test_old_pytorch_export_with_constant_nodes_opset9():
    """torch.onnx at opset 9: Constant nodes, Unsqueeze with an axes attribute, Dropout."""
    from onnx import helper, numpy_helper
    b = Builder(10, opset=9)
    h = b.node("Conv", ["x", b.weight("w", (4, 1, 3, 3)), b.weight("cb", (4,))], ["c"])
    h = b.node("BatchNormalization", [h, b.weight("s", (4,), low=0.5), b.weight("bb", (4,)),
                                      b.weight("m", (4,)), b.weight("v", (4,), low=0.5)], ["bn"])
    h = b.node("Relu", [h], ["r"])
    b.nodes.append(helper.make_node("Constant", [], ["k0"], name="k0",
                                    value=numpy_helper.from_array(np.array(0, np.int64))))
    b.nodes.append(helper.make_node("Constant", [], ["km1"], name="km1",
                                    value=numpy_helper.from_array(np.array([-1], np.int64))))
    b.node("Shape", [h], ["sh"])
    b.node("Gather", ["sh", "k0"], ["n"], axis=0)
    b.node("Unsqueeze", ["n"], ["n1"], axes=[0])
    b.node("Concat", ["n1", "km1"], ["spec"], axis=0)
    h = b.node("Reshape", [h, "spec"], ["f"])
    h = b.node("Dropout", [h], ["d"], ratio=0.5)
    b.node("Gemm", [h, b.weight("fw", (3, 36)), b.weight("fb", (3,))], ["y"], transB=1)
    model = b.model([("x", ["N", 1, 5, 5])], [("y", ["N", 3])])
    opt = _check(model, (1, 1, 5, 5), ["Conv", "Reshape", "Gemm"], batch=3)
    assert opt.nodes[0].post == [("Relu", {})]


@pytest.mark.parametrize("opset,keepdims,axes", [(13, 0, [2, 3]), (13, 1, [-1, -2]), (18, 0, [2, 3]), (18, 1, [3, 2])])
def test_reduce_mean_over_hw_becomes_global_average_pool(opset, keepdims, axes):
    """torch's x.mean((2, 3)) / dynamo's AdaptiveAvgPool2d(1) / tf2onnx's GlobalAveragePooling2D:
    axes as an attribute (opset < 18) or an input (18+), keepdims either way."""
    b = Builder(9, opset=opset)
    h = b.node("Conv", ["x", b.weight("w", (4, 3, 3, 3))], ["c"], pads=[1, 1, 1, 1])
    if opset >= 18:
        h = b.node("ReduceMean", [h, b.const("axes", np.array(axes, np.int64))], ["m"], keepdims=keepdims)
    else:
        h = b.node("ReduceMean", [h], ["m"], axes=axes, keepdims=keepdims)
    if keepdims:
        h = b.node("Flatten", [h], ["f"], axis=1)
    b.node("Gemm", [h, b.weight("g", (5, 4)), b.weight("gb", (5,))], ["y"], transB=1)
    opt = _check(b.model([("x", ["N", 3, 6, 5])], [("y", ["N", 5])]), (1, 3, 6, 5),
                 ["Conv", "GlobalAveragePool", "Flatten", "Gemm"])
    assert any("ReduceMean" in line and "GlobalAveragePool" in line for line in opt.log)


def test_reduce_mean_over_channels_is_left_alone():
    b = Builder(10)
    b.node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=1)
    _check(b.model([("x", ["N", 3, 4, 4])], [("y", ["N", 1, 4, 4])]), (1, 3, 4, 4), ["ReduceMean"])
