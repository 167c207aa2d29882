"""Benchmark: wall time of a no-op rebuild of a synthetic 10-rule pipeline (~5 MB of outputs).

Each timing is a fresh ``python`` process (so it includes interpreter start-up) that loads the
pipeline and runs ``Engine.build`` against a warm cache, like ``edgebuild recipe.yaml`` would.

usage: python bench/engine_noop.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

ACTIONS = '''
import hashlib

def make(ctx):
    """Writes params.kb kilobytes of deterministic bytes derived from the inputs and params."""
    seed = hashlib.sha256(repr(sorted(ctx.params.items())).encode())
    for name, path in sorted(ctx.inputs.items()):
        seed.update((path / "data.bin").read_bytes()[:64])
    block = seed.digest() * 32
    (ctx.out / "data.bin").write_bytes(block * (ctx.params["kb"] * 1024 // len(block)))
    (ctx.out / "meta.txt").write_text(ctx.name)
'''

RULES = {   # rule -> inputs: a dataset -> ... -> report shaped DAG, like the real pipeline
    "dataset": [], "train": ["dataset"], "import": ["train"], "optimise": ["import"],
    "compress": ["optimise", "dataset"], "quantise": ["compress", "dataset"],
    "layout": ["quantise"], "codegen": ["layout"], "firmware": ["codegen"],
    "report": ["firmware", "quantise"],
}

RUNNER = '''
import sys, time
from pathlib import Path
from edgebuild.engine import Engine, load_pipeline
root = Path(sys.argv[1])
eng = Engine(load_pipeline(root / "pipeline.yaml"), cache_dir=root / "cache")
res = eng.build({"kb": 512, "seed": 1, "data": {"path": str(root / "data.bin")}}, label="bench",
                build_dir=root / "build")
assert res.ok and all(r.status == "cached" for r in res.rules.values()), res.rules
'''


def write_project(root: Path) -> None:
    """Pipeline, action module and a 1 MB user data file under ``root``."""
    (root / "eb_bench_actions.py").write_text(ACTIONS)
    (root / "data.bin").write_bytes(os.urandom(1 << 20))
    lines = ["version: 1", "rules:"]
    for name, deps in RULES.items():
        lines += [f"  {name}:", "    action: eb_bench_actions:make",
                  "    params: {kb: kb, seed: seed}", "    code: [edgebuild.engine]"]
        if deps:
            lines.append("    inputs: {" + ", ".join(f"{d}: {d}" for d in deps) + "}")
        if name == "dataset":
            lines.append("    files: {path: data.path}")
        if name in ("firmware", "report"):
            lines.append("    publish: true")
    (root / "pipeline.yaml").write_text("\n".join(lines) + "\n")


def main() -> None:
    """Build once, then time ``--runs`` no-op rebuilds in fresh processes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_project(root)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(REPO)]))
        cmd = [sys.executable, "-c", RUNNER, str(root)]
        first = RUNNER.replace('all(r.status == "cached" for r in res.rules.values())', "True")
        subprocess.run([sys.executable, "-c", first, str(root)], env=env, check=True,
                       stderr=subprocess.DEVNULL)
        size = sum(p.stat().st_size for p in (root / "cache" / "objects").rglob("*")
                   if p.is_file())
        times, bare = [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            bare.append(time.perf_counter() - t0)
    print(f"synthetic pipeline: {len(RULES)} rules, {size / 1e6:.1f} MB cached outputs")
    print(f"no-op rebuild wall time (fresh process): median {statistics.median(times):.3f} s, "
          f"min {min(times):.3f} s over {args.runs} runs")
    print(f"python start-up alone: median {statistics.median(bare):.3f} s")


if __name__ == "__main__":
    main()
