"""Static shape/dtype propagation over a graph with the operators' own shape rules.

Constant sub-expressions (initializers, Constant, Shape of a static tensor and anything computed
only from those) get their values too, so data-dependent shapes such as PyTorch's
Shape->Gather->Unsqueeze->Concat->Reshape flatten resolve statically.
"""

from __future__ import annotations

import numpy as np

from edgebuild.errors import ModelError

from . import ops
from .ops import RunContext, TensorInfo

DEFAULT_MAX_TENSOR_BYTES = 256 * 1024 * 1024
_KEEP_VALUE_ELEMENTS = 1 << 16  # small constants keep their value for later shape rules


def check_size(name: str, shape, dtype: str, limit: int, source: str | None) -> None:
    """ModelError when a tensor of ``shape``/``dtype`` would exceed ``limit`` bytes.

    Works on python ints, so it never allocates or overflows.
    """
    count = 1
    for d in shape:
        count *= int(d)
    size = count * np.dtype(dtype).itemsize
    if size > limit:
        raise ModelError(f"tensor '{name}' of shape {list(shape)} ({dtype}) needs {size} bytes, "
                         f"over the {limit}-byte limit", file=source, field=f"tensor '{name}'",
                         fix="use a smaller model, or raise max_tensor_bytes if it is genuine")


def infer(nodes, inputs: dict[str, TensorInfo], initializers: dict, opset: int, *,
          limit: int = DEFAULT_MAX_TENSOR_BYTES, source: str | None = None
          ) -> dict[str, TensorInfo]:
    """TensorInfo of every tensor: graph inputs, initializers and every node output."""
    for name, t in inputs.items():
        check_size(name, t.shape, t.dtype, limit, source)
    info: dict[str, TensorInfo] = dict(inputs)
    for name, arr in initializers.items():
        info[name] = TensorInfo(tuple(arr.shape), arr.dtype.name, arr)
    for node in nodes:
        mod = ops.require(node)
        missing = [n for n in node.inputs if n and n not in info]
        if missing:
            raise ModelError(f"node '{node.name}' ({node.op_type}) reads tensor '{missing[0]}' "
                             "that no node, input or initializer provides", file=source,
                             field=f"node '{node.name}'", fix="repair the model's graph")
        ins = [info[n] if n else None for n in node.inputs]
        outs = list(mod.infer(node, ins, opset))
        if len(outs) < len([o for o in node.outputs if o]):
            raise ModelError(f"node '{node.name}' ({node.op_type}) has {len(node.outputs)} "
                             f"outputs; only {len(outs)} are supported", file=source,
                             field=f"node '{node.name}'", fix="drop the extra outputs")
        for name, out in zip(node.outputs, outs):
            if name:
                check_size(name, out.shape, out.dtype, limit, source)
        outs = _fold(node, mod, ins, outs, opset)
        for name, out in zip(node.outputs, outs):
            if name:
                info[name] = out
    return info


def _fold(node, mod, ins, outs, opset):
    """Attach values to ``outs`` when every input value is known (constant folding)."""
    if any(o.value is not None for o in outs):
        return outs
    present = [i for i in ins if i is not None]
    if any(i.value is None for i in present):
        return outs
    ctx = RunContext(opset, tuple(i.shape if i else () for i in ins), tuple(o.shape for o in outs))
    values = mod.run(node, [i.value if i is not None else None for i in ins], ctx)
    result = []
    for o, v in zip(outs, values):
        v = np.asarray(v)
        if tuple(v.shape) != tuple(o.shape):
            raise ModelError(f"node '{node.name}' ({node.op_type}): computed shape {list(v.shape)} "
                             f"differs from the shape rule's {list(o.shape)}",
                             field=f"node '{node.name}'", fix="report this model as a bug")
        result.append(TensorInfo(o.shape, o.dtype, v if v.size <= _KEEP_VALUE_ELEMENTS else None))
    return result
