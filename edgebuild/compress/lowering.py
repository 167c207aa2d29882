"""Lower an IR graph to fused integer-friendly layers, and run them in float for calibration.

A lowered layer is a plain dict::

    {"name", "kind", "inputs": [tensor], "output": tensor, "in_shapes", "out_shape",
     "attrs": {...}, "clamp": (lo, hi) real range of the fused Relu/Clip or None,
     "weight": initializer name (conv/dense), "w": float array, "b": float array}

Kinds: conv (optionally with a fused MaxPool), dense, maxpool, avgpool, add, concat, lut.
Shapes exclude the batch dimension. Flatten/Reshape/Identity/Dropout/Squeeze/Unsqueeze become
aliases (no layer); a final Softmax is dropped and noted.
"""

from __future__ import annotations

import math

import numpy as np

from edgebuild.errors import ModelError
from edgebuild.model.ir import Graph, Node

from .windows import conv_sum, padded, valid_counts, windows

ALIAS_OPS = {"Flatten", "Reshape", "Identity", "Dropout", "Squeeze", "Unsqueeze"}
LUT_FUNCS = {
    "Sigmoid": lambda x, a: 1.0 / (1.0 + np.exp(-x)),
    "Tanh": lambda x, a: np.tanh(x),
    "LeakyRelu": lambda x, a: np.where(x >= 0, x, x * float(a.get("alpha", 0.01))),
    "Relu": lambda x, a: np.maximum(x, 0.0),
    "Clip": lambda x, a: np.clip(x, a.get("min", -np.inf), a.get("max", np.inf)),
}


def _err(node: Node, msg: str, fix: str) -> ModelError:
    return ModelError(f"node '{node.name}' ({node.op_type}): {msg}", field=node.name, fix=fix)


def _clip_bounds(node: Node, graph: Graph) -> dict:
    """Clip min/max from attributes (opset < 11) or constant inputs (opset >= 11)."""
    bounds = {k: float(node.attrs[k]) for k in ("min", "max") if k in node.attrs}
    for key, idx in (("min", 1), ("max", 2)):
        if len(node.inputs) > idx and node.inputs[idx]:
            if node.inputs[idx] not in graph.initializers:
                raise _err(node, f"{key} is not a constant", "make the Clip bounds initializers")
            bounds[key] = float(np.asarray(graph.initializers[node.inputs[idx]]).reshape(()))
    return bounds


def _merge_clamp(clamp, op: str, attrs: dict):
    lo, hi = clamp if clamp else (-math.inf, math.inf)
    if op == "Relu":
        return max(lo, 0.0), max(hi, 0.0)
    nlo = -math.inf if attrs.get("min") is None else float(attrs["min"])
    nhi = math.inf if attrs.get("max") is None else float(attrs["max"])
    return min(max(lo, nlo), nhi), max(min(hi, nhi), nlo)


