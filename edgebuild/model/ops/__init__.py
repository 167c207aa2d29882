"""Operator registry: one module per ONNX operator (default domain).

Each module defines:
- ``OP_TYPE``: the ONNX op type; ``C_TEMPLATE``: name of its C template, or None;
- ``infer(node, ins: list[TensorInfo | None], opset) -> list[TensorInfo]``: the shape rule
  (raises ModelError naming the node for unsupported attributes/shapes);
- ``run(node, xs: list[np.ndarray | None], ctx: RunContext) -> list[np.ndarray]``: the float
  reference in vectorised numpy;
- ``cost(node, ins, outs) -> dict`` with macs, bytes_read, bytes_written;
- optionally ``ACTIVATION = True`` (fusable into a producer's ``post``) and ``RESHAPE = True``
  (only changes the shape, never the data).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from edgebuild.errors import ModelError

from ._common import RunContext, TensorInfo  # noqa: F401  (re-exported)

_NAMES = ("add", "averagepool", "batchnormalization", "cast", "clip", "concat", "constant",
          "constantofshape", "conv", "div", "dropout", "flatten", "gather", "gemm", "globalaveragepool",
          "globalmaxpool", "identity", "leakyrelu", "logsoftmax", "matmul", "maxpool", "mul",
          "pad", "prelu", "reducemean", "relu", "reshape", "shape", "sigmoid", "softmax",
          "squeeze", "sub", "tanh", "transpose", "unsqueeze")

REGISTRY: dict[str, ModuleType] = {}
for _name in _NAMES:
    _mod = importlib.import_module(f"{__name__}.{_name}")
    REGISTRY[_mod.OP_TYPE] = _mod

MIN_OPSET, MAX_OPSET = 7, 23
DOMAINS = ("", "ai.onnx")


def supported() -> list[str]:
    """Sorted list of supported op types."""
    return sorted(REGISTRY)


def get(op_type: str) -> ModuleType | None:
    """The module implementing ``op_type``, or None."""
    return REGISTRY.get(op_type)


def require(node, domain: str = "") -> ModuleType:
    """The module for ``node``, or a ModelError naming the node, its op and the supported ops."""
    mod = REGISTRY.get(node.op_type) if domain in DOMAINS else None
    if mod is None:
        where = f" in domain '{domain}'" if domain not in DOMAINS else ""
        raise ModelError(f"node '{node.name}' uses unsupported operator '{node.op_type}'{where}",
                         field=f"node '{node.name}'",
                         fix=f"re-export using only: {', '.join(supported())}")
    return mod


def is_activation(op_type: str) -> bool:
    """True for ops that can be fused into a producer's ``post`` list."""
    return bool(getattr(REGISTRY.get(op_type), "ACTIVATION", False))


def is_reshape(op_type: str) -> bool:
    """True for ops that only reinterpret the shape."""
    return bool(getattr(REGISTRY.get(op_type), "RESHAPE", False))
