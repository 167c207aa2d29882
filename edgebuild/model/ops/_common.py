"""Helpers shared by the operator modules: tensor info, attribute access, geometry, costs, and
the parts activations, pools and Softmax-like ops have in common."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgebuild.errors import ModelError


@dataclass(frozen=True)
class TensorInfo:
    """What shape inference knows about a tensor: static shape, dtype name, value if constant."""

    shape: tuple[int, ...]
    dtype: str
    value: Any = None  # np.ndarray when the tensor is a known constant


@dataclass(frozen=True)
class RunContext:
    """What an operator may need at run time beyond its inputs.

    ``in_shapes``/``out_shapes`` are the static (load-time) shapes, used by shape-carrying ops
    such as Reshape to stay correct when the run-time batch differs from the static batch.
    """

    opset: int
    in_shapes: tuple = ()
    out_shapes: tuple = ()


def unsupported(node, what: str, fix: str = "re-export the model without it") -> ModelError:
    """A ModelError naming the node, its op type and the unsupported feature."""
    return ModelError(f"node '{node.name}' ({node.op_type}): {what} is not supported",
                      field=f"node '{node.name}'", fix=fix)


def nbytes(info: TensorInfo) -> int:
    """Bytes of a tensor described by ``info``."""
    return int(np.prod(info.shape, dtype=np.int64)) * np.dtype(info.dtype).itemsize


def numel(shape) -> int:
    """Number of elements of ``shape``."""
    return int(np.prod(shape, dtype=np.int64))


def io_cost(ins: list[TensorInfo], outs: list[TensorInfo], macs: int = 0) -> dict:
    """Cost record: MACs plus every input read once and every output written once."""
    return {"macs": int(macs),
            "bytes_read": sum(nbytes(i) for i in ins if i is not None),
            "bytes_written": sum(nbytes(o) for o in outs)}


def axis_of(node, axis: int, rank: int) -> int:
    """Normalise a possibly negative axis, raising ModelError when out of range."""
    if not -rank <= axis < max(rank, 1):
        raise ModelError(f"node '{node.name}' ({node.op_type}): axis {axis} out of range for "
                         f"rank {rank}", field=f"node '{node.name}'",
                         fix="fix the axis attribute of this node")
    return axis % rank if rank else 0


def broadcast(node, *shapes) -> tuple[int, ...]:
    """Numpy/ONNX multidirectional broadcast of ``shapes`` (ModelError when incompatible)."""
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError as exc:
        raise ModelError(f"node '{node.name}' ({node.op_type}): input shapes "
                         f"{' and '.join(map(str, shapes))} do not broadcast",
                         field=f"node '{node.name}'", fix="fix the model's tensor shapes") from exc


def const_input(node, ins: list[TensorInfo], index: int, what: str):
    """Value of constant input ``index`` or ModelError when it is only known at run time."""
    if index >= len(ins) or ins[index] is None:
        return None
    if ins[index].value is None:
        raise unsupported(node, f"a non-constant '{what}' input",
                          "export the model with static shapes (constant " + what + ")")
    return ins[index].value


# ---- sliding-window geometry (Conv and the pools) -------------------------------------------

@dataclass(frozen=True)
class Window:
    """Resolved geometry of a sliding-window op over ``len(kernel)`` spatial axes."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]   # explicit/auto padding (counted by count_include_pad)
    extra_end: tuple[int, ...]  # extra padding that only ceil_mode needs
    out: tuple[int, ...]


