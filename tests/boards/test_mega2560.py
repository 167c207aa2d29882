"""Arduino Mega 2560: the toy model in simavr against numpy, and the 64 KiB PROGMEM window."""

import copy

import numpy as np
import pytest
import yaml
from toymodel import random_toy, toy_reference, write_toy_model

from edgebuild.errors import BudgetError
from edgebuild.firmware import avrdude_command, build
from edgebuild.sim import run_simavr
from edgebuild.targets import Target


def _sim(target, elf, inputs, output_size, workdir):
    return run_simavr(elf, mcu=target["simulator"]["mcu"], f_cpu=target["f_cpu"], inputs=inputs,
                      output_size=output_size, baud=target["uart"]["baud"], workdir=workdir)


def test_target_file_is_valid_and_describes_the_2560():
    from pathlib import Path

    data = yaml.safe_load((Path(__file__).parents[2] / "targets" / "mega2560.yaml").read_text())
    target = Target(**data)
    assert target.mcu == "atmega2560" and target.f_cpu == 16_000_000
    assert target.memories["flash"].usable == 256 * 1024 - 8 * 1024
    assert target.memories["sram"].size == 8 * 1024 and target.memories["eeprom"].size == 4096
    assert target.memories["flash"].data_window == 65536


def test_avrdude_uses_the_stk500v2_bootloader(mega, tmp_path):
    cmd = " ".join(avrdude_command(mega, tmp_path / "fw.hex", port="/dev/ttyACM0"))
    assert "-p m2560" in cmd and "-c wiring" in cmd and "-b 115200" in cmd


@pytest.fixture(scope="module")
def toy_run(mega, tmp_path_factory):
    """200 -> 12 toy model, weights in PROGMEM, bias in EEPROM, 30 random vectors."""
    tmp = tmp_path_factory.mktemp("mega")
    weights, bias = random_toy(21, 200, 12)
    fw = build(mega, write_toy_model(tmp / "model", weights, bias, bias_in_eeprom=True),
               tmp / "fw")
    inputs = np.random.default_rng(22).integers(-128, 128, size=(30, 200), dtype=np.int8)
    return fw, _sim(mega, fw["elf"], inputs, 12, tmp / "sim"), toy_reference(weights, bias, inputs)


def test_outputs_match_numpy_byte_for_byte(toy_run):
    _, result, expected = toy_run
    assert result["outputs"].shape == (30, 12)
    np.testing.assert_array_equal(result["outputs"], expected)


def test_timer1_cycles_and_stack_on_the_2560(toy_run, mega):
    fw, result, _ = toy_run
    assert fw["size"]["eeprom"] == 12
    # Timer1 in the firmware and simavr's own counter time the same window (GPIOR0 markers).
    np.testing.assert_array_equal(result["cycles"], result["sim_cycles"])
    assert (result["cycles"] > 4 * 200 * 12).all()
    # 3-byte return addresses on the 2560: the stack is used, and far below its 8 KiB of SRAM.
    assert 8 < result["stack_bytes"] < mega["memories"]["sram"]["size"] // 4


def test_progmem_beyond_64k_is_rejected_with_a_clear_message(mega, tmp_path):
    weights, bias = random_toy(23, 32, 4)
    sources = write_toy_model(tmp_path / "model", weights, bias, padding_bytes=70_000)
    with pytest.raises(BudgetError) as exc:
        build(mega, sources, tmp_path / "fw")
    err = exc.value
    assert err.field == "memories.flash.data_window" and err.file == "targets/mega2560.yaml"
    assert "beyond the first 65,536 bytes" in str(err) and "pgm_read" in str(err)
    over = err.shortfalls["flash_window"]
    assert 70_000 - 65_536 < over < 70_000 - 65_536 + 4096   # padding + weights + vectors/code


def test_the_window_is_real_and_data_inside_it_works(mega, tmp_path):
    """Inside 64 KiB the PROGMEM model is exact; past it (check disabled) pgm_read_* read junk."""
    weights, bias = random_toy(24, 32, 4)
    inputs = np.random.default_rng(25).integers(-128, 128, size=(8, 32), dtype=np.int8)
    expected = toy_reference(weights, bias, inputs)

    inside = build(mega, write_toy_model(tmp_path / "in", weights, bias, padding_bytes=60_000),
                   tmp_path / "fw_in")
    assert inside["size"]["flash_bytes"] > 60_000
    np.testing.assert_array_equal(_sim(mega, inside["elf"], inputs, 4, tmp_path / "s1")["outputs"],
                                  expected)

    unchecked = copy.deepcopy(mega)
    del unchecked["memories"]["flash"]["data_window"]
    past = build(unchecked, write_toy_model(tmp_path / "out", weights, bias,
                                            padding_bytes=70_000), tmp_path / "fw_out")
    got = _sim(mega, past["elf"], inputs, 4, tmp_path / "s2")["outputs"]
    assert not np.array_equal(got, expected)
