"""Constant: a tensor given by one of value / value_float(s) / value_int(s)."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo, unsupported

OP_TYPE = "Constant"
C_TEMPLATE = None  # folded into an initializer by the optimiser

_FORMS = {"value": None, "value_float": np.float32, "value_floats": np.float32,
          "value_int": np.int64, "value_ints": np.int64}


def value(node) -> np.ndarray:
    """The constant as a numpy array."""
    keys = [k for k in node.attrs if k in _FORMS]
    other = [k for k in node.attrs if k not in _FORMS]
    if other or len(keys) != 1:
        raise unsupported(node, f"attributes {sorted(node.attrs)}",
                          "use a dense numeric 'value' tensor")
    k = keys[0]
    return np.asarray(node.attrs[k], dtype=_FORMS[k])


def infer(node, ins, opset):
    """Shape and dtype of the value (which is known)."""
    v = value(node)
    return [TensorInfo(v.shape, v.dtype.name, v)]


def run(node, xs, ctx):
    """The value."""
    return [value(node)]


def cost(node, ins, outs):
    """Nothing computed."""
    return {"macs": 0, "bytes_read": 0, "bytes_written": 0}
