"""Graph API: save/load round trip through onnxruntime, params/cost/summary, run errors,
batch handling, c_identifier properties."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from model_builders import assert_close, mnist_cnn, mnist_mlp, ort_run

from edgebuild.errors import ModelError
from edgebuild.model import c_identifier, from_onnx, load, optimise


@pytest.mark.parametrize("make", [mnist_cnn, mnist_mlp])
@pytest.mark.parametrize("opt", [False, True])
def test_save_load_round_trip(tmp_path, make, opt):
    model = make()
    graph = from_onnx(model)
    graph = optimise(graph) if opt else graph
    path = tmp_path / "rt.onnx"
    graph.save(path)
    x = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
    want = ort_run(model, {"input": x})["logits"]
    import onnxruntime as ort
    saved = ort.InferenceSession(str(path)).run(None, {"input": x})[0]
    assert_close(saved, want)
    again = load(path)
    assert [n.op_type for n in again.nodes] == [n.op_type for n in graph.to_onnx().graph.node]
    assert_close(again.run({"input": x})["logits"], want)
    assert all(isinstance(v, tuple) for v in again.shapes.values())


def test_params_and_cost_match_hand_counts():
    graph = from_onnx(mnist_cnn())
    params = {p["name"]: p for p in graph.params()}
    json.dumps(graph.params())
    json.dumps(graph.cost())
    assert params["conv1.weight"] == {"name": "conv1.weight", "layer": "Conv_c1", "op": "Conv",
                                      "shape": [8, 1, 3, 3], "dtype": "float32", "count": 72,
                                      "bytes": 288}
    assert sum(p["count"] for p in params.values()) == 80 + 1168 + (784 * 32 + 32) + 330
    cost = {c["name"]: c for c in graph.cost()}
    assert cost["Conv_c1"]["macs"] == 8 * 28 * 28 * 9
    assert cost["Conv_c2"]["macs"] == 16 * 14 * 14 * 8 * 9
    assert cost["Gemm_fc1"]["macs"] == 784 * 32
    assert cost["Conv_c1"]["bytes_read"] == (28 * 28 + 72 + 8) * 4
    assert cost["Conv_c1"]["bytes_written"] == 8 * 28 * 28 * 4
    assert cost["Conv_c1"]["params"] == 80 and cost["Relu_r1"]["params"] == 0
    text = graph.summary()
    assert "Conv_c1" in text and "26698 parameters" in text


def test_shape_operands_are_not_weights():
    graph = from_onnx(mnist_mlp())
    assert "shape" not in {p["name"] for p in graph.params()}


def test_run_rejects_bad_feeds():
    graph = from_onnx(mnist_mlp())
    with pytest.raises(ModelError, match="input 'input'"):
        graph.run({})
    with pytest.raises(ModelError, match="expected"):
        graph.run({"input": np.zeros((1, 1, 27, 28), np.float32)})


def test_batch_differs_at_run_time():
    model = mnist_cnn()
    graph = optimise(from_onnx(model))
    x = np.random.default_rng(1).random((3, 1, 28, 28), dtype=np.float32)
    assert graph.run({"input": x})["logits"].shape == (3, 10)
    assert_close(graph.run({"input": x})["logits"], ort_run(model, {"input": x})["logits"])


def test_summary_does_not_mutate():
    graph = from_onnx(mnist_mlp())
    before = graph.copy()
    optimise(graph)
    graph.summary()
    assert [n.op_type for n in graph.nodes] == [n.op_type for n in before.nodes]
    assert all(np.array_equal(graph.initializers[k], v) for k, v in before.initializers.items())


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.text(min_size=0, max_size=80), min_size=1, max_size=20))
def test_c_identifier_valid_and_unique(names):
    taken: set[str] = set()
    ids = [c_identifier(n, taken) for n in names]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", i) for i in ids), ids
    assert not any("__" in i for i in ids)
    assert set(ids) <= taken


def test_build_from_parts_matches_onnxruntime():
    from edgebuild.model import Node, build
    rng = np.random.default_rng(2)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    graph = build([Node("MatMul", "mm", ["x", "w"], ["h"]), Node("Relu", "r", ["h"], ["y"])],
                  {"x": ((1, 4), "float32")}, ["y"], {"w": w})
    assert graph.shapes["y"] == (1, 3) and graph.dtypes["h"] == "float32"
    x = rng.standard_normal((5, 4)).astype(np.float32)
    assert_close(graph.run({"x": x})["y"], np.maximum(x @ w, 0))
    assert_close(graph.run({"x": x[:1]})["y"], ort_run(graph.to_onnx(), {"x": x[:1]})["y"])


ROOT = Path(__file__).resolve().parents[2]


def _modules_after(code: str) -> set[str]:
    """Modules imported by a fresh interpreter after running ``code``."""
    code += "\nimport sys; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(ROOT))
    return set(out.stdout.split())


def test_import_is_light_and_load_skips_onnxruntime(tmp_path):
    mods = _modules_after("import edgebuild.model, edgebuild.model.ir")
    assert not {"numpy", "onnx", "onnxruntime"} & mods
    import onnx
    onnx.save(mnist_mlp(), str(tmp_path / "m.onnx"))
    path = str(tmp_path / "m.onnx")
    mods = _modules_after(f"import edgebuild.model as m; m.optimise(m.load({path!r}))")
    assert "onnx" in mods and "onnxruntime" not in mods


def test_run_returns_intermediates():
    model = mnist_mlp()
    graph = from_onnx(model)
    x = np.random.default_rng(3).random((2, 1, 28, 28), dtype=np.float32)
    got = graph.run({"input": x}, outputs=["h1", "logits"])
    w1 = graph.initializers["W1"]
    b1 = graph.initializers["b1"]
    assert_close(got["h1"], np.maximum(x.reshape(2, 784) @ w1 + b1, 0))
    with pytest.raises(ModelError, match="nope"):
        graph.run({"input": x}, outputs=["nope"])


def test_save_is_deterministic(tmp_path):
    """The build cache's early cutoff needs byte-identical files for identical graphs."""
    for i in range(2):
        optimise(from_onnx(mnist_cnn())).save(tmp_path / f"{i}.onnx")
    assert (tmp_path / "0.onnx").read_bytes() == (tmp_path / "1.onnx").read_bytes()
