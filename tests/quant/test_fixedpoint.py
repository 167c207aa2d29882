"""Fixed-point helpers vs exact rational arithmetic (python ints / fractions)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from edgebuild.compress import fixedpoint as fp


@pytest.mark.parametrize("m", [0.125, 0.1, 2.0 ** -10, 3.3e-5, 1e-9, 2.0 ** -33, 1e-12,
                               0.124999999, 0.0625000001])
def test_quantize_multiplier_round_trip(m):
    mult, r = fp.quantize_multiplier(m)
    assert 0 < r <= 31 and 0 <= mult < 2 ** 31
    approx = Fraction(mult, 2 ** (32 + r))
    if m >= 2.0 ** -32:
        assert 2 ** 30 <= mult  # full 31-bit precision
        assert abs(approx - Fraction(m)) <= Fraction(m) * Fraction(1, 2 ** 30)
    else:
        assert abs(approx - Fraction(m)) <= Fraction(1, 2 ** 64)


def test_quantize_multiplier_rejects_large():
    with pytest.raises(ValueError):
        fp.quantize_multiplier(0.2)


def test_requantize_is_single_round_half_up():
    rng = np.random.default_rng(0)
    acc = np.concatenate([rng.integers(-2 ** 31, 2 ** 31, 3000), [0, 1, -1, 2 ** 31 - 1, -2 ** 31]])
    for m in (0.1, 2.0 ** -12 * 3, 1.7e-7, 2.0 ** -20):
        mult, r = fp.quantize_multiplier(m)
        got = fp.requantize(acc, mult, r)
        want = [int((Fraction(int(a) * mult, 2 ** (32 + r)) + Fraction(1, 2)).__floor__())
                for a in acc]
        assert got.tolist() == want


def test_requantize_ties_and_signs():
    mult, r = fp.quantize_multiplier(0.125)   # exact: 2**30 * 2**-33
    acc = np.array([4, -4, 12, -12, 3, -3, 5, -5])
    # x/8 rounded half up: 0.5->1, -0.5->0, 1.5->2, -1.5->-1
    assert fp.requantize(acc, mult, r).tolist() == [1, 0, 2, -1, 0, 0, 1, -1]


@pytest.mark.parametrize("rng_", [(-1.0, 3.0), (0.0, 1.0), (-5.0, -1.0), (2.0, 4.0), (0.0, 0.0)])
def test_choose_qparams(rng_):
    scale, zp = fp.choose_qparams(*rng_)
    lo, hi = min(0.0, rng_[0]), max(0.0, rng_[1])
    assert -128 <= zp <= 127
    # zero is exact and the whole range is representable within half a step
    assert scale * (-128 - zp) <= lo + scale / 2 and scale * (127 - zp) >= hi - scale / 2


def test_symmetric_weights_per_channel():
    rng = np.random.default_rng(1)
    w = rng.normal(0, 1, (5, 3, 2, 2)) * np.array([1, 10, 0.1, 0, 3])[:, None, None, None]
    q, s = fp.symmetric_weights(w, per_channel=True)
    for c in range(5):
        amax = np.abs(w[c]).max()
        expect = amax / 127 if amax > 0 else 1.0
        assert s[c] == pytest.approx(expect)
        assert np.abs(q[c].astype(float) * s[c] - w[c]).max() <= s[c] / 2 + 1e-12
    assert q.min() >= -127 and q.max() <= 127 and q.dtype == np.int8
    q1, s1 = fp.symmetric_weights(w, per_channel=False)
    assert np.all(s1 == np.abs(w).max() / 127)


def test_negligible_channels_quantise_to_zero_with_finite_scales():
    """Weight decay can leave a channel at denormal magnitudes (~1e-41): its scale must stay finite."""
    import numpy as np

    from edgebuild.compress.fixedpoint import symmetric_weights

    w = np.zeros((3, 4), np.float32)
    w[0] = [0.5, -0.25, 0.1, 0.0]
    w[1] = [1e-41, -1e-41, 0.0, 0.0]          # denormal
    w[2] = [0.02, 0.0, -0.01, 0.0]            # small but real: keeps its own scale
    q, scales = symmetric_weights(w, per_channel=True)
    assert np.all(np.isfinite(scales)) and scales[1] == 1.0
    assert not q[1].any()
    assert q[2, 0] == 127 and abs(scales[2] - 0.02 / 127) < 1e-6 * scales[2]
    np.testing.assert_allclose(q[0] * scales[0], w[0], atol=scales[0] / 2)
