"""Sub: elementwise with multidirectional (numpy) broadcasting."""

from __future__ import annotations

import numpy as np

from ._common import elementwise_cost as cost  # noqa: F401  (the registry reads it)
from ._common import elementwise_infer

OP_TYPE = "Sub"
C_TEMPLATE = "sub"


def infer(node, ins, opset):
    """Broadcast shape, common dtype."""
    return elementwise_infer(node, ins)


def run(node, xs, ctx):
    """np.subtract(a, b), keeping the input dtype."""
    a, b = xs
    return [np.subtract(a, b).astype(a.dtype, copy=False)]
