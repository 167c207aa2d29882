"""GlobalMaxPool: max over all spatial axes, kept as size-1 axes."""

from __future__ import annotations

from ._common import TensorInfo, io_cost, numel

OP_TYPE = "GlobalMaxPool"
C_TEMPLATE = None


def infer(node, ins, opset):
    """(N, C, 1, ..., 1)."""
    s = ins[0].shape
    return [TensorInfo((*s[:2], *[1] * (len(s) - 2)), ins[0].dtype)]


def run(node, xs, ctx):
    """Max over axes 2.."""
    x = xs[0]
    return [x.max(axis=tuple(range(2, x.ndim)), keepdims=True)]


def cost(node, ins, outs):
    """One compare per input element."""
    return io_cost(ins, outs, numel(ins[0].shape))
