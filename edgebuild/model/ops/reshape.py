"""Reshape: target from the constant 'shape' input (0 copies a dim unless allowzero, -1 infers)."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo, const_input, numel, unsupported

OP_TYPE = "Reshape"
C_TEMPLATE = None  # a view: no data moves
RESHAPE = True


def target(node, in_shape, spec) -> tuple[int, ...]:
    """Resolve a Reshape 'shape' value against ``in_shape``."""
    spec = [int(v) for v in np.asarray(spec).reshape(-1)]
    allowzero = node.attrs.get("allowzero", 0)
    out = [in_shape[i] if v == 0 and not allowzero and i < len(in_shape) else v
           for i, v in enumerate(spec)]
    if out.count(-1) > 1 or any(v < -1 for v in out):
        raise unsupported(node, f"shape {spec}", "use at most one -1 and no other negatives")
    if -1 in out:
        known = numel([v for v in out if v != -1])
        if known == 0 or numel(in_shape) % known:
            raise unsupported(node, f"shape {spec} for an input of {list(in_shape)}",
                              "fix the target shape")
        out[out.index(-1)] = numel(in_shape) // known
    if numel(out) != numel(in_shape):
        raise unsupported(node, f"shape {spec} for an input of {list(in_shape)}",
                          "fix the target shape")
    return tuple(out)


def infer(node, ins, opset):
    """Target shape; needs a constant shape input."""
    spec = const_input(node, ins, 1, "shape")
    return [TensorInfo(target(node, ins[0].shape, spec), ins[0].dtype)]


def run(node, xs, ctx):
    """Reshape; if only the batch differs from the static graph, the batch carries through."""
    x = xs[0]
    if ctx.in_shapes and ctx.in_shapes[0] and x.ndim and x.shape[0] != ctx.in_shapes[0][0]:
        sin, sout = ctx.in_shapes[0], ctx.out_shapes[0]
        if sout and sout[0] == sin[0] and x.shape[1:] == tuple(sin[1:]):
            return [x.reshape(x.shape[0], *sout[1:])]
    return [x.reshape(target(node, x.shape, xs[1]))]


def cost(node, ins, outs):
    """A view: nothing computed or moved."""
    return {"macs": 0, "bytes_read": 0, "bytes_written": 0}
