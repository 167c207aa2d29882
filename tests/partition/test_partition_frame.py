"""Cut-tensor frames: round trip, and any corruption or truncation is an error, never a wrong
answer."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays, array_shapes

from edgebuild.errors import VerificationError
from edgebuild.partition import decode_frame, encode_frame

tensors = arrays(np.int8, array_shapes(min_dims=0, max_dims=4, max_side=9))


@given(st.integers(0, 0xFFFF), tensors)
def test_round_trip(tid, arr):
    got_id, got = decode_frame(encode_frame(tid, arr))
    assert got_id == tid and got.dtype == np.int8 and got.shape == arr.shape
    np.testing.assert_array_equal(got, arr)


def test_layout_is_as_documented():
    frame = encode_frame(7, np.array([[1, -2, 3]], np.int8))
    body = b"EB" + bytes([1, 1]) + struct.pack("<HB", 7, 2) + struct.pack("<HH", 1, 3) \
        + struct.pack("<I", 3) + bytes([1, 0xFE, 3])
    assert frame == body + struct.pack("<I", zlib.crc32(body))


@settings(max_examples=300)
@given(st.integers(0, 0xFFFF), tensors, st.data())
def test_corruption_is_always_detected(tid, arr, data):
    frame = bytearray(encode_frame(tid, arr))
    kind = data.draw(st.sampled_from(["flip", "bytes", "truncate", "extend"]))
    if kind == "flip":
        pos = data.draw(st.integers(0, len(frame) * 8 - 1))
        frame[pos // 8] ^= 1 << (pos % 8)
    elif kind == "bytes":
        for _ in range(data.draw(st.integers(1, 6))):
            pos = data.draw(st.integers(0, len(frame) - 1))
            frame[pos] ^= data.draw(st.integers(1, 255))
    elif kind == "truncate":
        frame = frame[:data.draw(st.integers(0, len(frame) - 1))]
    else:
        frame += bytes(data.draw(st.binary(min_size=1, max_size=8)))
    if bytes(frame) == encode_frame(tid, arr):
        return   # the xors cancelled out: this is the original frame
    with pytest.raises(VerificationError):
        decode_frame(bytes(frame))


def test_consistent_crc_but_bad_lengths_rejected():
    """A frame whose CRC is valid but whose dims disagree with its payload is still rejected."""
    body = b"EB" + bytes([1, 1]) + struct.pack("<HB", 1, 1) + struct.pack("<H", 5) \
        + struct.pack("<I", 3) + bytes(3)
    with pytest.raises(VerificationError, match="length"):
        decode_frame(body + struct.pack("<I", zlib.crc32(body)))


def test_encode_rejects_non_int8():
    with pytest.raises(VerificationError, match="int8"):
        encode_frame(0, np.zeros(3, np.float32))
