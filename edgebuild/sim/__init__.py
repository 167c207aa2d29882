"""Simulation stage: run firmware on simulated devices."""

from edgebuild.sim.qemu import run_qemu
from edgebuild.sim.simavr import run_simavr

__all__ = ["run_simavr", "run_qemu"]
