#!/usr/bin/env python3
"""A sweep against the same points built as separate cold builds (default: 6 points of mnist_uno).

Runs `edgebuild RECIPE -m SWEEP -P N` on an empty cache, then builds every point of the sweep on
its own in a fresh process with its own empty cache, and prints both wall times, their ratio (goal:
the sweep at least 4x faster) and in how many points the train stage ran (goal: exactly one).

    python bench/sweep.py [RECIPE] [--parallel N] [--sweep 'a=1,2' 'target=uno,host'] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_SWEEP = ["compression.max_accuracy_drop=0.005,0.01,0.02", "target=uno,host"]


def edgebuild(*args: str) -> float:
    """Wall seconds of one `edgebuild` process (output discarded; a failure stops the benchmark)."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "edgebuild.cli", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"edgebuild {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipe", nargs="?", default="recipes/mnist_uno.yaml")
    ap.add_argument("--sweep", nargs="+", default=DEFAULT_SWEEP, help="sweep overrides")
    ap.add_argument("--parallel", "-P", type=int, default=2, help="points built at once in the sweep")
    ap.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    args = ap.parse_args()

    from edgebuild.sweeps import expand_sweep, point_name

    points = expand_sweep(args.sweep)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"(other work on the machine slows both sides unevenly)", flush=True)
    with tempfile.TemporaryDirectory(prefix="edgebuild-bench-sweep-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(f"sweep of {len(points)} points, -P {args.parallel}: {' '.join(args.sweep)}", flush=True)
        sweep_s = edgebuild(args.recipe, "-m", *args.sweep, "-P", str(args.parallel),
                            "--cache", str(work / "sweep-cache"), "--build-dir", str(work / "sweep"))
        trained = []
        for overrides in points:
            report = json.loads((work / "sweep" / point_name(overrides) / "report.json").read_text())
            trained.append(report["stages"]["train"]["status"])
        print(f"  sweep wall time       : {sweep_s:7.1f} s", flush=True)
        cold = []
        for i, overrides in enumerate(points):
            s = edgebuild(args.recipe, *overrides, "--cache", str(work / f"cold-cache-{i}"),
                          "--build-dir", str(work / f"cold-{i}"))
            cold.append(s)
            print(f"  cold build {i + 1}/{len(points)}       : {s:7.1f} s  {' '.join(overrides)}", flush=True)
    print(f"load average after : {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ran = trained.count("ran")
    ratio = sum(cold) / sweep_s
    print(f"  {len(points)} cold builds total   : {sum(cold):7.1f} s")
    print(f"  speed-up              : {ratio:.1f}x (goal >= 4x) -> {'met' if ratio >= 4 else 'NOT met'}")
    print(f"  train stage ran in    : {ran} of {len(points)} points ({', '.join(trained)}) "
          f"(goal: exactly 1) -> {'met' if ran == 1 else 'NOT met'}")
    return 0 if ratio >= 4 and ran == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
