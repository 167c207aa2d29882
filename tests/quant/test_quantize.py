"""QModel (numpy int8 reference) vs onnxruntime float, determinism, layout, errors."""

from __future__ import annotations

import time

import numpy as np
import pytest

from onnx_graphs import (Builder, fashion_mnist, fit_head, ort_run, structured_images,
                         to_graph)

from edgebuild.compress.quantize import QModel, quantize
from edgebuild.errors import ModelError


def _features_model(seed=0, shape=(1, 14, 14)):
    """conv+relu+maxpool -> depthwise dilated conv -> strided conv -> flatten."""
    b = Builder(shape, seed=seed)
    t = b.op("Relu", [b.conv("x", shape[0], 6, 3, pads=[1, 1, 1, 1])])
    t = b.op("MaxPool", [t], kernel_shape=[2, 2], strides=[2, 2])
    t = b.op("Relu", [b.conv(t, 6, 6, 3, group=6, pads=[2, 2, 2, 2], dilations=[2, 2])])
    t = b.op("Relu", [b.conv(t, 6, 8, 3, strides=[2, 2], pads=[1, 0, 1, 0])])
    return b, b.op("Flatten", [t])


def _classifier(x_train, y_train, classes, seed=0):
    """Feature model + a ridge-regression head fitted on float features (margins are real)."""
    b, feat = _features_model(seed, x_train.shape[1:])
    f = ort_run(b.model(feat), x_train)
    w, bias = fit_head(f, y_train, classes)
    out = b.gemm(feat, f.shape[1], classes, name="head", w=w, b=bias)
    return b, b.op("Softmax", [out]), out


def _prototype_data(n, seed):
    """Ten classes of structured images: a class prototype plus smooth noise."""
    rng = np.random.default_rng(seed)
    protos = structured_images(10, (1, 14, 14), 99)
    y = rng.integers(0, 10, n)
    x = 0.6 * protos[y] + 0.4 * structured_images(n, (1, 14, 14), seed)
    return x.astype(np.float32), y


def test_matches_float_and_argmax():
    x, y = _prototype_data(900, 1)
    b, out, logits = _classifier(x[:400], y[:400], 10)
    model = b.model(out)
    qm = quantize(to_graph(model), x[:300])
    assert any("Softmax" in n for n in qm.notes)
    ref = ort_run(b.model(logits), x[400:])
    got = qm.dequantize_output(qm.run(qm.quantize_input(x[400:])))
    span = ref.max() - ref.min()
    err = np.abs(got - ref)   # (a few samples exceed the calibrated range and saturate)
    assert np.percentile(err, 99) < 0.05 * span and err.mean() < 0.02 * span
    assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.98
    probs = ort_run(model, x[400:])  # the dropped softmax does not change the argmax
    assert (got.argmax(1) == probs.argmax(1)).mean() >= 0.98


def test_residual_concat_lut_close_to_float():
    b = Builder((3, 8, 8), seed=11)
    a = b.op("Relu", [b.conv("x", 3, 4, 3, pads=[1, 1, 1, 1])])
    r = b.op("Relu", [b.op("Add", [a, b.conv(a, 4, 4, 3, pads=[1, 1, 1, 1])])])
    s = b.op("Sigmoid", [b.conv(r, 4, 2, 1)])
    th = b.op("Tanh", [b.conv(r, 4, 2, 1)])
    t = b.op("Concat", [r, s, th], axis=1)
    t = b.op("AveragePool", [t], kernel_shape=[2, 2], strides=[2, 2])
    model = b.model(b.op("Flatten", [t]))
    x = structured_images(400, (3, 8, 8), 2)
    qm = quantize(to_graph(model), x[:200])
    ref = ort_run(model, x[200:])
    got = qm.dequantize_output(qm.run(qm.quantize_input(x[200:])))
    assert np.abs(got - ref).max() < 0.05 * (ref.max() - ref.min())


def test_per_channel_and_bias_tables():
    b, feat = _features_model(3)
    g = to_graph(b.model(feat))
    x = structured_images(100, (1, 14, 14), 4)
    qm = quantize(g, x)
    lay = qm.layers[0]
    w = g.initializers["conv1.weight"].astype(np.float64)
    s_w = np.abs(w).reshape(6, -1).max(axis=1) / 127
    wq = qm.arrays[lay["tables"]["weight"]]
    assert np.array_equal(wq, np.clip(np.round(w / s_w[:, None, None, None]), -127, 127))
    s_in, zp_in = qm.input_scale, qm.input_zero_point
    lo, hi = min(0, x.min()), max(0, x.max())
    assert s_in == pytest.approx((hi - lo) / 255)
    bias = np.round(g.initializers["conv1.bias"] / (s_in * s_w)) - zp_in * wq.reshape(6, -1).sum(1)
    assert np.array_equal(qm.arrays[lay["tables"]["bias"]], bias)
    rq = qm.arrays[lay["tables"]["requant"]]
    real = rq[:, 0] * 2.0 ** -(32 + rq[:, 1].astype(np.float64))
    assert np.allclose(real, s_in * s_w / lay["scale_out"], rtol=1e-8)
    qt = quantize(g, x, per_channel=False)
    s_t = np.abs(w).max() / 127
    assert np.array_equal(qt.arrays[qt.layers[0]["tables"]["weight"]], np.round(w / s_t))


