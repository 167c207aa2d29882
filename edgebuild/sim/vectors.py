"""Test vectors handed to a device runner (simavr, QEMU, or the host harness)."""

from __future__ import annotations

from pathlib import Path


def prepare_vectors(inputs, workdir) -> tuple:
    """``inputs`` as a C-contiguous (N, in_size) int8 array, and ``workdir`` created; returns both.

    Raises ValueError for any other shape (a programming error, not a user's).
    """
    import numpy as np

    inputs = np.ascontiguousarray(inputs, dtype=np.int8)
    if inputs.ndim != 2:
        raise ValueError(f"inputs must be (N, in_size), got shape {inputs.shape}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    return inputs, workdir
