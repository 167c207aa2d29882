"""Dropout in inference mode: identity (the optional mask output is all True)."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo, unsupported

OP_TYPE = "Dropout"
C_TEMPLATE = None  # removed by the optimiser


def infer(node, ins, opset):
    """Output like the input; mask bool of the same shape."""
    if len(ins) > 2 and ins[2] is not None and (ins[2].value is None or bool(ins[2].value)):
        raise unsupported(node, "training_mode", "export the model in eval mode")
    outs = [TensorInfo(ins[0].shape, ins[0].dtype), TensorInfo(ins[0].shape, "bool")]
    return outs[:len(node.outputs)]


def run(node, xs, ctx):
    """Pass through (plus an all-True mask when asked)."""
    x = xs[0]
    return [x, np.ones(x.shape, dtype=bool)][:len(node.outputs)]


def cost(node, ins, outs):
    """Nothing computed or moved."""
    return {"macs": 0, "bytes_read": 0, "bytes_written": 0}
