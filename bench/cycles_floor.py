"""Cycles-per-MAC floor of an int8 dot product on the ATmega328P, measured in simavr.

Kernels (int8 weights in PROGMEM read sequentially, int8 activations in SRAM, int32
accumulator), each wrapped as an edgebuild model (ROWS dot products of length N whose int32
results are returned as 4 output bytes each), built with edgebuild.firmware.build, run with
edgebuild.sim.run_simavr and checked against a numpy int32 dot product:

- c_naive: `acc += w * x` with pgm_read_byte at the target's -Os: GCC widens the product and
           calls __mulhisi3 (a 16x16->32 library multiply) for every MAC
- c_pgm:   as c_naive, but the 16-bit product goes through an empty asm barrier, so GCC
           emits a single `muls` (the best plain C at -Os)
- c_flash: the barrier plus GCC's __flash address space (`lpm Z+`), -O2 -std=gnu99
- asm:     inline asm, 4x unrolled `lpm Z+` / `ld X+` / `muls` with a 32-bit accumulator

Usage: python bench/cycles_floor.py   (prints a table; measure_floor() returns the numbers)
"""

from __future__ import annotations

import copy
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ROWS, N = 4, 512

HEADER = f"""\
#ifndef EDGEBUILD_MODEL_H
#define EDGEBUILD_MODEL_H
#include <stdint.h>
#define MODEL_INPUT_SIZE {N}
#define MODEL_OUTPUT_SIZE {4 * ROWS}
void model_run(const int8_t *input, int8_t *output);
#endif
"""

COMMON = """\
#include <string.h>
#include <avr/pgmspace.h>
#include "edgebuild_model.h"
#define ROWS {rows}
#define N {n}
static const {qualifier} int8_t weights[ROWS * N] {attribute} = {{ {weights} }};
"""

C_NAIVE = """\
void model_run(const int8_t *input, int8_t *output)
{
    const int8_t *w = weights;
    for (uint8_t j = 0; j < ROWS; j++) {
        int32_t acc = 0;
        const int8_t *x = input;
        for (uint16_t i = 0; i < N; i++) {
            acc += (int8_t)pgm_read_byte(w++) * *x++;
        }
        memcpy(output + 4 * j, &acc, 4);
    }
}
"""

C_PGM = """\
void model_run(const int8_t *input, int8_t *output)
{
    const int8_t *w = weights;
    for (uint8_t j = 0; j < ROWS; j++) {
        int32_t acc = 0;
        const int8_t *x = input;
        for (uint16_t i = 0; i < N; i++) {
            int16_t product = (int8_t)pgm_read_byte(w++) * *x++;
            __asm__("" : "+r"(product));   /* keep the 8x8->16 muls; no __mulhisi3 call */
            acc += product;
        }
        memcpy(output + 4 * j, &acc, 4);
    }
}
"""

C_FLASH = """\
void model_run(const int8_t *input, int8_t *output)
{
    const __flash int8_t *w = weights;
    for (uint8_t j = 0; j < ROWS; j++) {
        int32_t acc = 0;
        const int8_t *x = input;
        for (uint16_t i = 0; i < N; i++) {
            int16_t product = *w++ * *x++;
            __asm__("" : "+r"(product));
            acc += product;
        }
        memcpy(output + 4 * j, &acc, 4);
    }
}
"""

ASM = """\
/* One MAC: 3 (lpm) + 2 (ld) + 2 (muls) + 1 (sign byte) + 4 (32-bit add) = 12 cycles.
 * muls leaves bit 15 of the product in C, so `sbc ext, ext` is its sign extension. */
#define MAC \\
    "lpm %[w], Z+\\n\\t" "ld %[x], X+\\n\\t" "muls %[w], %[x]\\n\\t" \\
    "sbc %[ext], %[ext]\\n\\t" \\
    "add %A[acc], r0\\n\\t" "adc %B[acc], r1\\n\\t" \\
    "adc %C[acc], %[ext]\\n\\t" "adc %D[acc], %[ext]\\n\\t"
#if N % 4 != 0 || N / 4 > 255
#error "the asm kernel needs N to be a multiple of 4 and at most 1020"
#endif
void model_run(const int8_t *input, int8_t *output)
{
    const int8_t *w = weights;
    for (uint8_t j = 0; j < ROWS; j++) {
        int32_t acc = 0;
        const int8_t *x = input;
        uint8_t count = N / 4;
        int8_t wv, xv;
        uint8_t ext;
        __asm__ volatile(
            "1:\\n\\t"
            MAC MAC MAC MAC
            "dec %[count]\\n\\t"
            "brne 1b\\n\\t"
            "clr r1\\n\\t"
            : [acc] "+r"(acc), [count] "+r"(count), [w] "=&d"(wv), [x] "=&d"(xv),
              [ext] "=&r"(ext), "+z"(w), "+x"(x)
            :
            : "r0", "memory");
        memcpy(output + 4 * j, &acc, 4);
    }
}
"""

