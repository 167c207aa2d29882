""".tflite import against LiteRT's reference interpreter (ai-edge-litert, BUILTIN_REF kernels), on
small models written without TensorFlow (tflwriter.py): a fully-int8 file keeps its own
quantisation and its int8 output equals the interpreter's byte for byte (numpy reference, host C,
the Cortex-M4 in QEMU); a float file imports as an NCHW float graph equal to the interpreter within
float tolerance; unsupported or hostile files give one clear error."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "codegen"))

from tflhelpers import run_reference, softmax_input, to_nchw, to_nhwc  # noqa: E402
from tflwriter import Writer, small_net  # noqa: E402

from edgebuild.errors import ConfigError, EdgebuildError, ModelError  # noqa: E402
from edgebuild import tflite  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
N = 200


def _inputs(seed=1, shape=(8, 8, 2)):
    return np.random.default_rng(seed).integers(-128, 128, size=(N,) + shape).astype(np.int8)


@pytest.fixture(scope="module")
def int8_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tfl") / "small_int8.tflite"
    small_net(path, quant=True, seed=0)
    return path


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_int8_reference_equals_the_interpreter_byte_for_byte(tmp_path, seed):
    path = tmp_path / "m.tflite"
    small_net(path, quant=True, seed=seed)
    x = _inputs(seed)
    want = run_reference(path, x, softmax_input(path))          # the logits (SOFTMAX input)
    assert len(np.unique(want)) > 20, "fixture saturates: the check would be weak"
    qm = tflite.to_qmodel(tflite.read(path))
    assert "quantisation kept from the file" in qm.notes[0]
    assert qm.input_scale == pytest.approx(0.05) and qm.input_zero_point == -3
    got = qm.run(to_nchw(x))
    assert got.shape == want.shape
    assert (got == want).all(axis=1).sum() == N


def test_int8_host_c_equals_the_interpreter(int8_file, tmp_path):
    from cgen_helpers import run_host

    x = _inputs(5)
    want = run_reference(int8_file, x, softmax_input(int8_file))
    qm = tflite.to_qmodel(tflite.read(int8_file))
    assert (run_host(qm, to_nchw(x), tmp_path) == want).all()


def test_float_file_imports_as_an_nchw_graph_equal_to_the_interpreter(tmp_path):
    path = tmp_path / "f.tflite"
    small_net(path, quant=False, seed=4)
    m = tflite.read(path)
    assert not m.quantised()
    graph = tflite.to_graph(m)
    x = np.random.default_rng(0).standard_normal((50, 8, 8, 2)).astype(np.float32)
    want = run_reference(path, x)
    got = graph.run({graph.inputs[0]: to_nchw(x)})[graph.outputs[0]].reshape(len(x), -1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert np.abs(want - want.mean(0)).max() > 1e-3                   # outputs vary with the input


def test_int8_file_builds_and_verifies_on_the_cortex_m4(int8_file, tmp_path):
    if not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")):
        pytest.skip("arm-none-eabi-gcc and qemu-system-arm are needed (./install.sh)")
    import edgebuild

    rep = edgebuild.build(REPO / "recipes" / "tflite_m4.yaml",
                          [f"model.tflite={int8_file}", "dataset.synthetic.shape=[2,8,8]",
                           "dataset.synthetic.classes=5", "verify.samples=100"],
                          cache=tmp_path / "cache", build_dir=tmp_path / "build")
    r = rep.data if hasattr(rep, "data") else rep
    assert r["verify"]["bit_exact"] == r["verify"]["samples"] == 100 and r["verify"]["simulator"] == "qemu"
    assert any("quantisation kept from the file" in n for n in r["model"]["notes"])
    # the vectors the device matched are the int8 reference's: they equal the interpreter's
    vec = np.load(tmp_path / "build" / "partition" / "vectors.npz")
    x = to_nhwc(vec["inputs"].reshape(-1, 2, 8, 8))
    want = run_reference(int8_file, x, softmax_input(int8_file))
    assert (vec["outputs"] == want).all()


def test_per_batch_dynamic_signature_is_accepted(tmp_path):
    w = Writer(0)
    x = w.input([1, 6, 6, 1], signature=[-1, 6, 6, 1])
    y = w.conv(x, 2, (3, 3))
    w.save(tmp_path / "b.tflite", [x], [y])
    qm = tflite.to_qmodel(tflite.read(tmp_path / "b.tflite"))
    xs = _inputs(2, (6, 6, 1))
    assert (qm.run(to_nchw(xs)) == to_nchw(run_reference(tmp_path / "b.tflite", xs).reshape(N, 6, 6, 2)).reshape(N, -1)).all()


# -- one clear error each -------------------------------------------------------------------------

def _expect(path, *words, kind=ModelError):
    with pytest.raises(kind) as e:
        m = tflite.read(path)
        low = tflite.lower(m)
        tflite.to_qmodel(m, low) if low["quant"] else tflite.to_graph(m, low)
    text = str(e.value)
    for w in (str(path), "fix:") + words:
        assert w in text, text
    return text


def test_unsupported_operator_names_its_index_and_name(tmp_path):
    w = Writer(0)
    x = w.input([1, 4, 4, 1])
    y = w.conv(x, 2, (3, 3))
    z = w.unary(y, "TANH")
    w.save(tmp_path / "tanh.tflite", [x], [z])
    _expect(tmp_path / "tanh.tflite", "operator 1 (TANH)", "not supported")


def test_dynamic_shape_is_rejected(tmp_path):
    w = Writer(0)
    x = w.input([1, 4, 4, 1], signature=[1, -1, -1, 1])
    y = w.conv(x, 2, (3, 3))
    w.save(tmp_path / "dyn.tflite", [x], [y])
    _expect(tmp_path / "dyn.tflite", "dynamic shape", "fixed input shape")


@pytest.mark.parametrize("keep_dims,rescale", [(False, 1.0), (False, 0.37), (True, 0.37), (True, 1.0)])
def test_mean_over_height_and_width(tmp_path, keep_dims, rescale):
    from cgen_helpers import run_host

    for quant in (True, False):
        w = Writer(3, quant)
        x = w.input([1, 5, 7, 2])
        y = w.conv(x, 6, (3, 3), act="RELU")
        z = w.mean(y, keep_dims=keep_dims, rescale=rescale)
        o = w.dense(w.reshape(z, [1, 6]) if keep_dims else z, 4)
        path = tmp_path / f"mean{int(quant)}.tflite"
        w.save(path, [x], [o])
        m = tflite.read(path)
        if quant:
            xs = _inputs(4, (5, 7, 2))
            want = run_reference(path, xs, z)                            # the MEAN output itself
            qm = tflite.to_qmodel(m)
            got = qm.head(2).run(to_nchw(xs))
            assert len(np.unique(want)) > 10 and (got == want.reshape(got.shape)).all()
            assert (run_host(qm, to_nchw(xs), tmp_path / "c") == run_reference(path, xs)).all()
        else:
            xs = np.random.default_rng(0).standard_normal((20, 5, 7, 2)).astype(np.float32)
            g = tflite.to_graph(m)
            got = g.run({g.inputs[0]: to_nchw(xs)})[g.outputs[0]].reshape(20, -1)
            np.testing.assert_allclose(got, run_reference(path, xs), rtol=1e-4, atol=1e-5)


def test_softmax_before_the_end_is_rejected(tmp_path):
    w = Writer(0)
    x = w.input([1, 6])
    s = w.softmax(x)
    y = w.dense(s, 3)
    w.save(tmp_path / "sm.tflite", [x], [y])
    _expect(tmp_path / "sm.tflite", "operator 0 (SOFTMAX)", "last operator")


def test_unsupported_fused_activation(tmp_path):
    w = Writer(0)
    x = w.input([1, 4, 4, 1])
    y = w.conv(x, 2, (3, 3), act="TANH")
    w.save(tmp_path / "act.tflite", [x], [y])
    _expect(tmp_path / "act.tflite", "operator 0 (CONV_2D)", "fused activation")


def test_broadcast_add_is_rejected(tmp_path):
    w = Writer(0)
    x = w.input([1, 4, 4, 2])
    y = w.conv(x, 2, (3, 3))
    z = w.pool(y, "MAX_POOL_2D", (2, 2), 2)
    s = w.add(y, z)
    w.save(tmp_path / "badd.tflite", [x], [s])
    _expect(tmp_path / "badd.tflite", "operator 2 (ADD)", "equal-shaped")


@pytest.mark.parametrize("content", [b"", b"\x00" * 64, b"ONNX" * 40, b"\x18\x00\x00\x00TFL3" + b"\xff" * 40])
def test_garbage_files_give_one_clear_error(tmp_path, content):
    path = tmp_path / "bad.tflite"
    path.write_bytes(content)
    _expect(path)


def test_truncated_file(int8_file, tmp_path):
    path = tmp_path / "cut.tflite"
    path.write_bytes(int8_file.read_bytes()[:600])
    _expect(path)


def test_recipe_needs_the_file_and_only_one_model_source(int8_file, tmp_path):
    from edgebuild.api import load_recipe

    with pytest.raises(ConfigError, match="model.tflite=/path/to/model.tflite"):
        load_recipe(REPO / "recipes" / "tflite_m4.yaml", [], cache=tmp_path / "c")
    with pytest.raises(ConfigError, match="TFLite file not found"):
        load_recipe(REPO / "recipes" / "tflite_m4.yaml", [f"model.tflite={tmp_path}/none.tflite"], cache=tmp_path / "c")
    with pytest.raises(EdgebuildError, match="exactly one of"):
        load_recipe(REPO / "recipes" / "tflite_m4.yaml", [f"model.tflite={int8_file}", "model.zoo.name=ds_cnn"],
                    cache=tmp_path / "c")
    cfg = load_recipe(REPO / "recipes" / "tflite_m4.yaml", [f"model.tflite={int8_file}"], cache=tmp_path / "c")
    assert cfg["model"]["tflite"] == str(int8_file)


def test_avr_cannot_run_the_double_precision_dense_scaling(int8_file, tmp_path):
    from cgen_helpers import trivial_plan

    from edgebuild.codegen import generate

    qm = tflite.to_qmodel(tflite.read(int8_file))
    with pytest.raises(ModelError, match="64-bit double"):
        generate(qm, trivial_plan(qm), tmp_path / "gen", arch="avr")


def test_float_file_is_quantised_by_edgebuild_and_verifies(tmp_path):
    import edgebuild

    path = tmp_path / "f.tflite"
    small_net(path, quant=False, seed=4)
    rep = edgebuild.build(REPO / "recipes" / "tflite_m4.yaml",
                          [f"model.tflite={path}", "dataset.synthetic.shape=[2,8,8]", "dataset.synthetic.classes=5",
                           "verify.samples=50", "target=host"],
                          cache=tmp_path / "cache", build_dir=tmp_path / "build")
    assert rep["verify"]["bit_exact"] == rep["verify"]["samples"] == 50
    assert not any("kept from the file" in n for n in rep["model"]["notes"])   # calibrated by edgebuild
    # the float model the build quantised is the file's: its float outputs match the interpreter's
    assert rep["accuracy"]["onnxruntime_argmax_agreement"] == 1.0


def test_kept_quantisation_cannot_be_pruned(tmp_path):
    import edgebuild

    w = Writer(0)
    x = w.input([1, 8, 8, 2])
    y = w.dense(w.reshape(w.conv(x, 4, (3, 3), act="RELU"), [1, 256]), 5)
    w.save(tmp_path / "c.tflite", [x], [y])
    with pytest.raises(EdgebuildError, match="kept from the .tflite file, so it cannot be pruned"):
        edgebuild.build(REPO / "recipes" / "tflite_m4.yaml",
                        [f"model.tflite={tmp_path / 'c.tflite'}", "dataset.synthetic.shape=[2,8,8]", "target=host",
                         "compression.method=magnitude", "compression.ratio=0.5", "compression.finetune.epochs=0"],
                        cache=tmp_path / "cache", build_dir=tmp_path / "build")
