"""Identity: output = input."""

from __future__ import annotations

from ._common import unary_infer as infer  # noqa: F401  (the registry reads it)

OP_TYPE = "Identity"
C_TEMPLATE = None  # removed by the optimiser


def run(node, xs, ctx):
    """Pass through."""
    return [xs[0]]


def cost(node, ins, outs):
    """Nothing computed or moved."""
    return {"macs": 0, "bytes_read": 0, "bytes_written": 0}
