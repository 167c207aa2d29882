"""Shared by the sweep tests: a tiny recipe (trains in seconds) and the CLI run as a user runs it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

TINY = textwrap.dedent("""\
    defaults:
      - targets@target: uno
      - _self_
    name: tiny
    dataset: {name: mnist5k, resize: [14, 14], split: {test: 300, val: 100, seed: 0}, limit: 1500}
    model:
      train:
        arch:
          - conv: {out: 4, kernel: 3, pad: 1}
          - relu: {}
          - maxpool: {kernel: 2}
          - flatten: {}
          - dense: {out: 10}
        epochs: 2
        batch_size: 32
        lr: 0.01
    compression: {quantize: {calibration_samples: 200}}
    verify: {samples: 40}
    """)


def cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgebuild.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)
