"""MatMul with numpy semantics (1-D promotion, batch broadcasting)."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo, broadcast, io_cost, numel, same_dtype, unsupported

OP_TYPE = "MatMul"
C_TEMPLATE = "dense"


def _shape(node, a, b):
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    if not a or not b or a2[-1] != b2[-2]:
        raise unsupported(node, f"shapes {list(a)} x {list(b)}", "fix the operands' shapes")
    out = (*broadcast(node, a2[:-2], b2[:-2]), a2[-2], b2[-1])
    if len(b) == 1:
        out = out[:-1]
    if len(a) == 1:
        out = out[:-2] + out[-1:] if len(b) != 1 else out[:-1]
    return out, a2[-1]


def infer(node, ins, opset):
    """Numpy matmul shape rule."""
    return [TensorInfo(_shape(node, ins[0].shape, ins[1].shape)[0], same_dtype(node, ins[:2]))]


def run(node, xs, ctx):
    """np.matmul."""
    return [np.matmul(xs[0], xs[1])]


def cost(node, ins, outs):
    """MACs = output elements x inner dimension."""
    out, k = _shape(node, ins[0].shape, ins[1].shape)
    return io_cost(ins, outs, numel(out) * k)
