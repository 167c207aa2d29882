"""Run edgebuild device firmware in simavr through a small C runner linked with libsimavr.

The runner (simrunner.c) is compiled on first use into a cache directory keyed by the hash of
its sources, then reused. It loads the ELF (flash and .eeprom), drives the harness' UART
protocol (see firmware/harness/protocol.h) and writes outputs and cycle counts to a file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from edgebuild.errors import ToolchainError, VerificationError
from edgebuild.sim.vectors import prepare_vectors

RUNNER_SOURCE = Path(__file__).parent / "simrunner.c"
PROTOCOL_HEADER = Path(__file__).parent.parent / "firmware" / "harness" / "protocol.h"
SIMAVR_APT = "simavr libsimavr-dev libelf-dev gcc pkg-config"
# Per wait (ready frame, each reply): 2e9 cycles = 125 s of device time at 16 MHz.
DEFAULT_MAX_CYCLES = 2_000_000_000
EXIT_MESSAGES = {3: "protocol error", 4: "firmware hung (simulated-cycle timeout)",
                 5: "firmware crashed"}


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgebuild"


def _simavr_flags() -> tuple[list[str], list[str]]:
    pkg = shutil.which("pkg-config")
    if pkg:
        cflags = subprocess.run([pkg, "--cflags", "simavr"], capture_output=True, text=True)
        libs = subprocess.run([pkg, "--libs", "simavr"], capture_output=True, text=True)
        if cflags.returncode == 0 and libs.returncode == 0:
            return cflags.stdout.split(), libs.stdout.split() + ["-lelf"]
    return ["-I/usr/include/simavr"], ["-lsimavr", "-lelf"]


def runner_path() -> Path:
    """Path of the compiled runner, building it (atomically) if this source has not been built."""
    digest = hashlib.sha256(RUNNER_SOURCE.read_bytes() + PROTOCOL_HEADER.read_bytes())
    exe = _cache_dir() / f"simrunner-{digest.hexdigest()[:16]}"
    if exe.exists():
        return exe
    if shutil.which("gcc") is None:
        raise ToolchainError("gcc was not found on PATH (needed to build the simavr runner)",
                             fix=f"sudo apt-get install {SIMAVR_APT}")
    exe.parent.mkdir(parents=True, exist_ok=True)
    cflags, libs = _simavr_flags()
    fd, tmp = tempfile.mkstemp(prefix=exe.name + ".", dir=exe.parent)
    os.close(fd)
    cmd = ["gcc", "-O2", "-Wall", "-Wextra", f"-I{PROTOCOL_HEADER.parent}", *cflags,
           str(RUNNER_SOURCE), *libs, "-o", tmp]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        os.unlink(tmp)
        excerpt = "\n".join(proc.stderr.strip().splitlines()[:30])
        raise ToolchainError(f"cannot build the simavr runner:\n{excerpt}",
                             fix=f"sudo apt-get install {SIMAVR_APT}")
    os.chmod(tmp, 0o755)
    os.replace(tmp, exe)
    return exe


def run_simavr(elf: Path, *, mcu: str, f_cpu: int, inputs, output_size: int,
               baud: int, workdir: Path, timeout_s: float = 600,
               max_cycles: int = DEFAULT_MAX_CYCLES) -> dict:
    """Run ``inputs`` (N, in_size) int8 through the firmware ``elf`` in simavr.

    Returns {outputs (N, output_size) int8, cycles (N,) int64 measured by the device's Timer1,
    sim_cycles (N,) int64 counted by simavr over the same window, stack_bytes,
    wall_seconds, total_sim_cycles, sim_mhz}. ``baud`` is informational: the firmware sets
    its own UART rate and simavr paces bytes at it. ``max_cycles`` bounds every wait for the
    device; exceeding it, a crash, a checksum failure or a malformed frame raise
    VerificationError.
    """
    import numpy as np

    inputs, workdir = prepare_vectors(inputs, workdir)
    n, in_size = inputs.shape
    in_path, res_path = workdir / "sim_inputs.bin", workdir / "sim_results.bin"
    in_path.write_bytes(inputs.tobytes())
    res_path.unlink(missing_ok=True)
    cmd = [str(runner_path()), str(elf), mcu, str(int(f_cpu)), str(in_size), str(output_size),
           str(in_path), str(res_path), str(int(max_cycles))]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise VerificationError(f"simavr did not finish {n} vectors within {timeout_s} s "
                                f"(wall clock) for {elf}",
                                fix="raise timeout_s or run fewer vectors") from None
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        detail = "\n".join(ln for ln in proc.stderr.splitlines() if ln.startswith("simrunner:"))
        kind = EXIT_MESSAGES.get(proc.returncode, f"runner failed (exit {proc.returncode})")
        raise VerificationError(f"simavr run of {elf} ({mcu} @ {baud} baud): {kind}: "
                                f"{detail or proc.stderr.strip()[-2000:]}",
                                fix="check the firmware with the host harness and the "
                                    "numpy reference; rebuild it from clean sources")
    record = np.dtype([("out", np.int8, (output_size,)), ("cycles", "<u4"), ("sim", "<u8")])
    raw = res_path.read_bytes()
    body = np.frombuffer(raw, dtype=record, count=n)
    stack_bytes = int.from_bytes(raw[n * record.itemsize:][:4], "little")
    total = int.from_bytes(raw[n * record.itemsize + 4:][:8], "little")
    tail = raw[n * record.itemsize + 12:]
    n_layers = int.from_bytes(tail[:2], "little") if len(tail) >= 2 else 0
    layer_sums = np.frombuffer(tail[2:2 + 8 * n_layers], dtype="<u8").astype(np.int64)
    return {
        "outputs": body["out"].reshape(n, output_size).copy(),
        "cycles": body["cycles"].astype(np.int64),
        "sim_cycles": body["sim"].astype(np.int64),
        "stack_bytes": stack_bytes,
        "wall_seconds": wall,
        "total_sim_cycles": total,
        "sim_mhz": total / wall / 1e6 if wall > 0 else 0.0,
        # mean simulator cycles per model layer (empty unless the model code writes layer marks)
        "layer_cycles": (layer_sums / max(n, 1)).tolist(),
    }