def window(node, in_spatial, kernel, *, ceil_mode: bool = False) -> Window:
    """Resolve strides/dilations/pads/auto_pad of ``node`` into a :class:`Window`."""
    nd = len(kernel)
    a = node.attrs
    strides = tuple(a.get("strides") or [1] * nd)
    dil = tuple(a.get("dilations") or [1] * nd)
    pads = list(a.get("pads") or [0] * (2 * nd))
    auto = a.get("auto_pad", "NOTSET")
    if len(strides) != nd or len(dil) != nd or len(pads) != 2 * nd:
        raise unsupported(node, "strides/dilations/pads whose length does not match the kernel",
                          "fix the node's attributes")
    ext = [(k - 1) * d + 1 for k, d in zip(kernel, dil)]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = [math.ceil(i / s) for i, s in zip(in_spatial, strides)]
        total = [max(0, (o - 1) * s + e - i) for o, s, e, i in zip(out, strides, ext, in_spatial)]
        small = [t // 2 for t in total]
        big = [t - t // 2 for t in total]
        pads = (small + big) if auto == "SAME_UPPER" else (big + small)
    elif auto == "VALID":
        pads = [0] * (2 * nd)
    elif auto != "NOTSET":
        raise unsupported(node, f"auto_pad={auto!r}", "use NOTSET, SAME_UPPER, SAME_LOWER or VALID")
    pb, pe = tuple(pads[:nd]), tuple(pads[nd:])
    out, extra = [], []
    for i, s, e, b, en in zip(in_spatial, strides, ext, pb, pe):
        span = i + b + en - e
        if span < 0:
            raise unsupported(node, f"a window of {e} larger than the padded input {i + b + en}",
                              "fix kernel_shape/pads or the input size")
        o = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= i + b:
            o -= 1  # the last window must start inside the input or the begin padding
        out.append(o)
        extra.append(max(0, (o - 1) * s + e - (i + b + en)))
    return Window(tuple(kernel), strides, dil, pb, pe, tuple(extra), tuple(out))


def pool_window(node, x_shape) -> Window:
    """The :class:`Window` of a pooling node over input ``x_shape`` (N, C, *spatial).

    Reads kernel_shape (required, one entry per spatial axis) and ceil_mode besides what
    :func:`window` reads; ModelError when kernel_shape is missing or of the wrong rank.
    """
    kernel = node.attrs.get("kernel_shape")
    if not kernel or len(kernel) != len(x_shape) - 2:
        raise unsupported(node, "a missing or wrong-rank kernel_shape", "set kernel_shape")
    return window(node, x_shape[2:], kernel, ceil_mode=bool(node.attrs.get("ceil_mode", 0)))


def taps(x: np.ndarray, win: Window, fill):
    """Yield, for every kernel tap (row-major), the strided view of padded ``x`` it reads.

    Each view has shape (N, C, *win.out); padding (explicit and ceil-mode extra) uses ``fill``.
    Looping over the few taps with whole-tensor numpy ops is the fast way to do windows.
    """
    pad = [(0, 0), (0, 0)] + [(b, e + x_) for b, e, x_ in zip(win.pads_begin, win.pads_end,
                                                              win.extra_end)]
    if any(p != (0, 0) for p in pad):
        x = np.pad(x, pad, constant_values=fill)
    for k in np.ndindex(*win.kernel):
        yield x[(slice(None), slice(None)) + tuple(
            slice(i * d, i * d + (o - 1) * s + 1, s)
            for i, d, o, s in zip(k, win.dilations, win.out, win.strides))]


# ONNX TensorProto.DataType codes -> numpy dtype names (the numeric types the IR supports).
ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32",
               7: "int64", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64"}
NUMPY_TO_ONNX = {v: k for k, v in ONNX_DTYPES.items()}


def same_dtype(node, ins: list[TensorInfo]) -> str:
    """The common dtype of the present inputs (ModelError when they differ)."""
    kinds = {i.dtype for i in ins if i is not None}
    if len(kinds) != 1:
        raise ModelError(f"node '{node.name}' ({node.op_type}): inputs mix dtypes {sorted(kinds)}",
                         field=f"node '{node.name}'", fix="insert a Cast so the inputs agree")
    return kinds.pop()


def elementwise_infer(node, ins: list[TensorInfo]) -> list[TensorInfo]:
    """Shape rule of a broadcasting elementwise op: broadcast shape, common dtype."""
    return [TensorInfo(broadcast(node, *(i.shape for i in ins)), same_dtype(node, ins))]


def elementwise_cost(node, ins, outs) -> dict:
    """One multiply-accumulate per output element, inputs read once, output written once."""
    return io_cost(ins, outs, numel(outs[0].shape))


def unary_infer(node, ins: list[TensorInfo], opset: int) -> list[TensorInfo]:
    """Shape rule of a unary op: same shape and dtype as the input."""
    return [TensorInfo(ins[0].shape, ins[0].dtype)]


def float_only(node, ins: list[TensorInfo]) -> None:
    """ModelError unless the first input is a float tensor."""
    if not ins[0].dtype.startswith("float"):
        raise unsupported(node, f"dtype {ins[0].dtype}", "use a float tensor input")


# ---- activations (fusable unary ops) ---------------------------------------------------------

def float_unary_infer(node, ins: list[TensorInfo], opset: int) -> list[TensorInfo]:
    """Shape rule of a float-only unary op: same shape and dtype (ModelError unless float)."""
    float_only(node, ins)
    return unary_infer(node, ins, opset)


def activation_run(activate):
    """The float reference ``run`` of an activation whose only input goes through
    ``activate(x, node.attrs)``, the module's own function (also used for a fused ``post``)."""
    def run(node, xs, ctx):
        """``activate`` of the only input, with the node's attributes."""
        return [activate(xs[0], node.attrs)]

    return run


# ---- Softmax-like ops (Softmax, LogSoftmax) --------------------------------------------------

def _softmax_axis(opset: int) -> int:
    """Default 'axis' of Softmax-like ops: -1 from opset 13, 1 before."""
    return -1 if opset >= 13 else 1


def softmax_infer(node, ins: list[TensorInfo], opset: int) -> list[TensorInfo]:
    """Shape rule of Softmax-like ops: float input, 'axis' in range; same shape and dtype."""
    float_only(node, ins)
    axis_of(node, node.attrs.get("axis", _softmax_axis(opset)), len(ins[0].shape))
    return [TensorInfo(ins[0].shape, ins[0].dtype)]


def along_softmax_axis(node, x: np.ndarray, opset: int, fn) -> np.ndarray:
    """``fn(x, axis)`` with Softmax's axis semantics: from opset 13 along 'axis' (default -1);
    before 13 over ``x`` viewed as 2-D at 'axis' (default 1), i.e. along the flattened tail."""
    axis = axis_of(node, node.attrs.get("axis", _softmax_axis(opset)), x.ndim)
    if opset >= 13:
        return fn(x, axis)
    return fn(x.reshape(numel(x.shape[:axis]), -1), 1).reshape(x.shape)
