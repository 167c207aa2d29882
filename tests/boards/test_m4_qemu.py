"""Cortex-M4 (netduinoplus2 in QEMU): generated memory map, toy model against numpy, exact
instruction counts, stack high-water mark, and the errors a user can meet."""

import copy
import re
import subprocess

import numpy as np
import pytest
from toymodel import HEADER, random_toy, toy_reference, write_toy_model

from edgebuild.errors import BudgetError, ConfigError, ToolchainError, VerificationError
from edgebuild.firmware import build
from edgebuild.sim import run_qemu


def _model(directory, n_in, n_out, body):
    """edgebuild_model.h/.c whose model_run is ``body`` (C statements)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "edgebuild_model.h").write_text(HEADER.format(n_in=n_in, n_out=n_out))
    source = directory / "edgebuild_model.c"
    source.write_text('#include "edgebuild_model.h"\n'
                      "void model_run(const int8_t *input, int8_t *output)\n"
                      f"{{\n    (void)input;\n    (void)output;\n{body}\n}}\n")
    return [directory / "edgebuild_model.h", source]


def _sections(elf):
    """{section: (vma, lma, size)} from objdump -h."""
    out = subprocess.run(["arm-none-eabi-objdump", "-h", str(elf)], capture_output=True,
                         text=True, check=True).stdout
    rows = re.findall(r"^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", out, re.M)
    return {name: (int(vma, 16), int(lma, 16), int(size, 16)) for name, size, vma, lma in rows}


def _symbols(elf):
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    return {parts[2]: int(parts[0], 16) for parts in map(str.split, out.splitlines())
            if len(parts) == 3}


@pytest.fixture(scope="module")
def toy(m4, tmp_path_factory):
    """200 -> 12 toy model; the bias is made a non-const global so it lives in .data (copied
    from flash at reset: wrong outputs if the start-up code does not copy it)."""
    tmp = tmp_path_factory.mktemp("m4")
    weights, bias = random_toy(31, 200, 12)
    sources = write_toy_model(tmp / "model", weights, bias)
    text = sources[1].read_text()
    assert "static const int8_t bias" in text
    sources[1].write_text(text.replace("static const int8_t bias", "int8_t bias"))
    fw = build(m4, sources, tmp / "fw")
    inputs = np.random.default_rng(32).integers(-128, 128, size=(40, 200), dtype=np.int8)
    result = run_qemu(fw["elf"], target=m4, inputs=inputs, output_size=12, workdir=tmp / "sim")
    return fw, result, toy_reference(weights, bias, inputs)


def test_outputs_match_numpy_byte_for_byte(toy):
    _, result, expected = toy
    assert result["outputs"].dtype == np.int8 and result["outputs"].shape == (40, 12)
    np.testing.assert_array_equal(result["outputs"], expected)


def test_linker_script_places_sections_per_target_memories(toy, m4):
    fw, _, _ = toy
    flash, sram = m4["memories"]["flash"], m4["memories"]["sram"]
    sec, sym = _sections(fw["elf"]), _symbols(fw["elf"])
    in_flash = range(flash["base"], flash["base"] + flash["size"])
    in_sram = range(sram["base"], sram["base"] + sram["size"])
    assert sec[".text"][0] == flash["base"]                       # vector table first
    assert sec[".data"][0] == sram["base"] and sec[".data"][1] in in_flash   # VMA SRAM, LMA flash
    assert sec[".data"][1] >= flash["base"] + sec[".text"][2]
    assert sec[".bss"][0] >= sec[".data"][0] + sec[".data"][2] and sec[".bss"][0] in in_sram
    assert sym["weights"] in in_flash and sym["bias"] in in_sram   # const -> flash, data -> SRAM
    assert sym["_estack"] == sram["base"] + sram["size"]
    assert fw["size"]["data"] >= 12 and fw["size"]["flash_bytes"] > 200 * 12


def test_memory_map_follows_the_target_file(m4, tmp_path):
    """Moving SRAM in the target moves the stack and .data: nothing is hard-coded."""
    moved = copy.deepcopy(m4)
    moved["memories"]["sram"].update(base=0x20010000, size=0x8000)
    weights, bias = random_toy(33, 16, 2)
    fw = build(moved, write_toy_model(tmp_path / "m", weights, bias), tmp_path / "fw")
    sym = _symbols(fw["elf"])
    assert sym["_estack"] == 0x20018000 and sym["_sdata"] == 0x20010000
    inputs = np.random.default_rng(34).integers(-128, 128, size=(4, 16), dtype=np.int8)
    result = run_qemu(fw["elf"], target=moved, inputs=inputs, output_size=2, workdir=tmp_path)
    np.testing.assert_array_equal(result["outputs"], toy_reference(weights, bias, inputs))


@pytest.mark.parametrize("nops", [1000, 3000])
def test_instruction_counts_are_exact(m4, tmp_path, nops):
    """model_run = `nops` NOPs + return; the harness' empty call is just the return."""
    body = f'    __asm__ volatile(".rept {nops}\\n\\tnop\\n\\t.endr");'
    fw = build(m4, _model(tmp_path / "m", 4, 1, body), tmp_path / "fw")
    result = run_qemu(fw["elf"], target=m4, inputs=np.zeros((3, 4), np.int8), output_size=1,
                      workdir=tmp_path)
    np.testing.assert_array_equal(result["instructions"], [nops] * 3)