def _geometry(node: Node, in_hw, out_hw, kernel) -> dict:
    a = node.attrs
    strides = list(a.get("strides", [1, 1]))
    dil = list(a.get("dilations", [1, 1]))
    pads = list(a.get("pads", [0, 0, 0, 0]))
    auto = a.get("auto_pad", "NOTSET")
    if isinstance(auto, bytes):
        auto = auto.decode()
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0, 0, 0, 0]
        for i in range(2):
            total = max(0, (out_hw[i] - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - in_hw[i])
            small, big = total // 2, total - total // 2
            pads[i], pads[i + 2] = (small, big) if auto == "SAME_UPPER" else (big, small)
    elif auto == "VALID":
        pads = [0, 0, 0, 0]
    # ONNX pads are [top, left, bottom, right]
    return {"kernel": list(kernel), "strides": strides, "dilations": dil, "pads": pads}


class _Lowerer:
    def __init__(self, graph: Graph):
        self.g = graph
        self.alias: dict[str, str] = {}
        self.layers: list[dict] = []
        self.notes: list[str] = []
        self.done: set[int] = set()
        self.consumers: dict[str, list[int]] = {}
        for i, n in enumerate(graph.nodes):
            for t in n.inputs:
                if t:
                    self.consumers.setdefault(t, []).append(i)

    def root(self, t: str) -> str:
        while t in self.alias:
            t = self.alias[t]
        return t

    def shape(self, t: str) -> tuple:
        if t not in self.g.shapes:
            raise ModelError(f"tensor '{t}' has no static shape", field=t,
                             fix="export the model with fixed input shapes")
        return tuple(int(d) for d in self.g.shapes[t][1:])

    def sole_consumer(self, t: str):
        users = self.consumers.get(t, [])
        if len(users) != 1 or t in self.g.outputs:
            return None
        return users[0]

    def absorb_post(self, layer: dict, node: Node, allow_pool: bool) -> list[dict]:
        """Fuse node.post and following single-consumer Relu/Clip (and MaxPool for conv).

        Relu/Clip become the layer's clamp; any other fused activation (Sigmoid, Tanh,
        LeakyRelu) starts a LUT layer on an internal tensor. Returns the resulting layers.
        """
        chain = [layer]
        for k, (op, attrs) in enumerate(node.post):
            if op in ("Relu", "Clip"):
                chain[-1]["clamp"] = _merge_clamp(chain[-1]["clamp"], op, attrs)
            elif op in LUT_FUNCS:
                tmp = f"{node.outputs[0]}#post{k}"
                chain[-1]["output"] = tmp
                shape = list(chain[-1]["out_shape"])
                chain.append({"name": f"{node.name}.{op.lower()}", "kind": "lut",
                              "inputs": [tmp], "in_shapes": [shape], "out_shape": shape,
                              "attrs": {}, "clamp": None, "func": op, "func_attrs": dict(attrs)})
            else:
                raise _err(node, f"fused activation {op} is not supported",
                           "use Relu, Clip, Sigmoid, Tanh or LeakyRelu")
        last = chain[-1]
        t = node.outputs[0]
        while (j := self.sole_consumer(t)) is not None:
            nxt = self.g.nodes[j]
            if nxt.op_type in ("Relu", "Clip"):
                last["clamp"] = _merge_clamp(last["clamp"], nxt.op_type, _clip_bounds(nxt, self.g))
            elif (nxt.op_type == "MaxPool" and allow_pool and last is layer
                  and "pool" not in layer["attrs"] and not nxt.post):
                hw = layer["out_shape"][1:]
                ohw = self.shape(nxt.outputs[0])[1:]
                layer["attrs"]["pool"] = self.pool_geom(nxt, hw, ohw)
                layer["attrs"]["conv_out"] = list(hw)
                layer["out_shape"] = self.shape(nxt.outputs[0])
            else:
                break
            self.done.add(j)
            t = nxt.outputs[0]
        last["output"] = t
        return chain

    def pool_geom(self, node: Node, in_hw, out_hw) -> dict:
        if list(node.attrs.get("dilations", [1, 1])) != [1, 1]:
            raise _err(node, "dilated pooling is not supported", "use dilation 1")
        if node.attrs.get("storage_order", 0):
            raise _err(node, "storage_order=1 is not supported", "remove the attribute")
        return _geometry(node, in_hw, out_hw, list(node.attrs["kernel_shape"]))

    def layer(self, node: Node, kind: str, inputs: list[str], **extra) -> dict:
        ins = [self.root(t) for t in inputs]
        return {"name": node.name, "kind": kind, "inputs": ins,
                "in_shapes": [list(self.shape(t)) for t in inputs],
                "out_shape": self.shape(node.outputs[0]), "attrs": {}, "clamp": None, **extra}

    def const(self, node: Node, t: str, what: str) -> np.ndarray:
        if t not in self.g.initializers:
            raise _err(node, f"{what} '{t}' is not a constant initializer",
                       "export weights as initializers")
        return np.asarray(self.g.initializers[t], dtype=np.float64)

    def lower_conv(self, node: Node) -> list[dict]:
        x, wname = node.inputs[0], node.inputs[1]
        w = self.const(node, wname, "weight")
        if w.ndim != 4:
            raise _err(node, "only 2-D convolution is supported", "use Conv2d")
        b = (self.const(node, node.inputs[2], "bias") if len(node.inputs) > 2 and node.inputs[2]
             else np.zeros(w.shape[0]))
        lay = self.layer(node, "conv", [x], weight=wname, w=w, b=b)
        in_hw, out_hw = lay["in_shapes"][0][1:], lay["out_shape"][1:]
        lay["attrs"] = _geometry(node, in_hw, out_hw, list(w.shape[2:]))
        lay["attrs"]["groups"] = int(node.attrs.get("group", 1))
        return self.absorb_post(lay, node, allow_pool=True)

    def lower_dense(self, node: Node) -> list[dict]:
        a = node.attrs
        if a.get("transA", 0):
            raise _err(node, "transA=1 is not supported", "transpose the input instead")
        wname = node.inputs[1]
        w = self.const(node, wname, "weight")
        if w.ndim != 2:
            raise _err(node, "weight must be 2-D", "flatten the weight")
        if node.op_type == "MatMul" or not a.get("transB", 0):
            w = w.T
        w = w * float(a.get("alpha", 1.0))
        b = np.zeros(w.shape[0])
        if node.op_type == "Gemm" and len(node.inputs) > 2 and node.inputs[2]:
            b = np.broadcast_to(self.const(node, node.inputs[2], "bias").reshape(-1),
                                (w.shape[0],)) * float(a.get("beta", 1.0))
        lay = self.layer(node, "dense", [node.inputs[0]], weight=wname, w=w, b=np.array(b))
        if node.op_type == "MatMul" and (j := self.sole_consumer(node.outputs[0])) is not None:
            add = self.g.nodes[j]
            other = [t for t in add.inputs if t != node.outputs[0]]
            if add.op_type == "Add" and len(other) == 1 and other[0] in self.g.initializers:
                lay["b"] = np.broadcast_to(self.const(add, other[0], "bias").reshape(-1),
                                           (w.shape[0],)).copy()
                self.done.add(j)
                node = Node(add.op_type, add.name, add.inputs, add.outputs, add.attrs, add.post)
        lay["in_shapes"] = [[int(np.prod(lay["in_shapes"][0]))]]
        lay["out_shape"] = [int(np.prod(self.shape(node.outputs[0])))]
        return self.absorb_post(lay, node, allow_pool=False)

    def lower(self) -> tuple[list[dict], dict[str, str], list[str]]:
        g = self.g
        for i, node in enumerate(g.nodes):
            if i in self.done:
                continue
            op = node.op_type
            if op in ("Conv",):
                self.layers += self.lower_conv(node)
            elif op in ("Gemm", "MatMul"):
                self.layers += self.lower_dense(node)
            elif op in ALIAS_OPS:
                self.alias[node.outputs[0]] = self.root(node.inputs[0])
                for op2, _ in node.post:
                    raise _err(node, f"fused {op2} on an alias op", "run optimise first")
            elif op in ("Softmax", "LogSoftmax"):
                if node.outputs[0] not in g.outputs or len(g.outputs) != 1:
                    raise _err(node, "Softmax is only supported as the final node",
                               "remove the Softmax or move it to the end")
                self.alias[node.outputs[0]] = self.root(node.inputs[0])
                self.notes.append(f"final {op} '{node.name}' dropped: argmax is unchanged; "
                                  "outputs are logits")
            elif op in ("MaxPool", "AveragePool", "GlobalAveragePool"):
                self.layers += self.lower_pool(node)
            elif op == "Add":
                self.layers += self.lower_add(node)
            elif op == "Concat":
                lay = self.layer(node, "concat", list(node.inputs))
                axis = int(node.attrs.get("axis", 1))
                rank = len(g.shapes[node.outputs[0]])
                axis = axis + rank if axis < 0 else axis
                if axis == 0:
                    raise _err(node, "concat along the batch axis", "concatenate along axis >= 1")
                lay["attrs"] = {"axis": axis - 1}
                self.layers += self.absorb_post(lay, node, allow_pool=False)
            elif op in LUT_FUNCS:
                attrs = dict(node.attrs)
                if op == "Clip":
                    attrs = _clip_bounds(node, g)
                lay = self.layer(node, "lut", [node.inputs[0]], func=op, func_attrs=attrs)
                self.layers += self.absorb_post(lay, node, allow_pool=False)
            elif op == "BatchNormalization":
                raise _err(node, "BatchNormalization must be folded before quantisation",
                           "run edgebuild.model.optimise on the graph (it folds BN into Conv)")
            else:
                raise _err(node, "operator is not supported by the int8 backend",
                           "replace it with a supported operator (Conv, Gemm, MatMul, pools, "
                           "Add, Concat, Relu, Clip, Sigmoid, Tanh, LeakyRelu, Flatten, Reshape)")
        return self.layers, self.alias, self.notes

    def lower_pool(self, node: Node) -> list[dict]:
        if node.op_type == "GlobalAveragePool":
            lay = self.layer(node, "avgpool", [node.inputs[0]])
            h, w = lay["in_shapes"][0][1:]
            lay["attrs"] = {"kernel": [h, w], "strides": [1, 1], "dilations": [1, 1],
                            "pads": [0, 0, 0, 0], "include_pad": 0}
        else:
            kind = "maxpool" if node.op_type == "MaxPool" else "avgpool"
            lay = self.layer(node, kind, [node.inputs[0]])
            lay["attrs"] = self.pool_geom(node, lay["in_shapes"][0][1:], lay["out_shape"][1:])
            lay["attrs"]["include_pad"] = int(node.attrs.get("count_include_pad", 0))
        if len(lay["in_shapes"][0]) != 3:
            raise _err(node, "only 2-D pooling is supported", "use 2-D pooling")
        return self.absorb_post(lay, node, allow_pool=False)

    def lower_add(self, node: Node) -> list[dict]:
        shapes = [self.shape(t) for t in node.inputs]
        if any(t in self.g.initializers for t in node.inputs) or shapes[0] != shapes[1]:
            raise _err(node, "only Add of two same-shape activations is supported",
                       "fold constant additions into the previous layer's bias")
        lay = self.layer(node, "add", list(node.inputs))
        return self.absorb_post(lay, node, allow_pool=False)


def lower(graph: Graph) -> tuple[list[dict], dict[str, str], list[str]]:
    """Lower ``graph`` to fused layers; returns (layers, alias map tensor->root, notes)."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ModelError("the int8 backend needs exactly one graph input and one output",
                         field="graph.inputs/outputs", fix="export a single-input single-output model")
    return _Lowerer(graph).lower()


def _clamp(y: np.ndarray, clamp) -> np.ndarray:
    return y if clamp is None else np.clip(y, clamp[0], clamp[1])


def float_layer(lay: dict, xs: list[np.ndarray]) -> np.ndarray:
    """Float64 forward of one lowered layer on batched inputs (N, *in_shape)."""
    kind, a = lay["kind"], lay["attrs"]
    if kind == "conv":
        x = xs[0]
        hw = a.get("conv_out", lay["out_shape"][1:])
        y = conv_sum(padded(x, a, hw, 0.0), lay["w"], a, a["groups"], hw)
        y = _clamp(y + lay["b"][None, :, None, None], lay["clamp"])
        if "pool" in a:
            p = a["pool"]
            y = windows(padded(y, p, lay["out_shape"][1:], -np.inf), p,
                        lay["out_shape"][1:]).max(axis=(-1, -2))
        return y
    if kind == "dense":
        return _clamp(xs[0].reshape(len(xs[0]), -1) @ lay["w"].T + lay["b"], lay["clamp"])
    if kind == "maxpool":
        y = windows(padded(xs[0], a, lay["out_shape"][1:], -np.inf), a,
                    lay["out_shape"][1:]).max(axis=(-1, -2))
        return _clamp(y, lay["clamp"])
    if kind == "avgpool":
        ohw = lay["out_shape"][1:]
        s = windows(padded(xs[0], a, ohw, 0.0), a, ohw).sum(axis=(-1, -2))
        n = valid_counts(lay["in_shapes"][0][1:], a, ohw, bool(a["include_pad"]))
        return _clamp(s / n, lay["clamp"])
    if kind == "add":
        return _clamp(xs[0] + xs[1], lay["clamp"])
    if kind == "concat":
        n = len(xs[0])
        return _clamp(np.concatenate([x.reshape((n,) + tuple(s)) for x, s in
                                      zip(xs, lay["in_shapes"])], axis=a["axis"] + 1), lay["clamp"])
    if kind == "lut":
        return _clamp(LUT_FUNCS[lay["func"]](xs[0], lay["func_attrs"]), lay["clamp"])
    raise AssertionError(kind)
