"""Concat along 'axis'."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo, axis_of, io_cost, same_dtype, unsupported

OP_TYPE = "Concat"
C_TEMPLATE = "concat"


def infer(node, ins, opset):
    """Sum of the inputs' sizes along axis; other dims must agree."""
    ins = [i for i in ins if i is not None]
    rank = len(ins[0].shape)
    a = axis_of(node, node.attrs.get("axis", 0), rank)
    rest = {i.shape[:a] + i.shape[a + 1:] for i in ins}
    if len(rest) != 1 or any(len(i.shape) != rank for i in ins):
        raise unsupported(node, f"inputs of shapes {[list(i.shape) for i in ins]}",
                          "make the non-axis dimensions agree")
    s = list(ins[0].shape)
    s[a] = sum(i.shape[a] for i in ins)
    return [TensorInfo(tuple(s), same_dtype(node, ins))]


def run(node, xs, ctx):
    """np.concatenate."""
    xs = [x for x in xs if x is not None]
    return [np.concatenate(xs, axis=node.attrs.get("axis", 0))]


def cost(node, ins, outs):
    """Every element copied once."""
    return io_cost(ins, outs)
