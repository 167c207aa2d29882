"""Tanh."""

from __future__ import annotations

import numpy as np

from ._common import elementwise_cost as cost  # noqa: F401  (the registry reads it)
from ._common import float_only, unary_infer

OP_TYPE = "Tanh"
C_TEMPLATE = "tanh"
ACTIVATION = True


def infer(node, ins, opset):
    """Same shape and dtype (float only)."""
    float_only(node, ins)
    return unary_infer(node, ins, opset)


def activate(x, attrs):
    """np.tanh (also used for a fused ``post`` entry)."""
    return np.tanh(x)


def run(node, xs, ctx):
    """np.tanh."""
    return [activate(xs[0], node.attrs)]
