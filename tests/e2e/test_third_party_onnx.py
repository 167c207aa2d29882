"""Third-party ONNX models, in the shapes torch.onnx exports them, through a recipe's `model.onnx` to a
verified Uno firmware: the build's float accuracy equals onnxruntime's on the same held-out digits.

Weights are trained here with edgebuild's numpy trainer (no torch on the machine), then written into
graphs built with onnx.helper the way PyTorch lays them out: a CNN with the
Shape->Gather->Unsqueeze->Concat->Reshape flatten and Gemm(transB=1), and an MLP with Reshape +
MatMul + Add; dynamic batch dimension 'N'. And an opset-6 file as old PyTorch (and the onnx package's
pytorch-converted test data) wrote them: initializers listed as graph inputs, Gemm(broadcast=1),
IR version 3. onnxruntime has no opset-6 kernels, so its reference is the opset-13 twin with the
same weights; edgebuild upgrades the file (onnx.version_converter) and the report says so.
"""

from __future__ import annotations

import json
import shutil
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgebuild_testlib import cli

pytestmark = pytest.mark.skipif(not shutil.which("avr-gcc"), reason="avr-gcc is needed (./install.sh)")

DATASET = {"name": "mnist5k", "resize": [14, 14], "split": {"test": 300, "val": 100, "seed": 0}, "limit": 1500}


def trained(arch: list[dict], ds) -> dict:
    from edgebuild.train import build_net, fit

    net = build_net(arch, tuple(ds.x_train.shape[1:]), 0)
    fit(net, ds, {"epochs": 3, "batch_size": 32, "optimizer": "adam", "lr": 0.01, "seed": 0})
    return {k: np.asarray(v, np.float32) for k, v in net.params().items()}


