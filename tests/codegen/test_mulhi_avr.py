"""The AVR requantisation high word (platform.h.j2 eb_mulhi32, inline asm) in simavr against
Python integers: (a * m) >> 32 for int32 a and 0 <= m < 2**31, edge values and random ones."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(not (shutil.which("avr-gcc") and shutil.which("simavr")),
                                reason="avr-gcc / simavr not installed")

MAIN = r"""
#include <avr/io.h>
#include <avr/pgmspace.h>
#include <avr/sleep.h>
#include <avr/interrupt.h>
#include "edgebuild_platform.h"
#include "pairs.h"
static void put(char c) { while (!(UCSR0A & _BV(UDRE0))); UDR0 = c; }
int main(void)
{
    uint16_t n;
    int8_t k;
    UCSR0B = _BV(TXEN0);
    UBRR0 = 0;
    for (n = 0; n < N_PAIRS; n++) {
        uint32_t h = (uint32_t)eb_mulhi32((int32_t)pgm_read_dword(&pairs[n][0]),
                                          (int32_t)pgm_read_dword(&pairs[n][1]));
        put('=');
        for (k = 28; k >= 0; k -= 4)
            put("0123456789abcdef"[(h >> k) & 15]);
        put('\n');
    }
    cli();
    sleep_cpu();
    return 0;
}
"""


def test_mulhi32_matches_python_integers(tmp_path):
    from edgebuild.codegen.generator import _env

    rng = np.random.default_rng(7)
    edges = [-2 ** 31, -2 ** 31 + 1, -65536, -65535, -256, -1, 0, 1, 255, 65535, 65536, 2 ** 31 - 1]
    pairs = [(a, m) for a in edges for m in (0, 1, 255, 65535, 2 ** 30, 2 ** 31 - 1)]
    pairs += [(int(a), int(m)) for a, m in zip(rng.integers(-2 ** 31, 2 ** 31, 300),
                                                 rng.integers(0, 2 ** 31, 300))]
    pairs += [(int(a), int(m)) for a, m in zip(rng.integers(-2 ** 20, 2 ** 20, 100),
                                                 rng.integers(2 ** 30, 2 ** 31, 100))]
    (tmp_path / "edgebuild_platform.h").write_text(
        _env().get_template("platform.h.j2").render(arch="avr"))
    rows = ",\n".join(f"{{{a}L, {m}L}}" if a != -2 ** 31 else f"{{(-2147483647L - 1), {m}L}}"
                      for a, m in pairs)
    (tmp_path / "pairs.h").write_text(f"#define N_PAIRS {len(pairs)}\n"
                                      f"static const int32_t pairs[][2] PROGMEM = {{\n{rows}\n}};\n")
    (tmp_path / "main.c").write_text(MAIN)
    elf = tmp_path / "t.elf"
    subprocess.run(["avr-gcc", "-mmcu=atmega328p", "-Os", "-std=c99", "-Wall", "-Wextra", "-Werror",
                    "-I", str(tmp_path), str(tmp_path / "main.c"), "-o", str(elf)],
                   check=True, capture_output=True, text=True)
    run = subprocess.run(["simavr", "-m", "atmega328p", "-f", "16000000", str(elf)],
                         capture_output=True, text=True, timeout=60)
    got = [int(h, 16) for h in re.findall(r"=([0-9a-f]{8})", run.stdout + run.stderr)]
    want = [((a * m) >> 32) & 0xFFFFFFFF for a, m in pairs]
    assert len(got) == len(pairs), run.stdout[-300:]
    bad = [(p, g, w) for p, g, w in zip(pairs, got, want) if g != w]
    assert not bad, bad[:5]
