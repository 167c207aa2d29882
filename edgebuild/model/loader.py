"""ONNX -> Graph: decode, validate (hostile input included), resolve static shapes and dtypes.

Importing this module does not import onnxruntime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgebuild.errors import ModelError

from . import ops
from .infer import DEFAULT_MAX_TENSOR_BYTES, infer
from .ir import Graph, Node
from .ops import TensorInfo
from .ops._common import ONNX_DTYPES
from .safety import check_external, check_tensor, iter_tensors, tensor_dtype

PROTOBUF_LIMIT = 2 ** 31


def load(path, *, max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES, narrow_float64: bool = False) -> Graph:
    """Load an ONNX file into a :class:`Graph` (ModelError for missing, broken or hostile files).
    ``narrow_float64``: a model computing in float64 is rewritten to float32 (the build's import)."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise ModelError("model file not found", file=source,
                         fix="check the path (relative paths are resolved from the working folder)")
    try:
        size = path.stat().st_size
        if size >= PROTOBUF_LIMIT:
            raise ModelError(f"file is {size} bytes; an ONNX protobuf is under 2 GiB", file=source,
                             fix="store large weights as external data next to the model")
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read the model file ({exc.strerror})", file=source,
                         fix="check the file's permissions") from None
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ModelError(f"not a valid ONNX protobuf ({exc.__class__.__name__}: {exc})",
                         file=source, fix="re-export the model; the file is truncated or not ONNX"
                         ) from None
    return from_onnx(model, source=source, base_dir=path.parent, max_tensor_bytes=max_tensor_bytes,
                     narrow_float64=narrow_float64)


def from_onnx(model, source: str = "<memory>", *, base_dir=None,
              max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES, narrow_float64: bool = False) -> Graph:
    """Convert an ``onnx.ModelProto`` into a :class:`Graph`.

    ``base_dir`` is the folder holding external-data files (only :func:`load` should pass it).
    Every ModelError raised names ``source``.
    """
    try:
        return _from_onnx(model, source, base_dir, max_tensor_bytes, narrow_float64)
    except ModelError as exc:
        if exc.file:
            raise
        raise ModelError(exc.message, file=source, field=exc.field, fix=exc.fix) from None


def _from_onnx(model, source, base_dir, max_tensor_bytes, narrow_float64) -> Graph:
    if not model.HasField("graph") or not model.graph.node:
        raise ModelError("the file holds no ONNX graph (no nodes)", file=source,
                         fix="export a complete model (torch.onnx.export / tf2onnx)")
    model, upgraded_from = _upgrade(model, source)
    opset = _opset(model, source)
    for tensor in iter_tensors(model.graph):
        check_tensor(tensor, source, max_tensor_bytes)
    model, narrowed = _narrow_float64(model) if narrow_float64 else (model, 0)
    if model.graph.sparse_initializer:
        raise ModelError("sparse initializers are not supported", file=source,
                         field=f"tensor '{model.graph.sparse_initializer[0].values.name}'",
                         fix="store the weights densely")
    if check_external(model, Path(base_dir) if base_dir is not None else None, source):
        from onnx.external_data_helper import load_external_data_for_model
        model = _copy(model)
        load_external_data_for_model(model, str(base_dir))
    nodes = _nodes(model, source)
    for node, proto in zip(nodes, model.graph.node):
        ops.require(node, proto.domain)
        _check_attrs(node, opset, source)
    initializers = {t.name: _to_array(t, source) for t in model.graph.initializer}
    inputs = _inputs(model, initializers, source)
    nodes = _toposort(nodes, set(inputs) | set(initializers), source)
    _onnx_check(model, source)
    info = infer(nodes, inputs, initializers, opset, limit=max_tensor_bytes, source=source)
    outputs = [o.name for o in model.graph.output]
    for name in outputs:
        if name not in info:
            raise ModelError(f"graph output '{name}' is never produced", file=source,
                             field=f"output '{name}'", fix="repair the model's graph")
    used = {n for node in nodes for n in node.inputs} | set(outputs)
    initializers = {k: v for k, v in initializers.items() if k in used}
    live = set(inputs) | set(initializers) | {o for n in nodes for o in n.outputs if o}
    return Graph(nodes=nodes, inputs=list(inputs), outputs=outputs, initializers=initializers,
                 shapes={k: tuple(int(d) for d in v.shape) for k, v in info.items() if k in live},
                 dtypes={k: v.dtype for k, v in info.items() if k in live},
                 name=model.graph.name or "model", opset=opset, source=source,
                 log=([f"upgraded from opset {upgraded_from} to {opset} with onnx.version_converter"]
                      if upgraded_from is not None else [])
                 + ([f"float64 model computed in float32 ({narrowed} tensors narrowed)"] if narrowed else []))


