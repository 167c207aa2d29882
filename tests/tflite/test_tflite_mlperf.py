"""The four MLPerf Tiny networks as .tflite files from TensorFlow's converter (keras_nets.py; needs
the `[tflite]` extra): the int8 file builds with its own quantisation for the Cortex-M4 and its
outputs equal LiteRT's reference interpreter byte for byte on >= 100 inputs (numpy reference and
QEMU); the float file imports within float tolerance of the interpreter.

    .venv/bin/python -m pytest -m tflite tests/tflite -s      # prints flash, SRAM, instructions
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tflhelpers import layer_outputs_equal, run_reference, softmax_input, to_nchw, to_nhwc  # noqa: E402

from edgebuild import tflite  # noqa: E402

pytest.importorskip("tensorflow")
pytestmark = pytest.mark.tflite
REPO = Path(__file__).resolve().parents[2]
NETS = ["ds_cnn", "resnet8", "mobilenet_v1", "fc_autoencoder"]
N = 100


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import keras_nets

    out = tmp_path_factory.mktemp("mlperf")
    return {name: keras_nets.convert(name, out) for name in NETS}


def _logits_tensor(path):
    try:
        return softmax_input(path)
    except AssertionError:
        return None


@pytest.mark.parametrize("name", NETS)
def test_int8_reference_equals_the_interpreter(files, name):
    path = files[name]["int8"]
    qm = tflite.to_qmodel(tflite.read(path))
    shape = (N,) + tuple(np.array(qm.input_shape)[[1, 2, 0]] if len(qm.input_shape) == 3 else qm.input_shape)
    x = np.random.default_rng(7).integers(-128, 128, size=shape).astype(np.int8)
    want = run_reference(path, x, _logits_tensor(path))
    assert (qm.run(to_nchw(x)) == want).all(axis=1).sum() == N
    # every layer's output, not only the (untrained, nearly constant) logits
    counts = layer_outputs_equal(qm, path, x)
    assert counts.pop("distinct_values") > 100
    assert counts == {lay["name"]: N for lay in qm.layers}


@pytest.mark.parametrize("name", NETS)
def test_float_import_matches_the_interpreter(files, name):
    path = files[name]["float"]
    graph = tflite.to_graph(tflite.read(path))
    import keras_nets

    x = np.random.default_rng(3).standard_normal((20,) + keras_nets.SHAPES[name]).astype(np.float32)
    want = run_reference(path, x)
    got = graph.run({graph.inputs[0]: to_nchw(x)})[graph.outputs[0]].reshape(len(x), -1)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("name", NETS)
def test_int8_file_verifies_bit_exact_on_qemu(files, name, tmp_path):
    if not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")):
        pytest.skip("arm-none-eabi-gcc and qemu-system-arm are needed (./install.sh)")
    import edgebuild
    import keras_nets

    path = files[name]["int8"]
    shp = keras_nets.SHAPES[name]
    nchw = [shp[2], shp[0], shp[1]] if len(shp) == 3 else list(shp)
    classes = {"ds_cnn": 12, "resnet8": 10, "mobilenet_v1": 2, "fc_autoencoder": 2}[name]
    labels = [f"dataset.synthetic.classes={classes}",
              f"task.kind={'anomaly' if name == 'fc_autoencoder' else 'classification'}"]
    rep = edgebuild.build(REPO / "recipes" / "tflite_m4.yaml",
                          [f"model.tflite={path}", f"dataset.synthetic.shape=[{','.join(map(str, nchw))}]",
                           *labels, "dataset.synthetic.samples=300", "dataset.split.test=120",
                           "dataset.split.val=20", f"verify.samples={N}"],
                          cache=tmp_path / "cache", build_dir=tmp_path / "build")
    assert rep["verify"]["bit_exact"] == rep["verify"]["samples"] == N
    vec = np.load(tmp_path / "build" / "partition" / "vectors.npz")
    x = vec["inputs"].reshape((-1,) + tuple(nchw))
    want = run_reference(path, to_nhwc(x), _logits_tensor(path))
    equal = int((vec["outputs"] == want).all(axis=1).sum())
    assert equal == len(x) >= N
    m = rep["memory"]
    print(f"\n{name}: {equal}/{len(x)} bytes-equal vs LiteRT reference, QEMU bit-exact "
          f"{rep['verify']['bit_exact']}/{rep['verify']['samples']}, flash {m['flash_bytes']} B, "
          f"peak SRAM {m['sram_peak_bytes']} B, {rep['latency']['instructions']:.0f} instructions/inference")
