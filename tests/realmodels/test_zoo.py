"""The four MLPerf Tiny networks from edgebuild/model/zoo.py: structure, and edgebuild's float
graph (loaded, BatchNorm folded, activations fused) against onnxruntime on the generated file."""

from __future__ import annotations

import numpy as np
import pytest

from edgebuild.model.zoo import INPUT_SHAPES, ZOO, param_count, write_zoo

# Published parameter counts: DS-CNN 23,756 (NXP eIQ model zoo, MLCommons tiny KWS model card);
# the others as the brief gives them (ResNet-8 ~78k, MobileNetV1-0.25 VWW ~220k, FC-AE ~270k).
PARAMS = {"ds_cnn": (23_756, 23_756), "resnet8": (77_000, 79_000), "mobilenet_v1": (205_000, 225_000),
          "fc_autoencoder": (265_000, 272_000)}


@pytest.fixture(scope="module", params=ZOO)
def zoo_file(request, tmp_path_factory):
    name = request.param
    return name, write_zoo(name, tmp_path_factory.mktemp("zoo") / f"{name}.onnx", seed=0)


def test_parameters_and_structure(zoo_file):
    import onnx

    name, path = zoo_file
    m = onnx.load(str(path))
    lo, hi = PARAMS[name]
    assert lo <= param_count(m) <= hi
    ops = [n.op_type for n in m.graph.node]
    if name == "resnet8":
        assert ops.count("Add") == 3
        assert sum(1 for n in m.graph.node if n.op_type == "Conv"
                   and list(next(a.ints for a in n.attribute if a.name == "kernel_shape")) == [1, 1]) == 2
    if name in ("ds_cnn", "mobilenet_v1"):
        groups = [next((a.i for a in n.attribute if a.name == "group"), 1) for n in m.graph.node if n.op_type == "Conv"]
        assert sum(g > 1 for g in groups) == (4 if name == "ds_cnn" else 13)
    if name == "fc_autoencoder":
        widths = [numpy_shape(m, n.input[1])[0] for n in m.graph.node if n.op_type == "Gemm"]
        assert widths == [128, 128, 128, 128, 8, 128, 128, 128, 128, 640]
    assert ops.count("BatchNormalization") > 0


def numpy_shape(m, name):
    return next(list(i.dims) for i in m.graph.initializer if i.name == name)


def test_float_graph_matches_onnxruntime(zoo_file):
    import onnxruntime as ort

    from edgebuild.model import load, optimise

    name, path = zoo_file
    x = np.random.default_rng(5).standard_normal((4, *INPUT_SHAPES[name])).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = np.concatenate([sess.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])
    g = optimise(load(path))
    assert not any(n.op_type == "BatchNormalization" for n in g.nodes)      # folded
    got = g.run({g.inputs[0]: x})[g.outputs[0]]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_deterministic_bytes(tmp_path):
    a = write_zoo("ds_cnn", tmp_path / "a.onnx", seed=1, width=0.25).read_bytes()
    b = write_zoo("ds_cnn", tmp_path / "b.onnx", seed=1, width=0.25).read_bytes()
    c = write_zoo("ds_cnn", tmp_path / "c.onnx", seed=2, width=0.25).read_bytes()
    assert a == b != c


def test_unknown_name_is_a_config_error():
    from edgebuild.errors import ConfigError
    from edgebuild.model.zoo import zoo_model

    with pytest.raises(ConfigError, match="unknown zoo network") as e:
        zoo_model("resnet50")
    assert e.value.field == "model.zoo.name"
