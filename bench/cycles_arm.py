"""Instructions per MAC of a tight int8 dot product on the Cortex-M4 (netduinoplus2) in QEMU.

Two kernels, each built as an edgebuild model (weights plain const in flash, input over the UART)
and run with the device harness under ``qemu -icount`` (exact instruction counts):
  plain C  acc += w[i] * x[i], compiled with the target's flags (-O2, Cortex-M4)
  SMLAD    4 int8 per word: SXTB16 / SXTB16 ROR #8 unpack pairs, two SMLAD (dual 16x16 MAC)
Each is run for two lengths; the slope (extra instructions / extra MACs) is the per-MAC cost
without the call, set-up and output overhead. Outputs are checked against numpy.

usage: python bench/cycles_arm.py [--target netduinoplus2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgebuild.firmware import build  # noqa: E402
from edgebuild.sim import run_qemu  # noqa: E402

LENGTHS = (512, 2048)
HEADER = """#ifndef EDGEBUILD_MODEL_H
#define EDGEBUILD_MODEL_H
#include <stdint.h>
#define MODEL_INPUT_SIZE {n}
#define MODEL_OUTPUT_SIZE 4
void model_run(const int8_t *input, int8_t *output);
#endif
"""
COMMON = """#include <string.h>
#include "edgebuild_model.h"
static const int8_t weights[MODEL_INPUT_SIZE] __attribute__((aligned(4))) = {{ {weights} }};
static int32_t dot(const int8_t *x, const int8_t *w);
void model_run(const int8_t *input, int8_t *output)
{{
    int32_t acc = dot(input, weights);
    memcpy(output, &acc, sizeof acc);
}}
"""
KERNELS = {
    "plain C": """
static int32_t __attribute__((noinline)) dot(const int8_t *x, const int8_t *w)
{
    int32_t acc = 0;
    for (uint32_t i = 0; i < MODEL_INPUT_SIZE; i++) {
        acc += (int16_t)x[i] * w[i];
    }
    return acc;
}
""",
    "SMLAD": """
static inline uint32_t sxtb16(uint32_t v)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(v));
    return r;
}
static inline uint32_t sxtb16_ror8(uint32_t v)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}
static inline int32_t smlad(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
/* Bytes 0,2 and 1,3 of both words pair up, so the two dual MACs sum all four products. */
static int32_t __attribute__((noinline)) dot(const int8_t *x, const int8_t *w)
{
    int32_t acc = 0;
    for (uint32_t i = 0; i < MODEL_INPUT_SIZE; i += 4) {
        uint32_t xv, wv;
        memcpy(&xv, x + i, 4);
        memcpy(&wv, w + i, 4);
        acc = smlad(sxtb16(xv), sxtb16(wv), acc);
        acc = smlad(sxtb16_ror8(xv), sxtb16_ror8(wv), acc);
    }
    return acc;
}
""",
}


def _instructions(target: dict, kernel: str, n: int, work: Path, rng) -> int:
    """Instructions of model_run for an n-long dot product; checks the result with numpy."""
    weights = rng.integers(-128, 128, size=n, dtype=np.int8)
    inputs = rng.integers(-128, 128, size=(3, n), dtype=np.int8)
    src = work / "src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "edgebuild_model.h").write_text(HEADER.format(n=n))
    (src / "edgebuild_model.c").write_text(
        COMMON.format(weights=", ".join(str(int(v)) for v in weights)) + KERNELS[kernel])
    fw = build(target, [src / "edgebuild_model.h", src / "edgebuild_model.c"], work / "fw")
    result = run_qemu(fw["elf"], target=target, inputs=inputs, output_size=4, workdir=work)
    got = result["outputs"].view("<i4").ravel()
    want = inputs.astype(np.int64) @ weights.astype(np.int64)
    if not np.array_equal(got, want):
        raise SystemExit(f"{kernel}: device dot products {got} != numpy {want}")
    counts = set(result["instructions"].tolist())
    if len(counts) != 1:
        raise SystemExit(f"{kernel}: data-dependent instruction counts {counts}")
    return counts.pop()


def measure_arm(target_name: str = "netduinoplus2") -> dict:
    """{kernel: {"counts": [instructions at each of LENGTHS], "instructions_per_mac": slope}} plus
    "target"; the slope between two lengths cancels the call and loop set-up."""
    target = yaml.safe_load((ROOT / "targets" / f"{target_name}.yaml").read_text())
    rng = np.random.default_rng(0)
    out = {"target": target}
    with tempfile.TemporaryDirectory(prefix="cycles_arm.") as tmp:
        for kernel in KERNELS:
            counts = [_instructions(target, kernel, n, Path(tmp) / f"{kernel}-{n}", rng)
                      for n in LENGTHS]
            out[kernel] = {"counts": counts,
                           "instructions_per_mac": (counts[1] - counts[0]) / (LENGTHS[1] - LENGTHS[0])}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="netduinoplus2", help="ARM target under targets/")
    args = parser.parse_args()
    res = measure_arm(args.target)
    target = res.pop("target")
    print(f"int8 dot product on {target['name']} ({target['mcu']}), QEMU -icount, "
          f"flags {' '.join(target['toolchain']['cflags'])}")
    print(f"{'kernel':<10}" + "".join(f"{'n=' + str(n):>12}" for n in LENGTHS)
          + f"{'instr/MAC':>12}")
    for kernel, r in res.items():
        print(f"{kernel:<10}" + "".join(f"{c:>12,}" for c in r["counts"])
              + f"{r['instructions_per_mac']:>12.3f}")


if __name__ == "__main__":
    main()
