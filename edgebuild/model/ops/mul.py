"""Mul: elementwise with multidirectional (numpy) broadcasting."""

from __future__ import annotations

import numpy as np

from ._common import elementwise_cost as cost  # noqa: F401  (the registry reads it)
from ._common import elementwise_infer

OP_TYPE = "Mul"
C_TEMPLATE = "mul"


def infer(node, ins, opset):
    """Broadcast shape, common dtype."""
    return elementwise_infer(node, ins)


def run(node, xs, ctx):
    """np.multiply(a, b), keeping the input dtype."""
    a, b = xs
    return [np.multiply(a, b).astype(a.dtype, copy=False)]
