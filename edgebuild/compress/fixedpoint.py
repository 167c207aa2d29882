"""Fixed-point arithmetic shared (bit for bit) by the numpy int8 reference and the C kernels.

Requantisation variant (documented contract, cheaper on AVR than TFLite's two-rounding
``MultiplyByQuantizedMultiplier``): a real multiplier ``m`` in (0, 1/8] is stored as
``(M, r)`` with ``M`` an int32 in [2**30, 2**31) (fewer bits only when ``m < 2**-33``) and
``0 < r <= 31`` so that ``m ~= M * 2**-(32 + r)``. For an int32 accumulator ``acc``::

    hi  = (int32)(((int64)acc * M) >> 32)      # floor; AVR: eb_mulhi32, an inline-asm 32x32 high word
    out = (hi + (1 << (r - 1))) >> r           # round half up

which equals ``floor(acc * M / 2**(32+r) + 1/2)`` exactly (one rounding). The caller adds the
output zero point and clamps to the fused activation range. Callers guarantee ``m <= 1/8`` by
construction (output scales are floored, add/concat accumulators are pre-scaled).
"""

from __future__ import annotations

import math

import numpy as np

MAX_MULTIPLIER = 0.125


def quantize_multiplier(m: float) -> tuple[int, int]:
    """Return ``(M, r)`` representing the real multiplier ``0 <= m <= 1/8`` (see module doc)."""
    if not (0.0 <= m <= MAX_MULTIPLIER):
        raise ValueError(f"multiplier {m!r} outside [0, {MAX_MULTIPLIER}]")
    if m == 0.0:
        return 0, 1
    frac, exp = math.frexp(m)  # m = frac * 2**exp, frac in [0.5, 1)
    r = -1 - exp
    if r > 31:
        return int(round(m * 2.0 ** 63)), 31
    mult = int(round(frac * 2.0 ** 31))
    if mult == 2 ** 31:
        mult //= 2
        r -= 1
    return mult, r


def requantize(acc: np.ndarray, mult, shift) -> np.ndarray:
    """Apply ``(M, r)`` to int accumulators (broadcasting); returns int64 before zero point."""
    acc = np.asarray(acc, dtype=np.int64)
    mult = np.asarray(mult, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    hi = (acc * mult) >> 32
    return (hi + (np.int64(1) << (shift - 1))) >> shift


def finish(values: np.ndarray, zero_point: int, lo: int, hi: int) -> np.ndarray:
    """Add the output zero point and clamp to ``[lo, hi]``; returns int8."""
    return np.clip(values + zero_point, lo, hi).astype(np.int8)


def choose_qparams(rmin: float, rmax: float) -> tuple[float, int]:
    """Asymmetric int8 (scale, zero_point) for the real range [rmin, rmax] (0 always included)."""
    rmin, rmax = min(0.0, float(rmin)), max(0.0, float(rmax))
    if rmax - rmin <= 0.0 or not math.isfinite(rmax - rmin):
        if not math.isfinite(rmax - rmin):
            raise ValueError("non-finite activation range")
        return 1.0 / 255.0, -128
    scale = (rmax - rmin) / 255.0
    zero_point = int(np.clip(round(-128 - rmin / scale), -128, 127))
    return scale, zero_point


def symmetric_weights(w: np.ndarray, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Quantise weights (output channel first) to int8 in [-127, 127]; returns (q, scales[c])."""
    flat = w.reshape(w.shape[0], -1).astype(np.float64)
    amax = np.abs(flat).max(axis=1) if per_channel else np.full(w.shape[0], np.abs(flat).max())
    # A channel whose weights are negligible next to the layer's (pruned, or decayed to denormals such
    # as 1e-41) is all zeros at any precision the layer can carry: scale 1 keeps bias and multiplier
    # finite instead of dividing by ~1e-43.
    negligible = max(float(np.abs(flat).max()) * 2.0 ** -24, float(np.finfo(np.float32).tiny))
    scales = np.where(amax > negligible, amax / 127.0, 1.0)
    q = np.clip(np.round(flat / scales[:, None]), -127, 127).astype(np.int8)
    return q.reshape(w.shape), scales


# -- second variant: TFLite's integer requantisation (models imported with their own quantisation) --
#
# TFLite (tensorflow/lite/kernels/internal/common.h, quantization_util.cc) stores a real multiplier
# as ``(M, shift)``, ``M`` in [2**30, 2**31) and ``m ~= M * 2**(shift - 31)`` (shift may be > 0:
# multipliers above 1), and applies it with two roundings::
#
#     x   = acc * 2**max(shift, 0)
#     hi  = SaturatingRoundingDoublingHighMul(x, M)  # (x*M + nudge) / 2**31, C division (toward 0),
#                                                     # nudge = 2**30 (x*M >= 0) or 1 - 2**30
#     out = RoundingDivideByPOT(hi, max(-shift, 0))   # round half away from zero
#
# Layers carrying ``q["requant"] == "tflite"`` use this for conv/dense (per channel), the three
# multipliers of TFLite's int8 ADD, and nothing else changes (zero point, clamp).

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1


def tfl_quantize_multiplier(m: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier(double)``: (M, shift) with m ~= M * 2**(shift - 31)."""
    if m == 0.0:
        return 0, 0
    frac, shift = math.frexp(m)
    q = frac * 2.0 ** 31
    q_fixed = int(math.floor(q + 0.5)) if q >= 0 else -int(math.floor(-q + 0.5))  # std::round
    if q_fixed == 2 ** 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def tfl_srdhm(a: np.ndarray, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values (int64 arrays)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    v = ab + nudge
    q = np.where(v >= 0, v >> 31, -((-v) >> 31))     # C integer division by 2**31 (toward zero)
    return np.where((a == INT32_MIN) & (b == INT32_MIN), np.int64(INT32_MAX), q)


def tfl_rdbpot(x: np.ndarray, exponent) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2**exponent rounded half away from zero."""
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (x < 0)
    return (x >> e) + (rem > thr)


def tfl_multiply(acc: np.ndarray, mult, shift) -> np.ndarray:
    """TFLite's ``MultiplyByQuantizedMultiplier(acc, M, shift)`` (broadcasting; int64 result)."""
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    x = np.asarray(acc, dtype=np.int64) * (np.int64(1) << left)
    return tfl_rdbpot(tfl_srdhm(x, mult), np.maximum(-shift, 0))


def tfl_fc_double(acc: np.ndarray, w_bits, s_in: float, s_out: float) -> np.ndarray:
    """LiteRT's reference int8 FULLY_CONNECTED scaling: ``(int32) round(double(acc) * e)``,
    ``e = double(s_in) * double(s_w) / double(s_out)`` (IEEE double, round half away from zero);
    ``w_bits`` are the float32 bits of the per-channel weight scales ``s_w``."""
    s_w = np.asarray(w_bits, dtype=np.int32).view(np.float32).astype(np.float64)
    e = (np.float64(s_in) * s_w) / np.float64(s_out)
    v = np.asarray(acc, dtype=np.int64).astype(np.float64) * e
    t = np.trunc(v)
    fr = v - t
    return (t + (fr >= 0.5) - (fr <= -0.5)).astype(np.int64)
