"""Float reference execution of a Graph in numpy (any batch size at run time)."""

from __future__ import annotations

import numpy as np

from edgebuild.errors import ModelError

from . import ops
from .ops import RunContext


def apply_post(y: np.ndarray, post) -> np.ndarray:
    """Apply fused activations ``post`` ([(op_type, attrs), ...]) in order."""
    for op_type, attrs in post:
        y = ops.REGISTRY[op_type].activate(y, attrs)
    return y


def _check_feed(graph, name, value) -> np.ndarray:
    arr = np.asarray(value)
    static = graph.shapes[name]
    want = np.dtype(graph.dtypes[name])
    if arr.dtype != want:
        if not np.can_cast(arr.dtype, want, casting="same_kind"):
            raise ModelError(f"input '{name}' has dtype {arr.dtype}, expected {want}",
                             field=f"input '{name}'", fix=f"feed a {want} array")
        arr = arr.astype(want)
    if arr.ndim != len(static) or tuple(arr.shape[1:]) != tuple(static[1:]):
        raise ModelError(f"input '{name}' has shape {list(arr.shape)}, expected {list(static)} "
                         "(any batch size)", field=f"input '{name}'",
                         fix=f"feed arrays shaped (batch, {', '.join(map(str, static[1:]))})")
    return arr


def run(graph, feeds: dict, outputs: list[str] | None = None) -> dict[str, np.ndarray]:
    """Run ``graph`` on ``feeds`` (name -> array) and return ``outputs`` (default: graph outputs).

    The batch (first) dimension of the feeds may differ from the graph's static batch.
    """
    missing = [n for n in graph.inputs if n not in feeds]
    if missing:
        raise ModelError(f"no value fed for input '{missing[0]}'", field=f"input '{missing[0]}'",
                         fix=f"feed every input: {', '.join(graph.inputs)}")
    env = dict(graph.initializers)
    for name in graph.inputs:
        env[name] = _check_feed(graph, name, feeds[name])
    for node in graph.nodes:
        xs = [env[n] if n else None for n in node.inputs]
        ctx = RunContext(graph.opset, tuple(graph.shapes.get(n, ()) for n in node.inputs),
                         tuple(graph.shapes.get(n, ()) for n in node.outputs))
        ys = ops.REGISTRY[node.op_type].run(node, xs, ctx)
        if node.post:
            ys = [apply_post(ys[0], node.post), *ys[1:]]
        for name, y in zip(node.outputs, ys):
            if name:
                env[name] = y
    wanted = outputs or graph.outputs
    unknown = [n for n in wanted if n not in env]
    if unknown:
        raise ModelError(f"tensor '{unknown[0]}' does not exist in graph '{graph.name}'",
                         field=f"tensor '{unknown[0]}'", fix="ask for one of its tensors")
    return {n: env[n] for n in wanted}
