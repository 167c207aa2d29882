"""Sliding-window helpers for the numpy references (float calibration and int8 golden model)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def padded(x: np.ndarray, geom: dict, out_hw: tuple[int, int], value) -> np.ndarray:
    """Pad NCHW ``x`` by the geometry's pads (plus any ceil-mode overhang) with ``value``."""
    kh, kw = geom["kernel"]
    sh, sw = geom["strides"]
    dh, dw = geom["dilations"]
    pt, pl, pb, pr = geom["pads"]
    h, w = x.shape[2], x.shape[3]
    need_h = (out_hw[0] - 1) * sh + (kh - 1) * dh + 1
    need_w = (out_hw[1] - 1) * sw + (kw - 1) * dw + 1
    pb = max(pb, need_h - h - pt)
    pr = max(pr, need_w - w - pl)
    return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=value)


def windows(xp: np.ndarray, geom: dict, out_hw: tuple[int, int]) -> np.ndarray:
    """View of padded ``xp`` as (N, C, OH, OW, KH, KW) windows (strided, no copy)."""
    kh, kw = geom["kernel"]
    sh, sw = geom["strides"]
    dh, dw = geom["dilations"]
    v = sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    return v[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :out_hw[0], :out_hw[1]]


def valid_counts(in_hw: tuple[int, int], geom: dict, out_hw: tuple[int, int],
                 include_pad: bool) -> np.ndarray:
    """(OH, OW) number of window taps inside the input (or inside input+pads if include_pad)."""
    ones = np.ones((1, 1) + tuple(in_hw), dtype=np.int64)
    if include_pad:
        pt, pl, pb, pr = geom["pads"]
        ones = np.pad(ones, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=1)
        geom = dict(geom, pads=[0, 0, 0, 0])
    return windows(padded(ones, geom, out_hw, 0), geom, out_hw).sum(axis=(-1, -2))[0, 0]


def conv_sum(x: np.ndarray, w: np.ndarray, geom: dict, groups: int, out_hw) -> np.ndarray:
    """Grouped 2-D cross-correlation in float64 (exact for integer inputs below 2**53).

    ``x`` is already padded (N, C, Hp, Wp); ``w`` is (CO, C/groups, KH, KW). Returns (N, CO, OH, OW).
    """
    v = windows(x, geom, out_hw)
    n, co = x.shape[0], w.shape[0]
    cpg, opg = w.shape[1], co // groups
    out = np.empty((n, co) + tuple(out_hw), dtype=np.float64)
    for g in range(groups):
        cols = v[:, g * cpg:(g + 1) * cpg].transpose(0, 2, 3, 1, 4, 5).reshape(
            n, out_hw[0], out_hw[1], -1)
        wg = w[g * opg:(g + 1) * opg].reshape(opg, -1).astype(np.float64)
        out[:, g * opg:(g + 1) * opg] = (cols.astype(np.float64) @ wg.T).transpose(0, 3, 1, 2)
    return out
