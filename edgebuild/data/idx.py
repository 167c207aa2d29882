"""Reader for the IDX file format used by MNIST and Fashion-MNIST (raw or gzipped)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from edgebuild.errors import DatasetError

# IDX type codes -> big-endian numpy dtypes.
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (``.gz`` is decompressed) and return its array in native byte order.

    Raises DatasetError naming the file when the magic number, type code or length is wrong.
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except OSError as exc:  # missing file, unreadable, or corrupt gzip stream
        raise DatasetError(f"cannot read IDX file: {exc}", file=str(path),
                           fix="check the file exists and is a complete (optionally gzipped) IDX file") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES or raw[3] == 0:
        raise DatasetError("bad IDX magic number (expected 00 00 <type> <ndim>)", file=str(path),
                           fix="give a real IDX file such as train-images-idx3-ubyte[.gz]")
    dtype = np.dtype(_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError("truncated IDX header", file=str(path), fix="re-download the file")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetError(f"IDX data is {len(raw) - header} bytes, but the header {list(dims)} needs {expected}"
                           " (truncated or corrupt)", file=str(path), fix="re-download the file")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def find_idx(folder: Path, stem: str) -> Path | None:
    """Return ``folder/stem`` or ``folder/stem.gz`` if one exists (raw preferred), else None.

    Also accepts the common ``stem`` spelling with a dot (``train-images.idx3-ubyte``).
    """
    for name in (stem, stem.replace("-idx", ".idx")):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None
