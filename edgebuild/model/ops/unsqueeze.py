"""Unsqueeze: insert size-1 axes ('axes' attribute before opset 13, input from 13)."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo, const_input, unsupported

OP_TYPE = "Unsqueeze"
C_TEMPLATE = None  # a view
RESHAPE = True


def _axes(node, ins_or_xs, opset, rank_in, static):
    if opset < 13:
        axes = node.attrs.get("axes")
    elif static:
        axes = const_input(node, ins_or_xs, 1, "axes")
    else:
        axes = ins_or_xs[1]
    if axes is None:
        raise unsupported(node, "missing axes", "give the axes to insert")
    rank = rank_in + len(np.asarray(axes).reshape(-1))
    axes = sorted(int(a) % rank for a in np.asarray(axes).reshape(-1))
    if len(set(axes)) != len(axes):
        raise unsupported(node, "repeated axes", "list each axis once")
    return axes


def _shape(shape, axes):
    out = list(shape)
    for a in axes:
        out.insert(a, 1)
    return tuple(out)


def infer(node, ins, opset):
    """Input shape with 1s inserted at the (output-relative) axes."""
    axes = _axes(node, ins, opset, len(ins[0].shape), True)
    return [TensorInfo(_shape(ins[0].shape, axes), ins[0].dtype)]


def run(node, xs, ctx):
    """Reshape with inserted 1s."""
    x = xs[0]
    return [x.reshape(_shape(x.shape, _axes(node, xs, ctx.opset, x.ndim, False)))]


def cost(node, ins, outs):
    """A view: nothing computed or moved."""
    return {"macs": 0, "bytes_read": 0, "bytes_written": 0}
