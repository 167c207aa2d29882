"""One recipe, many boards: the tiny recipe retargeted to the Mega 2560 (simavr) and to a Cortex-M4
(netduinoplus2 in QEMU) builds and verifies bit-exact; a model too large for the Uno builds for the Mega
and fails for the Uno with the shortfall."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from edgebuild_testlib import TINY, cli, recipe_dir

needs_avr = pytest.mark.skipif(not (shutil.which("avr-gcc") and shutil.which("simavr")),
                               reason="avr-gcc and simavr are needed (./install.sh installs them)")
needs_arm = pytest.mark.skipif(not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
                               reason="arm-none-eabi-gcc and qemu-system-arm are needed (./install.sh installs them)")

# No pooling after a 16-channel conv: a 3,136-byte activation (over the Uno's 2 KiB SRAM, within the
# Mega's 8 KiB) and 31,360 dense weights (the firmware outgrows the Uno's flash too).
MID = TINY.replace("name: tiny", "name: mid").replace("      - maxpool: {kernel: 2}\n", "").replace(
    "out: 4, kernel: 3", "out: 16, kernel: 3")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return recipe_dir(tmp_path_factory, "boards", {"tiny": TINY, "mid": MID})


def build(work, recipe: str, target: str, check=True):
    proc = cli(f"recipes/{recipe}.yaml", f"target={target}", "--cache", "cache",
               "--build-dir", f"build/{recipe}-{target}", cwd=work, check=check)
    path = work / "build" / f"{recipe}-{target}" / "report.json"
    return proc, (json.loads(path.read_text()) if path.exists() and proc.returncode == 0 else None)


def same_keys(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(set(a[k]) == set(b[k]) for k in a if isinstance(a[k], dict))


@needs_avr
def test_mega2560_verifies_bit_exact(work):
    _, uno = build(work, "tiny", "uno")
    _, mega = build(work, "tiny", "mega2560")
    assert mega["target"] == "mega2560" and mega["mcu"] == "atmega2560"
    assert mega["verify"]["bit_exact"] == mega["verify"]["samples"] == 40
    assert mega["memory"]["flash_limit"] == 262144 - 8192 and mega["memory"]["sram_limit"] == 8192
    assert mega["latency"]["cycles"] > 0
    assert same_keys(mega, uno)
    # The model stages are shared between boards through the cache.
    assert mega["stages"]["train"]["status"] == "cached"


@needs_arm
def test_cortex_m4_in_qemu_verifies_bit_exact(work):
    _, uno = build(work, "tiny", "uno")
    _, m4 = build(work, "tiny", "netduinoplus2")
    assert m4["verify"]["simulator"] == "qemu"
    assert m4["verify"]["bit_exact"] == m4["verify"]["samples"] == 40
    assert m4["latency"]["instructions"] > m4["model"]["macs"]
    assert same_keys(m4, uno)


@needs_avr
def test_too_large_for_uno_fits_the_mega(work):
    proc, _ = build(work, "mid", "uno", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "does not fit atmega328p" in proc.stderr and "short by" in proc.stderr
    _, mega = build(work, "mid", "mega2560")
    assert mega["memory"]["flash_bytes"] > 32256 - 512
    assert mega["verify"]["bit_exact"] == mega["verify"]["samples"]


def test_targets_lists_every_board_with_tool_status(work):
    proc = subprocess.run([sys.executable, "-m", "edgebuild.cli", "targets"], capture_output=True, text=True,
                          cwd=work, check=True)
    for name in ("uno", "mega2560", "netduinoplus2", "host"):
        assert name in proc.stdout
    assert "toolchain avr-gcc" in proc.stdout and "simulator simavr" in proc.stdout


def test_host_target_runs_natively(work):
    _, host = build(work, "tiny", "host")
    assert host["verify"]["simulator"] == "native"
    assert host["verify"]["bit_exact"] == host["verify"]["samples"] == 40
    assert (work / "build" / "tiny-host" / "firmware" / "model_host").stat().st_mode & 0o111