def _default_opset(model) -> int | None:
    versions = {o.domain: o.version for o in model.opset_import}
    return versions.get("", versions.get("ai.onnx"))


def _upgrade(model, source):
    """A file older than ops.MIN_OPSET (opset 1..6: e.g. the PyTorch-converted models in the onnx
    package's backend test data) upgraded with onnx.version_converter, and the opset it had;
    (model, None) for a supported or newer file."""
    version = _default_opset(model)
    if version is None or not 1 <= version < ops.MIN_OPSET:
        return model, None
    from onnx import version_converter

    try:
        upgraded = version_converter.convert_version(model, ops.MIN_OPSET)
    except Exception as exc:            # the converter raises bare RuntimeErrors/ValueErrors from C++
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ModelError(f"opset {version} could not be upgraded to {ops.MIN_OPSET} by onnx.version_converter "
                         f"({first})", file=source, field="opset_import",
                         fix=f"re-export the model with an opset between {ops.MIN_OPSET} and {ops.MAX_OPSET}"
                         ) from None
    return upgraded, version


def _narrow_float64(model):
    """A model computing in float64 (numpy- or Keras-float64 exports) rewritten to float32, and how many
    tensors changed: initializers and constants cast, graph inputs/outputs/value_info retyped, Cast(to=DOUBLE)
    made Cast(to=FLOAT). The build quantises to int8 in the end; float32 keeps far more precision than that.
    (model, 0) when nothing is float64."""
    from onnx import TensorProto, numpy_helper

    double = TensorProto.DOUBLE

    def typed(vis):
        return [vi for vi in vis if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type == double]

    g = model.graph
    hit = [t for t in iter_tensors(g) if t.data_type == double]
    vis = typed(g.input) + typed(g.output) + typed(g.value_info)
    casts = [a for node in g.node if node.op_type == "Cast" for a in node.attribute if a.name == "to" and a.i == double]
    if not (hit or vis or casts):
        return model, 0
    model = _copy(model)
    g = model.graph
    hit = [t for t in iter_tensors(g) if t.data_type == double]
    for t in hit:
        t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float32), t.name))
    vis = typed(g.input) + typed(g.output) + typed(g.value_info)
    for vi in vis:
        vi.type.tensor_type.elem_type = TensorProto.FLOAT
    for node in g.node:
        for a in node.attribute:
            if node.op_type == "Cast" and a.name == "to" and a.i == double:
                a.i = TensorProto.FLOAT
    return model, len(hit) + len(vis)


def _copy(model):
    import onnx
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def _opset(model, source) -> int:
    version = _default_opset(model)
    lo, hi = ops.MIN_OPSET, ops.MAX_OPSET
    if version is None or not lo <= version <= hi:
        raise ModelError(f"default-domain opset {version} is not supported", file=source,
                         field="opset_import", fix=f"export with an opset between {lo} and {hi}")
    return int(version)


def _to_array(tensor, source) -> np.ndarray:
    from onnx import numpy_helper
    dtype = tensor_dtype(tensor, source)
    try:
        arr = numpy_helper.to_array(tensor)
    except Exception as exc:  # noqa: BLE001 - any decoding failure is a broken file
        raise ModelError(f"tensor '{tensor.name}' cannot be decoded ({exc})", file=source,
                         field=f"tensor '{tensor.name}'", fix="repair the model file") from None
    if arr.shape != tuple(tensor.dims):
        raise ModelError(f"tensor '{tensor.name}' holds {arr.size} values for dims "
                         f"{list(tensor.dims)}", file=source, field=f"tensor '{tensor.name}'",
                         fix="repair the model file")
    return arr.astype(dtype, copy=False)


