"""LeakyRelu: x if x >= 0 else alpha * x (alpha defaults to 0.01)."""

from __future__ import annotations

import numpy as np

from ._common import activation_run
from ._common import elementwise_cost as cost  # noqa: F401  (the registry reads it)
from ._common import float_unary_infer as infer  # noqa: F401

OP_TYPE = "LeakyRelu"
C_TEMPLATE = "leakyrelu"
ACTIVATION = True


def activate(x, attrs):
    """np.where(x < 0, alpha * x, x) (also used for a fused ``post`` entry)."""
    alpha = x.dtype.type(attrs.get("alpha", 0.01))
    return np.where(x < 0, x * alpha, x)


run = activation_run(activate)
