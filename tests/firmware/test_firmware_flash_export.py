"""avrdude command line, flashing errors and the Arduino library export."""

import subprocess

import pytest
from toymodel import random_toy, write_toy_model

from edgebuild.errors import ToolchainError
from edgebuild.firmware import avrdude_command, export_arduino, flash

ARDUINO_SHIM_H = """\
#pragma once
#include <stdint.h>
class HardwareSerial {
public:
  void begin(unsigned long baud);
  void print(const char *s);
  void println(int v);
  void println(long v);
  void println(unsigned long v);
};
extern HardwareSerial Serial;
unsigned long micros(void);
"""

ARDUINO_SHIM_CPP = """\
#include "Arduino.h"
HardwareSerial Serial;
void HardwareSerial::begin(unsigned long) {}
void HardwareSerial::print(const char *) {}
void HardwareSerial::println(int) {}
void HardwareSerial::println(long) {}
void HardwareSerial::println(unsigned long) {}
unsigned long micros(void) { return 0; }
void setup(void);
void loop(void);
int main(void) { setup(); for (;;) loop(); }
"""


def test_avrdude_command_from_target(uno, tmp_path):
    cmd = avrdude_command(uno, tmp_path / "fw.hex", port="/dev/ttyACM0")
    assert cmd == ["avrdude", "-p", "m328p", "-c", "arduino", "-P", "/dev/ttyACM0",
                   "-b", "115200", "-D", "-U", f"flash:w:{tmp_path / 'fw.hex'}:i"]


def test_avrdude_command_overrides_and_eeprom(uno, tmp_path):
    cmd = avrdude_command(uno, tmp_path / "fw.hex", port="usb", eep=tmp_path / "fw.eep",
                          programmer="usbasp", baud=19200)
    assert cmd[cmd.index("-c") + 1] == "usbasp"
    assert cmd[cmd.index("-b") + 1] == "19200"
    assert cmd[-2:] == ["-U", f"eeprom:w:{tmp_path / 'fw.eep'}:i"]


def test_flash_failure_is_toolchain_error(uno, tmp_path):
    hex_file = tmp_path / "fw.hex"
    hex_file.write_text(":00000001FF\n")
    with pytest.raises(ToolchainError, match="avrdude failed"):
        flash(uno, hex_file, port=str(tmp_path / "no-such-port"), timeout_s=60)


def test_flash_without_avrdude(uno, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match="apt-get install avrdude"):
        flash(uno, tmp_path / "fw.hex", port="/dev/ttyACM0")


def test_export_arduino_example_compiles(uno, tmp_path):
    """Library layout, then: src/*.c with avr-gcc and the .ino as C++ (against a minimal
    Arduino.h shim) with avr-g++, linked into one ELF."""
    weights, bias = random_toy(2, 16, 3)
    sources = write_toy_model(tmp_path / "model", weights, bias)
    lib = export_arduino(sources, tmp_path / "libs", name="toy_net", version="1.2.3",
                         target=uno)
    props = dict(line.split("=", 1) for line in
                 (lib / "library.properties").read_text().splitlines())
    assert props["name"] == "toy_net" and props["version"] == "1.2.3"
    assert props["architectures"] == "avr"
    ino = lib / "examples" / "toy_net" / "toy_net.ino"
    assert "#include <edgebuild_model.h>" in ino.read_text()
    assert sorted(p.name for p in (lib / "src").iterdir()) == ["edgebuild_model.c",
                                                               "edgebuild_model.h"]
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "Arduino.h").write_text(ARDUINO_SHIM_H)
    (shim / "shim.cpp").write_text(ARDUINO_SHIM_CPP)
    (shim / "sketch.cpp").write_text(ino.read_text())
    mcu = f"-mmcu={uno['mcu']}"
    objs = []
    for src, compiler in [(lib / "src" / "edgebuild_model.c", "avr-gcc"),
                          (shim / "sketch.cpp", "avr-g++"), (shim / "shim.cpp", "avr-g++")]:
        obj = tmp_path / (src.stem + ".o")
        subprocess.run([compiler, mcu, "-Os", "-Wall", "-Werror", f"-I{lib / 'src'}",
                        f"-I{shim}", "-c", str(src), "-o", str(obj)], check=True)
        objs.append(str(obj))
    subprocess.run(["avr-gcc", mcu, *objs, "-o", str(tmp_path / "example.elf")], check=True)
    assert (tmp_path / "example.elf").stat().st_size > 0