def test_per_layer_instructions_split_the_model_at_its_layer_marks(m4, tmp_path):
    """model_run = 1000 NOPs, layer mark 0, 3000 NOPs, layer mark 1: the 'L' frame times each
    layer at its mark (a few instructions of call and timer read on top), and the layers add up
    to the whole-model count; firmware built without the hook reports no layers."""
    nops = '    __asm__ volatile(".rept {}\\n\\tnop\\n\\t.endr");\n'
    body = nops.format(1000) + "    eb_layer_done(0);\n" + nops.format(3000) + "    eb_layer_done(1);"
    sources = _model(tmp_path / "m", 4, 1, body)
    header = sources[0].read_text().replace("#define MODEL_OUTPUT_SIZE 1",
                                            "#define MODEL_OUTPUT_SIZE 1\n#define MODEL_LAYERS 2\n"
                                            "void eb_layer_done(uint8_t layer);")
    sources[0].write_text(header)
    defines = m4["toolchain"]["defines"]                 # as the firmware stage passes them
    assert defines["EB_LAYER_HOOK"] == "eb_layer_done"
    fw = build(m4, sources, tmp_path / "fw", defines=defines)
    result = run_qemu(fw["elf"], target=m4, inputs=np.zeros((3, 4), np.int8), output_size=1,
                      workdir=tmp_path / "sim")
    first, second = result["layer_instructions"]
    assert 1000 < first < 1000 + 30 and 3000 < second < 3000 + 30, result["layer_instructions"]
    assert abs(first + second - result["instructions"][0]) < 30

    sources[1].write_text(sources[1].read_text().replace("eb_layer_done", "(void)"))
    fw = build(m4, sources, tmp_path / "fw_plain")
    result = run_qemu(fw["elf"], target=m4, inputs=np.zeros((2, 4), np.int8), output_size=1,
                      workdir=tmp_path / "sim_plain")
    assert result["layer_instructions"] == [] and list(result["instructions"]) == [4000, 4000]


def test_long_runs_count_systick_wraps(m4, tmp_path):
    """4,000,001 instructions (ldr + 2,000,000 x subs/bne) span several 2^24-tick wraps."""
    body = ('    __asm__ volatile("ldr r0, =2000000\\n1:\\n\\tsubs r0, r0, #1\\n\\tbne 1b"'
            ' ::: "r0", "cc");')
    fw = build(m4, _model(tmp_path / "m", 4, 1, body), tmp_path / "fw")
    result = run_qemu(fw["elf"], target=m4, inputs=np.zeros((2, 4), np.int8), output_size=1,
                      workdir=tmp_path)
    assert result["device_ticks"][0] > 2 ** 24
    # Each wrap also runs the few instructions of the SysTick handler.
    assert (np.abs(result["instructions"] - 4_000_001) <= 10 * 2).all()


