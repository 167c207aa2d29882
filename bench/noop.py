#!/usr/bin/env python3
"""Wall time of a no-op rebuild of a recipe (default recipes/mnist_uno.yaml), against a bare Python start.

Runs the build once to warm the cache (this may take minutes the first time), then times N no-op
rebuilds as separate processes, exactly as a user runs them. Goal: under 0.25 s on a 2-core machine.

    python bench/noop.py [RECIPE] [--runs N] [--cache DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def timed(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipe", nargs="?", default="recipes/mnist_uno.yaml")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--cache", default=None)
    args = ap.parse_args()
    exe = shutil.which("edgebuild") or str(Path(sys.executable).with_name("edgebuild"))
    cmd = [exe, args.recipe] + (["--cache", args.cache] if args.cache else [])
    print(f"warming: {' '.join(cmd)}", flush=True)
    subprocess.run(cmd, check=True)
    bare = timed([sys.executable, "-c", "pass"], args.runs)
    noop = timed(cmd, args.runs)
    print(f"bare python start : median {statistics.median(bare):.3f} s  (min {min(bare):.3f})")
    print(f"no-op rebuild     : median {statistics.median(noop):.3f} s  (min {min(noop):.3f}, "
          f"max {max(noop):.3f}, {args.runs} runs)")
    print(f"goal              : < 0.250 s -> {'met' if statistics.median(noop) < 0.25 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
