"""Sparse conv weights (edgebuild.compress.sparse.encode_conv): the encoding, and the generated
``conv_sparse`` kernel (host gcc; avr-gcc in simavr) bit-exact with the numpy int8 reference."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "quant"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cgen_helpers import HAVE_AVR, compile_avr, run_host, run_simavr  # noqa: E402
from onnx_graphs import Builder, structured_images, to_graph  # noqa: E402

from edgebuild.compress.quantize import quantize  # noqa: E402
from edgebuild.compress.sparse import decode_conv, device_weights, encode_conv, stored_bytes  # noqa: E402


def _window_sums(enc: np.ndarray, patch: np.ndarray, shape) -> np.ndarray:
    """The kernel's walk, transcribed: per (output, input) channel a count, then (tap, weight)."""
    b = enc.view(np.uint8)
    co, cpg = shape[:2]
    out, k = [], 0
    for _ in range(co):
        acc = 0
        for c in range(cpg):
            m, k = int(b[k]), k + 1
            for _ in range(m):
                acc += int(patch[c].reshape(-1)[b[k]]) * int(np.int8(b[k + 1].view(np.int8)))
                k += 2
        out.append(acc)
    return np.array(out)


def test_conv_encoding_round_trips_and_computes_the_window_product():
    rng = np.random.default_rng(0)
    w = (rng.integers(-127, 128, (4, 3, 5, 5)) * (rng.random((4, 3, 5, 5)) < 0.15)).astype(np.int8)
    w[1] = 0                                   # an empty output channel
    w[2, 1] = 0                                # an empty (output, input) pair
    w[3, 2, 4, 4] = -127                       # the last tap
    enc = encode_conv(w)
    np.testing.assert_array_equal(decode_conv(enc, w.shape), w)
    assert enc.size == 4 * 3 + 2 * np.count_nonzero(w) == stored_bytes(w)
    patch = rng.integers(-128, 128, (3, 5, 5))
    np.testing.assert_array_equal(_window_sums(enc, patch, w.shape),
                                  np.einsum("ochw,chw->o", w.astype(np.int64), patch))
    dense = np.ones((2, 2, 3, 3), np.int8)
    assert device_weights(dense) is dense and stored_bytes(dense) == 36


# (in_shape, cout, kernel, conv attrs, group, fused maxpool, kept weight fraction)
CASES = [
    ((3, 9, 11), 5, 3, {"pads": [1, 1, 1, 1]}, 1, None, 0.3),
    ((4, 10, 9), 6, 3, {"pads": [1, 2, 0, 1], "strides": [2, 2]}, 1, None, 0.25),
    ((2, 12, 12), 4, 5, {"pads": [2, 2, 2, 2]}, 1, {"kernel_shape": [2, 2], "strides": [2, 2]}, 0.2),
    ((6, 7, 8), 8, 3, {"pads": [2, 0, 1, 1], "dilations": [2, 1]}, 2, None, 0.3),
    ((1, 5, 5), 3, 5, {"pads": [4, 4, 4, 4]}, 1, None, 0.3),          # all-border windows
    ((3, 8, 8), 4, 3, {}, 1, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, 0.1),
]


def _sparse_qmodel(case: int):
    shape, cout, k, attrs, group, pool, keep = CASES[case]
    b = Builder(shape, seed=case)
    t = b.op("Relu", [b.conv("x", shape[0], cout, k, group=group, **attrs)])
    if pool:
        t = b.op("MaxPool", [t], **pool)
    t = b.gemm(b.op("Flatten", [t]), int(np.prod(to_graph(b.model(t)).shapes[t][1:])), 7)
    x = structured_images(70, shape, case)
    qm = quantize(to_graph(b.model(t)), x[:50])
    conv = qm.layers[0]
    w = qm.arrays[conv["tables"]["weight"]]
    rng = np.random.default_rng(case)
    w[rng.random(w.shape) >= keep] = 0             # sparsify the int8 table (both sides read it)
    w[0, 0] = 0                                    # an empty (output, input) channel pair
    assert qm.stored(conv["tables"]["weight"]).size < w.size
    xq = np.concatenate([qm.quantize_input(x[50:]), np.full((1,) + shape, -128, np.int8),
                         np.full((1,) + shape, 127, np.int8),
                         rng.integers(-128, 128, (3,) + shape, dtype=np.int8)])
    return qm, xq


@pytest.mark.parametrize("case", range(len(CASES)))
def test_conv_sparse_kernel_is_bit_exact_on_host(case, tmp_path):
    qm, xq = _sparse_qmodel(case)
    ref = qm.run(xq)
    try:
        got = run_host(qm, xq, tmp_path)
    except subprocess.CalledProcessError as e:
        pytest.fail(f"host build failed:\n{e.stderr}")
    assert "_offs[" in (tmp_path / "gen" / "edgebuild_model.c").read_text()   # the sparse kernel ran
    np.testing.assert_array_equal(got, ref)
    assert len(np.unique(ref)) > 1
    if HAVE_AVR:
        compile_avr(qm, tmp_path)



@pytest.mark.skipif(not (HAVE_AVR and shutil.which("simavr")), reason="avr-gcc / simavr not installed")
@pytest.mark.parametrize("media", [("flash",), ("sram", "eeprom", "flash")])
def test_conv_sparse_kernel_is_bit_exact_on_simavr(media, tmp_path):
    qm, xq = _sparse_qmodel(2)                   # padding + fused pool
    xq = xq[:8]
    got, log = run_simavr(qm, xq, tmp_path, media)
    assert "_offs[" in (tmp_path / "edgebuild_model.c").read_text()
    ref = qm.run(xq)
    assert got.shape == ref.shape, log
    np.testing.assert_array_equal(got, ref)