def test_stack_high_water_mark_sees_a_large_frame(m4, toy, tmp_path):
    _, small, _ = toy
    body = ("    volatile uint8_t frame[3000];\n"
            "    for (int i = 0; i < 3000; i++) frame[i] = (uint8_t)input[i % 4];\n"
            "    output[0] = (int8_t)frame[2999];")
    fw = build(m4, _model(tmp_path / "m", 4, 1, body), tmp_path / "fw")
    big = run_qemu(fw["elf"], target=m4, inputs=np.ones((1, 4), np.int8), output_size=1,
                   workdir=tmp_path)
    assert big["outputs"][0, 0] == 1
    assert 16 < small["stack_bytes"] < 1024
    assert 3000 < big["stack_bytes"] < 3000 + 1024


def test_sram_overflow_is_a_budget_error(m4, tmp_path):
    body = "    static int8_t arena[200000];\n    arena[input[0] & 0xff] = 1;\n    output[0] = arena[0];"
    with pytest.raises(BudgetError) as exc:
        build(m4, _model(tmp_path / "m", 4, 1, body), tmp_path / "fw")
    assert "sram" in exc.value.shortfalls and exc.value.field == "memories.sram.size"


def test_fault_is_reported_as_a_crash(m4, tmp_path):
    fw = build(m4, _model(tmp_path / "m", 4, 1, '    __asm__ volatile("udf #0");'),
               tmp_path / "fw")
    with pytest.raises(VerificationError, match="firmware crashed"):
        run_qemu(fw["elf"], target=m4, inputs=np.zeros((1, 4), np.int8), output_size=1,
                 workdir=tmp_path, timeout_s=20)


def test_hang_times_out(m4, tmp_path):
    fw = build(m4, _model(tmp_path / "m", 4, 1, "    for (;;) __asm__ volatile(\"\");"),
               tmp_path / "fw")
    with pytest.raises(VerificationError, match="no reply from the device"):
        run_qemu(fw["elf"], target=m4, inputs=np.zeros((1, 4), np.int8), output_size=1,
                 workdir=tmp_path, timeout_s=2)


def test_model_size_mismatch(toy, m4, tmp_path):
    fw, _, _ = toy
    with pytest.raises(VerificationError, match="output 12 bytes, expected 200 / 13"):
        run_qemu(fw["elf"], target=m4, inputs=np.zeros((1, 200), np.int8), output_size=13,
                 workdir=tmp_path)


def test_missing_arm_toolchain_names_the_apt_packages(m4_target, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    weights, bias = random_toy(35, 8, 2)
    with pytest.raises(ToolchainError) as exc:
        build(m4_target, write_toy_model(tmp_path / "m", weights, bias), tmp_path / "fw")
    message = str(exc.value)
    assert exc.value.field == "toolchain.cc" and "arm-none-eabi-gcc" in message
    assert "gcc-arm-none-eabi" in message and "libnewlib-arm-none-eabi" in message


def test_missing_qemu_names_the_apt_package(m4_target, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError) as exc:
        run_qemu(tmp_path / "fw.elf", target=m4_target, inputs=np.zeros((1, 4), np.int8),
                 output_size=1, workdir=tmp_path)
    assert exc.value.field == "simulator.executable" and "qemu-system-arm" in str(exc.value)


def test_target_without_uart_driver_is_a_config_error(m4, tmp_path):
    broken = copy.deepcopy(m4)
    del broken["uart"]["driver"]
    weights, bias = random_toy(36, 8, 2)
    with pytest.raises(ConfigError) as exc:
        build(broken, write_toy_model(tmp_path / "m", weights, bias), tmp_path / "fw")
    assert exc.value.field == "uart.driver" and "netduinoplus2.yaml" in str(exc.value)
