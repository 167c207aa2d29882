"""The whole pipeline through the real CLI: train -> ... -> avr-gcc firmware -> simavr, on a tiny recipe.

Checks the product's promises end to end: a verified firmware with report.json's stable keys, a no-op
rebuild, a param change that reruns exactly the dependent rules, an EEPROM pin that the memory map
shows and the device reads correctly, and a model that does not fit failing with the shortfall.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from edgebuild_testlib import TINY, cli, recipe_dir

pytestmark = pytest.mark.skipif(not (shutil.which("avr-gcc") and shutil.which("gcc")),
                                reason="avr-gcc and gcc are needed (./install.sh installs them)")

@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return recipe_dir(tmp_path_factory, "e2e", {"tiny": TINY})


@pytest.fixture(scope="module")
def first_build(work):
    proc = cli("recipes/tiny.yaml", "--cache", "cache", cwd=work)
    report = json.loads((work / "build" / "tiny" / "report.json").read_text())
    return proc, report


def statuses(report: dict) -> dict:
    return {name: s["status"] for name, s in report["stages"].items()}


def test_full_build_is_verified_on_simavr(work, first_build):
    proc, r = first_build
    for key in ("recipe", "target", "stages", "model", "accuracy", "memory", "latency", "verify", "artifacts"):
        assert key in r, key
    assert r["recipe"] == "tiny" and r["target"] == "uno"
    assert set(statuses(r).values()) == {"ran"}
    assert r["verify"] == {"samples": 40, "bit_exact": 40, "simulator": "simavr"}
    assert r["accuracy"]["samples"] == 40
    # Device predictions equal the int8 reference, so the accuracies agree exactly.
    assert r["accuracy"]["device"] == r["accuracy"]["int8_host"]
    m = r["memory"]
    assert 0 < m["flash_bytes"] <= m["flash_limit"] == 32256
    assert m["sram_static_bytes"] < m["sram_peak_bytes"] <= m["sram_limit"] == 2048
    assert r["latency"]["cycles"] > r["model"]["macs"] > 0   # at least a cycle per MAC on an 8-bit MCU
    assert (work / "build" / "tiny" / r["artifacts"]["hex"]).is_file()
    assert (work / "build" / "tiny" / "report.html").stat().st_size > 10_000
    assert "device" in proc.stderr and "bit-exact 40/40" in proc.stderr


def test_noop_rebuild_runs_nothing(work, first_build):
    cli("recipes/tiny.yaml", "--cache", "cache", cwd=work)
    r = json.loads((work / "build" / "tiny" / "report.json").read_text())
    assert set(statuses(r).values()) == {"cached"}


def test_noop_rebuild_imports_no_heavy_library(work, first_build):
    """The no-op path must stay fast: no numpy, networkx, onnx, Hydra, pydantic or SCons import."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "edgebuild.cli", "recipes/tiny.yaml",
                           "--cache", "cache"], cwd=work, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0]
                for line in proc.stderr.splitlines() if line.startswith("import time:")}
    heavy = imported & {"numpy", "networkx", "onnx", "onnxruntime", "hydra", "omegaconf", "pydantic",
                        "SCons", "matplotlib", "jinja2"}
    assert not heavy, f"imported on the no-op path: {sorted(heavy)}"


def test_param_change_reruns_exactly_the_dependants(work, first_build):
    proc = cli("recipes/tiny.yaml", "verify.samples=25", "--cache", "cache", "--explain", cwd=work)
    r = json.loads((work / "build" / "tiny" / "report.json").read_text())
    ran = {name for name, s in statuses(r).items() if s == "ran"}
    assert ran == {"verify", "report"}
    assert r["verify"]["bit_exact"] == 25
    assert "samples" in proc.stderr   # --explain names the changed param


def test_dry_run_changes_nothing(work, first_build):
    before = sorted(p.name for p in (work / "cache" / "actions").iterdir())
    proc = cli("recipes/tiny.yaml", "verify.samples=33", "--cache", "cache", "--dry-run", cwd=work)
    assert "would-run" in proc.stderr and "verify" in proc.stderr
    assert sorted(p.name for p in (work / "cache" / "actions").iterdir()) == before


def test_eeprom_pin_builds_and_verifies(work, first_build):
    cli("recipes/tiny.yaml", "storage.pins={conv1.weight: eeprom, conv1.bias: eeprom}", "--cache", "cache",
        "--build-dir", "build/tiny_eeprom", cwd=work)
    r = json.loads((work / "build" / "tiny_eeprom" / "report.json").read_text())
    placed = {m["name"]: m["medium"] for m in r["memory_map"]}
    assert placed["conv1.weight"] == "eeprom" and placed["conv1.bias"] == "eeprom"
    assert placed["dense1.weight"] == "flash"
    assert r["memory"]["eeprom_bytes"] > 0
    assert r["artifacts"]["eep"] and (work / "build" / "tiny_eeprom" / r["artifacts"]["eep"]).is_file()
    assert r["verify"]["bit_exact"] == r["verify"]["samples"]
    # The training and quantisation were shared with the first build through the cache.
    assert r["stages"]["train"]["status"] == "cached"


def test_model_that_does_not_fit_names_budget_and_shortfall(work):
    big = TINY.replace("name: tiny", "name: big").replace(
        "      - maxpool: {kernel: 2}\n", "").replace("out: 4, kernel: 3", "out: 48, kernel: 3")
    (work / "recipes" / "big.yaml").write_text(big)
    proc = cli("recipes/big.yaml", "--cache", "cache", cwd=work, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "flash" in proc.stderr and "short by" in proc.stderr and "32,256" in proc.stderr


def test_flash_prints_avrdude_command(work, first_build):
    proc = cli("flash", "recipes/tiny.yaml", "--port", "/dev/ttyACM0", "--print", "--cache", "cache", cwd=work)
    cmd = proc.stdout.strip()
    assert cmd.startswith("avrdude") and "-p m328p" in cmd and "-c arduino" in cmd and "/dev/ttyACM0" in cmd
    assert "firmware.hex" in cmd


def test_export_writes_an_arduino_library(work, first_build):
    cli("export", "recipes/tiny.yaml", "--arduino", "lib", "--cache", "cache", cwd=work)
    props = list((work / "lib").rglob("library.properties"))
    assert props, "library.properties missing"
    lib = props[0].parent
    assert (lib / "src" / "edgebuild_model.h").is_file()
    assert "model_run" in (lib / "src" / "edgebuild_model.h").read_text()


def test_measured_budget_miss_fails_the_build_naming_the_field(work, first_build, tmp_path):
    """The search sees the cycle model's predictions; the build checks the simulator's measured
    figures: a latency budget 10% under the measured latency fails with exit 2 naming the field,
    one 10% over it passes."""
    from edgebuild.api import Report, check_measured
    from edgebuild.errors import BudgetError

    _, r = first_build
    measured = r["latency"]["ms"]
    assert measured > 0
    for factor, fails in ((0.9, True), (1.1, False)):
        (tmp_path / str(factor)).mkdir()
        (tmp_path / str(factor) / "report.json").write_text(
            json.dumps({**r, "budget": {**(r.get("budget") or {}), "latency_ms": measured * factor}}))
        if fails:
            with pytest.raises(BudgetError) as err:
                check_measured(Report.load(tmp_path / str(factor)), "recipes/tiny.yaml")
            assert err.value.field == "compression.latency_ms" and err.value.exit_code == 2
            assert f"{measured:,.4g} ms" in str(err.value) and "recipes/tiny.yaml" in str(err.value)
        else:
            check_measured(Report.load(tmp_path / str(factor)), "recipes/tiny.yaml")
