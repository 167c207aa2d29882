"""SCons firmware builds: host harness vs numpy, budgets, toolchain errors, reproducibility."""

import copy
import re
import subprocess

import numpy as np
import pytest
from toymodel import random_toy, toy_reference, write_toy_model

from edgebuild.errors import BudgetError, ConfigError, ToolchainError
from edgebuild.firmware import build, run_host


def _objdump_flash_bytes(elf):
    """.text + .data sizes read with avr-objdump -h (independent of build()'s avr-size parse)."""
    out = subprocess.run(["avr-objdump", "-h", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    sizes = {m.group(1): int(m.group(2), 16)
             for m in re.finditer(r"^\s*\d+\s+(\.\w+)\s+([0-9a-f]+)", out, re.M)}
    return sizes[".text"] + sizes.get(".data", 0)


def test_host_harness_matches_numpy(host, tmp_path):
    weights, bias = random_toy(3, 48, 7)
    sources = write_toy_model(tmp_path / "model", weights, bias)
    result = build(host, sources, tmp_path / "out", harness="host")
    inputs = np.random.default_rng(4).integers(-128, 128, size=(50, 48), dtype=np.int8)
    outputs = run_host(result["exe"], inputs, output_size=7, workdir=tmp_path / "run")
    np.testing.assert_array_equal(outputs, toy_reference(weights, bias, inputs))


def test_avr_build_outputs_and_sizes(uno, tmp_path):
    weights, bias = random_toy(5, 32, 6)
    sources = write_toy_model(tmp_path / "model", weights, bias, bias_in_eeprom=True)
    result = build(uno, sources, tmp_path / "out")
    assert result["hex"].read_text().startswith(":")
    assert result["eep"].exists()
    size = result["size"]
    assert size["eeprom"] == 6                      # the EEMEM bias table
    assert size["flash_bytes"] == _objdump_flash_bytes(result["elf"])
    assert size["text"] >= 32 * 6                   # at least the PROGMEM weights
    assert size["sram_static_bytes"] >= 32 + 6      # input + output buffers


def test_eep_only_when_eeprom_used(uno, tmp_path):
    weights, bias = random_toy(5, 16, 4)
    sources = write_toy_model(tmp_path / "model", weights, bias)
    result = build(uno, sources, tmp_path / "out")
    assert result["size"]["eeprom"] == 0 and "eep" not in result


def test_reproducible_hex(uno, tmp_path):
    weights, bias = random_toy(6, 40, 5)
    sources = write_toy_model(tmp_path / "model", weights, bias, bias_in_eeprom=True)
    first = build(uno, sources, tmp_path / "a")
    # Same model written to another directory (as a cache work dir would) and built elsewhere.
    moved = write_toy_model(tmp_path / "elsewhere" / "model", weights, bias, bias_in_eeprom=True)
    second = build(uno, moved, tmp_path / "b")
    assert first["hex"].read_bytes() == second["hex"].read_bytes()
    assert first["eep"].read_bytes() == second["eep"].read_bytes()
    weights[0, 0] ^= 1   # and the hex does depend on the model
    changed = write_toy_model(tmp_path / "model2", weights, bias, bias_in_eeprom=True)
    assert build(uno, changed, tmp_path / "c")["hex"].read_bytes() != first["hex"].read_bytes()


def test_budget_error_reports_flash_shortfall(uno, tmp_path):
    weights, bias = random_toy(7, 8, 2)
    sources = write_toy_model(tmp_path / "model", weights, bias, padding_bytes=31500)
    with pytest.raises(BudgetError) as err:
        build(uno, sources, tmp_path / "out")
    limit = uno["memories"]["flash"]["size"] - uno["memories"]["flash"]["reserved"]
    expected = _objdump_flash_bytes(tmp_path / "out" / "firmware.elf") - limit
    assert expected > 0
    assert err.value.shortfalls == {"flash": expected}
    assert f"short by {expected} bytes" in str(err.value)


def test_linker_overflow_becomes_budget_error(uno, tmp_path):
    weights, bias = random_toy(7, 8, 2)
    fits = write_toy_model(tmp_path / "small", weights, bias, padding_bytes=100)
    base = build(uno, fits, tmp_path / "small_out")["size"]["flash_bytes"] - 100
    sources = write_toy_model(tmp_path / "model", weights, bias, padding_bytes=40000)
    with pytest.raises(BudgetError) as err:
        build(uno, sources, tmp_path / "out")
    limit = uno["memories"]["flash"]["size"] - uno["memories"]["flash"]["reserved"]
    expected = base + 40000 - limit   # plus a few bytes of code reading the second table
    assert expected <= err.value.shortfalls["flash"] <= expected + 32
    assert set(err.value.shortfalls) == {"flash"}


def test_missing_compiler_names_apt_packages(uno, tmp_path):
    target = copy.deepcopy(uno)
    target["toolchain"]["cc"] = "avr-gcc-not-installed"
    weights, bias = random_toy(1, 4, 2)
    with pytest.raises(ToolchainError) as err:
        build(target, write_toy_model(tmp_path / "m", weights, bias), tmp_path / "out")
    assert "avr-gcc-not-installed" in str(err.value)
    assert "apt-get install gcc-avr avr-libc binutils-avr" in str(err.value)


def test_compiler_error_is_reported(uno, tmp_path):
    weights, bias = random_toy(1, 4, 2)
    header, source = write_toy_model(tmp_path / "m", weights, bias)
    source.write_text(source.read_text() + "\nint broken(void) { return undeclared_name; }\n")
    with pytest.raises(ToolchainError) as err:
        build(uno, [header, source], tmp_path / "out")
    assert "undeclared_name" in str(err.value)
    assert "edgebuild_model.c" in str(err.value)


def test_warnings_are_errors(uno, tmp_path):
    weights, bias = random_toy(1, 4, 2)
    header, source = write_toy_model(tmp_path / "m", weights, bias)
    source.write_text(source.read_text() + "\nint unused_param(int x) { return 1; }\n")
    with pytest.raises(ToolchainError, match="unused"):
        build(uno, [header, source], tmp_path / "out")


def test_split_linker_flag_is_a_config_error(uno, tmp_path):
    target = copy.deepcopy(uno)
    target["toolchain"]["ldflags"] = ["-mmcu=atmega328p", "-Wl", "--gc-sections"]
    weights, bias = random_toy(1, 4, 2)
    with pytest.raises(ConfigError, match="toolchain.ldflags"):
        build(target, write_toy_model(tmp_path / "m", weights, bias), tmp_path / "out")