def test_fashion_mnist_top1_within_one_point():
    train, test = fashion_mnist("train", 3000), fashion_mnist("test", 2000)
    if train is None:
        pytest.skip("dataset-fashion-mnist not installed")
    (xt, yt), (xv, yv) = train, test
    b, feat = _features_model(7, (1, 28, 28))
    w, bias = fit_head(ort_run(b.model(feat), xt), yt, 10)
    model = b.model(b.gemm(feat, w.shape[1], 10, name="head", w=w, b=bias))
    float_acc = (ort_run(model, xv).argmax(1) == yv).mean()
    qm = quantize(to_graph(model), xt[:500])
    int8_acc = (qm.run(qm.quantize_input(xv)).argmax(1) == yv).mean()
    assert float_acc > 0.7
    assert abs(float_acc - int8_acc) <= 0.01, (float_acc, int8_acc)


def test_run_1000_is_fast():
    b, feat = _features_model(5, (1, 28, 28))
    b.gemm(feat, 8 * 7 * 6, 10, name="head")
    qm = quantize(to_graph(b.model("head_out")), structured_images(50, (1, 28, 28), 5))
    x = np.random.default_rng(0).integers(-128, 128, (1000, 1, 28, 28), dtype=np.int8)
    t0 = time.perf_counter()
    y = qm.run(x)
    assert time.perf_counter() - t0 < 10 and y.shape == (1000, 10) and y.dtype == np.int8


def test_save_load_deterministic(tmp_path):
    b, feat = _features_model(2)
    g = to_graph(b.model(feat))
    x = structured_images(60, (1, 14, 14), 6)
    p1 = quantize(g, x).save(tmp_path / "a")
    p2 = quantize(g, x).save(tmp_path / "b")
    assert [p.read_bytes() for p in p1] == [p.read_bytes() for p in p2]
    loaded = QModel.load(tmp_path / "a")
    assert [p.name for p in loaded.save(tmp_path / "c")] == [p.name for p in p1]
    assert [p.read_bytes() for p in p1] == [(tmp_path / "c" / p.name).read_bytes() for p in p1]
    xq = quantize(g, x).quantize_input(x)
    assert np.array_equal(loaded.run(xq), quantize(g, x).run(xq))


def test_layout_request():
    b = Builder((2, 6, 6), seed=1)
    a = b.op("Relu", [b.conv("x", 2, 3, 3, pads=[1, 1, 1, 1], name="c1")])   # layer 0
    c = b.conv(a, 3, 3, 3, pads=[1, 1, 1, 1], name="c2")                      # layer 1
    s = b.op("Add", [a, c], name="add")                                       # layer 2
    t = b.op("Sigmoid", [s], name="sig")                                      # layer 3
    t = b.gemm(b.op("Flatten", [t]), 108, 4, name="fc")                       # layer 4
    qm = quantize(to_graph(b.model(t)), structured_images(30, (2, 6, 6), 0))
    weights, acts = qm.layout_request()
    # c1's fused Relu output feeds c2 and the Add; the fc output is the model's (excluded)
    assert sorted((a["name"], a["nbytes"], a["first"], a["last"]) for a in acts) == [
        ("add_out", 108, 2, 3), ("c2_out", 108, 1, 2), ("relu2_out", 108, 0, 2), ("sig_out", 108, 3, 4)]
    names = {w["name"]: w for w in weights}
    assert names["c1.weight"]["nbytes"] == 3 * 2 * 9 and names["c1.bias"]["nbytes"] == 12
    assert names["c1.requant"]["nbytes"] == 24 and names["sig.lut"]["nbytes"] == 256
    assert names["fc.weight"]["nbytes"] == 4 * 108 and names["fc.weight"]["layer"] == 4


def test_unsupported_op_names_node():
    b = Builder((2, 8, 8))
    t = b.op("Transpose", [b.conv("x", 2, 2, 3)], name="weird;node", perm=[0, 1, 3, 2])
    with pytest.raises(ModelError, match="weird;node"):
        quantize(to_graph(b.model(t)), structured_images(4, (2, 8, 8), 0))


def test_bad_calibration_data_is_a_user_error():
    from edgebuild.errors import DatasetError

    b, feat = _features_model(1)
    g = to_graph(b.model(feat))
    x = structured_images(8, (1, 14, 14), 0)
    x[3, 0, 2, 2] = np.nan
    with pytest.raises(DatasetError, match="NaN"):
        quantize(g, x)
    with pytest.raises(ModelError, match="does not match"):
        quantize(g, np.zeros((4, 3, 5), np.float32))
