"""Graph optimiser: constant folding, pass-through removal, BatchNorm folding, MatMul(+Add) ->
Gemm and activation fusion. Returns a new Graph (the input is never mutated) whose ``log`` lists
what was done.
"""

from __future__ import annotations

import numpy as np

from . import ops
from .infer import infer
from .ir import Graph, Node
from .ops import RunContext, TensorInfo

PASSTHROUGH = ("Identity", "Dropout")
NO_POST = ("Constant", "Shape", "Identity", "Dropout", "Cast", "Gather")


def optimise(graph: Graph) -> Graph:
    """Optimised copy of ``graph``; ``result.log`` = ``graph.log`` + one line per rewrite."""
    g = graph.copy()
    log: list[str] = []
    _fold_constants(g, log)
    _remove_passthrough(g, log)
    _mean_to_global_pool(g, log)
    _fold_batchnorm(g, log)
    _matmul_to_gemm(g, log)
    _fuse_activations(g, log)
    _prune(g, log)
    info = infer(g.nodes, {n: TensorInfo(g.shapes[n], g.dtypes[n]) for n in g.inputs},
                 g.initializers, g.opset, source=g.source)
    g.shapes = {k: v.shape for k, v in info.items()}
    g.dtypes = {k: v.dtype for k, v in info.items()}
    g.log = list(graph.log) + log
    return g


# ---- helpers ------------------------------------------------------------------------------

def _fresh(g: Graph, base: str) -> str:
    name, k = base, 1
    while name in g.shapes or name in g.initializers:
        name, k = f"{base}_{k}", k + 1
    return name


def _add_const(g: Graph, base: str, value: np.ndarray) -> str:
    name = _fresh(g, base)
    g.initializers[name] = value
    g.shapes[name] = tuple(value.shape)
    g.dtypes[name] = value.dtype.name
    return name


def _replace_uses(g: Graph, old: str, new: str) -> None:
    for n in g.nodes:
        n.inputs = [new if x == old else x for x in n.inputs]


def _sole_consumer(g: Graph, tensor: str) -> Node | None:
    """The only node reading ``tensor`` (None if several, none, or it is a graph output)."""
    users = g.consumers().get(tensor, [])
    if len(users) != 1 or tensor in g.outputs:
        return None
    return users[0]


def _ctx(g: Graph, node: Node) -> RunContext:
    return RunContext(g.opset, tuple(g.shapes.get(n, ()) for n in node.inputs),
                      tuple(g.shapes.get(n, ()) for n in node.outputs))


# ---- passes -------------------------------------------------------------------------------

def _fold_constants(g: Graph, log: list[str]) -> None:
    """Replace nodes computable from initializers (and Shape of static tensors) by initializers."""
    kept, folded = [], []
    for node in g.nodes:
        present = [x for x in node.inputs if x]
        static = node.op_type == "Shape" or all(x in g.initializers for x in present)
        if not static or any(o in g.outputs for o in node.outputs):
            kept.append(node)
            continue
        xs = [g.initializers[x] if x in g.initializers
              else np.broadcast_to(np.zeros((), g.dtypes[x]), g.shapes[x]) if x else None
              for x in node.inputs]
        ys = ops.REGISTRY[node.op_type].run(node, xs, _ctx(g, node))
        if node.post:
            from .runtime import apply_post
            ys = [apply_post(ys[0], node.post), *ys[1:]]
        for name, y in zip(node.outputs, ys):
            if name:
                g.initializers[name] = np.asarray(y).astype(g.dtypes[name], copy=True)
        folded.append(f"{node.op_type} '{node.name}'")
    if folded:
        g.nodes = kept
        log.append(f"folded {len(folded)} constant node(s): {', '.join(folded)}")


def _is_noop(g: Graph, node: Node) -> bool:
    """Identity; Dropout whose mask nobody reads; a reshape-like op that keeps the shape."""
    if node.op_type in PASSTHROUGH:
        mask = node.outputs[1] if len(node.outputs) > 1 else ""
        return not mask or (mask not in g.consumers() and mask not in g.outputs)
    return ops.is_reshape(node.op_type) and g.shapes[node.inputs[0]] == g.shapes[node.outputs[0]]


