"""Add: elementwise with multidirectional (numpy) broadcasting."""

from __future__ import annotations

import numpy as np

from ._common import elementwise_cost as cost  # noqa: F401  (the registry reads it)
from ._common import elementwise_infer

OP_TYPE = "Add"
C_TEMPLATE = "add"


def infer(node, ins, opset):
    """Broadcast shape, common dtype."""
    return elementwise_infer(node, ins)


def run(node, xs, ctx):
    """np.add(a, b), keeping the input dtype."""
    a, b = xs
    return [np.add(a, b).astype(a.dtype, copy=False)]
