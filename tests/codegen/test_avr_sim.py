"""Generated C for arch="avr" (avr-gcc -Os, inline-asm MAC paths) run in simavr == QModel.run."""

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


def _model():
    b = Builder((1, 12, 12), seed=21)
    t = b.op("Relu", [b.conv("x", 1, 4, 3, pads=[1, 1, 1, 1])])
    t = b.op("MaxPool", [t], kernel_shape=[2, 2], strides=[2, 2])
    t = b.op("Relu", [b.conv(t, 4, 4, 3, group=2, pads=[1, 1, 1, 1])])
    t = b.op("Relu", [b.conv(t, 4, 6, 3, pads=[0, 1, 1, 0], dilations=[1, 2])])
    t = b.op("AveragePool", [t], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1])
    t = b.op("Sigmoid", [b.gemm(b.op("Flatten", [t]), 6 * 3 * 2, 8)])
    return to_graph(b.model(t))


@pytest.mark.parametrize("media", [("flash",), ("eeprom", "sram", "flash")])
def test_avr_outputs_match_reference(media, tmp_path):
    qm = quantize(_model(), structured_images(60, (1, 12, 12), 0))
    xq = np.concatenate([qm.quantize_input(structured_images(6, (1, 12, 12), 1)),
                         np.random.default_rng(2).integers(-128, 128, (2, 1, 12, 12),
                                                           dtype=np.int8)])
    got, log = run_simavr(qm, xq, tmp_path, media)
    ref = qm.run(xq)
    assert got.shape == ref.shape, log
    assert np.array_equal(got, ref)
    assert len(np.unique(ref)) > 1