def _remove_passthrough(g: Graph, log: list[str]) -> None:
    """Drop Identity, inference Dropout and Reshape/Flatten/(Un)Squeeze that keep the shape."""
    for node in list(g.nodes):
        if not _is_noop(g, node):
            continue
        src, dst = node.inputs[0], node.outputs[0]
        if dst in g.outputs:
            prod = g.producer().get(src)
            if prod is None or src in g.outputs or len(g.consumers().get(src, [])) != 1:
                continue  # the graph output must keep a producing node
            prod.outputs = [dst if o == src else o for o in prod.outputs]
        else:
            _replace_uses(g, dst, src)
        g.nodes.remove(node)
        log.append(f"removed {node.op_type} '{node.name}' (no effect at inference)")


def _bn_params(g: Graph, bn: Node):
    if len(bn.inputs) < 5 or not all(x in g.initializers for x in bn.inputs[1:5]):
        return None
    from .ops.batchnormalization import scale_shift
    return scale_shift([None, *(g.initializers[x] for x in bn.inputs[1:5])],
                       bn.attrs.get("epsilon", 1e-5))


def _fold_batchnorm(g: Graph, log: list[str]) -> None:
    """Fold inference BatchNormalization into the Conv/Gemm that alone feeds it."""
    for bn in [n for n in g.nodes if n.op_type == "BatchNormalization"]:
        prod = g.producer().get(bn.inputs[0])
        if prod is None or prod.op_type not in ("Conv", "Gemm") or prod.post \
                or _sole_consumer(g, bn.inputs[0]) is not bn \
                or prod.inputs[1] not in g.initializers:
            continue
        params = _bn_params(g, bn)
        bias = prod.inputs[2] if len(prod.inputs) > 2 and prod.inputs[2] else None
        if params is None or (bias is not None and bias not in g.initializers):
            continue
        mul, add = params
        folded = _fold_conv(g, prod, mul, add, bias) if prod.op_type == "Conv" \
            else _fold_gemm(g, prod, mul, add, bias)
        if not folded:
            continue
        prod.outputs[0] = bn.outputs[0]
        g.nodes.remove(bn)
        log.append(f"folded BatchNormalization '{bn.name}' into {prod.op_type} '{prod.name}'")


def _fold_conv(g, conv, mul, add, bias) -> bool:
    w = g.initializers[conv.inputs[1]]
    b = g.initializers[bias].astype(np.float64) if bias else np.zeros(w.shape[0])
    w2 = (w * mul.reshape(-1, *[1] * (w.ndim - 1))).astype(w.dtype)
    b2 = (b * mul + add).astype(w.dtype)
    conv.inputs = [conv.inputs[0], _add_const(g, f"{conv.inputs[1]}_bn", w2),
                   _add_const(g, f"{bias or conv.name + '_bias'}_bn", b2)]
    return True


def _fold_gemm(g, gemm, mul, add, bias) -> bool:
    """Gemm (M, N) followed by a BN over N: scale the columns of alpha*B, fold C."""
    w = g.initializers[gemm.inputs[1]]
    n = mul.shape[0]
    beta = gemm.attrs.get("beta", 1.0)
    if bias:
        c = g.initializers[bias]
        if c.size not in (1, n) or c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1):
            return False
        c = np.broadcast_to(c.reshape(-1).astype(np.float64) * beta, (n,))
    else:
        c = np.zeros(n)
    scaled = w.astype(np.float64) * gemm.attrs.get("alpha", 1.0)
    scaled = scaled * (mul[:, None] if gemm.attrs.get("transB", 0) else mul[None, :])
    gemm.attrs = {k: v for k, v in gemm.attrs.items() if k not in ("alpha", "beta")}
    gemm.inputs = [gemm.inputs[0], _add_const(g, f"{gemm.inputs[1]}_bn", scaled.astype(w.dtype)),
                   _add_const(g, f"{bias or gemm.name + '_bias'}_bn",
                              (c * mul + add).astype(w.dtype))]
    return True


