"""Squeeze: drop size-1 axes (given ones, or all); 'axes' attribute before 13, input from 13."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo, const_input, unsupported

OP_TYPE = "Squeeze"
C_TEMPLATE = None  # a view
RESHAPE = True


def _axes(node, ins_or_xs, opset, shape, static):
    if opset < 13:
        axes = node.attrs.get("axes")
    elif static:
        axes = const_input(node, ins_or_xs, 1, "axes")
    else:
        axes = ins_or_xs[1] if len(ins_or_xs) > 1 else None
    if axes is None:
        return [i for i, d in enumerate(shape) if d == 1]
    axes = sorted({int(a) % len(shape) for a in np.asarray(axes).reshape(-1)})
    if any(shape[a] != 1 for a in axes):
        raise unsupported(node, f"squeezing axes {axes} of shape {list(shape)}",
                          "only squeeze size-1 axes")
    return axes


def infer(node, ins, opset):
    """Input shape without the squeezed axes."""
    s = ins[0].shape
    axes = _axes(node, ins, opset, s, True)
    return [TensorInfo(tuple(d for i, d in enumerate(s) if i not in axes), ins[0].dtype)]


def run(node, xs, ctx):
    """Reshape without the squeezed axes."""
    x = xs[0]
    axes = _axes(node, xs, ctx.opset, x.shape, False)
    return [x.reshape(tuple(d for i, d in enumerate(x.shape) if i not in axes))]


def cost(node, ins, outs):
    """A view: nothing computed or moved."""
    return {"macs": 0, "bytes_read": 0, "bytes_written": 0}
