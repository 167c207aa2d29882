"""LogSoftmax (PyTorch's log_softmax). Axis semantics as Softmax: opset >= 13 along 'axis'
(default -1); before 13 over the input flattened to 2-D at 'axis' (default 1)."""

from __future__ import annotations

import numpy as np

from ._common import along_softmax_axis, io_cost, numel
from ._common import softmax_infer as infer  # noqa: F401  (the registry reads it)

OP_TYPE = "LogSoftmax"
C_TEMPLATE = "logsoftmax"


def run(node, xs, ctx):
    """x - max - log(sum(exp(x - max))), over the opset's axis semantics."""
    return [along_softmax_axis(node, xs[0], ctx.opset, _log_softmax)]


def _log_softmax(x, axis):
    z = x - x.max(axis=axis, keepdims=True)
    return (z - np.log(np.exp(z).sum(axis=axis, keepdims=True))).astype(x.dtype, copy=False)


def cost(node, ins, outs):
    """About three operations per element (max, exp, subtract)."""
    return io_cost(ins, outs, 3 * numel(ins[0].shape))
