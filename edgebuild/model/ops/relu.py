"""Relu: max(x, 0)."""

from __future__ import annotations

import numpy as np

from ._common import activation_run
from ._common import elementwise_cost as cost  # noqa: F401  (the registry reads it)
from ._common import unary_infer as infer  # noqa: F401

OP_TYPE = "Relu"
C_TEMPLATE = "relu"
ACTIVATION = True


def activate(x, attrs):
    """max(x, 0) in the input dtype (also used for a fused ``post`` entry)."""
    return np.maximum(x, x.dtype.type(0))


run = activation_run(activate)
