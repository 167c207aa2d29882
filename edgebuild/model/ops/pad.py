"""Pad: constant/reflect/edge/wrap padding ('pads' attribute before opset 11, inputs from 11;
optional 'axes' from 18). Negative pads (cropping) are not supported."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo, const_input, io_cost, unsupported

OP_TYPE = "Pad"
C_TEMPLATE = "pad"
_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}


def _spec(node, vals, opset, rank):
    """(list of (before, after) per axis, constant value)."""
    if opset < 11:
        pads, value, axes = node.attrs.get("pads"), node.attrs.get("value", 0.0), None
    else:
        pads = vals[1]
        value = vals[2] if len(vals) > 2 and vals[2] is not None else 0
        axes = vals[3] if len(vals) > 3 and vals[3] is not None else None
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    axes = (list(range(rank)) if axes is None
            else [int(a) % rank for a in np.asarray(axes).reshape(-1)])
    if len(pads) != 2 * len(axes) or any(p < 0 for p in pads):
        raise unsupported(node, f"pads {pads}", "use non-negative pads, two per padded axis")
    width = [(0, 0)] * rank
    for i, a in enumerate(axes):
        width[a] = (pads[i], pads[i + len(axes)])
    return width, np.asarray(value).reshape(-1)[0] if np.size(value) else 0


def _mode(node):
    mode = node.attrs.get("mode", "constant")
    if mode not in _MODES:
        raise unsupported(node, f"mode {mode!r}", f"use one of {sorted(_MODES)}")
    return mode


def infer(node, ins, opset):
    """Input shape grown by the pads."""
    _mode(node)
    vals = [None, const_input(node, ins, 1, "pads"), None, const_input(node, ins, 3, "axes")]
    width, _ = _spec(node, vals, opset, len(ins[0].shape))
    return [TensorInfo(tuple(d + b + a for d, (b, a) in zip(ins[0].shape, width)), ins[0].dtype)]


def run(node, xs, ctx):
    """np.pad with the ONNX mode."""
    x = xs[0]
    width, value = _spec(node, xs, ctx.opset, x.ndim)
    mode = _mode(node)
    if mode == "constant":
        return [np.pad(x, width, mode="constant", constant_values=x.dtype.type(value))]
    return [np.pad(x, width, mode=_MODES[mode])]


def cost(node, ins, outs):
    """Every output element written once."""
    return io_cost(ins[:1], outs)
