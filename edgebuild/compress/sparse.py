"""Compact storage of sparse int8 dense-layer weights, read in place by the generated kernel.

Format (one int8 table, bytes reinterpreted as uint8 where noted), row by row for each output::

    n_lo, n_hi                 uint16 count of entries in this row (little endian)
    (gap, weight) * n          gap: uint8 advance of the input index (from 0 for the first
                               entry of a row); weight: int8. A gap over 255 is split with
                               (255, 0) filler entries, which multiply by zero.

So a row with k non-zeros costs 2 + 2k bytes (plus a filler per 255 skipped inputs). The
encoding is used only when it is smaller than the dense table (density below about 1/2).
"""

from __future__ import annotations

import numpy as np


def encode(w: np.ndarray) -> np.ndarray:
    """Encode an int8 matrix (out, in) in the row format above; returns an int8 array."""
    out = []
    for row in np.asarray(w, dtype=np.int8):
        entries, pos = [], 0
        for j in np.flatnonzero(row):
            gap = int(j) - pos
            while gap > 255:
                entries += [255, 0]
                gap -= 255
            entries += [gap, int(row[j])]
            pos = int(j)
        n = len(entries) // 2
        if n > 0xFFFF:
            raise ValueError(f"a row of {n} entries does not fit the 16-bit count")
        out += [n & 0xFF, n >> 8] + entries
    return np.array(out, dtype=np.int64).astype(np.uint8).view(np.int8)


def decode(enc: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`encode` for a matrix of ``shape``."""
    b = np.asarray(enc).view(np.uint8)
    w = np.zeros(shape, dtype=np.int8)
    k = 0
    for o in range(shape[0]):
        n = int(b[k]) | int(b[k + 1]) << 8
        k += 2
        pos = 0
        for _ in range(n):
            pos += int(b[k])
            if b[k + 1]:
                w[o, pos] = np.int8(b[k + 1].view(np.int8))
            k += 2
    return w


def device_weights(w: np.ndarray) -> np.ndarray:
    """The table a dense layer's int8 weights are stored as: encoded when smaller, else ``w``."""
    if w.ndim != 2 or np.count_nonzero(w) * 2 + 2 * w.shape[0] >= w.size:
        return w
    enc = encode(w)
    return enc if enc.size < w.size else w


def stored_bytes(w: np.ndarray) -> int:
    """Bytes :func:`device_weights` stores for ``w`` (the float or int8 zero pattern is what counts)."""
    nz = np.asarray(w) != 0
    if nz.ndim != 2:
        return int(nz.size)
    n = nz.sum() * 2 + 2 * nz.shape[0]
    if n >= nz.size:
        return int(nz.size)
    return int(min(nz.size, device_weights(nz.astype(np.int8)).size))
