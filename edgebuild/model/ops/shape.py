"""Shape: the input's shape as int64 (start/end slicing from opset 15)."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo

OP_TYPE = "Shape"
C_TEMPLATE = None  # always static: folded by the optimiser


def _slice(node, shape):
    rank = len(shape)
    start = node.attrs.get("start", 0)
    end = node.attrs.get("end", rank)
    start, end = (min(max(v + rank if v < 0 else v, 0), rank) for v in (start, end))
    return np.asarray(shape[start:end], dtype=np.int64)


def infer(node, ins, opset):
    """A 1-D int64 tensor whose value is known from the static shape."""
    v = _slice(node, ins[0].shape)
    return [TensorInfo(v.shape, "int64", v)]


def run(node, xs, ctx):
    """The run-time shape (so a different batch flows through)."""
    return [_slice(node, xs[0].shape)]


def cost(node, ins, outs):
    """Nothing read or computed."""
    return {"macs": 0, "bytes_read": 0, "bytes_written": 0}
