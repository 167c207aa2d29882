"""Graph reports: weight list, per-node cost, short text summary."""

from __future__ import annotations

from . import ops
from .ops import TensorInfo


def _weights(graph):
    """(initializer name, first consuming node) for every weight: float initializers, except
    shape/axes operands of reshape-like ops."""
    seen = {}
    for node in graph.nodes:
        for k, name in enumerate(node.inputs):
            if name in graph.initializers and name not in seen \
                    and graph.initializers[name].dtype.kind == "f":
                if ops.is_reshape(node.op_type) and k > 0:
                    continue
                seen[name] = node
    return seen


def params(graph) -> list[dict]:
    """Every weight tensor: name, layer (consuming node), op, shape, dtype, count, bytes."""
    out = []
    for name, node in _weights(graph).items():
        arr = graph.initializers[name]
        out.append({"name": name, "layer": node.name, "op": node.op_type,
                    "shape": [int(d) for d in arr.shape], "dtype": arr.dtype.name,
                    "count": int(arr.size), "bytes": int(arr.nbytes)})
    return out


def cost(graph) -> list[dict]:
    """Per node: name, op, post (fused activations), macs, bytes_read, bytes_written, params."""
    weights = _weights(graph)
    rows = []
    for node in graph.nodes:
        def info(n):
            return TensorInfo(graph.shapes[n], graph.dtypes[n]) if n else None
        ins = [info(n) for n in node.inputs]
        outs = [info(n) for n in node.outputs if n]
        c = ops.REGISTRY[node.op_type].cost(node, ins, outs)
        count = sum(int(graph.initializers[n].size) for n in dict.fromkeys(node.inputs)
                    if weights.get(n) is node)
        rows.append({"name": node.name, "op": node.op_type, "post": [p[0] for p in node.post],
                     "macs": int(c["macs"]), "bytes_read": int(c["bytes_read"]),
                     "bytes_written": int(c["bytes_written"]), "params": count})
    return rows


def summary(graph) -> str:
    """Inputs, outputs and one line per node with output shape, params and MACs; totals."""
    def sig(names):
        return ", ".join(f"{n}{list(graph.shapes[n])}:{graph.dtypes[n]}" for n in names)

    rows = cost(graph)
    lines = [f"graph '{graph.name}' opset {graph.opset}: {len(graph.nodes)} nodes",
             f"  inputs:  {sig(graph.inputs)}", f"  outputs: {sig(graph.outputs)}",
             f"  {'node':<28} {'op':<22} {'output':<18} {'params':>8} {'MACs':>10}"]
    for node, row in zip(graph.nodes, rows):
        op = "+".join([node.op_type, *row["post"]])
        shape = str(list(graph.shapes[node.outputs[0]])) if node.outputs else ""
        lines.append(f"  {node.name[:28]:<28} {op[:22]:<22} {shape:<18} {row['params']:>8} "
                     f"{row['macs']:>10}")
    total_p = sum(p["count"] for p in params(graph))
    lines.append(f"  total: {total_p} parameters, {sum(r['macs'] for r in rows)} MACs")
    return "\n".join(lines)
