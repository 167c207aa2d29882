"""Softmax. Opset >= 13: along 'axis' (default -1). Before 13: the input is viewed as 2-D at
'axis' (default 1) and normalised over the flattened trailing part."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo, axis_of, float_only, io_cost, numel

OP_TYPE = "Softmax"
C_TEMPLATE = "softmax"


def infer(node, ins, opset):
    """Same shape and dtype."""
    float_only(node, ins)
    axis_of(node, node.attrs.get("axis", -1 if opset >= 13 else 1), len(ins[0].shape))
    return [TensorInfo(ins[0].shape, ins[0].dtype)]


def run(node, xs, ctx):
    """exp(x - max) / sum, over the opset's axis semantics."""
    x = xs[0]
    if ctx.opset >= 13:
        axis = axis_of(node, node.attrs.get("axis", -1), x.ndim)
        return [_softmax(x, axis)]
    axis = axis_of(node, node.attrs.get("axis", 1), x.ndim)
    flat = x.reshape(numel(x.shape[:axis]), -1)
    return [_softmax(flat, 1).reshape(x.shape)]


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(x.dtype, copy=False)


def cost(node, ins, outs):
    """About three operations per element (max, exp, divide)."""
    return io_cost(ins, outs, 3 * numel(ins[0].shape))
