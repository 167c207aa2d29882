"""Sparse weight storage: the encoding, and generated C (host gcc) bit-exact with the int8 reference."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "codegen"))

from cgen_helpers import HAVE_AVR, compile_avr, run_host  # noqa: E402

from edgebuild.compress.budget import net_graph  # noqa: E402
from edgebuild.compress.energy import layer_costs  # noqa: E402
from edgebuild.compress.prune import apply_masks, magnitude_masks  # noqa: E402
from edgebuild.compress.quantize import quantize  # noqa: E402
from edgebuild.compress.sparse import decode, device_weights, encode, stored_bytes  # noqa: E402
from edgebuild.train import build_net  # noqa: E402


def _kernel_dot(enc: np.ndarray, x: np.ndarray, rows: int) -> np.ndarray:
    """The generated kernel's loop, transcribed: walk (gap, weight) pairs, advance, multiply."""
    b = enc.view(np.uint8)
    out, k = [], 0
    for _ in range(rows):
        n, k, pos, acc = int(b[k]) | int(b[k + 1]) << 8, k + 2, 0, 0
        for _ in range(n):
            pos += int(b[k])
            acc += int(x[pos]) * int(np.int8(b[k + 1].view(np.int8)))
            k += 2
        out.append(acc)
    return np.array(out)


def test_encoding_computes_the_dense_product_with_long_gaps_and_empty_rows():
    rng = np.random.default_rng(0)
    w = (rng.integers(-127, 128, (6, 900)) * (rng.random((6, 900)) < 0.03)).astype(np.int8)
    w[2] = 0                                 # empty row
    w[4] = 0
    w[4, 899] = -7                           # one entry after three 255-byte skips
    enc = encode(w)
    x = rng.integers(-128, 128, 900)
    np.testing.assert_array_equal(_kernel_dot(enc, x, 6), w.astype(np.int64) @ x)
    np.testing.assert_array_equal(decode(enc, w.shape), w)
    nnz = np.count_nonzero(w)
    assert enc.size == 2 * 6 + 2 * nnz + 2 * 3          # row counts, entries, fillers of row 4
    assert stored_bytes(w) == enc.size


def test_dense_storage_kept_when_sparse_is_not_smaller():
    w = np.ones((4, 10), np.int8)
    assert device_weights(w) is w and stored_bytes(w) == 40
    w[:, :8] = 0                                         # 2 of 10 per row: 2 + 2*2 = 6 < 10
    assert device_weights(w).size == 24


def _sparse_net():
    net = build_net([{"conv": {"out": 3, "kernel": 3, "pad": 1}}, {"relu": {}}, {"maxpool": {"kernel": 2}},
                     {"flatten": {}}, {"dense": {"out": 20}}, {"relu": {}}, {"dense": {"out": 10}}], (1, 24, 24), seed=0)
    apply_masks(net, magnitude_masks(net, {"dense1": 0.97, "dense2": 0.6}))
    net.params()["dense1.weight"][3] = 0.0             # a dead row: count 0
    return net


def test_generated_sparse_kernel_is_bit_exact(tmp_path):
    net = _sparse_net()
    x = np.random.default_rng(1).uniform(0, 1, (60, 1, 24, 24)).astype(np.float32)
    qm = quantize(net_graph(net), x[:40])
    dense1 = next(lay for lay in qm.layers if lay["name"] == "dense1")
    w = qm.arrays[dense1["tables"]["weight"]]
    assert qm.stored(dense1["tables"]["weight"]).size < w.size          # really stored sparse
    weights, _ = qm.layout_request()
    assert {e["name"]: e["nbytes"] for e in weights}[dense1["tables"]["weight"]] == encode(w).size
    xq = np.concatenate([qm.quantize_input(x[40:]), np.full((1, 1, 24, 24), 127, np.int8)])
    ref = qm.run(xq)
    try:
        got = run_host(qm, xq, tmp_path)
    except subprocess.CalledProcessError as e:
        pytest.fail(f"host build failed:\n{e.stderr}")
    np.testing.assert_array_equal(got, ref)
    assert len(np.unique(ref)) > 1
    if HAVE_AVR:
        compile_avr(qm, tmp_path)


