"""ONNX export and import of ``Net`` chains (plain opset-13 ops, no dependency on edgebuild.model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgebuild.errors import ModelError
from edgebuild.train.layers import AvgPool2d, Conv2d, Dense, Flatten, GlobalAvgPool, Layer, MaxPool2d, ReLU, _pair
from edgebuild.train.net import Net

_OP = {"conv": "Conv", "dense": "Gemm", "relu": "Relu", "maxpool": "MaxPool", "avgpool": "AveragePool",
       "flatten": "Flatten", "globalavgpool": "GlobalAveragePool"}


def _attrs(layer: Layer) -> dict:
    if isinstance(layer, Conv2d):
        t, left, b, r = layer.pads
        return {"kernel_shape": list(_pair(layer.kernel)), "strides": list(_pair(layer.stride)),
                "pads": [t, left, b, r], "dilations": [1, 1], "group": layer.group}
    if isinstance(layer, (MaxPool2d, AvgPool2d)):
        return {"kernel_shape": [layer.kernel] * 2, "strides": [layer.stride] * 2}
    if isinstance(layer, Flatten):
        return {"axis": 1}
    if isinstance(layer, Dense):
        return {"transB": 1}
    return {}


def export_onnx(net: Net, path, input_name: str = "input", output_name: str = "logits", opset: int = 13) -> None:
    """Write ``net`` as an ONNX model with batch dimension 1 and float32 weights.

    Node names are the layer names ("conv1", "relu1", "maxpool1", "flatten1", "dense1");
    initializers are "<node>.weight" / "<node>.bias"; node outputs are "<node>_out" except the
    last, which is ``output_name``. The same weights always give byte-identical files.
    """
    Path(path).write_bytes(to_onnx(net, input_name, output_name, opset).SerializeToString())


def to_onnx(net: Net, input_name: str = "input", output_name: str = "logits", opset: int = 13):
    """``net`` as a checked ``onnx.ModelProto`` (what ``export_onnx`` writes)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgebuild import __version__

    nodes, inits, current = [], [], input_name
    for i, layer in enumerate(net.layers):
        out = output_name if i == len(net.layers) - 1 else f"{layer.name}_out"
        inputs = [current]
        for key in ("weight", "bias"):
            if key in layer.params:
                inits.append(numpy_helper.from_array(layer.params[key].astype(np.float32), f"{layer.name}.{key}"))
                inputs.append(f"{layer.name}.{key}")
        nodes.append(helper.make_node(_OP[layer.kind], inputs, [out], name=layer.name, **_attrs(layer)))
        current = out
    out_shape = net.shapes()[-1][1] if net.layers else net.input_shape
    graph = helper.make_graph(
        nodes, "edgebuild",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, *net.input_shape])],
        [helper.make_tensor_value_info(current, TensorProto.FLOAT, [1, *out_shape])],
        initializer=inits)
    model = helper.make_model(graph, producer_name="edgebuild", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


class _Importer:
    """Turns the nodes of a chain-shaped ONNX graph into layers, one node at a time."""

    def __init__(self, model, path: str):
        from onnx import numpy_helper

        self.path = path
        self.consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.layers: list[Layer] = []
        self.shape: tuple[int, ...] = ()

    def fail(self, node, message: str, fix: str) -> ModelError:
        return ModelError(message, file=self.path, field=f"node '{node.name or node.op_type}' ({node.op_type})", fix=fix)

    def const(self, node, name: str, what: str) -> np.ndarray:
        if name not in self.consts:
            raise self.fail(node, f"{what} '{name}' is not a constant initializer",
                            "export the model with its weights stored as initializers")
        return self.consts[name]

    def add(self, layer: Layer, node) -> None:
        new_shape = layer.out_shape(self.shape)
        if min(new_shape, default=1) < 1:
            raise self.fail(node, f"turns shape {self.shape} into {new_shape}", "check the model's shapes")
        self.layers.append(layer)
        self.shape = new_shape

    def node(self, node, attrs: dict) -> None:
        op = node.op_type
        if op == "Constant":
            from onnx import numpy_helper
            self.consts[node.output[0]] = numpy_helper.to_array(attrs["value"])
            return
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            raise self.fail(node, f"operator {op} is not supported by the trainer",
                            "use only Conv, Gemm, MatMul+Add, Relu, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape")
        handler(node, attrs)

    def _image(self, node) -> int:
        if len(self.shape) != 3:
            raise self.fail(node, f"needs an image input (C, H, W), gets {self.shape}", "check the model's shapes")
        return self.shape[0]

    def op_Conv(self, node, a):
        in_ch = self._image(node)
        w = self.const(node, node.input[1], "weight").astype(np.float32)
        pads, strides, group = list(a.get("pads", [0] * 4)), list(a.get("strides", [1, 1])), a.get("group", 1)
        depthwise = group == in_ch == w.shape[0] and w.shape[1] == 1 and group > 1
        if ((group != 1 and not depthwise) or any(d != 1 for d in a.get("dilations", [1, 1]))
                or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or w.shape[1] * group != in_ch
                or len(pads) != 4 or len(strides) != 2):
            raise self.fail(node, f"unsupported Conv (weight {w.shape}, pads {pads}, strides {strides}, "
                                  f"group {group}, input channels {in_ch})",
                            "use dilation 1, explicit pads and group 1 or depthwise (group = channels)")
        # ONNX pads are (top, left, bottom, right); ints where square and symmetric, as recipes write them
        kh, kw = int(w.shape[2]), int(w.shape[3])
        layer = Conv2d(in_ch, w.shape[0], kh if kh == kw else (kh, kw),
                       strides[0] if strides[0] == strides[1] else tuple(strides),
                       pads[0] if len(set(pads)) == 1 else tuple(pads), group=group)
        layer.params["weight"] = w.copy()
        if len(node.input) > 2 and node.input[2]:
            layer.params["bias"] = self.const(node, node.input[2], "bias").astype(np.float32).reshape(-1).copy()
        self.add(layer, node)

    def _dense(self, node, w: np.ndarray, b: np.ndarray | None) -> None:
        if self.shape != (w.shape[1],):
            raise self.fail(node, f"weight {w.shape} does not fit input shape {self.shape}",
                            "flatten the input first (Flatten axis=1)")
        layer = Dense(w.shape[1], w.shape[0])
        layer.params["weight"] = np.ascontiguousarray(w, dtype=np.float32)
        if b is not None:
            layer.params["bias"] = (layer.params["bias"] + b.reshape(-1)).astype(np.float32)
        self.add(layer, node)

    def op_Gemm(self, node, a):
        if a.get("transA", 0):
            raise self.fail(node, "Gemm with transA=1 is not supported", "export Gemm with transA=0")
        b = self.const(node, node.input[1], "weight").astype(np.float64)
        w = (b if a.get("transB", 0) else b.T) * a.get("alpha", 1.0)
        bias = None
        if len(node.input) > 2 and node.input[2]:
            bias = self.const(node, node.input[2], "bias").astype(np.float64) * a.get("beta", 1.0)
            if bias.size != w.shape[0]:
                raise self.fail(node, f"bias of shape {bias.shape} for {w.shape[0]} outputs",
                                "give Gemm a per-output bias vector")
        self._dense(node, w, bias)

    def op_MatMul(self, node, a):
        self._dense(node, self.const(node, node.input[1], "weight").T, None)

    def op_Add(self, node, a):
        prev = self.layers[-1] if self.layers else None
        other = [name for name in node.input if name in self.consts]
        bias = self.consts[other[0]] if other else None
        if not isinstance(prev, Dense) or bias is None or bias.size != prev.out:
            raise self.fail(node, "Add is only supported as the bias of a preceding MatMul",
                            "fold the addition into a Gemm or MatMul+Add bias")
        prev.params["bias"] = (prev.params["bias"] + bias.reshape(-1)).astype(np.float32)

    def op_Relu(self, node, a):
        self.add(ReLU(), node)

    def _pool(self, node, a, cls):
        self._image(node)
        k, s = a.get("kernel_shape", [1, 1]), a.get("strides", None) or a.get("kernel_shape", [1, 1])
        if (k[0] != k[1] or s[0] != s[1] or any(a.get("pads", [0] * 4)) or a.get("ceil_mode", 0)
                or any(d != 1 for d in a.get("dilations", [1, 1]))
                or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")):
            raise self.fail(node, f"unsupported pooling (kernel {k}, strides {s}, pads {a.get('pads')})",
                            "use square kernels, equal strides, no padding, ceil_mode 0")
        self.add(cls(k[0], s[0]), node)

    def op_MaxPool(self, node, a):
        if len(node.output) > 1 and node.output[1]:
            raise self.fail(node, "MaxPool's Indices output is not supported", "drop the second output")
        self._pool(node, a, MaxPool2d)

    def op_AveragePool(self, node, a):
        self._pool(node, a, AvgPool2d)

    def op_GlobalAveragePool(self, node, a):
        self._image(node)
        self.add(GlobalAvgPool(), node)

    def op_Flatten(self, node, a):
        if a.get("axis", 1) != 1:
            raise self.fail(node, f"Flatten axis {a.get('axis')} is not supported", "use axis=1")
        self.add(Flatten(), node)

    def op_Reshape(self, node, a):
        target = [int(d) for d in self.const(node, node.input[1], "shape").reshape(-1)]
        flat = int(np.prod(self.shape))
        if len(target) != 2 or target[0] not in (0, 1, -1) or target[1] not in (-1, flat):
            raise self.fail(node, f"Reshape to {target} is not a flatten of {self.shape}",
                            "only Reshape to [1, -1] / [N, C*H*W] (a flatten) is supported")
        self.add(Flatten(), node)


def net_from_onnx(path) -> Net:
    """Load a chain of Conv/Gemm/MatMul+Add/Relu/MaxPool/AveragePool/Flatten/Reshape as a ``Net``.

    Raises ModelError naming the file and node when the model is unreadable, not a single chain,
    or uses an operator or attribute the trainer cannot represent.
    """
    import onnx
    from onnx import helper

    path = str(path)
    try:
        model = onnx.load(path)
    except Exception as exc:  # onnx raises protobuf DecodeError, OSError and others
        raise ModelError(f"cannot read ONNX model: {exc}", file=path, fix="give a valid .onnx file") from None
    graph = model.graph
    imp = _Importer(model, path)
    inputs = [i for i in graph.input if i.name not in imp.consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ModelError(f"the trainer needs one input and one output, got {len(inputs)} and {len(graph.output)}",
                         file=path, fix="export a single-input, single-output model")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) not in (2, 4) or any(d is None or d < 1 for d in dims[1:]):
        raise ModelError(f"input '{inputs[0].name}' has shape {dims}; need (N, C, H, W) or (N, F) with fixed sizes",
                         file=path, fix="export with a static input shape")
    imp.shape = tuple(int(d) for d in dims[1:])
    input_shape, current = imp.shape, inputs[0].name
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type != "Constant":
            data_inputs = [name for name in node.input if name and name not in imp.consts]
            if data_inputs != [current]:
                raise imp.fail(node, f"takes {data_inputs}, expected only '{current}' (the model must be a chain)",
                               "export a sequential model")
            current = node.output[0]
        imp.node(node, attrs)
    if current != graph.output[0].name:
        raise ModelError(f"the chain ends in '{current}', not the graph output '{graph.output[0].name}'",
                         file=path, fix="export a sequential model")
    return Net(imp.layers, input_shape)
