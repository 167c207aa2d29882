"""AveragePool (N-d): strides, pads, auto_pad, ceil_mode, count_include_pad, dilations."""

from __future__ import annotations

import dataclasses

import numpy as np

from ._common import TensorInfo, float_only, io_cost, numel, pool_window, taps

OP_TYPE = "AveragePool"
C_TEMPLATE = "avgpool2d"


def infer(node, ins, opset):
    """(N, C, *out) in the input dtype."""
    float_only(node, ins)
    return [TensorInfo((*ins[0].shape[:2], *pool_window(node, ins[0].shape).out), ins[0].dtype)]


def _window_sum(x, win):
    total = None
    for view in taps(x, win, 0):
        total = view.astype(np.float64) if total is None else total + view
    return total


def run(node, xs, ctx):
    """Window sums divided by the element count (explicit padding counted if asked)."""
    x = xs[0]
    win = pool_window(node, x.shape)
    nd = len(win.kernel)
    total = _window_sum(x, win)
    ones = np.ones((1, 1, *x.shape[2:]))
    if node.attrs.get("count_include_pad", 0):
        ones = np.pad(ones, [(0, 0), (0, 0), *zip(win.pads_begin, win.pads_end)], constant_values=1)
        win = dataclasses.replace(win, pads_begin=(0,) * nd, pads_end=(0,) * nd)
    return [(total / _window_sum(ones, win)).astype(x.dtype)]


def cost(node, ins, outs):
    """One add per window element."""
    return io_cost(ins, outs, numel(outs[0].shape) * numel(node.attrs["kernel_shape"]))