def test_cost_model_counts_sparse_flash():
    net = _sparse_net()
    costs = {c.name: c for c in layer_costs(net_graph(net))}
    w = net.params()["dense1.weight"]
    d1 = costs["dense1"]
    assert d1.kind == "dense_sparse" and costs["conv1"].kind == "conv"
    # entries: every non-zero plus a (255, 0) filler per 255-input skip within a row
    fillers = sum(max(0, (int(b) - int(a)) - 1) // 255 for row in w
                  for a, b in zip([0] + list(np.flatnonzero(row)), np.flatnonzero(row)))
    assert d1.features["entries"] == np.count_nonzero(w) + fillers
    assert d1.flash_bytes == 2 * 20 + 2 * d1.features["entries"] + 12 * 20


@pytest.mark.slow
@pytest.mark.skipif(not (HAVE_AVR and shutil.which("simavr")), reason="avr-gcc and simavr are needed")
def test_sparse_firmware_is_bit_exact_on_simavr(tmp_path):
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "edgebuild.cli", "recipes/mnist_uno.yaml", "compression.method=magnitude",
                           "compression.ratio=0.2", "compression.max_accuracy_drop=0.5", "verify.samples=100",
                           "--cache", str(tmp_path / "cache"), "--build-dir", str(tmp_path / "build")],
                          cwd=root, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "build" / "report.json").read_text())
    assert report["verify"]["bit_exact"] == report["verify"]["samples"] == 100
    tables = {m["name"]: m["nbytes"] for m in report["memory_map"] if m["kind"] == "weight"}
    assert tables["dense1.weight"] < 2160 // 2                 # 20% of 216x10 stored sparse, not dense
    assert tables["conv2.weight"] == 24 * 8 + 2 * round(0.2 * 24 * 8 * 9)   # a count per channel pair + 20% of taps
    code = (tmp_path / "build" / "codegen" / "edgebuild_model.c").read_text()
    assert "sparse weights" in code and "encode_conv" in code    # dense_sparse and conv_sparse kernels


def test_cost_model_counts_sparse_conv_flash_and_entries():
    net = build_net([{"conv": {"out": 4, "kernel": 5, "pad": 2}}, {"relu": {}}, {"maxpool": {"kernel": 2}},
                     {"conv": {"out": 6, "kernel": 3, "stride": 2}}, {"relu": {}}, {"flatten": {}},
                     {"dense": {"out": 10}}], (1, 16, 16), seed=0)
    apply_masks(net, magnitude_masks(net, {"conv1": 0.9, "conv2": 0.5}))
    costs = {c.name: c for c in layer_costs(net_graph(net))}
    w1, w2 = net.params()["conv1.weight"], net.params()["conv2.weight"]
    c1, c2 = costs["conv1"], costs["conv2"]
    assert c1.kind == "conv_sparse" and c2.kind == "conv"          # 50% density: dense storage is smaller
    assert c1.flash_bytes == 4 * 1 + 2 * np.count_nonzero(w1) + 12 * 4
    assert c2.flash_bytes == w2.size + 12 * 6
    # every non-zero weight is read once per window of its output channel: 16 x 16 windows (pad 2)
    assert c1.features["entries"] == np.count_nonzero(w1) * 16 * 16
    assert c1.features["windows"] == 4 * 16 * 16
    # taps gathered at the border: the valid taps of every window outside the 12 x 12 interior
    inside = [sum(0 <= y - 2 + d < 16 for d in range(5)) for y in range(16)]    # valid rows per window row
    assert c1.features["border_taps"] == 4 * (sum(inside) ** 2 - 12 * 12 * 25)
