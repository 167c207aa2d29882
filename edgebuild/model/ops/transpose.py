"""Transpose: permute axes by 'perm' (default: reverse)."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo, io_cost, unsupported

OP_TYPE = "Transpose"
C_TEMPLATE = "transpose"


def _perm(node, rank):
    perm = node.attrs.get("perm") or list(range(rank))[::-1]
    if sorted(perm) != list(range(rank)):
        raise unsupported(node, f"perm {perm} for rank {rank}", "fix the perm attribute")
    return perm


def infer(node, ins, opset):
    """Permuted shape."""
    s = ins[0].shape
    return [TensorInfo(tuple(s[p] for p in _perm(node, len(s))), ins[0].dtype)]


def run(node, xs, ctx):
    """np.transpose (made contiguous)."""
    return [np.transpose(xs[0], _perm(node, xs[0].ndim)).copy()]


def cost(node, ins, outs):
    """Every element moved once."""
    return io_cost(ins, outs)