def _mean_to_global_pool(g: Graph, log: list[str]) -> None:
    """ReduceMean over H and W of an NCHW tensor -> GlobalAveragePool (+ Flatten when keepdims=0):
    how torch's ``x.mean((2, 3))``, its dynamo export of AdaptiveAvgPool2d(1) and Keras'
    GlobalAveragePooling2D through tf2onnx write a global average pool."""
    for i, node in reversed(list(enumerate(g.nodes))):
        if node.op_type != "ReduceMean" or len(g.shapes.get(node.inputs[0], ())) != 4:
            continue
        axes = node.attrs.get("axes")
        if len(node.inputs) > 1 and node.inputs[1]:
            axes = g.initializers.get(node.inputs[1])
        if axes is None or sorted(int(a) % 4 for a in np.ravel(axes)) != [2, 3]:
            continue
        x, keep, (y,) = node.inputs[0], node.attrs.get("keepdims", 1), node.outputs
        n, c = g.shapes[x][:2]
        node.op_type, node.inputs, node.attrs = "GlobalAveragePool", [x], {}
        if not keep:
            pooled = _fresh(g, f"{y}_pooled")
            g.shapes[pooled], g.dtypes[pooled] = (n, c, 1, 1), g.dtypes[x]
            node.outputs = [pooled]
            names, name = {m.name for m in g.nodes}, f"{node.name}_flatten"
            while name in names:
                name += "_"
            g.nodes.insert(i + 1, Node("Flatten", name, [pooled], [y], {"axis": 1}))
        log.append(f"ReduceMean '{node.name}' over H, W -> GlobalAveragePool" + ("" if keep else " + Flatten"))


def _matmul_to_gemm(g: Graph, log: list[str]) -> None:
    """MatMul(A 2-D, B constant 2-D) [+ Add of a (N,)/(1, N) constant] -> Gemm."""
    for mm in [n for n in g.nodes if n.op_type == "MatMul"]:
        a, b = mm.inputs
        if len(g.shapes[a]) != 2 or b not in g.initializers or g.initializers[b].ndim != 2 \
                or not g.dtypes[a].startswith("float"):
            continue
        n = g.shapes[b][1]
        add = _sole_consumer(g, mm.outputs[0])
        other = None
        if add is not None and add.op_type == "Add" and not add.post:
            other = next((x for x in add.inputs if x != mm.outputs[0]), None)
            if other not in g.initializers or g.shapes[other] not in ((n,), (1, n)):
                other = None
        mm.op_type = "Gemm"
        if other is not None:
            mm.inputs = [a, b, other]
            mm.outputs = list(add.outputs)
            g.nodes.remove(add)
            log.append(f"MatMul '{mm.name}' + Add '{add.name}' -> Gemm '{mm.name}'")
        else:
            if g.opset < 11:  # C is required before opset 11
                mm.inputs = [a, b, _add_const(g, f"{mm.name}_zero_bias", np.zeros(n, g.dtypes[b]))]
            log.append(f"MatMul '{mm.name}' -> Gemm '{mm.name}'")


def _post_entry(g: Graph, act: Node):
    """(op_type, explicit attrs) for a fusable activation, or None if its bounds are dynamic."""
    if act.op_type == "Clip":
        if g.opset < 11:
            return "Clip", {"min": act.attrs.get("min"), "max": act.attrs.get("max")}
        bounds = []
        for x in (act.inputs + ["", ""])[1:3]:
            if x and x not in g.initializers:
                return None
            bounds.append(float(g.initializers[x].reshape(-1)[0]) if x else None)
        return "Clip", {"min": bounds[0], "max": bounds[1]}
    if act.op_type == "LeakyRelu":
        return "LeakyRelu", {"alpha": float(act.attrs.get("alpha", 0.01))}
    return act.op_type, {}


def _fuse_activations(g: Graph, log: list[str]) -> None:
    """Move an activation into its producer's ``post`` when it is the producer's only reader."""
    for act in [n for n in g.nodes if ops.is_activation(n.op_type)]:
        x = act.inputs[0]
        prod = g.producer().get(x)
        if prod is None or prod.op_type in NO_POST or ops.is_reshape(prod.op_type) \
                or [o for o in prod.outputs if o] != [x] or _sole_consumer(g, x) is not act \
                or not g.dtypes[x].startswith("float"):
            continue
        entry = _post_entry(g, act)
        if entry is None:
            continue
        prod.post.append(entry)
        prod.outputs = [act.outputs[0]]
        g.nodes.remove(act)
        log.append(f"fused {act.op_type} '{act.name}' into {prod.op_type} '{prod.name}'")


def _prune(g: Graph, log: list[str]) -> None:
    """Drop initializers no node reads."""
    used = {x for n in g.nodes for x in n.inputs} | set(g.outputs)
    dead = [k for k in g.initializers if k not in used]
    for k in dead:
        del g.initializers[k]
    if dead:
        log.append(f"dropped {len(dead)} unused initializer(s)")
