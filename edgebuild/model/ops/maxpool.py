"""MaxPool (N-d): kernel_shape, strides, pads, auto_pad, dilations, ceil_mode, optional Indices."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo, io_cost, numel, pool_window, taps

OP_TYPE = "MaxPool"
C_TEMPLATE = "maxpool2d"


def infer(node, ins, opset):
    """Y (N, C, *out) in the input dtype; Indices int64 of the same shape."""
    shape = (*ins[0].shape[:2], *pool_window(node, ins[0].shape).out)
    return [TensorInfo(shape, ins[0].dtype), TensorInfo(shape, "int64")][:len(node.outputs)]


def _lowest(dtype):
    return -np.inf if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min


def run(node, xs, ctx):
    """Max over each window's taps (padding never wins); Indices index the unpadded input."""
    x = xs[0]
    win = pool_window(node, x.shape)
    want_idx = len(node.outputs) > 1 and node.outputs[1]
    y, arg = None, None
    for t, view in enumerate(taps(x, win, _lowest(x.dtype))):
        if y is None:
            y = view.copy()
            arg = np.zeros(y.shape, np.int64) if want_idx else None
            continue
        if want_idx:
            arg[view > y] = t
        np.maximum(y, view, out=y)
    return [y, _indices(node, x.shape, win, arg)] if want_idx else [y]


def _indices(node, x_shape, win, arg):
    """Flat input index of each maximum, row-major (storage_order=0) or column-major (1)."""
    spatial = x_shape[2:]
    nd = len(spatial)
    k = np.unravel_index(arg, win.kernel)
    pos = []
    for i in range(nd):
        o = np.arange(win.out[i]).reshape([-1 if j == i else 1 for j in range(nd)])
        pos.append(o * win.strides[i] - win.pads_begin[i] + k[i] * win.dilations[i])
    if node.attrs.get("storage_order", 0):
        idx = np.ravel_multi_index(pos[::-1], spatial[::-1], mode="clip")
    else:
        idx = np.ravel_multi_index(pos, spatial, mode="clip")
    base = np.arange(x_shape[0] * x_shape[1]).reshape(x_shape[0], x_shape[1], *[1] * nd)
    return (base * numel(spatial) + idx).astype(np.int64)


def cost(node, ins, outs):
    """One compare per window element."""
    return io_cost(ins, outs, numel(outs[0].shape) * numel(node.attrs["kernel_shape"]))
