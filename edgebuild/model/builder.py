"""Build small IR graphs in code: a convenience for benchmarks, tests and users sketching models.

    b = GraphBuilder(seed=0)
    h = b.op("MaxPool", [b.conv("input", 1, 8)], kernel_shape=[2, 2], strides=[2, 2])
    graph = b.graph({"input": ((1, 1, 28, 28), "float32")}, b.gemm(b.op("Flatten", [h], axis=1), 8 * 14 * 14, 10))

Weights are random normal * ``scale`` from a seeded generator, so the same calls give the same graph.
"""

from __future__ import annotations

import numpy as np

from edgebuild.model.ir import Node


class GraphBuilder:
    """Accumulates nodes and random weights; tensors are named t1, t2, ... and weights w<k>."""

    def __init__(self, seed: int = 0, scale: float = 0.1):
        self.rng = np.random.default_rng(seed)
        self.scale = scale
        self.nodes: list[Node] = []
        self.inits: dict[str, np.ndarray] = {}
        self.n = 0

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        """Append a node; returns the name of its (single) output."""
        self.n += 1
        out = f"t{self.n}"
        self.nodes.append(Node(op_type, f"{op_type.lower()}{self.n}", list(inputs), [out], attrs))
        return out

    def _weight(self, shape: tuple) -> str:
        name = f"w{self.n + 1}"
        self.inits[name] = (self.rng.standard_normal(shape) * self.scale).astype(np.float32)
        return name

    def conv(self, x: str, cin: int, cout: int, k: int = 3, relu: bool = True, stride: int = 1) -> str:
        """A k x k 'same'-padded convolution (no bias), followed by Relu unless ``relu`` is False."""
        w = self._weight((cout, cin, k, k))
        y = self.op("Conv", [x, w], kernel_shape=[k, k], pads=[k // 2] * 4, strides=[stride, stride])
        return self.op("Relu", [y]) if relu else y

    def gemm(self, x: str, cin: int, cout: int) -> str:
        """A fully connected layer (no bias), weights (cout, cin) as PyTorch stores them."""
        return self.op("Gemm", [x, self._weight((cout, cin))], transB=1)

    def graph(self, inputs: dict[str, tuple], output: str, name: str = "model"):
        """The Graph: ``inputs`` maps name -> (shape, dtype)."""
        from edgebuild.model import build

        return build(self.nodes, inputs, [output], self.inits, name=name)
