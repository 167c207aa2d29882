"""Checks that run on the raw ONNX protobuf before anything large is allocated.

A hostile or broken file must fail with a ModelError naming the file, the tensor and the fix:
oversized tensors are rejected from their declared dims, and external-data locations must stay
inside the model's folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgebuild.errors import ModelError

from .infer import check_size
from .ops._common import ONNX_DTYPES


def iter_tensors(graph):
    """Every TensorProto of a GraphProto: initializers and node attribute tensors (recursively)."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from iter_tensors(sub)


def tensor_dtype(tensor, source: str | None) -> str:
    """Numpy dtype name of a TensorProto, or ModelError for unsupported element types."""
    dtype = ONNX_DTYPES.get(tensor.data_type)
    if dtype is None:
        raise ModelError(f"tensor '{tensor.name}' has unsupported element type {tensor.data_type}",
                         file=source, field=f"tensor '{tensor.name}'",
                         fix=f"store it as one of {sorted(set(ONNX_DTYPES.values()))}")
    return dtype


def check_tensor(tensor, source: str | None, limit: int) -> None:
    """Reject a TensorProto with negative dims, an unsupported type or a size over ``limit``."""
    if any(d < 0 for d in tensor.dims):
        raise ModelError(f"tensor '{tensor.name}' has negative dims {list(tensor.dims)}",
                         file=source, field=f"tensor '{tensor.name}'", fix="repair the model file")
    check_size(tensor.name, tensor.dims, tensor_dtype(tensor, source), limit, source)


def _external_info(tensor) -> dict[str, str]:
    return {e.key: e.value for e in tensor.external_data}


def check_external(model, base_dir: Path | None, source: str | None) -> bool:
    """Validate every external-data reference; True when the model uses external data.

    A location must be relative, stay inside ``base_dir`` after resolving symlinks, exist, and
    hold the tensor's bytes at its offset.
    """
    found = False
    for tensor in iter_tensors(model.graph):
        if tensor.data_location != tensor.EXTERNAL:
            continue
        found = True
        where = f"tensor '{tensor.name}'"
        if base_dir is None:
            raise ModelError(f"{where} stores its data in an external file", file=source,
                             field=where, fix="load the model from its file with load(path)")
        info = _external_info(tensor)
        loc = info.get("location", "")
        bad = (not loc or os.path.isabs(loc) or loc.startswith(("/", "\\"))
               or (len(loc) > 1 and loc[1] == ":") or ".." in Path(loc.replace("\\", "/")).parts)
        root = base_dir.resolve()
        target = (root / loc).resolve()
        if bad or not target.is_relative_to(root):
            raise ModelError(f"{where} points at external data '{loc}' outside the model's folder",
                             file=source, field=where,
                             fix="keep external data files next to the model, named relatively")
        if not target.is_file():
            raise ModelError(f"{where}: external data file '{loc}' is missing", file=source,
                             field=where, fix="copy the data file next to the model")
        try:
            offset, length = int(info.get("offset", 0)), info.get("length")
        except ValueError:
            raise ModelError(f"{where}: malformed external data offset", file=source,
                             field=where, fix="repair the model file") from None
        need = 1
        for d in tensor.dims:
            need *= d
        need *= np.dtype(tensor_dtype(tensor, source)).itemsize
        if (length is not None and int(length) != need) or offset < 0 \
                or offset + need > target.stat().st_size:
            raise ModelError(f"{where}: external data '{loc}' does not hold {need} bytes at offset "
                             f"{offset}", file=source, field=where, fix="repair the model file")
    return found
