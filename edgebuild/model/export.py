"""Graph -> ONNX (fused ``post`` activations expanded back into separate nodes)."""

from __future__ import annotations

import numpy as np

from .ops._common import NUMPY_TO_ONNX


def _attr_value(v):
    from onnx import numpy_helper
    if isinstance(v, np.ndarray):
        return numpy_helper.from_array(v)
    return v


def _empty_list(v) -> bool:
    """Empty list attributes carry no type in ONNX; they mean the same as absent."""
    return isinstance(v, (list, tuple)) and not v


def _post_nodes(graph, node, taken):
    """(nodes, initializers) computing node.post after a renamed node output."""
    from onnx import helper, numpy_helper
    out = node.outputs[0]
    cur = _fresh(f"{out}__pre_{node.post[0][0].lower()}", taken)
    protos, inits = [], []
    first = cur
    for k, (op, attrs) in enumerate(node.post):
        dst = out if k == len(node.post) - 1 else _fresh(f"{out}__post{k}", taken)
        name = _fresh(f"{node.name}__{op.lower()}", taken)
        inputs, kw = [cur], {}
        if op == "Clip":
            if graph.opset < 11:
                kw = {key: float(attrs[key]) for key in ("min", "max")
                      if attrs.get(key) is not None}
            else:
                dtype = np.dtype(graph.dtypes[out])
                for key in ("min", "max"):
                    if attrs.get(key) is None:
                        inputs.append("")
                        continue
                    t = _fresh(f"{name}_{key}", taken)
                    inits.append(numpy_helper.from_array(np.asarray(attrs[key], dtype), t))
                    inputs.append(t)
                while inputs and inputs[-1] == "":
                    inputs.pop()
        else:
            kw = dict(attrs)
        protos.append(helper.make_node(op, inputs, [dst], name=name, **kw))
        cur = dst
    return first, protos, inits


def _fresh(name, taken):
    base, k = name, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def to_onnx(graph):
    """Build an ``onnx.ModelProto`` that onnxruntime can load and that computes the same outputs."""
    from onnx import helper, numpy_helper

    taken = set(graph.shapes) | {n.name for n in graph.nodes}
    protos, inits = [], [numpy_helper.from_array(np.asarray(v), k)
                         for k, v in graph.initializers.items()]
    for node in graph.nodes:
        outputs = list(node.outputs)
        tail, extra = [], []
        if node.post:
            outputs[0], tail, extra = _post_nodes(graph, node, taken)
        attrs = {k: _attr_value(v) for k, v in node.attrs.items() if not _empty_list(v)}
        protos.append(helper.make_node(node.op_type, node.inputs, outputs, name=node.name, **attrs))
        protos.extend(tail)
        inits.extend(extra)

    def vi(name):
        return helper.make_tensor_value_info(name, NUMPY_TO_ONNX[graph.dtypes[name]],
                                             list(graph.shapes[name]))

    g = helper.make_graph(protos, graph.name, [vi(n) for n in graph.inputs],
                          [vi(n) for n in graph.outputs], initializer=inits)
    opsets = [helper.make_opsetid("", graph.opset)]
    return helper.make_model(g, opset_imports=opsets, producer_name="edgebuild",
                             ir_version=helper.find_min_ir_version_for(opsets))


def save(graph, path) -> None:
    """Write ``graph`` to ``path`` as ONNX."""
    import onnx
    onnx.save(to_onnx(graph), str(path))
