"""Hostile, unsupported and oversized model files given to `edgebuild RECIPE model.onnx=FILE`, as a
user would: each exits with status 2 and one message naming the file, the node (name and op type)
or tensor at fault, and what would make it work; never a Python traceback, and the failed run leaves
no cache entry and no temporary files behind (a rerun fails the same way, a good file then builds)."""

from __future__ import annotations

import json
import re
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgebuild_testlib import run_cli

RECIPE = textwrap.dedent("""\
    defaults:
      - targets@target: uno
      - _self_
    name: hostile
    dataset: {name: digits8x8, split: {test: 300, val: 200, seed: 0}}
    model: {onnx: good.onnx}
    compression: {quantize: {calibration_samples: 100}}
    verify: {samples: 8}
    """)

n = helper.make_node


def _model(nodes, inits, *, inp=("input", ["N", 1, 8, 8]), out=("logits", ["N", 10]), opset=13,
           dtype=TensorProto.FLOAT, extra_opsets=()) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "user_model", [helper.make_tensor_value_info(inp[0], dtype, inp[1])],
                          [helper.make_tensor_value_info(out[0], TensorProto.FLOAT, out[1])],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset), *extra_opsets])
    m.ir_version = 8
    return m


def _dense_head(hidden: int = 16, *, act: tuple[str, dict] = ("Relu", {}), name: str = "/act") -> onnx.ModelProto:
    """Flatten -> Gemm(64, hidden) -> ACT -> Gemm(hidden, 10): the act node is where trouble goes."""
    rng = np.random.default_rng(0)
    inits = {"w1": rng.normal(0, 0.1, (hidden, 64)).astype(np.float32), "b1": np.zeros(hidden, np.float32),
             "w2": rng.normal(0, 0.1, (10, hidden)).astype(np.float32), "b2": np.zeros(10, np.float32)}
    nodes = [n("Flatten", ["input"], ["f"], name="/flatten"),
             n("Gemm", ["f", "w1", "b1"], ["h"], name="/fc1/Gemm", transB=1),
             n(act[0], ["h"], ["a"], name=name, **act[1]),
             n("Gemm", ["a", "w2", "b2"], ["logits"], name="/fc2/Gemm", transB=1)]
    return _model(nodes, inits)


def _bytes(m: onnx.ModelProto) -> bytes:
    return m.SerializeToString()


def _lstm() -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    inits = {"shape": np.array([-1, 8, 8], np.int64), "W": rng.normal(0, .1, (1, 16, 8)).astype(np.float32),
             "R": rng.normal(0, .1, (1, 16, 4)).astype(np.float32),
             "wd": rng.normal(0, .1, (10, 4)).astype(np.float32), "bd": np.zeros(10, np.float32),
             "sq": np.array([0, 1], np.int64)}
    nodes = [n("Reshape", ["input", "shape"], ["seq"], name="/reshape"),
             n("Transpose", ["seq"], ["tseq"], name="/to_time_major", perm=[1, 0, 2]),
             n("LSTM", ["tseq", "W", "R"], ["", "h_last"], name="/rnn/LSTM", hidden_size=4),
             n("Squeeze", ["h_last", "sq"], ["h"], name="/squeeze"),
             n("Gemm", ["h", "wd", "bd"], ["logits"], name="/fc/Gemm", transB=1)]
    return _model(nodes, inits)


def _custom_domain() -> onnx.ModelProto:
    m = _dense_head(act=("FusedGelu", {}), name="/ffn/FusedGelu")
    m.graph.node[2].domain = "com.microsoft"
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return m


def _dynamic_spatial() -> onnx.ModelProto:
    m = _dense_head()
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[2].ClearField("dim_value"), dims[3].ClearField("dim_value")
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    return m


def _external_escape() -> onnx.ModelProto:
    m = _dense_head()
    w = m.graph.initializer[0]
    w.ClearField("raw_data"), w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="../../../../etc/passwd")
    return m


def _huge_initializer() -> onnx.ModelProto:
    m = _dense_head()
    w = m.graph.initializer[0]
    w.ClearField("raw_data"), w.ClearField("float_data")
    w.dims[:] = [1 << 20, 1 << 22]
    w.raw_data = b"\0" * 64
    return m


