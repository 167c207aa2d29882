"""Wire format of a cut tensor sent from the device to the server.

Little-endian layout::

    magic  b"EB"        2 bytes
    version 1           1 byte
    dtype   1 (int8)    1 byte
    tensor_id           uint16
    ndim                uint8
    dims                ndim x uint16
    payload_len         uint32 (= prod(dims))
    payload             payload_len bytes (int8, C order)
    crc32               uint32 over every byte before it (zlib.crc32)
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from ..errors import VerificationError

MAGIC = b"EB"
VERSION = 1
DTYPE_INT8 = 1
_HEAD = struct.Struct("<2sBBHB")
_LEN = struct.Struct("<I")
_CRC = struct.Struct("<I")
MAX_DIM = 0xFFFF


def encode_frame(tensor_id: int, array) -> bytes:
    """A framed, CRC-32-protected frame holding the int8 ``array`` as tensor ``tensor_id``."""
    arr = np.asarray(array)
    if arr.dtype != np.int8:
        raise VerificationError(f"frame payload must be int8, got {arr.dtype}", field="tensor",
                                fix="quantise the cut tensor to int8 before sending")
    if not 0 <= int(tensor_id) <= 0xFFFF or arr.ndim > 255 or any(d > MAX_DIM for d in arr.shape):
        raise VerificationError(f"tensor {tensor_id} of shape {arr.shape} does not fit a frame",
                                field="tensor_id", fix="use ids < 65536 and dims < 65536")
    body = (_HEAD.pack(MAGIC, VERSION, DTYPE_INT8, int(tensor_id), arr.ndim)
            + struct.pack(f"<{arr.ndim}H", *arr.shape) + _LEN.pack(arr.size)
            + np.ascontiguousarray(arr).tobytes())
    return body + _CRC.pack(zlib.crc32(body))


def _bad(why: str) -> VerificationError:
    return VerificationError(f"corrupt cut-tensor frame: {why}", field="frame",
                             fix="resend the frame; check the link")


def decode_frame(data: bytes) -> tuple[int, np.ndarray]:
    """(tensor_id, int8 array) from a frame; VerificationError if it is truncated, too long,
    has a wrong magic/version/dtype, inconsistent lengths or a CRC mismatch."""
    data = bytes(data)
    if len(data) < _HEAD.size + _LEN.size + _CRC.size:
        raise _bad(f"{len(data)} bytes is shorter than a header")
    body, (crc,) = data[:-_CRC.size], _CRC.unpack(data[-_CRC.size:])
    if zlib.crc32(body) != crc:
        raise _bad("CRC-32 mismatch")
    magic, version, dtype, tensor_id, ndim = _HEAD.unpack_from(body)
    if magic != MAGIC or version != VERSION or dtype != DTYPE_INT8:
        raise _bad(f"magic {magic!r}, version {version}, dtype {dtype}")
    off = _HEAD.size + 2 * ndim
    if len(body) < off + _LEN.size:
        raise _bad("truncated dimensions")
    dims = struct.unpack_from(f"<{ndim}H", body, _HEAD.size)
    (n,) = _LEN.unpack_from(body, off)
    payload = body[off + _LEN.size:]
    if n != len(payload) or n != int(np.prod(dims, dtype=np.int64)):
        raise _bad(f"length {n} vs payload {len(payload)} vs dims {list(dims)}")
    return tensor_id, np.frombuffer(payload, np.int8).reshape(dims).copy()
