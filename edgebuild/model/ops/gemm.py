"""Gemm: Y = alpha * op(A) @ op(B) + beta * C (C broadcast unidirectionally)."""

from __future__ import annotations

import numpy as np

from ._common import TensorInfo, broadcast, float_only, io_cost, unsupported

OP_TYPE = "Gemm"
C_TEMPLATE = "dense"


def _dims(node, a, b):
    ta, tb = node.attrs.get("transA", 0), node.attrs.get("transB", 0)
    if len(a) != 2 or len(b) != 2:
        raise unsupported(node, f"input ranks {len(a)} and {len(b)}", "use 2-D A and B")
    m, k = (a[1], a[0]) if ta else a
    k2, n = (b[1], b[0]) if tb else b
    if k != k2:
        raise unsupported(node, f"inner dimensions {k} and {k2}", "fix the weights' shape")
    return m, k, n


def infer(node, ins, opset):
    """Output (M, N); C must broadcast to it."""
    float_only(node, ins)
    m, _, n = _dims(node, ins[0].shape, ins[1].shape)
    if len(ins) > 2 and ins[2] is not None and broadcast(node, ins[2].shape, (m, n)) != (m, n):
        raise unsupported(node, f"bias shape {list(ins[2].shape)}",
                          f"use a bias that broadcasts to {(m, n)}")
    return [TensorInfo((m, n), ins[0].dtype)]


def run(node, xs, ctx):
    """Matrix product with optional transposes, scale and bias."""
    a, b = xs[0], xs[1]
    c = xs[2] if len(xs) > 2 else None
    if node.attrs.get("transA", 0):
        a = a.T
    if node.attrs.get("transB", 0):
        b = b.T
    alpha, beta = node.attrs.get("alpha", 1.0), node.attrs.get("beta", 1.0)
    y = a @ b
    if alpha != 1.0:
        y = y * np.asarray(alpha, y.dtype)
    if c is not None and beta != 0.0:
        y = y + (c if beta == 1.0 else c * np.asarray(beta, c.dtype))
    return [y.astype(xs[0].dtype, copy=False)]


def cost(node, ins, outs):
    """MACs = M x K x N."""
    m, k, n = _dims(node, ins[0].shape, ins[1].shape)
    return io_cost(ins, outs, m * k * n)
