"""Gather: take 'indices' (negative allowed) along 'axis'."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo, axis_of, io_cost, unsupported

OP_TYPE = "Gather"
C_TEMPLATE = "gather"


def infer(node, ins, opset):
    """data.shape[:axis] + indices.shape + data.shape[axis+1:]."""
    data, idx = ins[0], ins[1]
    if not idx.dtype.startswith("int"):
        raise unsupported(node, f"indices of dtype {idx.dtype}", "use int32/int64 indices")
    a = axis_of(node, node.attrs.get("axis", 0), len(data.shape))
    n = data.shape[a]
    if idx.value is not None and np.any((idx.value < -n) | (idx.value >= n)):
        raise unsupported(node, "indices out of range", "fix the indices")
    return [TensorInfo(data.shape[:a] + idx.shape + data.shape[a + 1:], data.dtype)]


def run(node, xs, ctx):
    """np.take."""
    data, idx = xs
    return [np.take(data, idx.astype(np.int64), axis=node.attrs.get("axis", 0))]


def cost(node, ins, outs):
    """Indices read, selected elements copied."""
    return {**io_cost(ins[1:], outs), "bytes_read": io_cost(outs + ins[1:], [])["bytes_read"]}
