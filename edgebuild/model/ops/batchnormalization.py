"""BatchNormalization in inference mode: scale * (x - mean) / sqrt(var + eps) + B."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo, elementwise_cost, float_only, unsupported

OP_TYPE = "BatchNormalization"
C_TEMPLATE = "batchnorm"


def infer(node, ins, opset):
    """Same shape and dtype as X; the four parameters must be (C,)."""
    float_only(node, ins)
    if node.attrs.get("training_mode", 0) or len([o for o in node.outputs if o]) > 1:
        raise unsupported(node, "training mode (running statistics outputs)",
                          "export the model in eval mode")
    if not node.attrs.get("spatial", 1):
        raise unsupported(node, "spatial=0", "export with spatial=1 (per-channel statistics)")
    c = ins[0].shape[1] if len(ins[0].shape) > 1 else 1
    for p in ins[1:5]:
        if p.shape != (c,):
            raise unsupported(node, f"a parameter of shape {list(p.shape)}",
                              f"use ({c},) parameters")
    return [TensorInfo(ins[0].shape, ins[0].dtype)]


def scale_shift(xs, eps):
    """Per-channel (multiplier, offset) in float64 so that y = x * mul + add."""
    scale, bias, mean, var = (np.asarray(v, np.float64) for v in xs[1:5])
    mul = scale / np.sqrt(var + eps)
    return mul, bias - mean * mul


def run(node, xs, ctx):
    """Normalise along axis 1."""
    x = xs[0]
    mul, add = scale_shift(xs, node.attrs.get("epsilon", 1e-5))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return [(x * mul.reshape(shape) + add.reshape(shape)).astype(x.dtype)]


def cost(node, ins, outs):
    """One multiply-add per element."""
    return elementwise_cost(node, ins, outs)
