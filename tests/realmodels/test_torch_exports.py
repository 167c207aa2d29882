"""The four MLPerf Tiny networks written in PyTorch (tests/realmodels/torch_nets.py) and exported the
three ways a PyTorch user does today: the TorchScript exporter at opset 11 and at opset 17, and the
torch.export-based ("dynamo") exporter at opset 18. Each file's float output through edgebuild's
import + optimise equals onnxruntime's on the same file; each builds for the Cortex-M4
(netduinoplus2) from ``model.onnx=FILE`` and verifies bit-exact on QEMU on 100 inputs.

Needs the `torch` extra (``pip install -e .[torch]``); run with ``pytest -m torch``.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgebuild_testlib import cli, recipe_dir, synthetic_recipe  # noqa: E402

pytestmark = pytest.mark.torch

EXPORTS = [(11, False), (17, False), (18, True)]
IDS = ["torchscript-opset11", "torchscript-opset17", "dynamo-opset18"]
# per network: the synthetic data's shape and labels, and the task
DATA = {"ds_cnn": (12, "classification"), "resnet8": (10, "classification"), "mobilenet_v1": (2, "classification"),
        "fc_autoencoder": (2, "anomaly")}


def _file(tmp_path_factory, net: str, opset: int, dynamo: bool):
    from torch_nets import export

    folder = tmp_path_factory.getbasetemp() / "torch_exports"
    folder.mkdir(exist_ok=True)
    path = folder / f"{net}_{'dynamo' if dynamo else 'ts'}_opset{opset}.onnx"
    if not path.exists():
        export(net, path, opset=opset, dynamo=dynamo)
    return path


@pytest.mark.parametrize("net", list(DATA))
@pytest.mark.parametrize("opset,dynamo", EXPORTS, ids=IDS)
def test_float_import_equals_onnxruntime(tmp_path_factory, net, opset, dynamo):
    import onnx
    import onnxruntime as ort

    from edgebuild.model import load, optimise
    from edgebuild.model.runtime import run
    from torch_nets import NETS

    path = _file(tmp_path_factory, net, opset, dynamo)
    assert onnx.load(str(path)).opset_import[0].version == opset
    x = np.random.default_rng(0).normal(0, 1, (8, *NETS[net][1])).astype(np.float32)
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    g = optimise(load(path))
    y = run(g, {g.inputs[0]: x})[g.outputs[0]]
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5 * float(np.abs(ref).max()))


@pytest.mark.skipif(not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
                    reason="arm-none-eabi-gcc and qemu-system-arm are needed (./install.sh)")
@pytest.mark.parametrize("net", list(DATA))
@pytest.mark.parametrize("opset,dynamo", EXPORTS, ids=IDS)
def test_export_builds_and_verifies_on_the_m4(tmp_path_factory, net, opset, dynamo):
    path = _file(tmp_path_factory, net, opset, dynamo)
    name = f"{net}_{opset}"
    from torch_nets import NETS

    classes, task = DATA[net]
    work = recipe_dir(tmp_path_factory, name, {name: synthetic_recipe(
        name, shape=NETS[net][1], classes=classes, task=task, model=f"{{onnx: {path}}}", samples=500, split=(100, 50),
        seed=0, calibration=200, per_channel=True, verify=100)})
    cache = tmp_path_factory.getbasetemp() / "torch_cache"     # one cache: the dataset is shared
    cli(f"recipes/{name}.yaml", "--cache", cache, cwd=work)
    r = json.loads((work / "build" / name / "report.json").read_text())
    assert r["model"]["opset"] == opset
    assert r["verify"]["bit_exact"] == r["verify"]["samples"] == 100
    assert r["accuracy"].get("onnxruntime_argmax_agreement", 1.0) == 1.0
    figures = {"net": net, "export": f"{'dynamo' if dynamo else 'torchscript'} opset {opset}",
               "params": r["model"].get("params"), "flash": r["memory"]["flash_bytes"],
               "sram_peak": r["memory"].get("sram_peak_bytes"), "instructions": r["latency"].get("instructions") or r["latency"]["cycles"]}
    print("FIGURES", json.dumps(figures))
