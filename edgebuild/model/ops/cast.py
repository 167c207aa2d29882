"""Cast to the numeric dtype named by 'to' (strings, bfloat16 and float8 are unsupported)."""

from __future__ import annotations

import numpy as np

from ._common import ONNX_DTYPES, TensorInfo, io_cost, unsupported

OP_TYPE = "Cast"
C_TEMPLATE = "cast"


def _to(node):
    to = node.attrs.get("to")
    if to not in ONNX_DTYPES:
        raise unsupported(node, f"cast to ONNX type {to}",
                          f"cast to one of {sorted(ONNX_DTYPES.values())}")
    return ONNX_DTYPES[to]


def infer(node, ins, opset):
    """Same shape, dtype 'to'."""
    return [TensorInfo(ins[0].shape, _to(node))]


def run(node, xs, ctx):
    """ndarray.astype."""
    return [xs[0].astype(_to(node))]


def cost(node, ins, outs):
    """One conversion per element."""
    return io_cost(ins, outs, int(np.prod(outs[0].shape)))
