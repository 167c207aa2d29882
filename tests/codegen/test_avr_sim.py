"""Generated C for arch="avr" (avr-gcc -Os, inline-asm MAC paths) run in simavr == QModel.run."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "quant"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cgen_helpers import trivial_plan  # noqa: E402
from onnx_graphs import Builder, structured_images, to_graph  # noqa: E402

from edgebuild.codegen import generate  # noqa: E402
from edgebuild.compress.quantize import quantize  # noqa: E402

pytestmark = pytest.mark.skipif(not (shutil.which("avr-gcc") and shutil.which("simavr")),
                                reason="avr-gcc / simavr not installed")

DRIVER = r"""
#include <avr/io.h>
#include <avr/pgmspace.h>
#include <avr/sleep.h>
#include <avr/interrupt.h>
#include "edgebuild_model.h"
#include "vectors.h"
static void put(char c) { while (!(UCSR0A & _BV(UDRE0))); UDR0 = c; }
static void hex(uint8_t v) { const char *d = "0123456789abcdef"; put(d[v >> 4]); put(d[v & 15]); }
int main(void)
{
    static int8_t in[MODEL_INPUT_SIZE], out[MODEL_OUTPUT_SIZE];
    uint16_t n, i;
    UCSR0B = _BV(TXEN0);
    UBRR0 = 0;
    for (n = 0; n < N_VECTORS; n++) {
        for (i = 0; i < MODEL_INPUT_SIZE; i++)
            in[i] = (int8_t)pgm_read_byte(&vectors[n][i]);
        model_run(in, out);
        put('=');
        for (i = 0; i < MODEL_OUTPUT_SIZE; i++)
            hex((uint8_t)out[i]);
        put('\n');
    }
    cli();
    sleep_cpu();
    return 0;
}
"""


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
    generate(qm, trivial_plan(qm, media), tmp_path, arch="avr")
    rows = ",\n".join("{" + ", ".join(str(int(v)) for v in x.reshape(-1)) + "}" for x in xq)
    (tmp_path / "vectors.h").write_text(
        f"#define N_VECTORS {len(xq)}\nstatic const int8_t vectors[{len(xq)}]"
        f"[MODEL_INPUT_SIZE] PROGMEM = {{\n{rows}\n}};\n")
    (tmp_path / "main.c").write_text(DRIVER)
    elf = tmp_path / "fw.elf"
    subprocess.run(["avr-gcc", "-mmcu=atmega328p", "-Os", "-std=c99", "-Wall", "-Wextra",
                    "-Werror", "-I", str(tmp_path), str(tmp_path / "main.c"),
                    str(tmp_path / "edgebuild_model.c"), "-o", str(elf)],
                   check=True, capture_output=True, text=True)
    run = subprocess.run(["simavr", "-m", "atmega328p", "-f", "16000000", str(elf)],
                         capture_output=True, text=True, timeout=60)
    lines = re.findall(r"=([0-9a-f]+)", run.stdout + run.stderr)
    got = np.array([np.frombuffer(bytes.fromhex(h), dtype=np.int8) for h in lines])
    ref = qm.run(xq)
    assert got.shape == ref.shape, run.stdout[-500:]
    assert np.array_equal(got, ref)
    assert len(np.unique(ref)) > 1
