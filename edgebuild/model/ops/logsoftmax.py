"""LogSoftmax (PyTorch's log_softmax). Axis semantics as Softmax: opset >= 13 along 'axis'
(default -1); before 13 over the input flattened to 2-D at 'axis' (default 1)."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo, axis_of, float_only, io_cost, numel

OP_TYPE = "LogSoftmax"
C_TEMPLATE = "logsoftmax"


def infer(node, ins, opset):
    """Same shape and dtype."""
    float_only(node, ins)
    axis_of(node, node.attrs.get("axis", -1 if opset >= 13 else 1), len(ins[0].shape))
    return [TensorInfo(ins[0].shape, ins[0].dtype)]


def run(node, xs, ctx):
    """x - max - log(sum(exp(x - max))), over the opset's axis semantics."""
    x = xs[0]
    if ctx.opset >= 13:
        return [_log_softmax(x, axis_of(node, node.attrs.get("axis", -1), x.ndim))]
    axis = axis_of(node, node.attrs.get("axis", 1), x.ndim)
    return [_log_softmax(x.reshape(numel(x.shape[:axis]), -1), 1).reshape(x.shape)]


def _log_softmax(x, axis):
    z = x - x.max(axis=axis, keepdims=True)
    return (z - np.log(np.exp(z).sum(axis=axis, keepdims=True))).astype(x.dtype, copy=False)


def cost(node, ins, outs):
    """About three operations per element (max, exp, subtract)."""
    return io_cost(ins, outs, 3 * numel(ins[0].shape))
