"""Softmax. Opset >= 13: along 'axis' (default -1). Before 13: the input is viewed as 2-D at
'axis' (default 1) and normalised over the flattened trailing part."""

from __future__ import annotations

import numpy as np

from ._common import along_softmax_axis, io_cost, numel
from ._common import softmax_infer as infer  # noqa: F401  (the registry reads it)

OP_TYPE = "Softmax"
C_TEMPLATE = "softmax"


def run(node, xs, ctx):
    """exp(x - max) / sum, over the opset's axis semantics."""
    return [along_softmax_axis(node, xs[0], ctx.opset, _softmax)]


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(x.dtype, copy=False)


def cost(node, ins, outs):
    """About three operations per element (max, exp, divide)."""
    return io_cost(ins, outs, 3 * numel(ins[0].shape))
