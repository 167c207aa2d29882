"""PRelu: x if x >= 0 else slope * x (slope broadcast to x, e.g. per channel (C, 1, 1))."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo, broadcast, elementwise_cost, float_only, unsupported

OP_TYPE = "PRelu"
C_TEMPLATE = "prelu"


def infer(node, ins, opset):
    """Same shape and dtype as x; slope must broadcast to x."""
    float_only(node, ins)
    if broadcast(node, ins[0].shape, ins[1].shape) != ins[0].shape:
        raise unsupported(node, f"slope shape {list(ins[1].shape)} for input {list(ins[0].shape)}",
                          "use a slope that broadcasts to the input")
    return [TensorInfo(ins[0].shape, ins[0].dtype)]


def run(node, xs, ctx):
    """np.where(x < 0, slope * x, x)."""
    x, slope = xs
    return [np.where(x < 0, x * slope, x).astype(x.dtype, copy=False)]


def cost(node, ins, outs):
    """One multiply per element."""
    return elementwise_cost(node, ins, outs)
