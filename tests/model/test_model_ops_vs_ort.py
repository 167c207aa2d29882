"""Window operators and opset-dependent semantics against onnxruntime on random configurations
(groups incl. depthwise, strides, pads, dilations, auto_pad, ceil_mode, count_include_pad)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_builders import Builder, ort_run

from edgebuild.model import from_onnx

SETTINGS = dict(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def _compare(b, x, out_shape_hint=None, rtol=1e-4):
    model = b.model([("x", list(x.shape))], [("y", None)])
    want = ort_run(model, {"x": x})["y"]
    graph = from_onnx(model)
    got = graph.run({"x": x})["y"]
    assert graph.shapes["y"] == want.shape
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-5)


@st.composite
def conv_case(draw):
    g = draw(st.sampled_from([1, 2, 3]))
    depthwise = draw(st.booleans())
    cin = g * draw(st.integers(1, 2))
    if depthwise:
        g = cin
    m = g * draw(st.integers(1, 2))
    k = draw(st.lists(st.integers(1, 3), min_size=2, max_size=2))
    attrs = {"group": g, "strides": draw(st.lists(st.integers(1, 3), min_size=2, max_size=2)),
             "dilations": draw(st.lists(st.integers(1, 2), min_size=2, max_size=2))}
    pad = draw(st.sampled_from(["pads", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    if pad == "pads":
        attrs["pads"] = draw(st.lists(st.integers(0, 2), min_size=4, max_size=4))
    else:
        attrs["auto_pad"] = pad
    if pad.startswith("SAME"):
        attrs.pop("dilations")
    hw = draw(st.lists(st.integers(5, 9), min_size=2, max_size=2))
    return cin, m, k, attrs, hw, draw(st.booleans()), draw(st.integers(1, 3))


@settings(**SETTINGS)
@given(conv_case())
def test_conv_random(case):
    cin, m, k, attrs, hw, bias, batch = case
    b = Builder(0)
    inputs = ["x", b.weight("w", (m, cin // attrs["group"], *k))]
    if bias:
        inputs.append(b.weight("b", (m,)))
    b.node("Conv", inputs, ["y"], **attrs)
    _compare(b, np.random.default_rng(1).standard_normal((batch, cin, *hw)).astype(np.float32))


@st.composite
def pool_case(draw):
    k = draw(st.lists(st.integers(1, 3), min_size=2, max_size=2))
    attrs = {"kernel_shape": k,
             "strides": draw(st.lists(st.integers(1, 3), min_size=2, max_size=2)),
             "ceil_mode": int(draw(st.booleans()))}
    if draw(st.booleans()):
        attrs["pads"] = [draw(st.integers(0, kk - 1)) for kk in k] * 2
    else:
        attrs["auto_pad"] = draw(st.sampled_from(["SAME_UPPER", "SAME_LOWER", "VALID"]))
        attrs["ceil_mode"] = 0
        # onnxruntime rejects SAME padding when a stride exceeds the kernel (negative pads)
        attrs["strides"] = [min(s, kk) for s, kk in zip(attrs["strides"], k)]
    return attrs, draw(st.lists(st.integers(4, 8), min_size=2, max_size=2))


@settings(**SETTINGS)
@given(pool_case(), st.booleans(), st.booleans())
def test_pools_random(case, average, include_pad):
    attrs, hw = case
    b = Builder(0, opset=19)
    if average:
        attrs = {**attrs, "count_include_pad": int(include_pad)}
    b.node("AveragePool" if average else "MaxPool", ["x"], ["y"], **attrs)
    _compare(b, np.random.default_rng(2).standard_normal((2, 3, *hw)).astype(np.float32))


@pytest.mark.parametrize("dil", [[1, 1], [2, 1], [2, 2]])
def test_maxpool_dilated_with_indices(dil):
    b = Builder(0, opset=12)
    b.node("MaxPool", ["x"], ["y", "idx"], kernel_shape=[2, 2], dilations=dil, pads=[1, 0, 1, 0])
    model = b.model([("x", [2, 2, 6, 5])], [("y", None)])
    model.graph.output.append(__import__("onnx").helper.make_tensor_value_info(
        "idx", __import__("onnx").TensorProto.INT64, None))
    x = np.random.default_rng(3).standard_normal((2, 2, 6, 5)).astype(np.float32)
    want = ort_run(model, {"x": x})
    got = from_onnx(model).run({"x": x})
    np.testing.assert_array_equal(got["y"], want["y"])
    np.testing.assert_array_equal(got["idx"], want["idx"])


@pytest.mark.parametrize("opset, axis", [(11, None), (11, 2), (13, None), (13, 1), (13, -2)])
def test_softmax_axis_semantics_by_opset(opset, axis):
    b = Builder(0, opset=opset)
    b.node("Softmax", ["x"], ["y"], **({} if axis is None else {"axis": axis}))
    _compare(b, np.random.default_rng(4).standard_normal((2, 3, 4)).astype(np.float32))


@pytest.mark.parametrize("opset", [7, 9, 11, 13, 15])
def test_batchnorm_squeeze_unsqueeze_across_opsets(opset):
    b = Builder(0, opset=opset)
    bn_attrs = {"spatial": 1} if opset < 9 else {}
    h = b.node("BatchNormalization", ["x", b.weight("s", (3,), low=0.5), b.weight("bb", (3,)),
                                      b.weight("m", (3,)), b.weight("v", (3,), low=0.5)],
               ["bn"], **bn_attrs)
    if opset < 13:
        h = b.node("Unsqueeze", [h], ["u"], axes=[0])
        b.node("Squeeze", [h], ["y"], axes=[0])
    else:
        h = b.node("Unsqueeze", [h, b.const("a", np.array([0], np.int64))], ["u"])
        b.node("Squeeze", [h, "a"], ["y"])
    _compare(b, np.random.default_rng(5).standard_normal((2, 3, 4, 4)).astype(np.float32))


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
def test_broadcast_arithmetic(op):
    b = Builder(0)
    b.node(op, ["x", b.weight("c", (3, 1), low=0.5)], ["y"])
    _compare(b, np.random.default_rng(6).standard_normal((2, 3, 4)).astype(np.float32))
