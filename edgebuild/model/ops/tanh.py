"""Tanh."""

from __future__ import annotations

import numpy as np

from ._common import activation_run
from ._common import elementwise_cost as cost  # noqa: F401  (the registry reads it)
from ._common import float_unary_infer as infer  # noqa: F401

OP_TYPE = "Tanh"
C_TEMPLATE = "tanh"
ACTIVATION = True


def activate(x, attrs):
    """np.tanh (also used for a fused ``post`` entry)."""
    return np.tanh(x)


run = activation_run(activate)
