"""Div: elementwise with broadcasting; integer division truncates toward zero (as ONNX)."""

from __future__ import annotations

import numpy as np

from ._common import elementwise_cost as cost  # noqa: F401  (the registry reads it)
from ._common import elementwise_infer

OP_TYPE = "Div"
C_TEMPLATE = "div"


def infer(node, ins, opset):
    """Broadcast shape, common dtype."""
    return elementwise_infer(node, ins)


def run(node, xs, ctx):
    """a / b; for integers trunc(a / b)."""
    a, b = xs
    if np.issubdtype(a.dtype, np.integer):
        return [np.trunc(a.astype(np.float64) / b).astype(a.dtype)]
    return [np.divide(a, b).astype(a.dtype, copy=False)]
