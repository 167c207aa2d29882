"""The model package: ONNX import/export, the IR, the float reference and the optimiser.

Public API (imported lazily so that ``import edgebuild.model.ir`` stays cheap):
``load(path)``, ``from_onnx(model_proto, source=...)``, ``optimise(graph)``,
``c_identifier(name, taken)``, ``build(...)`` (a Graph from parts, shapes inferred), ``Graph``,
``Node``.
"""

from __future__ import annotations

from .ir import Graph, Node
from .names import c_identifier

__all__ = ["Graph", "Node", "build", "c_identifier", "from_onnx", "load", "optimise"]


def load(path, **kw):
    """Load an ONNX file -> Graph (see :func:`edgebuild.model.loader.load`)."""
    from .loader import load as _load
    return _load(path, **kw)


def from_onnx(model_proto, source: str = "<memory>", **kw):
    """Convert an onnx.ModelProto -> Graph (see :func:`edgebuild.model.loader.from_onnx`)."""
    from .loader import from_onnx as _from_onnx
    return _from_onnx(model_proto, source=source, **kw)


def optimise(graph, **kw):
    """Optimised copy of ``graph`` (see :func:`edgebuild.model.optimiser.optimise`)."""
    from .optimiser import optimise as _optimise
    return _optimise(graph, **kw)


def build(nodes, inputs: dict, outputs: list, initializers: dict, *, opset: int = 13,
          name: str = "model"):
    """A Graph from parts, with every tensor's shape and dtype inferred by the op rules.

    ``nodes`` in topological order; ``inputs``: name -> (shape, dtype name);
    ``initializers``: name -> np.ndarray. Raises ModelError like the loader.
    """
    from .infer import infer
    from .ops import TensorInfo
    info = infer(nodes, {k: TensorInfo(tuple(s), str(d)) for k, (s, d) in inputs.items()},
                 initializers, opset)
    return Graph(nodes=list(nodes), inputs=list(inputs), outputs=list(outputs),
                 initializers=dict(initializers), shapes={k: v.shape for k, v in info.items()},
                 dtypes={k: v.dtype for k, v in info.items()}, name=name, opset=opset)
