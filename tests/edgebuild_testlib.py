"""Shared by the end-to-end, boards, split and sweep tests: a tiny recipe that trains in seconds, and
the CLI run in a subprocess exactly as a user runs it."""

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


def synthetic_recipe(name: str, *, shape: list, model: str, task: str = "classification", classes: int | None = None,
                     samples: int = 160, split: tuple[int, int] = (40, 10), seed: int = 1, calibration: int = 100,
                     per_channel: bool = False, verify: int = 30, target: str = "netduinoplus2") -> str:
    """A recipe on seeded synthetic data of one-sample ``shape`` (``classes`` labels, or none) for
    ``model`` (the recipe's model mapping as flow YAML, e.g. ``{zoo: {name: ds_cnn}}``)."""
    labels = f"classes: {classes}, " if classes else ""
    return textwrap.dedent(f"""\
        defaults:
          - targets@target: {target}
          - _self_
        name: {name}
        dataset:
          name: synthetic
          synthetic: {{shape: {list(shape)}, {labels}samples: {samples}, seed: {seed}}}
          split: {{test: {split[0]}, val: {split[1]}, seed: 0}}
        model: {model}
        task: {{kind: {task}}}
        compression: {{quantize: {{calibration_samples: {calibration}{', per_channel: true' if per_channel else ''}}}}}
        verify: {{samples: {verify}}}
        """)


def recipe_dir(tmp_path_factory, name: str, recipes: dict[str, str]) -> Path:
    """A scratch working folder with recipes/<key>.yaml for each of ``recipes``."""
    root = tmp_path_factory.mktemp(name)
    (root / "recipes").mkdir()
    for key, text in recipes.items():
        (root / "recipes" / f"{key}.yaml").write_text(text)
    return root


def digits8x8():
    """scikit-learn's 8x8 digits: 1,297 train, 200 val, 300 test."""
    from edgebuild.data import load_dataset

    return load_dataset({"name": "digits8x8", "split": {"test": 300, "val": 200, "seed": 0}})


def trained_net(arch: list, ds, epochs: int = 15, lr: float = 0.005):
    """``arch`` trained on ``ds`` with the numpy trainer (one BLAS thread: the same weights everywhere)."""
    from threadpoolctl import threadpool_limits

    from edgebuild.train import build_net, fit

    net = build_net(arch, ds.x_train.shape[1:], seed=0)
    with threadpool_limits(limits=1):
        fit(net, ds, {"epochs": epochs, "lr": lr, "seed": 0})
    return net


def run_cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    """`edgebuild ARGS...` in ``cwd``; the caller checks the exit status."""
    return subprocess.run([sys.executable, "-m", "edgebuild.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=900)


def cli(*args, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """As run_cli, failing the test with the CLI's stderr when it exits non-zero (unless check=False)."""
    proc = run_cli(*args, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"edgebuild {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")
    return proc
