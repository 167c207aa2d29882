#!/usr/bin/env python3
"""Cycles per inference and per MAC of a recipe's firmware on the simulated device, against the floor.

Builds the recipe (cached after the first time), reads the simulator's per-layer cycle counts from
report.json, and measures in the same simulator the floor: a tight hand-written int8 dot product
with weights read from PROGMEM (bench/cycles_floor.py). Goal: the dominant layer within 1.5x of the
best floor kernel, no layer above 1.5x and the whole model within 1.3x.

    python bench/cycles.py [RECIPE] [overrides...] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipe", nargs="?", default="recipes/mnist_uno.yaml")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--cache", default=None)
    args = ap.parse_args()
    build_dir = ROOT / "build" / "bench-cycles"
    cmd = [sys.executable, "-m", "edgebuild.cli", args.recipe, *args.overrides, "--build-dir", str(build_dir)]
    if args.cache:
        cmd += ["--cache", args.cache]
    subprocess.run(cmd, check=True, cwd=ROOT)
    report = json.loads((build_dir / "report.json").read_text())

    from cycles_floor import measure_floor

    floor = measure_floor()
    best_name, best = min(((k, v) for k, v in floor.items() if isinstance(v, dict)),
                          key=lambda kv: kv[1]["cycles_per_mac"])
    lat = report["latency"]
    print(f"\n{report['recipe']} on {report['target']} ({report['mcu']}), {report['model']['macs']:,} MACs")
    print(f"cycles per inference : {lat['cycles']:,.0f} ({lat['ms']:.2f} ms), {lat['cycles_per_mac']:.2f} cycles/MAC overall")
    print(f"{'layer':<12}{'op':<8}{'MACs':>10}{'cycles':>14}{'cycles/MAC':>12}")
    for layer in report["layers"]:
        cpm = layer.get("cycles_per_mac")
        print(f"{layer['name']:<12}{layer['op']:<8}{layer['macs']:>10,}{(layer.get('cycles') or 0):>14,.0f}"
              f"{(cpm or float('nan')):>12.2f}")
    print("floor (hand-written dot product, weights in PROGMEM):")
    for name, v in floor.items():
        if isinstance(v, dict):
            print(f"  {name:<10}{v['cycles_per_mac']:>8.2f} cycles/MAC")
    dominant = max(report["layers"], key=lambda layer: layer["macs"])
    if dominant.get("cycles_per_mac"):
        ratio = dominant["cycles_per_mac"] / best["cycles_per_mac"]
        print(f"dominant layer {dominant['name']}: {dominant['cycles_per_mac']:.2f} cycles/MAC = "
              f"{ratio:.2f}x the best floor ({best_name}, {best['cycles_per_mac']:.2f}); goal <= 1.5x -> "
              f"{'met' if ratio <= 1.5 else 'NOT met'}")
    timed = [layer for layer in report["layers"] if layer.get("cycles_per_mac") and layer["macs"]]
    if timed:
        worst = max(timed, key=lambda layer: layer["cycles_per_mac"])
        ratio = worst["cycles_per_mac"] / best["cycles_per_mac"]
        print(f"slowest layer {worst['name']}: {worst['cycles_per_mac']:.2f} cycles/MAC = {ratio:.2f}x the "
              f"best floor; goal <= 1.5x -> {'met' if ratio <= 1.5 else 'NOT met'}")
    if lat.get("cycles_per_mac"):
        ratio = lat["cycles_per_mac"] / best["cycles_per_mac"]
        print(f"whole model: {lat['cycles_per_mac']:.2f} cycles/MAC = {ratio:.2f}x the best floor; goal <= 1.3x -> "
              f"{'met' if ratio <= 1.3 else 'NOT met'}")
    _cortex_m4(args)
    return 0


def _cortex_m4(args) -> None:
    """The same recipe on the Cortex-M4 board in QEMU, and the dot-product kernels with/without SMLAD."""
    import shutil

    if not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")):
        print("\nCortex-M4: skipped (arm-none-eabi-gcc or qemu-system-arm missing; ./install.sh installs them)")
        return
    build_dir = ROOT / "build" / "bench-cycles-m4"
    cmd = [sys.executable, "-m", "edgebuild.cli", args.recipe, *args.overrides, "target=netduinoplus2",
           "verify.samples=50", "--build-dir", str(build_dir)] + (["--cache", args.cache] if args.cache else [])
    subprocess.run(cmd, check=True, cwd=ROOT, stderr=subprocess.DEVNULL)
    lat = json.loads((build_dir / "report.json").read_text())["latency"]
    from cycles_arm import measure_arm

    kernels = measure_arm()
    kernels.pop("target")
    print(f"\nCortex-M4 (netduinoplus2, QEMU -icount): {lat['instructions']:,.0f} instructions/inference, "
          f"{lat['instructions_per_mac']:.2f} instructions/MAC overall (portable C kernels)")
    for name, r in kernels.items():
        print(f"  dot product, {name:<10}{r['instructions_per_mac']:>8.3f} instructions/MAC")


if __name__ == "__main__":
    sys.exit(main())
