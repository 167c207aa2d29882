"""Sigmoid: 1 / (1 + exp(-x)), computed without overflow."""

from __future__ import annotations

import numpy as np

from ._common import elementwise_cost as cost  # noqa: F401  (the registry reads it)
from ._common import float_only, unary_infer

OP_TYPE = "Sigmoid"
C_TEMPLATE = "sigmoid"
ACTIVATION = True


def infer(node, ins, opset):
    """Same shape and dtype (float only)."""
    float_only(node, ins)
    return unary_infer(node, ins, opset)


def run(node, xs, ctx):
    """Sigmoid of the input."""
    return [activate(xs[0], node.attrs)]


def activate(x, attrs):
    """exp(min(x,0)) / (1 + exp(-|x|)) is the sigmoid for both signs and never overflows."""
    e = np.exp(-np.abs(x))
    return (np.where(x >= 0, 1, e) / (1 + e)).astype(x.dtype, copy=False)
