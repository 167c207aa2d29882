"""ReduceMean: mean over 'axes' (attribute before opset 18, input from 18), keepdims (default 1),
noop_with_empty_axes (18)."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo, const_input, float_only, io_cost, numel

OP_TYPE = "ReduceMean"
C_TEMPLATE = "reducemean"


def _axes(node, vals, opset, rank):
    """Sorted axes to reduce, or None for 'no reduction'."""
    axes = node.attrs.get("axes") if opset < 18 else (vals[1] if len(vals) > 1 else None)
    if axes is None or np.size(axes) == 0:
        return None if node.attrs.get("noop_with_empty_axes", 0) else list(range(rank))
    return sorted({int(a) % rank for a in np.asarray(axes).reshape(-1)})


def infer(node, ins, opset):
    """Reduced axes dropped, or kept as 1 with keepdims."""
    float_only(node, ins)
    vals = [None] + [const_input(node, ins, i, "axes") for i in range(1, len(ins))]
    axes = _axes(node, vals, opset, len(ins[0].shape))
    s = ins[0].shape
    if axes is None:
        return [TensorInfo(s, ins[0].dtype)]
    keep = node.attrs.get("keepdims", 1)
    out = tuple(1 if i in axes else d for i, d in enumerate(s) if keep or i not in axes)
    return [TensorInfo(out, ins[0].dtype)]


def run(node, xs, ctx):
    """np.mean (accumulated in float64)."""
    x = xs[0]
    axes = _axes(node, xs, ctx.opset, x.ndim)
    if axes is None:
        return [x]
    y = x.mean(axis=tuple(axes), keepdims=bool(node.attrs.get("keepdims", 1)), dtype=np.float64)
    return [np.asarray(y, dtype=x.dtype)]


def cost(node, ins, outs):
    """One add per input element."""
    return io_cost(ins[:1], outs, numel(ins[0].shape))
