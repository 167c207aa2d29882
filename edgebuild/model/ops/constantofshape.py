"""ConstantOfShape: a tensor of the constant 'shape' input filled with 'value' (default 0.0)."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo, const_input, io_cost, unsupported

OP_TYPE = "ConstantOfShape"
C_TEMPLATE = None  # folded into an initializer by the optimiser


def _fill(node) -> np.ndarray:
    value = np.asarray(node.attrs.get("value", np.zeros(1, np.float32)))
    if value.size != 1:
        raise unsupported(node, f"a 'value' of {value.size} elements", "use a one-element value")
    return value.reshape(-1)


def infer(node, ins, opset):
    """Shape from the constant input, dtype of 'value'."""
    shape = tuple(int(d) for d in np.asarray(const_input(node, ins, 0, "shape")).reshape(-1))
    if any(d < 0 for d in shape):
        raise unsupported(node, f"negative shape {list(shape)}", "use non-negative dimensions")
    return [TensorInfo(shape, _fill(node).dtype.name)]


def run(node, xs, ctx):
    """np.full."""
    v = _fill(node)
    return [np.full(tuple(int(d) for d in np.asarray(xs[0]).reshape(-1)), v[0], dtype=v.dtype)]


def cost(node, ins, outs):
    """Nothing read; the output written once."""
    return io_cost([], outs)
