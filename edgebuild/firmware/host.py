"""Run a host-harness executable (see harness/host_main.c) over int8 input vectors."""

from __future__ import annotations

import subprocess
from pathlib import Path

from edgebuild.errors import VerificationError
from edgebuild.sim.vectors import prepare_vectors


def run_host(exe: Path, inputs, *, output_size: int, workdir: Path,
             timeout_s: float = 600):
    """Run ``exe`` on ``inputs`` (N, in_size) int8; return outputs (N, output_size) int8."""
    import numpy as np

    inputs, workdir = prepare_vectors(inputs, workdir)
    in_path, out_path = workdir / "host_inputs.bin", workdir / "host_outputs.bin"
    in_path.write_bytes(inputs.tobytes())
    proc = subprocess.run([str(exe), str(in_path), str(out_path)], capture_output=True,
                          text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise VerificationError(f"host model executable {exe} failed (exit {proc.returncode}): "
                                f"{proc.stderr.strip()[:2000]}",
                                fix="run the executable by hand to debug the generated C")
    outputs = np.fromfile(out_path, dtype=np.int8)
    if outputs.size != inputs.shape[0] * output_size:
        raise VerificationError(f"host model produced {outputs.size} bytes, expected "
                                f"{inputs.shape[0]} x {output_size}",
                                fix="check MODEL_OUTPUT_SIZE in the generated header")
    return outputs.reshape(inputs.shape[0], output_size)