def model(nodes, inits, name) -> onnx.ModelProto:
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 14, 14])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="pytorch")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def torch_style_cnn(ds) -> onnx.ModelProto:
    w = trained([{"conv": {"out": 8, "kernel": 3, "pad": 1}}, {"relu": {}}, {"maxpool": {"kernel": 2}},
                 {"flatten": {}}, {"dense": {"out": 10}}], ds)
    inits = {"conv1.weight": w["conv1.weight"], "conv1.bias": w["conv1.bias"], "fc.weight": w["dense1.weight"],
             "fc.bias": w["dense1.bias"], "i0": np.array(0, np.int64), "ax0": np.array([0], np.int64),
             "m1": np.array([-1], np.int64)}
    n = helper.make_node
    nodes = [n("Conv", ["input", "conv1.weight", "conv1.bias"], ["/conv1/Conv_output_0"], name="/conv1/Conv",
               kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             n("Relu", ["/conv1/Conv_output_0"], ["/Relu_output_0"], name="/Relu"),
             n("MaxPool", ["/Relu_output_0"], ["/pool/MaxPool_output_0"], name="/pool/MaxPool",
               kernel_shape=[2, 2], strides=[2, 2]),
             n("Shape", ["/pool/MaxPool_output_0"], ["/Shape_output_0"], name="/Shape"),
             n("Gather", ["/Shape_output_0", "i0"], ["/Gather_output_0"], name="/Gather", axis=0),
             n("Unsqueeze", ["/Gather_output_0", "ax0"], ["/Unsqueeze_output_0"], name="/Unsqueeze"),
             n("Concat", ["/Unsqueeze_output_0", "m1"], ["/Concat_output_0"], name="/Concat", axis=0),
             n("Reshape", ["/pool/MaxPool_output_0", "/Concat_output_0"], ["/Reshape_output_0"], name="/Reshape"),
             n("Gemm", ["/Reshape_output_0", "fc.weight", "fc.bias"], ["logits"], name="/fc/Gemm",
               alpha=1.0, beta=1.0, transB=1)]
    return model(nodes, inits, "torch_cnn")


def torch_style_mlp(ds) -> onnx.ModelProto:
    w = trained([{"flatten": {}}, {"dense": {"out": 32}}, {"relu": {}}, {"dense": {"out": 10}}], ds)
    inits = {"shape": np.array([-1, 196], np.int64), "fc1.weight_T": w["dense1.weight"].T.copy(),
             "fc1.bias": w["dense1.bias"], "fc2.weight_T": w["dense2.weight"].T.copy(), "fc2.bias": w["dense2.bias"]}
    n = helper.make_node
    nodes = [n("Reshape", ["input", "shape"], ["x"], name="/Reshape"),
             n("MatMul", ["x", "fc1.weight_T"], ["mm1"], name="/fc1/MatMul"),
             n("Add", ["mm1", "fc1.bias"], ["a1"], name="/fc1/Add"),
             n("Relu", ["a1"], ["h1"], name="/Relu"),
             n("MatMul", ["h1", "fc2.weight_T"], ["mm2"], name="/fc2/MatMul"),
             n("Add", ["mm2", "fc2.bias"], ["logits"], name="/fc2/Add")]
    return model(nodes, inits, "torch_mlp")


def write_recipe(root, name: str, onnx_file: str) -> None:
    """recipes/<name>.yaml: the Uno, ``onnx_file`` (beside it) as the model, DATASET, 40 verify inputs."""
    (root / "recipes" / f"{name}.yaml").write_text(textwrap.dedent(f"""\
        defaults:
          - targets@target: uno
          - _self_
        name: {name}
        model: {{onnx: {onnx_file}}}
        dataset: {json.dumps(DATASET)}
        compression: {{quantize: {{calibration_samples: 200}}}}
        verify: {{samples: 40}}
        """))


def old_pytorch_cnn(ds) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """(an opset-6 CNN, its opset-13 twin with the same weights for onnxruntime)."""
    w = trained([{"conv": {"out": 8, "kernel": 3, "pad": 1}}, {"relu": {}}, {"maxpool": {"kernel": 2}},
                 {"flatten": {}}, {"dense": {"out": 10}}], ds)
    inits = {"1": w["conv1.weight"], "2": w["conv1.bias"], "3": w["dense1.weight"], "4": w["dense1.bias"]}
    n = helper.make_node

    def graph(opset: int, ir: int) -> onnx.ModelProto:
        gemm = {"broadcast": 1} if opset < 7 else {}
        nodes = [n("Conv", ["0", "1", "2"], ["5"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
                 n("Relu", ["5"], ["6"]),
                 n("MaxPool", ["6"], ["7"], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0]),
                 n("Flatten", ["7"], ["8"], axis=1),
                 n("Gemm", ["8", "3", "4"], ["9"], alpha=1.0, beta=1.0, transB=1, **gemm)]
        listed = [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v.shape)) for k, v in inits.items()]
        g = helper.make_graph(nodes, "torch-jit-export",
                              [helper.make_tensor_value_info("0", TensorProto.FLOAT, [1, 1, 14, 14])]
                              + (listed if ir < 4 else []),
                              [helper.make_tensor_value_info("9", TensorProto.FLOAT, [1, 10])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="pytorch",
                              producer_version="0.3")
        m.ir_version = ir
        onnx.checker.check_model(m)
        return m

    return graph(6, 3), graph(13, 8)


def test_opset6_file_is_upgraded_and_verified(tmp_path, dataset):
    import onnxruntime as ort

    old, twin = old_pytorch_cnn(dataset)
    (tmp_path / "recipes").mkdir()
    onnx.save(old, tmp_path / "recipes" / "old.onnx")
    sess = ort.InferenceSession(twin.SerializeToString(), providers=["CPUExecutionProvider"])
    ort_pred = np.array([sess.run(None, {"0": x[None]})[0][0] for x in dataset.x_test]).argmax(1)
    ort_acc = float((ort_pred == dataset.y_test).mean())
    assert ort_acc > 0.8
    write_recipe(tmp_path, "old", "old.onnx")
    proc = cli("recipes/old.yaml", "--cache", "cache", cwd=tmp_path)
    assert "upgraded from opset 6 to 7" in proc.stderr
    r = json.loads((tmp_path / "build" / "old" / "report.json").read_text())
    assert r["model"]["opset"] == 7
    assert r["model"]["import_log"] == ["upgraded from opset 6 to 7 with onnx.version_converter"]
    assert r["accuracy"]["float_full_test"] == pytest.approx(ort_acc, abs=1e-12)
    assert r["verify"]["bit_exact"] == r["verify"]["samples"] == 40
    assert "upgraded from opset 6 to 7" in (tmp_path / "build" / "old" / "report.html").read_text()


@pytest.fixture(scope="module")
def dataset():
    from edgebuild.data import load_dataset

    return load_dataset(DATASET)


@pytest.mark.parametrize("make", [torch_style_cnn, torch_style_mlp], ids=["cnn", "mlp"])
def test_third_party_onnx_to_verified_uno_firmware(tmp_path, dataset, make):
    import onnxruntime as ort

    m = make(dataset)
    (tmp_path / "recipes").mkdir()
    onnx.save(m, tmp_path / "recipes" / "third_party.onnx")
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    ort_pred = sess.run(None, {"input": dataset.x_test})[0].argmax(1)
    ort_acc = float((ort_pred == dataset.y_test).mean())
    assert ort_acc > 0.8                     # the weights really were trained

    write_recipe(tmp_path, "tp", "third_party.onnx")
    cli("recipes/tp.yaml", "--cache", "cache", cwd=tmp_path)
    r = json.loads((tmp_path / "build" / "tp" / "report.json").read_text())
    assert r["accuracy"]["full_test_samples"] == len(dataset.y_test)
    assert r["accuracy"]["float_full_test"] == pytest.approx(ort_acc, abs=1e-12)
    assert r["accuracy"]["onnxruntime_argmax_agreement"] == 1.0
    assert r["accuracy"]["int8_full_test"] >= ort_acc - 0.02
    assert r["verify"]["bit_exact"] == r["verify"]["samples"] == 40
    assert "train" not in {k for k, s in r["stages"].items() if s["status"] == "ran"}
