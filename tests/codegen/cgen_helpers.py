"""Helpers for codegen tests: a trivial memory plan, a host test driver, compile-and-run."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1"]
DRIVER = r"""
#include <stdio.h>
#include "edgebuild_model.h"
/* usage: driver IN OUT -- IN holds N*MODEL_INPUT_SIZE int8 bytes; writes N*MODEL_OUTPUT_SIZE */
int main(int argc, char **argv)
{
    static int8_t in[MODEL_INPUT_SIZE], out[MODEL_OUTPUT_SIZE];
    FILE *fi, *fo;
    if (argc != 3) return 2;
    fi = fopen(argv[1], "rb");
    fo = fopen(argv[2], "wb");
    if (!fi || !fo) return 3;
    while (fread(in, 1, sizeof in, fi) == sizeof in) {
        model_run(in, out);
        fwrite(out, 1, sizeof out, fo);
    }
    fclose(fi);
    fclose(fo);
    return 0;
}
"""


@dataclass
class Placement:
    medium: str
    offset: int
    nbytes: int


@dataclass
class Plan:
    weights: dict = field(default_factory=dict)
    activations: dict = field(default_factory=dict)
    arena_size: int = 0


def trivial_plan(qm, media=("flash",)) -> Plan:
    """Weights cycled over ``media``; activations back to back (no reuse) in the arena."""
    weights, acts = qm.layout_request()
    plan, off = Plan(), {m: 0 for m in media}
    for i, w in enumerate(weights):
        m = media[i % len(media)]
        plan.weights[w["name"]] = Placement(m, off[m], w["nbytes"])
        off[m] += w["nbytes"]
    for a in acts:
        plan.activations[a["name"]] = Placement("sram", plan.arena_size, a["nbytes"])
        plan.arena_size += a["nbytes"]
    return plan


def run_host(qm, x_q: np.ndarray, work: Path, media=("flash",)) -> np.ndarray:
    """Generate C for host, compile with gcc -Werror plus the driver, run it on ``x_q``."""
    from edgebuild.codegen import generate

    gen = work / "gen"
    generate(qm, trivial_plan(qm, media), gen, arch="host")
    (gen / "driver.c").write_text(DRIVER)
    exe = work / "model"
    subprocess.run(["gcc", *CFLAGS, "-I", str(gen), str(gen / "edgebuild_model.c"),
                    str(gen / "driver.c"), "-o", str(exe)], check=True, capture_output=True,
                   text=True)
    (work / "in.bin").write_bytes(np.ascontiguousarray(x_q, dtype=np.int8).tobytes())
    subprocess.run([str(exe), str(work / "in.bin"), str(work / "out.bin")], check=True)
    out = np.frombuffer((work / "out.bin").read_bytes(), dtype=np.int8)
    return out.reshape(len(x_q), qm.output_size)


def compile_avr(qm, work: Path, media=("flash", "sram", "eeprom")) -> None:
    """Generate C for avr and compile it with avr-gcc -Os -Werror -c (skips if missing)."""
    from edgebuild.codegen import generate

    gen = work / "avr"
    generate(qm, trivial_plan(qm, media), gen, arch="avr")
    subprocess.run(["avr-gcc", "-mmcu=atmega328p", "-Os", "-std=c99", "-Wall", "-Wextra",
                    "-Werror", "-c", str(gen / "edgebuild_model.c"), "-o",
                    str(work / "model.o")], check=True, capture_output=True, text=True)


HAVE_AVR = shutil.which("avr-gcc") is not None


SIM_DRIVER = r"""
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
        /* '=' starts an output, '+' continues it: simavr's UART log breaks long lines */
        for (i = 0; i < MODEL_OUTPUT_SIZE; i++) {
            if (i % 32 == 0)
                put(i ? '+' : '=');
            hex((uint8_t)out[i]);
            if (i % 32 == 31 || i == MODEL_OUTPUT_SIZE - 1)
                put('\n');
        }
    }
    cli();
    sleep_cpu();
    return 0;
}
"""


def run_simavr(qm, x_q: np.ndarray, work: Path, media=("flash",)) -> tuple[np.ndarray, str]:
    """Generate ``qm`` for AVR with weights in ``media``, link it with a driver that runs every
    input of ``x_q`` from PROGMEM and prints the outputs in hex on the UART, run it in simavr
    (ATmega328P, 16 MHz); returns (outputs as int8 (N, out), simulator output for messages)."""
    from edgebuild.codegen import generate

    generate(qm, trivial_plan(qm, media), work, arch="avr")
    rows = ",\n".join("{" + ", ".join(str(int(v)) for v in x.reshape(-1)) + "}" for x in x_q)
    (work / "vectors.h").write_text(
        f"#define N_VECTORS {len(x_q)}\nstatic const int8_t vectors[{len(x_q)}]"
        f"[MODEL_INPUT_SIZE] PROGMEM = {{\n{rows}\n}};\n")
    (work / "main.c").write_text(SIM_DRIVER)
    elf = work / "fw.elf"
    subprocess.run(["avr-gcc", "-mmcu=atmega328p", "-Os", "-std=c99", "-Wall", "-Wextra", "-Werror",
                    "-I", str(work), str(work / "main.c"), str(work / "edgebuild_model.c"), "-o", str(elf)],
                   check=True, capture_output=True, text=True)
    run = subprocess.run(["simavr", "-m", "atmega328p", "-f", "16000000", str(elf)],
                         capture_output=True, text=True, timeout=60)
    outs: list[str] = []
    for mark, h in re.findall(r"([=+])([0-9a-f]+)", run.stdout + run.stderr):
        if mark == "=":
            outs.append(h)
        elif outs:
            outs[-1] += h
    return np.array([np.frombuffer(bytes.fromhex(h), dtype=np.int8) for h in outs]), run.stdout[-500:]
