"""Firmware stage: SCons builds, host execution, flashing and Arduino export."""

from edgebuild.firmware.build import build
from edgebuild.firmware.flash import avrdude_command, export_arduino, flash
from edgebuild.firmware.host import run_host

__all__ = ["build", "run_host", "avrdude_command", "flash", "export_arduino"]
