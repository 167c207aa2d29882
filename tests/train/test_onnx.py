"""ONNX export/import checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgebuild.errors import ModelError
from edgebuild.train import build_net, export_onnx, net_from_onnx

ARCH = [{"conv": {"out": 4, "kernel": 3, "stride": 1, "pad": 1}}, {"relu": {}}, {"maxpool": {"kernel": 2}},
        {"conv": {"out": 6, "kernel": 3, "stride": 2, "pad": 1}}, {"relu": {}},
        {"avgpool": {"kernel": 2, "stride": 1}}, {"flatten": {}}, {"dense": {"out": 12}}, {"relu": {}},
        {"dense": {"out": 10}}]


def run_ort(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


@pytest.fixture
def net():
    net = build_net(ARCH, (1, 14, 14), seed=4)
    for p in net.params().values():        # non-zero biases so they are exercised
        if p.ndim == 1:
            p[...] = np.random.default_rng(p.size).normal(size=p.shape)
    return net


def test_export_matches_onnxruntime(net, tmp_path):
    path = tmp_path / "m.onnx"
    export_onnx(net, path)
    x = np.random.default_rng(0).normal(size=(5, 1, 14, 14)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), run_ort(path, x), rtol=1e-5, atol=1e-5)
    model = onnx.load(str(path))
    assert [n.name for n in model.graph.node][:3] == ["conv1", "relu1", "maxpool1"]
    assert [n.op_type for n in model.graph.node] == ["Conv", "Relu", "MaxPool", "Conv", "Relu", "AveragePool",
                                                     "Flatten", "Gemm", "Relu", "Gemm"]
    assert {t.name for t in model.graph.initializer} == {f"{l}.{k}" for l in ("conv1", "conv2", "dense1", "dense2")
                                                         for k in ("weight", "bias")}
    assert all(t.data_type == TensorProto.FLOAT for t in model.graph.initializer)
    assert model.graph.input[0].name == "input" and model.graph.output[0].name == "logits"
    assert model.opset_import[0].version == 13
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 1, 14, 14]


def test_export_is_byte_deterministic(net, tmp_path):
    export_onnx(net, tmp_path / "a.onnx")
    export_onnx(net, tmp_path / "b.onnx")
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def test_round_trip(net, tmp_path):
    export_onnx(net, tmp_path / "m.onnx")
    back = net_from_onnx(tmp_path / "m.onnx")
    assert back.arch() == net.arch()
    for name, value in net.params().items():
        assert np.array_equal(back.params()[name], value)


def _save(tmp_path, nodes, inits, in_shape, out_shape, name="x.onnx"):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, out_shape)],
                              initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def test_import_foreign_ops_matches_onnxruntime(tmp_path):
    """MatMul+Add, Reshape, Gemm with transB=0/alpha/beta, stride-less pooling, bias-less Conv."""
    rng = np.random.default_rng(1)
    f = lambda *s: rng.normal(size=s).astype(np.float32)
    inits = {"w": f(3, 1, 3, 3), "shape": np.array([1, -1], np.int64), "m": f(3 * 3 * 3, 8), "mb": f(8),
             "g": f(8, 5), "gb": f(5)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="c", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Reshape", ["p", "shape"], ["f"]),
             helper.make_node("MatMul", ["f", "m"], ["mm"]),
             helper.make_node("Add", ["mm", "mb"], ["a"]),
             helper.make_node("Relu", ["a"], ["r2"]),
             helper.make_node("Gemm", ["r2", "g", "gb"], ["y"], alpha=0.5, beta=2.0)]
    path = _save(tmp_path, nodes, inits, [1, 1, 6, 6], [1, 5])
    net = net_from_onnx(path)
    x = rng.normal(size=(3, 1, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), run_ort(path, x), rtol=1e-5, atol=1e-5)
    assert [l.kind for l in net.layers] == ["conv", "relu", "maxpool", "flatten", "dense", "relu", "dense"]


def test_import_errors_name_file_and_node(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ModelError, match="bad.onnx"):
        net_from_onnx(bad)
    path = _save(tmp_path, [helper.make_node("Sigmoid", ["x"], ["y"], name="sig")], {}, [1, 4], [1, 4], "s.onnx")
    with pytest.raises(ModelError, match="sig.*Sigmoid is not supported"):
        net_from_onnx(path)
    w = np.ones((4, 2, 3, 3), np.float32)      # grouped, not depthwise: 2 groups of 2 channels
    path = _save(tmp_path, [helper.make_node("Conv", ["x", "w"], ["y"], name="g2", group=2, kernel_shape=[3, 3])],
                 {"w": w}, [1, 4, 5, 5], [1, 4, 3, 3], "g.onnx")
    with pytest.raises(ModelError, match="g2"):
        net_from_onnx(path)
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Relu", ["x"], ["b"]),
             helper.make_node("Add", ["a", "b"], ["y"], name="join")]
    with pytest.raises(ModelError, match="chain"):
        net_from_onnx(_save(tmp_path, nodes, {}, [1, 4], [1, 4], "dag.onnx"))


def test_ds_cnn_round_trip_matches_onnxruntime(tmp_path):
    """The zoo's DS-CNN (10x4 stride-2 conv with asymmetric pads, depthwise 3x3 convs, global
    average pool), optimised, as the trainer's Net: its forward equals onnxruntime's on the original
    file, and the Net's own export does too."""
    from edgebuild.model import load, optimise
    from edgebuild.model.zoo import write_zoo

    src = write_zoo("ds_cnn", tmp_path / "ds_cnn.onnx", seed=0, width=0.25)
    optimise(load(src)).save(tmp_path / "opt.onnx")
    net = net_from_onnx(tmp_path / "opt.onnx")
    assert any(getattr(layer, "depthwise", False) for layer in net.layers)
    x = np.random.default_rng(1).normal(size=(3, 1, 49, 10)).astype(np.float32)
    ref = run_ort(src, x)
    np.testing.assert_allclose(net.forward(x), ref, rtol=1e-4, atol=1e-4)
    export_onnx(net, tmp_path / "back.onnx")
    np.testing.assert_allclose(run_ort(tmp_path / "back.onnx", x), ref, rtol=1e-4, atol=1e-4)
