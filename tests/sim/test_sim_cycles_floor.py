"""bench/cycles_floor.py: kernels are correct (checked inside against numpy) and the device
cycle count of the asm kernel agrees with the datasheet's instruction timings."""

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "cycles_floor.py"


def test_floor_matches_instruction_timing():
    spec = importlib.util.spec_from_file_location("cycles_floor", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    res = bench.measure_floor(vectors=2)
    # Datasheet: lpm 3 + ld 2 + muls 2 + sbc 1 + 4 x add/adc = 12 cycles per MAC, plus
    # dec + brne (3) per 4 MACs; the rest is a small per-row/per-call overhead.
    inner = bench.ROWS * (bench.N * 12 + (bench.N // 4) * 3)
    assert inner <= res["asm"]["cycles"] <= inner + 40 * bench.ROWS
    assert res["asm"]["cycles_per_mac"] < res["c_flash"]["cycles_per_mac"]
    assert res["c_pgm"]["cycles_per_mac"] < res["c_naive"]["cycles_per_mac"]
