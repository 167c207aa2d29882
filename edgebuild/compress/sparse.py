"""Compact storage of sparse int8 weights, read in place by the generated kernels.

Dense layers (``encode``), one int8 table, row by row for each output::

    n_lo, n_hi                 uint16 count of entries in this row (little endian)
    (gap, weight) * n          gap: uint8 advance of the input index (from 0 for the first
                               entry of a row); weight: int8. A gap over 255 is split with
                               (255, 0) filler entries, which multiply by zero.

So a row with k non-zeros costs 2 + 2k bytes (plus a filler per 255 skipped inputs).

Convolutions (``encode_conv``; weights (CO, C/g, KH, KW)), per output channel and, within it, per
input channel of its group::

    m                          uint8 count of non-zero taps of this (output, input) channel pair
    (tap, weight) * m          tap: uint8 index ky * KW + kx of the tap in the window (at most
                               255 taps per window, checked by the code generator); weight: int8

So an output channel with k non-zeros costs C/g + 2k bytes. The tap index (not an input offset)
lets the kernel read interior windows in place through a per-layer offset table and border windows
from the same zero-point-filled patch as the dense kernel, with identical padding semantics.

Either encoding is used only when it is smaller than the dense table (density below about 1/2).
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


def encode_conv(w: np.ndarray) -> np.ndarray:
    """Encode int8 conv weights (CO, CPG, KH, KW) in the per-channel tap format above."""
    w = np.asarray(w, dtype=np.int8)
    co, cpg = w.shape[:2]
    taps = w.reshape(co, cpg, -1)
    if taps.shape[2] > 256:
        raise ValueError(f"a window of {taps.shape[2]} taps does not fit the 8-bit tap index")
    out = []
    for o in range(co):
        for c in range(cpg):
            nz = np.flatnonzero(taps[o, c])
            out.append(len(nz))
            for k in nz:
                out += [int(k), int(taps[o, c, k])]
    return np.array(out, dtype=np.int64).astype(np.uint8).view(np.int8)


def decode_conv(enc: np.ndarray, shape: tuple[int, int, int, int]) -> np.ndarray:
    """Inverse of :func:`encode_conv` for conv weights of ``shape``."""
    b = np.asarray(enc).view(np.uint8)
    co, cpg, kh, kw = shape
    w = np.zeros((co, cpg, kh * kw), dtype=np.int8)
    k = 0
    for o in range(co):
        for c in range(cpg):
            m, k = int(b[k]), k + 1
            for _ in range(m):
                w[o, c, b[k]] = np.int8(b[k + 1].view(np.int8))
                k += 2
    return w.reshape(shape)


def _conv_bytes(nz: np.ndarray) -> int:
    return int(nz.shape[0] * nz.shape[1] + 2 * nz.sum())


def device_weights(w: np.ndarray) -> np.ndarray:
    """The table a layer's int8 weights are stored as: encoded when smaller, else ``w``.

    2-D weights (dense layers) use :func:`encode`, 4-D weights (convolutions) :func:`encode_conv`.
    """
    if w.ndim == 4:
        return encode_conv(w) if _conv_bytes(w != 0) < w.size else w
    if w.ndim != 2 or np.count_nonzero(w) * 2 + 2 * w.shape[0] >= w.size:
        return w
    enc = encode(w)
    return enc if enc.size < w.size else w


def stored_bytes(w: np.ndarray) -> int:
    """Bytes :func:`device_weights` stores for ``w`` (the float or int8 zero pattern is what counts)."""
    nz = np.asarray(w) != 0
    if nz.ndim == 4:
        return min(int(nz.size), _conv_bytes(nz))
    if nz.ndim != 2:
        return int(nz.size)
    n = nz.sum() * 2 + 2 * nz.shape[0]
    if n >= nz.size:
        return int(nz.size)
    return int(min(nz.size, device_weights(nz.astype(np.int8)).size))
