"""Generated C (codegen) for a small CNN, built with the device harness for each new board and
run in its simulator, equals the numpy int8 reference (QModel.run) byte for byte."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "quant"))
sys.path.insert(0, str(TESTS / "codegen"))

from cgen_helpers import trivial_plan  # noqa: E402
from onnx_graphs import Builder, structured_images, to_graph  # noqa: E402

from edgebuild.codegen import generate  # noqa: E402
from edgebuild.compress.quantize import quantize  # noqa: E402
from edgebuild.firmware import build  # noqa: E402
from edgebuild.sim import run_qemu, run_simavr  # noqa: E402


@pytest.fixture(scope="module")
def qmodel():
    b = Builder((1, 12, 12), seed=41)
    t = b.op("Relu", [b.conv("x", 1, 4, 3, pads=[1, 1, 1, 1])])
    t = b.op("MaxPool", [t], kernel_shape=[2, 2], strides=[2, 2])
    t = b.op("Sigmoid", [b.gemm(b.op("Flatten", [t]), 4 * 6 * 6, 8)])
    qm = quantize(to_graph(b.model(t)), structured_images(60, (1, 12, 12), 0))
    inputs = np.concatenate([qm.quantize_input(structured_images(5, (1, 12, 12), 1)),
                             np.random.default_rng(42).integers(-128, 128, (3, 1, 12, 12),
                                                                dtype=np.int8)])
    return qm, inputs.reshape(len(inputs), -1), qm.run(inputs)


def _build(qm, target, tmp_path):
    generate(qm, trivial_plan(qm, ("flash",)), tmp_path / "src", arch=target["arch"])
    return build(target, sorted((tmp_path / "src").glob("*.[ch]")), tmp_path / "fw")


def test_mega2560_simavr_equals_reference(qmodel, mega, tmp_path):
    qm, inputs, ref = qmodel
    fw = _build(qm, mega, tmp_path)
    got = run_simavr(fw["elf"], mcu=mega["simulator"]["mcu"], f_cpu=mega["f_cpu"], inputs=inputs,
                     output_size=ref.shape[1], baud=mega["uart"]["baud"], workdir=tmp_path)
    np.testing.assert_array_equal(got["outputs"], ref)
    assert len(np.unique(ref)) > 1


def test_m4_qemu_equals_reference(qmodel, m4, tmp_path):
    qm, inputs, ref = qmodel
    fw = _build(qm, m4, tmp_path)
    got = run_qemu(fw["elf"], target=m4, inputs=inputs, output_size=ref.shape[1],
                   workdir=tmp_path)
    np.testing.assert_array_equal(got["outputs"], ref)
    assert (got["instructions"] > 4 * 6 * 6 * 8).all()
