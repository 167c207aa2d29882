"""Clip: min/max are attributes before opset 11 and optional inputs from opset 11."""

from __future__ import annotations

import numpy as np

from ._common import elementwise_cost as cost  # noqa: F401  (the registry reads it)
from ._common import TensorInfo, unsupported

OP_TYPE = "Clip"
C_TEMPLATE = "clip"
ACTIVATION = True


def bounds(node, xs, opset):
    """(min, max) as python numbers or None, whatever the opset's form."""
    if opset < 11:
        return node.attrs.get("min"), node.attrs.get("max")
    out = []
    for i in (1, 2):
        v = xs[i] if len(xs) > i else None
        out.append(None if v is None else np.asarray(v).reshape(-1)[0].item())
    return tuple(out)


def infer(node, ins, opset):
    """Same shape and dtype; bounds must be scalars."""
    for b in ins[1:]:
        if b is not None and b.shape not in ((), (1,)):
            raise unsupported(node, f"non-scalar bound of shape {list(b.shape)}",
                              "use scalar min/max")
    return [TensorInfo(ins[0].shape, ins[0].dtype)]


def run(node, xs, ctx):
    """Clip to the node's bounds."""
    lo, hi = bounds(node, xs, ctx.opset)
    return [activate(xs[0], {"min": lo, "max": hi})]


def activate(x, attrs):
    """Clip to attrs' min/max (None = unbounded); min > max gives max, as in ONNX."""
    lo, hi = attrs.get("min"), attrs.get("max")
    if lo is not None:
        x = np.maximum(x, x.dtype.type(lo))
    if hi is not None:
        x = np.minimum(x, x.dtype.type(hi))
    return x
