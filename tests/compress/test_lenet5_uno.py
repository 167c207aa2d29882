"""recipes/lenet5_uno.yaml end to end: LeNet-5 pruned to fit the Uno, bit-exact on simavr (slow, ~90 s)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (shutil.which("avr-gcc") and shutil.which("simavr")),
                                 reason="avr-gcc and simavr are needed")]


def _stage_output(cache: Path, report: dict, stage: str) -> Path:
    action = json.loads((cache / "actions" / f"{report['stages'][stage]['key']}.json").read_text())
    return cache / "objects" / action["output_hash"]


def test_lenet5_is_compressed_to_fit_and_verifies(tmp_path):
    cache, build = tmp_path / "cache", tmp_path / "build"
    proc = subprocess.run([sys.executable, "-m", "edgebuild.cli", "recipes/lenet5_uno.yaml", "--cache", str(cache),
                           "--build-dir", str(build)], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((build / "report.json").read_text())
    comp = json.loads((_stage_output(cache, report, "compress") / "compress.json").read_text())
    # the uncompressed model cannot fit the Uno; the compressed one does, within the recipe's budget
    assert comp["before"]["figures"]["params"] == 61706
    assert comp["before"]["figures"]["weight_flash_bytes"] > 32768
    assert report["memory"]["flash_bytes"] <= 20480 and report["memory"]["sram_peak_bytes"] <= 2048
    assert report["verify"]["bit_exact"] == report["verify"]["samples"] == 500
    # at most 1 point lost on the 1,000 held-out test digits against its own uncompressed float model
    assert comp["accuracy"]["test_before"] - report["accuracy"]["int8_full_test"] <= 0.01 + 1e-9
    # the cycle model predicts each layer's simavr cycles within 15% (these layers were not in the fit)
    predicted = {row["name"]: row["cycles"] for row in comp["after"]["layers"]}
    for layer in report["layers"]:
        assert abs(predicted[layer["name"]] - layer["cycles"]) / layer["cycles"] < 0.15, layer["name"]
