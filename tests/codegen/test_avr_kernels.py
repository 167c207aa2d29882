"""AVR kernels chosen per layer shape by the generator (zero-point-padded input copy, running
window pointers, unrolled fused pools, the border patch fallback, unrolled dense loops), each
run in simavr on random shapes and compared byte for byte with the numpy int8 reference
(QModel.run)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "quant"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cgen_helpers import run_simavr  # noqa: E402
from onnx_graphs import Builder, structured_images, to_graph  # noqa: E402

from edgebuild.compress.quantize import quantize  # noqa: E402

pytestmark = pytest.mark.skipif(not (shutil.which("avr-gcc") and shutil.which("simavr")),
                                reason="avr-gcc / simavr not installed")

# (in_shape, cout, kernel, conv attrs, group, fused MaxPool attrs or None, what the C must hold)
CASES = {
    "pad2_k5_pool2": ((1, 14, 14), 4, 5, {"pads": [2, 2, 2, 2]}, 1,
                      {"kernel_shape": [2, 2], "strides": [2, 2]}, ["_pad(", "xw + 19"]),
    "pad1_odd_pool3s2": ((3, 9, 11), 5, 3, {"pads": [1, 1, 1, 1]}, 1,
                         {"kernel_shape": [3, 3], "strides": [2, 2]}, ["_pad("]),
    "asym_pad_stride_rows": ((2, 10, 9), 4, (3, 2), {"pads": [2, 0, 1, 1], "strides": [2, 1]}, 1,
                             None, ["_pad(", "xw += 1"]),
    "dilated_pad": ((2, 12, 12), 6, 3, {"pads": [2, 2, 2, 2], "dilations": [2, 2]}, 1, None,
                    ["_pad("]),
    "depthwise_stride2": ((4, 8, 8), 4, 3, {"pads": [1, 1, 1, 1], "strides": [2, 2]}, 4, None,
                          ["_pad("]),
    "grouped_dilated_w": ((4, 7, 9), 6, 3, {"pads": [0, 1, 2, 0], "dilations": [1, 2]}, 2, None,
                          ["_pad("]),
    "k7_same_upper": ((3, 8, 8), 4, 7, {"auto_pad": "SAME_UPPER"}, 1, None, ["_pad("]),
    "all_border": ((1, 5, 5), 3, 5, {"pads": [4, 4, 4, 4]}, 1, None, ["_pad("]),
    "no_pad_pool_full": ((2, 11, 11), 3, 3, {}, 1, {"kernel_shape": [2, 2], "strides": [2, 2]},
                         ["xw + 12"]),
    "pool_with_pads": ((2, 9, 9), 3, 3, {"pads": [1, 1, 1, 1]}, 1,
                       {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
                       ["_pad(", "_ACC(wy, wx)"]),
    "too_big_for_pad_copy": ((3, 16, 16), 2, 3, {"pads": [1, 1, 1, 1]}, 1,
                             {"kernel_shape": [2, 2], "strides": [2, 2]}, ["_border("]),
}


def _conv_model(in_shape, cout, k, attrs, group, pool, seed):
    b = Builder(in_shape, seed=seed)
    t = b.op("Relu", [b.conv("x", in_shape[0], cout, k, group=group, **attrs)])
    if pool:
        t = b.op("MaxPool", [t], **pool)
    return b, t


def _run(b, out, tmp_path, seed):
    shape = b.in_shape[1:]
    qm = quantize(to_graph(b.model(out)), structured_images(40, shape, seed))
    xq = np.concatenate([qm.quantize_input(structured_images(4, shape, seed + 1)),
                         np.full((1,) + shape, -128, np.int8),
                         np.random.default_rng(seed).integers(-128, 128, (2,) + shape,
                                                              dtype=np.int8)])
    got, log = run_simavr(qm, xq, tmp_path)
    ref = qm.run(xq)
    assert got.shape == ref.shape, log
    mism = np.argwhere(got != ref)
    assert len(mism) == 0, f"{len(mism)} mismatches, first {mism[:5].tolist()}"
    assert len(np.unique(ref)) > 1, "degenerate test: constant output"
    return (tmp_path / "edgebuild_model.c").read_text()


@pytest.mark.parametrize("case", sorted(CASES))
def test_conv_kernels_in_simavr(case, tmp_path):
    in_shape, cout, k, attrs, group, pool, marks = CASES[case]
    b, out = _conv_model(in_shape, cout, k, attrs, group, pool, seed=len(case))
    src = _run(b, out, tmp_path, seed=len(case))
    for mark in marks:  # the kernel variant this case is meant to exercise
        assert mark in src, f"{case}: generated C lacks {mark!r}"


@pytest.mark.parametrize("n_in", [75, 16, 11, 8])
def test_dense_kernels_in_simavr(n_in, tmp_path):
    """Dense layers of odd sizes: unrolled pairs with a remainder and a final single MAC."""
    b = Builder((n_in,), seed=n_in)
    out = b.op("Relu", [b.gemm("x", n_in, 7)])
    g = to_graph(b.model(out))
    x = np.random.default_rng(n_in).uniform(0, 1, (48, n_in)).astype(np.float32)
    qm = quantize(g, x[:40])
    xq = np.concatenate([qm.quantize_input(x[40:]),
                         np.random.default_rng(1).integers(-128, 128, (2, n_in), dtype=np.int8)])
    got, log = run_simavr(qm, xq, tmp_path)
    ref = qm.run(xq)
    assert got.shape == ref.shape, log
    assert np.array_equal(got, ref)
    assert len(np.unique(ref)) > 1
