"""The model IR: a small, explicit graph of nodes and tensors (CONTRACT — other packages rely on it).

Layout convention: tensors keep ONNX's layout (NCHW for images, batch dimension first).

Contract used by compress/, storage/, codegen/ and the stages:
- ``Graph.nodes``: list[Node] in topological order.
- ``Graph.inputs`` / ``Graph.outputs``: list[str] tensor names (graph inputs exclude initializers).
- ``Graph.initializers``: dict[str, np.ndarray] — constant tensors (weights, biases, shapes).
- ``Graph.shapes``: dict[str, tuple[int, ...]] — static shape of every tensor (batch dim included,
  batch = 1 unless the model fixes it otherwise).
- ``Graph.dtypes``: dict[str, str] — numpy dtype name of every tensor ("float32", "int64", ...).
- ``Node.op_type`` (ONNX op type), ``Node.name`` (unique, as in ONNX, unsanitised),
  ``Node.inputs`` / ``Node.outputs`` (tensor names; "" for an omitted optional input),
  ``Node.attrs`` (plain python values: int, float, str, list[int], list[float], np.ndarray),
  ``Node.post`` (fused activations applied after the op, in order: list of (op_type, attrs)),
  e.g. [("Relu", {})] after optimisation fuses Conv+Relu. Post attrs are always explicit:
  Relu/Sigmoid/Tanh {}, LeakyRelu {"alpha": float}, Clip {"min": float|None, "max": float|None}.

Extensions (beyond the contract): ``Graph.source`` (file it came from), ``Graph.log`` (what the
optimiser did), and the methods run/to_onnx/save/params/cost/summary/copy/consumers/producer.
Methods import numpy/onnx lazily so that importing this module stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Node:
    op_type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    post: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Graph:
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    initializers: dict[str, Any]
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]
    name: str = "model"
    opset: int = 13
    source: str | None = None
    log: list[str] = field(default_factory=list)

    def run(self, feeds: dict, outputs: list[str] | None = None) -> dict:
        """Float reference: run on ``feeds`` (input name -> array, any batch size).

        Returns {name: array} for ``outputs`` (any tensor names, e.g. intermediates for
        calibration; default: the graph outputs)."""
        from .runtime import run
        return run(self, feeds, outputs)

    def to_onnx(self):
        """An ``onnx.ModelProto`` equivalent to this graph (fused ``post`` expanded into nodes)."""
        from .export import to_onnx
        return to_onnx(self)

    def save(self, path) -> None:
        """Write the graph as an ONNX file."""
        from .export import save
        save(self, path)

    def params(self) -> list[dict]:
        """Every weight tensor: name, layer, op, shape, dtype, count, bytes (JSON-serialisable)."""
        from .report import params
        return params(self)

    def cost(self) -> list[dict]:
        """Per node: name, op, post, macs, bytes_read, bytes_written, params."""
        from .report import cost
        return cost(self)

    def summary(self) -> str:
        """A short human-readable table of the graph."""
        from .report import summary
        return summary(self)

    def copy(self) -> "Graph":
        """A deep copy (arrays copied too)."""
        import copy
        return copy.deepcopy(self)

    def producer(self) -> dict[str, Node]:
        """Tensor name -> the node that writes it."""
        return {o: n for n in self.nodes for o in n.outputs if o}

    def consumers(self) -> dict[str, list[Node]]:
        """Tensor name -> nodes that read it (in node order)."""
        out: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in dict.fromkeys(x for x in n.inputs if x):
                out.setdefault(i, []).append(n)
        return out