def _control_flow() -> onnx.ModelProto:
    then_g = helper.make_graph([n("Identity", ["f"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, ["N", 64])])
    else_g = helper.make_graph([n("Neg", ["f"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", TensorProto.FLOAT, ["N", 64])])
    rng = np.random.default_rng(2)
    inits = {"cond": np.array(True), "w": rng.normal(0, .1, (10, 64)).astype(np.float32),
             "b": np.zeros(10, np.float32)}
    nodes = [n("Flatten", ["input"], ["f"], name="/flatten"),
             n("If", ["cond"], ["chosen"], name="/branch/If", then_branch=then_g, else_branch=else_g),
             n("Gemm", ["chosen", "w", "b"], ["logits"], name="/fc/Gemm", transB=1)]
    return _model(nodes, inits)


def _float64_model() -> onnx.ModelProto:
    """A valid model computing in float64 throughout (weights, input and output)."""
    m = _dense_head()
    for i, t in enumerate(m.graph.initializer):
        m.graph.initializer[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float64), t.name))
    m.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    m.graph.output[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    onnx.checker.check_model(m, full_check=True)
    return m


def _wrong_input_shape() -> onnx.ModelProto:
    """A valid CIFAR-shaped model (3x32x32 input) given data of 8x8 digits."""
    rng = np.random.default_rng(4)
    inits = {"w": rng.normal(0, .01, (10, 3 * 32 * 32)).astype(np.float32), "b": np.zeros(10, np.float32)}
    nodes = [n("Flatten", ["input"], ["f"], name="/flatten"),
             n("Gemm", ["f", "w", "b"], ["logits"], name="/fc/Gemm", transB=1)]
    return _model(nodes, inits, inp=("input", ["N", 3, 32, 32]))


def _future_opset() -> onnx.ModelProto:
    m = _dense_head()
    m.opset_import[0].version = 99
    return m


def _ok_onnx_bytes() -> bytes:
    return _bytes(_dense_head())


# (file name, its bytes, fragments the one error message must contain besides the file name)
CASES = [
    ("empty.onnx", lambda: b"", ["no ONNX graph"]),
    ("garbage.onnx", lambda: bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8)), []),
    ("truncated.onnx", lambda: _ok_onnx_bytes()[: len(_ok_onnx_bytes()) // 2], []),
    ("erf.onnx", lambda: _bytes(_dense_head(act=("Erf", {}), name="/gelu/Erf")), ["/gelu/Erf", "Erf"]),
    ("lstm.onnx", lambda: _bytes(_lstm()), ["/rnn/LSTM", "LSTM"]),
    ("custom_domain.onnx", lambda: _bytes(_custom_domain()), ["com.microsoft"]),
    ("dynamic.onnx", lambda: _bytes(_dynamic_spatial()), ["'input'", "static"]),
    ("escape.onnx", lambda: _bytes(_external_escape()), ["w1"]),
    ("huge.onnx", lambda: _bytes(_huge_initializer()), ["w1"]),
    ("if.onnx", lambda: _bytes(_control_flow()), ["/branch/If", "If"]),
    ("shape.onnx", lambda: _bytes(_wrong_input_shape()), ["'input'", "[1, 8, 8]", "[3, 32, 32]", "dataset"]),
    ("opset99.onnx", lambda: _bytes(_future_opset()), ["99"]),
    ("too_big.onnx", lambda: _bytes(_dense_head(hidden=1024)),
     ["recipe 'hostile'", "flash", "short by 55,808 bytes", "compression.flash_bytes=32256"]),
]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    (root / "recipes").mkdir()
    (root / "recipes" / "hostile.yaml").write_text(RECIPE)
    for name, make, _ in CASES:
        (root / "recipes" / name).write_bytes(make())
    (root / "recipes" / "good.onnx").write_bytes(_ok_onnx_bytes())
    onnx.save(_float64_model(), root / "recipes" / "float64.onnx")
    return root


def _entries(root):
    actions = root / "cache" / "actions"
    return {p.name: json.loads(p.read_text())["rule"] for p in actions.glob("*.json")} if actions.is_dir() else {}


def test_at_least_ten_hostile_files():
    assert len(CASES) >= 10


@pytest.mark.parametrize("name,fragments", [(c[0], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_file_gives_one_clear_error(work, name, fragments):
    before = _entries(work)
    proc = run_cli("recipes/hostile.yaml", f"model.onnx={name}", "--cache", "cache", cwd=work)
    err = proc.stderr
    assert proc.returncode == 2, err
    assert "Traceback" not in err and "Traceback" not in proc.stdout
    assert name in err or name == "too_big.onnx", err     # a fit error names the recipe, the model is fine
    for f in fragments:
        assert f in err, f"{f!r} not in:\n{err}"
    assert "fix" in err.lower() or "use " in err.lower() or "short by" in err, err
    failed = re.search(r"rule '(\w+)' failed", err).group(1)
    added = {k: v for k, v in _entries(work).items() if k not in before}
    # stages before the failing one may be cached (they succeeded); the failed rule has no entry
    assert failed not in added.values(), added
    tmp = work / "cache" / "tmp"
    assert not tmp.is_dir() or not [p for p in tmp.iterdir() if not p.name.endswith(".trash")], list(tmp.iterdir())


def test_good_file_beside_them_builds(work):
    proc = run_cli("recipes/hostile.yaml", "--cache", "cache", cwd=work)
    assert proc.returncode == 0, proc.stderr
    r = json.loads((work / "build" / "hostile" / "report.json").read_text())
    assert r["verify"]["bit_exact"] == r["verify"]["samples"] == 8


def test_float64_model_is_computed_in_float32(work):
    """A model exported in float64 (numpy/Keras float64) builds: narrowed to float32 at import, the
    report says so, and its float accuracy equals onnxruntime's on the float64 file itself."""
    import onnxruntime as ort

    from edgebuild.data import load_dataset

    proc = run_cli("recipes/hostile.yaml", "model.onnx=float64.onnx", "--build-dir", "build/f64",
                   "--cache", "cache", cwd=work)
    assert proc.returncode == 0, proc.stderr
    r = json.loads((work / "build" / "f64" / "report.json").read_text())
    assert any("float64" in line for line in r["model"]["import_log"])
    ds = load_dataset({"name": "digits8x8", "split": {"test": 300, "val": 200, "seed": 0}})
    sess = ort.InferenceSession(str(work / "recipes" / "float64.onnx"), providers=["CPUExecutionProvider"])
    acc = float((sess.run(None, {"input": ds.x_test.astype(np.float64)})[0].argmax(1) == ds.y_test).mean())
    assert r["accuracy"]["float_full_test"] == pytest.approx(acc, abs=1e-12)
    assert r["verify"]["bit_exact"] == r["verify"]["samples"] == 8


def test_a_model_the_trainer_cannot_take_names_the_budgets_it_misses(work):
    """Compression fine-tunes with the numpy trainer; a grouped (not depthwise) conv is beyond it, so
    with the Uno's budgets set the build stops at compress naming the layer, the recipe, and each
    budget the uncompressed model misses, by how much."""
    rng = np.random.default_rng(5)
    inits = {"w1": rng.normal(0, .3, (32, 1, 3, 3)).astype(np.float32),
             "w2": rng.normal(0, .3, (32, 16, 3, 3)).astype(np.float32),
             "w3": rng.normal(0, .01, (10, 32 * 8 * 8)).astype(np.float32), "b3": np.zeros(10, np.float32)}
    nodes = [n("Conv", ["input", "w1"], ["c1"], name="/stem/Conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             n("Conv", ["c1", "w2"], ["c2"], name="/grouped/Conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=2),
             n("Flatten", ["c2"], ["f"], name="/flatten"),
             n("Gemm", ["f", "w3", "b3"], ["logits"], name="/fc/Gemm", transB=1)]
    onnx.save(_model(nodes, inits), work / "recipes" / "grouped.onnx")
    proc = run_cli("recipes/hostile.yaml", "model.onnx=grouped.onnx", "compression.sram_bytes=2048",
                   "compression.flash_bytes=32256", "--cache", "cache", cwd=work)
    err = proc.stderr
    assert proc.returncode == 2 and "Traceback" not in err, err
    assert "recipe 'hostile'" in err and "node '/grouped/Conv' (Conv)" in err and "group 2" in err
    sram = re.search(r"sram_bytes ([\d,]+) B against 2,048 B \(short by ([\d,]+) B\)", err)
    assert sram and int(sram[1].replace(",", "")) - 2048 == int(sram[2].replace(",", "")) > 0, err
