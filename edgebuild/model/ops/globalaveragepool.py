"""GlobalAveragePool: mean over all spatial axes, kept as size-1 axes."""

from __future__ import annotations

from ._common import TensorInfo, float_only, io_cost, numel

OP_TYPE = "GlobalAveragePool"
C_TEMPLATE = "globalavgpool"


def infer(node, ins, opset):
    """(N, C, 1, ..., 1)."""
    float_only(node, ins)
    s = ins[0].shape
    return [TensorInfo((*s[:2], *[1] * (len(s) - 2)), ins[0].dtype)]


def run(node, xs, ctx):
    """Mean over axes 2.."""
    x = xs[0]
    return [x.mean(axis=tuple(range(2, x.ndim)), keepdims=True, dtype=x.dtype)]


def cost(node, ins, outs):
    """One add per input element."""
    return io_cost(ins, outs, numel(ins[0].shape))