KERNELS = {
    "c_naive": {"code": C_NAIVE, "qualifier": "", "attribute": "PROGMEM", "cflags": []},
    "c_pgm": {"code": C_PGM, "qualifier": "", "attribute": "PROGMEM", "cflags": []},
    "c_flash": {"code": C_FLASH, "qualifier": "__flash", "attribute": "",
                "cflags": ["-O2", "-std=gnu99"]},
    "asm": {"code": ASM, "qualifier": "", "attribute": "PROGMEM", "cflags": []},
}


def _kernel_source(kind: str, weights: np.ndarray) -> str:
    spec = KERNELS[kind]
    return COMMON.format(rows=ROWS, n=N, qualifier=spec["qualifier"],
                         attribute=spec["attribute"],
                         weights=", ".join(str(int(v)) for v in weights.ravel())) + spec["code"]


def measure_floor(vectors: int = 4, seed: int = 0, target: dict | None = None) -> dict:
    """Build and run each kernel in simavr; returns {kernel: {cycles_per_mac, cycles, macs}}
    plus 'sim_mhz' (simulated MHz of the runs). Raises AssertionError on a wrong result."""
    sys.path.insert(0, str(ROOT))
    import yaml

    from edgebuild.firmware import build
    from edgebuild.sim import run_simavr

    if target is None:
        target = yaml.safe_load((ROOT / "targets" / "uno.yaml").read_text())
        ldflags = target["toolchain"]["ldflags"]
        if "-Wl" in ldflags:  # unquoted "-Wl,--gc-sections" split by YAML
            i = ldflags.index("-Wl")
            target["toolchain"]["ldflags"] = ldflags[:i] + ["-Wl," + ldflags[i + 1]]
    rng = np.random.default_rng(seed)
    weights = rng.integers(-128, 128, size=(ROWS, N), dtype=np.int8)
    inputs = rng.integers(-128, 128, size=(vectors, N), dtype=np.int8)
    expected = inputs.astype(np.int32) @ weights.astype(np.int32).T
    results: dict = {}
    sim_cycles = wall = 0.0
    with tempfile.TemporaryDirectory(prefix="cycles_floor-") as tmp:
        for kind, spec in KERNELS.items():
            work = Path(tmp) / kind
            work.mkdir()
            (work / "edgebuild_model.h").write_text(HEADER)
            (work / "edgebuild_model.c").write_text(_kernel_source(kind, weights))
            kernel_target = copy.deepcopy(target)
            kernel_target["toolchain"]["cflags"] = (list(target["toolchain"]["cflags"])
                                                    + spec["cflags"])
            fw = build(kernel_target, [work / "edgebuild_model.h", work / "edgebuild_model.c"],
                       work / "fw")
            run = run_simavr(fw["elf"], mcu=target["simulator"]["mcu"], f_cpu=target["f_cpu"],
                             inputs=inputs, output_size=4 * ROWS, baud=target["uart"]["baud"],
                             workdir=work / "sim")
            got = run["outputs"].view("<i4").reshape(vectors, ROWS)
            assert np.array_equal(got, expected), f"{kind}: wrong dot products"
            cycles = int(run["cycles"].max())
            results[kind] = {"cycles": cycles, "macs": ROWS * N,
                             "cycles_per_mac": cycles / (ROWS * N)}
            sim_cycles += run["total_sim_cycles"]
            wall += run["wall_seconds"]
    results["sim_mhz"] = sim_cycles / wall / 1e6
    return results


def main() -> None:
    res = measure_floor()
    print(f"int8 dot product, {ROWS} x {N} MACs, ATmega328P in simavr (device Timer1 cycles)")
    for kind in KERNELS:
        r = res[kind]
        print(f"  {kind:8s} {r['cycles']:8d} cycles  {r['cycles_per_mac']:6.2f} cycles/MAC")
    print(f"  simavr speed: {res['sim_mhz']:.1f} M simulated cycles/s (incl. process start)")


if __name__ == "__main__":
    main()
