"""End to end on the Cortex-M4 (netduinoplus2 in QEMU): zoo networks on generated data.

Default suite: a width-reduced DS-CNN (classification) and a width-reduced FC autoencoder (anomaly,
scored by reconstruction MSE), a user's .npz in the wrong layout (one clear error). Slow: the four
MLPerf Tiny recipes of recipes/ at full size, each verified bit-exact on 100 inputs."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from edgebuild_testlib import cli, recipe_dir, run_cli, synthetic_recipe

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
                                reason="arm-none-eabi-gcc and qemu-system-arm are needed (./install.sh)")



def _report(work, name):
    return json.loads((work / "build" / name / "report.json").read_text())


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return recipe_dir(tmp_path_factory, "realmodels", {
        "kws_small": synthetic_recipe("kws_small", shape=[1, 49, 10], classes=12,
                                      model="{zoo: {name: ds_cnn, seed: 3, width: 0.25}}"),
        "ae_small": synthetic_recipe("ae_small", shape=[640], task="anomaly",
                                     model="{zoo: {name: fc_autoencoder, seed: 3, width: 0.25}}"),
    })


def test_small_ds_cnn_verifies_bit_exact(work):
    cli("recipes/kws_small.yaml", "--cache", "cache", cwd=work)
    r = _report(work, "kws_small")
    assert r["verify"]["bit_exact"] == r["verify"]["samples"] == 30
    assert r["task"]["metric"] == "accuracy" and r["accuracy"]["device"] == r["accuracy"]["int8_host"]
    mem = r["memory"]
    assert mem["sram_arena_lower_bound"] <= mem["sram_arena_bytes"]
    assert mem["tflm_arena_estimate"]["total"] > mem["sram_arena_bytes"]     # TFLM also holds I/O + structs


def test_small_autoencoder_scored_by_reconstruction_error(work):
    cli("recipes/ae_small.yaml", "--cache", "cache", cwd=work)
    r = _report(work, "ae_small")
    assert r["verify"]["bit_exact"] == 30 and r["accuracy"]["float"] is None
    t = r["task"]
    assert t["kind"] == "anomaly" and t["metric"] == "mse"
    # device outputs equal the int8 reference byte for byte, so their dequantised MSE is the same
    assert t["device_mse"] == pytest.approx(t["int8_host_mse"], rel=1e-6)
    # independent recomputation of the float MSE from the saved test split and the zoo file via onnxruntime
    import onnxruntime as ort

    from edgebuild.data import load_dataset
    from edgebuild.model.zoo import zoo_model

    ds = load_dataset({"name": "synthetic", "synthetic": {"shape": [640], "samples": 160, "seed": 1},
                       "split": {"test": 40, "val": 10, "seed": 0}})
    sess = ort.InferenceSession(zoo_model("fc_autoencoder", seed=3, width=0.25).SerializeToString())
    x = ds.x_test[:30]
    recon = np.concatenate([sess.run(None, {"input": x[i:i + 1]})[0] for i in range(30)])
    assert t["float_mse"] == pytest.approx(float(((recon - x) ** 2).mean()), rel=1e-4)


def test_npz_in_the_wrong_layout_is_one_clear_error(tmp_path_factory):
    work = recipe_dir(tmp_path_factory, "layout", {"bad": textwrap.dedent("""\
        defaults:
          - targets@target: netduinoplus2
          - _self_
        name: bad
        dataset: {name: arrays, path: ../x.npz, layout: NCHW, split: {test: 10, val: 5}}
        model: {zoo: {name: ds_cnn, width: 0.25}}
        """)})
    np.savez(work / "x.npz", x=np.zeros((40, 49, 10, 1), np.float32), y=np.zeros(40, np.int64))
    proc = run_cli("recipes/bad.yaml", "--cache", "cache", cwd=work)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "[49, 10, 1] but the model's input 'input' is [1, 49, 10]" in proc.stderr
    assert "dataset.layout: NHWC" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", ["kws_m4", "resnet8_m4", "vww_m4", "anomaly_m4"])
def test_mlperf_tiny_recipe_verifies_on_100_inputs(tmp_path_factory, name):
    work = recipe_dir(tmp_path_factory, name, {name: (REPO / "recipes" / f"{name}.yaml").read_text()})
    t0 = time.perf_counter()
    cli(f"recipes/{name}.yaml", "--cache", "cache", cwd=work)
    seconds = time.perf_counter() - t0
    r = _report(work, name)
    print(f"{name}: {seconds:.0f} s, flash {r['memory']['flash_bytes']}, SRAM peak {r['memory']['sram_peak_bytes']}, "
          f"instructions {r['latency']['instructions']:.0f}, bit-exact {r['verify']['bit_exact']}")
    assert r["verify"]["bit_exact"] == r["verify"]["samples"] == 100
    assert r["memory"]["sram_peak_bytes"] < 131072


def test_regression_task_on_the_host_build(tmp_path_factory):
    """task.kind regression against an .npz's float targets; host (native) build, bit-exact, MSE recomputed."""
    import onnxruntime as ort

    from edgebuild.model.zoo import zoo_model

    work = recipe_dir(tmp_path_factory, "regression", {"reg": textwrap.dedent("""\
        defaults:
          - targets@target: host
          - _self_
        name: reg
        dataset: {name: arrays, path: ../d.npz, split: {test: 20, val: 5, seed: 0}}
        model: {zoo: {name: fc_autoencoder, seed: 4, width: 0.25}}
        task: {kind: regression}
        compression: {quantize: {calibration_samples: 50}}
        verify: {samples: 20}
        """)})
    rng = np.random.default_rng(8)
    x = rng.standard_normal((80, 640)).astype(np.float32)
    targets = (0.5 * x + 0.1).astype(np.float32)
    np.savez(work / "d.npz", x=x, y=targets)
    cli("recipes/reg.yaml", "--cache", "cache", cwd=work)
    t = _report(work, "reg")["task"]
    assert t["kind"] == "regression" and t.get("float_auc") is None
    assert _report(work, "reg")["verify"]["bit_exact"] == 20
    # independent: onnxruntime on the zoo file, MSE against the .npz's targets of the test split
    sess = ort.InferenceSession(zoo_model("fc_autoencoder", seed=4, width=0.25).SerializeToString())
    from edgebuild.data import load_dataset

    ds = load_dataset({"name": "arrays", "path": str(work / "d.npz"), "split": {"test": 20, "val": 5, "seed": 0}})
    out = np.concatenate([sess.run(None, {"input": r[None]})[0] for r in ds.x_test])
    assert t["float_mse"] == pytest.approx(float(((out - ds.y_test) ** 2).mean()), rel=1e-4)
    assert t["int8_host_mse"] == pytest.approx(t["float_mse"], rel=0.2)



@pytest.mark.slow
def test_ds_cnn_compressed_to_fit_the_uno(tmp_path_factory):
    """recipes/kws_uno.yaml: the full DS-CNN with the Uno's flash and SRAM as budgets is compressed
    by the width search (depthwise channels narrowed with the pointwise conv before them) until it
    fits, and verifies bit-exact on simavr; the report's SRAM peak is the one measured on the chip."""
    if not shutil.which("avr-gcc"):
        pytest.skip("avr-gcc is needed (./install.sh)")
    work = recipe_dir(tmp_path_factory, "kws_uno", {"kws_uno": (REPO / "recipes" / "kws_uno.yaml").read_text()})
    cli("recipes/kws_uno.yaml", "--cache", "cache", cwd=work)
    r = _report(work, "kws_uno")
    assert r["verify"]["bit_exact"] == r["verify"]["samples"] == 100
    assert r["memory"]["flash_bytes"] <= 32256 and r["memory"]["sram_peak_bytes"] <= 2048
    assert r["model"]["params_before_compression"] > 20_000 > r["model"]["params"]
