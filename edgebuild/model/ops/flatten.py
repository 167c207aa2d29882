"""Flatten: (d0..d_{axis-1}, d_axis..) -> 2-D (axis defaults to 1, may be negative)."""

from __future__ import annotations

from ._common import TensorInfo, axis_of, numel

OP_TYPE = "Flatten"
C_TEMPLATE = None  # a view: no data moves
RESHAPE = True


def _axis(node, rank):
    axis = node.attrs.get("axis", 1)
    return rank if axis == rank else axis_of(node, axis, rank)


def infer(node, ins, opset):
    """(prod(shape[:axis]), prod(shape[axis:]))."""
    s = ins[0].shape
    a = _axis(node, len(s))
    return [TensorInfo((numel(s[:a]), numel(s[a:])), ins[0].dtype)]


def run(node, xs, ctx):
    """Reshape to 2-D."""
    x = xs[0]
    a = _axis(node, x.ndim)
    return [x.reshape(numel(x.shape[:a]), numel(x.shape[a:]))]


def cost(node, ins, outs):
    """A view: nothing computed or moved."""
    return {"macs": 0, "bytes_read": 0, "bytes_written": 0}
