"""The toy model built with SCons for the Uno, run in simavr, checked against numpy."""

import subprocess

import numpy as np
import pytest
from toymodel import random_toy, toy_reference, write_toy_model

from edgebuild.errors import VerificationError
from edgebuild.firmware import build
from edgebuild.sim import run_simavr

FAULT_SOURCE = __file__.replace("test_simavr.py", "fault_firmware.c")


def _run(target, elf, inputs, output_size, workdir, **kw):
    return run_simavr(elf, mcu=target["simulator"]["mcu"], f_cpu=target["f_cpu"],
                      inputs=inputs, output_size=output_size, baud=target["uart"]["baud"],
                      workdir=workdir, **kw)


@pytest.fixture(scope="module")
def toy_run(uno, tmp_path_factory):
    """64 -> 10 toy model, weights in PROGMEM, bias in EEPROM, 50 random vectors."""
    tmp = tmp_path_factory.mktemp("toy")
    weights, bias = random_toy(11, 64, 10)
    sources = write_toy_model(tmp / "model", weights, bias, bias_in_eeprom=True)
    fw = build(uno, sources, tmp / "fw")
    inputs = np.random.default_rng(12).integers(-128, 128, size=(50, 64), dtype=np.int8)
    result = _run(uno, fw["elf"], inputs, 10, tmp / "sim")
    return fw, result, toy_reference(weights, bias, inputs)


def test_outputs_match_numpy_byte_for_byte(toy_run):
    _, result, expected = toy_run
    assert result["outputs"].dtype == np.int8 and result["outputs"].shape == (50, 10)
    np.testing.assert_array_equal(result["outputs"], expected)


def test_eeprom_section_is_loaded(toy_run):
    """The bias is read with eeprom_read_byte: an unloaded EEPROM reads 0xFF (-1)."""
    fw, result, expected = toy_run
    assert fw["size"]["eeprom"] == 10 and fw["eep"].exists()
    wrong = np.clip(expected.astype(int) - 1, -128, 127)   # what the bias 0xFF would change
    assert not np.array_equal(result["outputs"], wrong)
    np.testing.assert_array_equal(result["outputs"], expected)


def test_device_cycles_match_simulator_counter(toy_run):
    _, result, _ = toy_run
    cycles = result["cycles"]
    assert cycles.shape == (50,) and cycles.dtype == np.int64
    # Timer1 on the device and simavr's own cycle counter measure the same window.
    np.testing.assert_array_equal(cycles, result["sim_cycles"])
    macs = 64 * 10
    # -Os C with a 32-bit accumulator: between the ~4 cycles/MAC asm floor and 120.
    assert (cycles > 4 * macs).all() and (cycles < 120 * macs).all()
    assert np.ptp(cycles) > 0   # data-dependent multiply/saturation timing is visible


def test_stack_high_water_mark(toy_run, uno):
    _, result, _ = toy_run
    assert 8 < result["stack_bytes"] < uno["memories"]["sram"]["size"]


def test_timer_overflows_are_counted(uno, tmp_path):
    """A model longer than 65536 cycles still reports the exact count."""
    weights, bias = random_toy(13, 256, 40)
    fw = build(uno, write_toy_model(tmp_path / "m", weights, bias), tmp_path / "fw")
    inputs = np.random.default_rng(14).integers(-128, 128, size=(3, 256), dtype=np.int8)
    result = _run(uno, fw["elf"], inputs, 40, tmp_path / "sim")
    np.testing.assert_array_equal(result["outputs"], toy_reference(weights, bias, inputs))
    assert (result["cycles"] > 65536 * 2).all()
    np.testing.assert_array_equal(result["cycles"], result["sim_cycles"])


def test_size_mismatch_is_reported(toy_run, uno, tmp_path):
    fw, _, _ = toy_run
    with pytest.raises(VerificationError, match="output 10 bytes, expected 64 / 11"):
        _run(uno, fw["elf"], np.zeros((1, 64), np.int8), 11, tmp_path)


def _fault_elf(uno, tmp_path, fault):
    elf = tmp_path / f"fault{fault}.elf"
    subprocess.run(["avr-gcc", f"-mmcu={uno['mcu']}", "-Os", f"-DFAULT={fault}",
                    FAULT_SOURCE, "-o", str(elf)], check=True)
    return elf


@pytest.mark.parametrize("fault, message", [
    (1, "corrupted frame from device: CRC"),
    (2, "hung"),
    (3, "halted"),
    (4, "device rejected the host frame for vector 0"),
    (5, "corrupted frame from device: byte 0x00"),
    (6, "endless loop with interrupts disabled"),
])
def test_faulty_firmware_raises_verification_error(uno, tmp_path, fault, message):
    elf = _fault_elf(uno, tmp_path, fault)
    with pytest.raises(VerificationError, match=message):
        _run(uno, elf, np.zeros((2, 4), np.int8), 2, tmp_path / "sim", max_cycles=2_000_000)


STACK_MODEL = """\
#include "edgebuild_model.h"
#include <stdint.h>
/* Keeps a 300-byte array on the stack, so the high-water mark must exceed 300 bytes. */
void model_run(const int8_t *input, int8_t *output)
{
    volatile int8_t scratch[300];
    for (uint16_t i = 0; i < sizeof scratch; i++) {
        scratch[i] = input[i % MODEL_INPUT_SIZE];
    }
    output[0] = scratch[299];
}
"""


def test_stack_mark_sees_a_large_frame(uno, tmp_path):
    weights, bias = random_toy(1, 8, 1)
    header, _ = write_toy_model(tmp_path / "m", weights, bias)   # reuse its header (8 -> 1)
    source = tmp_path / "m" / "stack_model.c"
    source.write_text(STACK_MODEL)
    fw = build(uno, [header, source], tmp_path / "fw")
    inputs = np.arange(16, dtype=np.int8).reshape(2, 8)
    result = _run(uno, fw["elf"], inputs, 1, tmp_path / "sim")
    np.testing.assert_array_equal(result["outputs"][:, 0], inputs[:, 299 % 8])
    assert 300 < result["stack_bytes"] < 300 + 64


def test_runner_is_cached_by_source_hash(monkeypatch, tmp_path):
    from edgebuild.sim.simavr import runner_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = runner_path()
    assert first.parent == tmp_path / "edgebuild" and first.name.startswith("simrunner-")
    mtime = first.stat().st_mtime_ns
    assert runner_path() == first and first.stat().st_mtime_ns == mtime
    assert [p.name for p in first.parent.iterdir()] == [first.name]   # no temp files left
