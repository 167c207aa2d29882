"""Sigmoid: 1 / (1 + exp(-x)), computed without overflow."""

from __future__ import annotations

import numpy as np

from ._common import activation_run
from ._common import elementwise_cost as cost  # noqa: F401  (the registry reads it)
from ._common import float_unary_infer as infer  # noqa: F401

OP_TYPE = "Sigmoid"
C_TEMPLATE = "sigmoid"
ACTIVATION = True


def activate(x, attrs):
    """exp(min(x,0)) / (1 + exp(-|x|)) is the sigmoid for both signs and never overflows."""
    e = np.exp(-np.abs(x))
    return (np.where(x >= 0, 1, e) / (1 + e)).astype(x.dtype, copy=False)


run = activation_run(activate)
