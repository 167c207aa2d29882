"""Conv (N-d, groups incl. depthwise, strides, pads, dilations, auto_pad): im2col + matmul."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo, float_only, io_cost, numel, taps, unsupported, window

OP_TYPE = "Conv"
C_TEMPLATE = "conv2d"


def _geometry(node, x_shape, w_shape):
    kernel = tuple(node.attrs.get("kernel_shape") or w_shape[2:])
    if kernel != tuple(w_shape[2:]):
        raise unsupported(node, f"kernel_shape {list(kernel)} differing from the weights "
                          f"{list(w_shape[2:])}", "fix kernel_shape")
    return window(node, x_shape[2:], kernel)


def infer(node, ins, opset):
    """Output (N, M, *out) where M is the number of filters."""
    x, w = ins[0], ins[1]
    float_only(node, ins)
    g = node.attrs.get("group", 1)
    if len(x.shape) < 3 or len(w.shape) != len(x.shape):
        raise unsupported(node, f"input rank {len(x.shape)} with weight rank {len(w.shape)}",
                          "use (N, C, spatial...) inputs and matching weights")
    if x.shape[1] != w.shape[1] * g or w.shape[0] % g:
        raise unsupported(node, f"channels {x.shape[1]} vs weights {list(w.shape)} with "
                          f"group={g}", "fix the weights or the group attribute")
    if len(ins) > 2 and ins[2] is not None and ins[2].shape != (w.shape[0],):
        raise unsupported(node, f"bias shape {list(ins[2].shape)}",
                          f"use a bias of ({w.shape[0]},)")
    win = _geometry(node, x.shape, w.shape)
    return [TensorInfo((x.shape[0], w.shape[0], *win.out), x.dtype)]


def run(node, xs, ctx):
    """im2col by kernel taps into (N, g, Cg*K, P), then a batched matmul with (g, Mg, Cg*K)."""
    x, w = xs[0], xs[1]
    b = xs[2] if len(xs) > 2 else None
    g = node.attrs.get("group", 1)
    win = _geometry(node, x.shape, w.shape)
    n, c = x.shape[:2]
    m, k = w.shape[0], numel(win.kernel)
    cols = np.empty((n, c, k, *win.out), dtype=x.dtype)
    for i, view in enumerate(taps(x, win, 0)):
        cols[:, :, i] = view
    cols = cols.reshape(n, g, (c // g) * k, numel(win.out))
    y = np.matmul(w.reshape(1, g, m // g, -1), cols).reshape(n, m, *win.out)
    if b is not None:
        y += b.reshape(1, m, *([1] * len(win.out))).astype(y.dtype)
    return [y]


def cost(node, ins, outs):
    """MACs = output elements x (input channels per group x kernel size)."""
    w = ins[1].shape
    return io_cost(ins, outs, numel(outs[0].shape) * numel(w[1:]))