def _attr(attr, node_name, op_type, source):
    from onnx import AttributeProto, helper
    if attr.type == AttributeProto.TENSOR:
        return _to_array(attr.t, source)
    if attr.type == AttributeProto.STRING:
        return attr.s.decode("utf-8", "replace")
    if attr.type == AttributeProto.STRINGS:
        return [s.decode("utf-8", "replace") for s in attr.strings]
    if attr.type in (AttributeProto.FLOAT, AttributeProto.INT):
        return helper.get_attribute_value(attr)
    if attr.type in (AttributeProto.FLOATS, AttributeProto.INTS):
        return list(helper.get_attribute_value(attr))
    if attr.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
        raise ModelError(f"node '{node_name}' ({op_type}) holds a subgraph in attribute '{attr.name}': "
                         "control flow (If/Loop/Scan) is not supported, edgebuild compiles straight-line graphs",
                         file=source, field=f"node '{node_name}'",
                         fix="export a traced graph with the branch taken fixed (torch.onnx.export traces "
                             "one path; or fold the condition with onnxsim / onnx's constant folding)")
    raise ModelError(f"node '{node_name}' ({op_type}): attribute '{attr.name}' has unsupported type "
                     f"{AttributeProto.AttributeType.Name(attr.type)}", file=source,
                     field=f"node '{node_name}'",
                     fix="re-export without sparse tensors or type-proto attributes")


def _nodes(model, source) -> list[Node]:
    """Nodes with decoded attributes and unique, non-empty names."""
    taken: set[str] = set()
    nodes = []
    for i, p in enumerate(model.graph.node):
        name = p.name or f"{p.op_type}_{i}"
        base, k = name, 1
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        attrs = {a.name: _attr(a, name, p.op_type, source) for a in p.attribute}
        nodes.append(Node(p.op_type, name, list(p.input), list(p.output), attrs))
    return nodes


def _check_attrs(node, opset, source) -> None:
    """Reject attributes that the operator's schema at this opset does not define."""
    from onnx import defs
    allowed = defs.get_schema(node.op_type, opset).attributes
    extra = sorted(set(node.attrs) - set(allowed))
    if extra:
        raise ModelError(f"node '{node.name}' ({node.op_type}): attribute(s) {extra} are not "
                         f"defined at opset {opset} and are not supported", file=source,
                         field=f"node '{node.name}'", fix="re-export the model without them")


def _inputs(model, initializers, source) -> dict[str, TensorInfo]:
    """Static TensorInfo of the graph inputs (initializers excluded; unknown batch -> 1)."""
    out = {}
    for vi in model.graph.input:
        if vi.name in initializers:
            continue
        field = f"input '{vi.name}'"
        tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        if tt is None or tt.elem_type not in ONNX_DTYPES or not tt.HasField("shape"):
            raise ModelError(f"graph input '{vi.name}' is not a numeric tensor with a shape",
                             file=source, field=field, fix="export with typed, shaped inputs")
        shape = []
        for axis, dim in enumerate(tt.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value >= 0:
                shape.append(int(dim.dim_value))
            elif axis == 0:
                shape.append(1)
            else:
                raise ModelError(f"graph input '{vi.name}' has dynamic dimension {axis} "
                                 f"('{dim.dim_param or '?'}')", file=source, field=field,
                                 fix="export with static shapes (only the batch may be dynamic)")
        out[vi.name] = TensorInfo(tuple(shape), ONNX_DTYPES[tt.elem_type])
    return out


def _toposort(nodes: list[Node], available: set[str], source) -> list[Node]:
    """Nodes in a topological order (stable: file order among ready nodes)."""
    producer = {}
    for i, n in enumerate(nodes):
        for o in n.outputs:
            if o:
                if o in producer or o in available:
                    raise ModelError(f"tensor '{o}' is produced twice", file=source,
                                     field=f"node '{n.name}'", fix="repair the model's graph")
                producer[o] = i
    deps = [{producer[x] for x in n.inputs if x in producer} for n in nodes]
    for n in nodes:
        for x in n.inputs:
            if x and x not in producer and x not in available:
                raise ModelError(f"node '{n.name}' reads tensor '{x}' that nothing provides",
                                 file=source, field=f"node '{n.name}'",
                                 fix="repair the model's graph")
    order, done = [], set()
    pending = list(range(len(nodes)))
    while pending:
        ready = [i for i in pending if deps[i] <= done]
        if not ready:
            raise ModelError("the graph has a cycle", file=source,
                             field=f"node '{nodes[pending[0]].name}'",
                             fix="repair the model's graph")
        order.extend(ready)
        done.update(ready)
        pending = [i for i in pending if i not in done]
    return [nodes[i] for i in order]


def _onnx_check(model, source) -> None:
    """Run onnx's own shape inference in strict mode to reject inconsistent graphs."""
    import onnx
    try:
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as exc:
        raise ModelError(f"ONNX shape inference rejects the model: {str(exc).strip()[:500]}",
                         file=source, fix="repair or re-export the model") from None
