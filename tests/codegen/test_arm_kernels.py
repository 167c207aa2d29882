"""Cortex-M4 DSP kernels (arch "arm": SMLAD im2col convs, depthwise 3x3, dense; generator
arm_variant) on random shapes, compared byte for byte with the numpy int8 reference
(QModel.run): each model is built for netduinoplus2 and run in QEMU, and the same generated C
is also compiled for the host (the portable DSP definitions the firmware stage's check uses).
One firmware holds a chain of several layers; a wider random sweep is marked slow."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "quant"))
sys.path.insert(0, str(TESTS / "firmware"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cgen_helpers import CFLAGS, DRIVER, trivial_plan  # noqa: E402
from onnx_graphs import Builder, structured_images, to_graph  # noqa: E402
from toymodel import load_target  # noqa: E402

from edgebuild.codegen import generate  # noqa: E402
from edgebuild.codegen.generator import arm_scratch_bytes, arm_weight_order  # noqa: E402
from edgebuild.compress.quantize import quantize  # noqa: E402

M4 = load_target("netduinoplus2")
HAVE_M4 = bool(shutil.which(M4["toolchain"]["cc"]) and shutil.which(M4["simulator"]["executable"]))


def _quantize(b, out, seed):
    shape = b.in_shape[1:]
    qm = quantize(to_graph(b.model(out)), structured_images(40, shape, seed))
    xq = np.concatenate([qm.quantize_input(structured_images(3, shape, seed + 1)),
                         np.full((1,) + shape, -128, np.int8),
                         np.random.default_rng(seed).integers(-128, 128, (2,) + shape, dtype=np.int8)])
    return qm, xq.reshape(len(xq), -1)


def _host(qm, xq, work: Path) -> np.ndarray:
    gen = work / "host"
    generate(qm, trivial_plan(qm), gen, arch="arm")
    (gen / "driver.c").write_text(DRIVER)
    exe = work / "model"
    subprocess.run(["gcc", *CFLAGS, "-I", str(gen), str(gen / "edgebuild_model.c"),
                    str(gen / "driver.c"), "-o", str(exe)], check=True, capture_output=True, text=True)
    (work / "in.bin").write_bytes(xq.tobytes())
    subprocess.run([str(exe), str(work / "in.bin"), str(work / "out.bin")], check=True)
    return np.frombuffer((work / "out.bin").read_bytes(), np.int8).reshape(len(xq), -1)


def _qemu(qm, xq, work: Path) -> tuple[np.ndarray, str]:
    from edgebuild.firmware import build
    from edgebuild.sim import run_qemu

    src = work / "src"
    generate(qm, trivial_plan(qm), src, arch="arm")
    fw = build(M4, sorted(src.glob("*.[ch]")), work / "fw")
    got = run_qemu(fw["elf"], target=M4, inputs=xq, output_size=qm.output_size, workdir=work)
    return got["outputs"], (src / "edgebuild_model.c").read_text()


def _check(b, out, seed, work, marks=(), qemu=True):
    qm, xq = _quantize(b, out, seed)
    ref = qm.run(xq.reshape((len(xq),) + b.in_shape[1:])).reshape(len(xq), -1)
    assert len(np.unique(ref)) > 1, "degenerate test: constant output"
    host = _host(qm, xq, work)
    assert np.array_equal(host, ref), f"host: {np.count_nonzero(host != ref)} bytes differ"
    if qemu and HAVE_M4:
        got, src = _qemu(qm, xq, work)
        mism = np.argwhere(got != ref)
        assert len(mism) == 0, f"QEMU: {len(mism)} bytes differ, first {mism[:5].tolist()}"
        for mark in marks:   # the kernel variants the chain is meant to exercise
            assert mark in src, f"generated C lacks {mark!r}"


def test_weight_order_pairs_for_sxtb16():
    """Stored 4-groups w0 w2 w1 w3 (rows zero-padded to whole words): bytes 0, 2 of a word
    (SXTB16) are w0, w1 and bytes 1, 3 (SXTB16 ROR #8) are w2, w3; extra rows are zeros."""
    w = np.arange(1, 2 * 11 + 1, dtype=np.int8).reshape(2, 11)
    s = arm_weight_order(w, 3)
    assert s.shape == (5, 12) and not s[2:].any()
    assert s[0].tolist() == [1, 3, 2, 4, 5, 7, 6, 8, 9, 11, 10, 0]
    words = s[:2].reshape(2, 3, 4)
    padded = np.concatenate([w, np.zeros((2, 1), np.int8)], axis=1).reshape(2, 3, 4)
    assert np.array_equal(words[:, :, [0, 2]], padded[:, :, [0, 1]])     # SXTB16
    assert np.array_equal(words[:, :, [1, 3]], padded[:, :, [2, 3]])     # SXTB16 ROR #8


# (name, input shape, builder of the chain, variants its C must hold)
def _pointwise_chain(b):
    t = b.op("Relu", [b.conv("x", 6, 8, 1)])                      # 1x1, K = 6 (tail of 2)
    t = b.op("Relu", [b.conv(t, 8, 5, 1, strides=[2, 2])])        # 1x1 stride 2, odd CO
    return b.op("Relu", [b.conv(t, 5, 7, 3, pads=[1, 1, 1, 1])])  # 3x3 pad, K = 45, odd pixels


def _depthwise_chain(b):
    t = b.op("Relu", [b.conv("x", 4, 4, 3, group=4, pads=[1, 1, 1, 1])])               # dw s1 pad
    t = b.op("Relu", [b.conv(t, 4, 4, 3, group=4, pads=[1, 1, 1, 1], strides=[2, 2])])  # dw s2 pad
    t = b.op("Relu", [b.conv(t, 4, 8, 3, group=4)])               # multiplier 2, in place, odd OW
    return b.op("Relu", [b.conv(t, 8, 8, 3, group=4, pads=[0, 1, 2, 0])])  # grouped: im2col


def _strided_pool_chain(b):
    t = b.op("Relu", [b.conv("x", 1, 6, (4, 3), strides=[2, 2], pads=[1, 1, 2, 1])])
    t = b.op("MaxPool", [t], kernel_shape=[2, 2], strides=[2, 2])   # fused pool, 1x4 path
    t = b.op("Relu", [b.conv(t, 6, 5, 2, dilations=[2, 1], pads=[1, 0, 1, 1])])
    t = b.op("Flatten", [t])
    return t


def _dense_chain(b):
    t = b.op("Relu", [b.gemm("x", 13, 9)])     # odd input (tail 1), output tail 1
    t = b.op("Relu", [b.gemm(t, 9, 4)])
    return b.gemm(t, 4, 3)                     # a single 4-group, 3 rows


CHAINS = {
    "pointwise_and_3x3": ((6, 7, 9), _pointwise_chain, ["EB_SMLAD("]),
    "depthwise": ((4, 11, 10), _depthwise_chain, ["EB_SMLABT(", "memset(eb_pad", "_mm(c0, "]),
    "strided_pool_dilated": ((1, 17, 14), _strided_pool_chain, ["eb_best[", "1 int16 column x 4"]),
}


def test_scratch_bytes_by_hand():
    """Static scratch of the arm kernels, from the shapes: the pointwise chain's largest im2col
    row is 5 x 3 x 3 = 45 -> 48 halfwords, two columns (192 B). The depthwise chain's largest
    padded plane is its stride-2 layer's: 11 x 10 padded by 1 for 6 x 5 outputs, 13 rows x 13
    columns (the odd last output's partner reads 2 * 4 + 4 + 1); its grouped conv gathers
    2 x (2 x 9 = 18 -> 20) halfwords (80 B). The strided chain keeps 6 pooled maxima (24 B) and
    2 x (6 x 2 x 2 = 24) halfwords."""
    expect = {"pointwise_and_3x3": 2 * 2 * 48,
              "depthwise": 13 * 13 + 2 * 2 * 20,
              "strided_pool_dilated": 2 * 2 * 24 + 4 * 6}
    for name, (shape, chain, _) in CHAINS.items():
        b = Builder(shape, seed=1)
        qm, _ = _quantize(b, chain(b), 1)
        assert arm_scratch_bytes(qm.layers) == expect[name], name


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_conv_chain_in_qemu(name, tmp_path):
    shape, chain, marks = CHAINS[name]
    b = Builder(shape, seed=len(name))
    _check(b, chain(b), len(name), tmp_path, marks)


def test_dense_chain_in_qemu(tmp_path):
    b = Builder((13,), seed=3)
    out = _dense_chain(b)
    qm = quantize(to_graph(b.model(out)),
                  np.random.default_rng(3).uniform(0, 1, (40, 13)).astype(np.float32))
    xq = np.concatenate([qm.quantize_input(np.random.default_rng(4).uniform(0, 1, (3, 13)).astype(np.float32)),
                         np.random.default_rng(5).integers(-128, 128, (3, 13), dtype=np.int8)])
    ref = qm.run(xq)
    assert len(np.unique(ref)) > 1
    assert np.array_equal(_host(qm, xq, tmp_path), ref)
    if HAVE_M4:
        got, src = _qemu(qm, xq, tmp_path)
        assert np.array_equal(got, ref)
        assert "4 weight rows per pass share each input word" in src


def _random_chain(rng, b, cin, h, w):
    """2-3 random conv layers (kernel, stride, pads, dilation, groups/depthwise drawn at random)."""
    t, c = "x", cin
    for _ in range(int(rng.integers(2, 4))):
        dw = bool(rng.integers(0, 2))
        k = 3 if dw else int(rng.integers(1, 4))
        s = int(rng.integers(1, 3))
        p = [int(v) for v in rng.integers(0, k, 4)] if k > 1 else [0, 0, 0, 0]
        if dw:
            co = c * int(rng.integers(1, 3))
            t = b.op("Relu", [b.conv(t, c, co, k, group=c, strides=[s, s], pads=p)])
        else:
            co = int(rng.integers(1, 12))
            t = b.op("Relu", [b.conv(t, c, co, k, strides=[s, s], pads=p)])
        h, w = (h + p[0] + p[2] - k) // s + 1, (w + p[1] + p[3] - k) // s + 1
        c = co
        if min(h, w) < 3:
            break
    return t


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12))
def test_random_conv_chains_in_qemu(seed, tmp_path):
    rng = np.random.default_rng(100 + seed)
    cin, h, w = int(rng.integers(1, 7)), int(rng.integers(7, 16)), int(rng.integers(7, 16))
    b = Builder((cin, h, w), seed=seed)
    _check(b, _random_chain(rng, b, cin, h, w), seed, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("n_in,n_out", [(1, 5), (2, 3), (3, 1), (7, 6), (64, 17), (250, 10)])
def test_dense_sizes_in_qemu(n_in, n_out, tmp_path):
    b = Builder((n_in,), seed=n_in)
    out = b.op("Relu", [b.gemm("x", n_in, n_out)])
    x = np.random.default_rng(n_in).uniform(0, 1, (46, n_in)).astype(np.float32)
    qm = quantize(to_graph(b.model(out)), x[:40])
    xq = np.concatenate([qm.quantize_input(x[40:]),
                         np.random.default_rng(1).integers(-128, 128, (2, n_in), dtype=np.int8)])
    ref = qm.run(xq)
    assert np.array_equal(_host(qm, xq, tmp_path), ref)
    if HAVE_M4:
        got, _ = _qemu(qm, xq, tmp_path)
        assert np.array_equal(got, ref)
