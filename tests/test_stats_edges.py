"""Edge cases of the Cash statistic helpers found by mutation testing (scripts/mutation_test.py):
the truncation boundary of the gradient weights, deficits and small significances in
``cash_sqrt_ts``, rounding near ``n = mu``, and input dtypes (float32, unsigned integers)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from xspec_ds import stats

from ._asserts import assert_close


def test_cash_gradient_weights_zero_at_and_below_truncation():
    """C = 2 (max(mu, t) - n ln max(mu, t)) is flat for mu <= t: the weight is 0 there, 2 (1 - n / mu) above."""
    t = stats.TRUNCATION_VALUE
    mu = np.array([0.0, 0.5 * t, t, 2 * t, 0.5, 4.0])
    n = np.array([3.0, 3.0, 3.0, 0.0, 1.0, 2.0])
    w = stats.cash_gradient_weights(n, mu)
    np.testing.assert_array_equal(w[:3], 0.0)
    assert_close(w[3:], [2.0, 2 * (1 - 1 / 0.5), 2 * (1 - 2 / 4.0)], rtol=1e-15)


def test_cash_gradient_weights_keep_float64_for_float32_input():
    n = np.array([3.0, 7.0, 1.0], dtype=np.float32)
    mu = np.array([0.3, 2.9, 1.7], dtype=np.float32)  # float32 values, exactly representable in float64
    expected = 2.0 * (1.0 - n.astype(np.float64) / mu.astype(np.float64))
    got = stats.cash_gradient_weights(n, mu)
    assert got.dtype == np.float64
    assert_close(got, expected, rtol=1e-15)


@pytest.mark.parametrize("n_on, mu_bkg", [(2.0, 10.0), (10.0, 9.5), (100.0, 80.0), (0.0, 3.0), (5.0, 5.0)])
def test_cash_sqrt_ts_written_out(n_on, mu_bkg):
    """sqrt(TS) signed by the excess, TS = 2 (mu - n - n ln(mu / n)) (0 ln 0 = 0), including deficits
    and significances well below 1."""
    ts = 2 * (mu_bkg - n_on - (n_on * math.log(mu_bkg / n_on) if n_on > 0 else 0.0))
    expected = math.copysign(math.sqrt(max(ts, 0.0)), n_on - mu_bkg) if n_on != mu_bkg else 0.0
    assert_close(float(stats.cash_sqrt_ts(n_on, mu_bkg)), expected, rtol=1e-12, atol=0)


def test_cash_sqrt_ts_finite_where_rounding_makes_ts_negative():
    """Near n = mu the two Cash values cancel and TS can round below 0: the result must be ~0, not NaN."""
    n = 9839520.239675745
    mu = 9839520.239684949
    assert float(stats.cash(n, mu) - stats.cash(n, n)) < 0  # the case this test is about
    got = float(stats.cash_sqrt_ts(n, mu))
    assert math.isfinite(got) and abs(got) < 1e-3


def test_cash_sqrt_ts_unsigned_integer_counts():
    """Unsigned integer inputs (e.g. COUNTS read from a file) must not wrap around in n - mu."""
    got = stats.cash_sqrt_ts(np.array([2, 10], dtype=np.uint32), np.array([10, 2], dtype=np.uint32))
    assert got[0] < 0 < got[1]
    assert_close(got, [stats.cash_sqrt_ts(2.0, 10.0), stats.cash_sqrt_ts(10.0, 2.0)], rtol=1e-15)


def li_ma_written(n_on, n_off, alpha):
    """Li & Ma (1983) eq. 17 with the limits 0 ln 0 = 0, signed by the excess."""
    tot = n_on + n_off
    t1 = n_on * math.log((1 + alpha) / alpha * n_on / tot) if n_on > 0 else 0.0
    t2 = n_off * math.log((1 + alpha) * n_off / tot) if n_off > 0 else 0.0
    return math.copysign(math.sqrt(max(2 * (t1 + t2), 0.0)), n_on - alpha * n_off)


@pytest.mark.parametrize(
    "n_on, n_off, alpha", [(0.0, 10.0, 0.2), (1.0, 10.0, 0.2), (5.0, 1.0, 0.5), (1.0, 1.0, 0.3), (7.0, 0.0, 0.4)]
)
def test_li_ma_with_zero_and_one_counts(n_on, n_off, alpha):
    assert_close(float(stats.li_ma_significance(n_on, n_off, alpha)), li_ma_written(n_on, n_off, alpha), rtol=1e-13)


def test_li_ma_no_runtime_warnings_on_empty_bins():
    """Empty on or off bins take the 0 ln 0 = 0 limit without numpy divide/invalid warnings."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = stats.li_ma_significance(np.array([0.0, 4.0, 0.0]), np.array([5.0, 0.0, 0.0]), 0.25)
    assert np.all(np.isfinite(out[:2]))


def test_li_ma_finite_where_rounding_makes_ts_negative():
    n_on, n_off, alpha = 632185.3003917238, 733494.0, 0.8618820336522505  # n_on = alpha n_off: TS rounds below 0
    got = float(stats.li_ma_significance(n_on, n_off, alpha))
    assert math.isfinite(got) and abs(got) < 1e-3


F32 = {
    "n_on": np.array([0.0, 3.0, 7.0, 12.0], dtype=np.float32),
    "n_off": np.array([5.0, 0.0, 9.0, 30.0], dtype=np.float32),
    "alpha": np.array([0.2, 0.3, 0.7, 0.1], dtype=np.float32),
    "mu": np.array([0.3, 2.9, 1.7, 0.01], dtype=np.float32),
    "bkg": np.array([1.3, 0.7, 4.1, 2.2], dtype=np.float32),
}


@pytest.mark.parametrize(
    "name, call",
    [
        ("cash", lambda a: stats.cash(a["n_on"], a["mu"])),
        ("wstat", lambda a: stats.wstat(a["n_on"], a["n_off"], a["alpha"], a["mu"])),
        ("wstat-given-bkg", lambda a: stats.wstat(a["n_on"], a["n_off"], a["alpha"], a["mu"], mu_bkg=a["bkg"])),
        ("get_wstat_mu_bkg", lambda a: stats.get_wstat_mu_bkg(a["n_on"], a["n_off"], a["alpha"], a["mu"])),
        ("wstat_gof_terms", lambda a: stats.wstat_gof_terms(a["n_on"], a["n_off"])),
        ("li_ma_significance", lambda a: stats.li_ma_significance(a["n_on"], a["n_off"], a["alpha"])),
        ("cash_sqrt_ts", lambda a: stats.cash_sqrt_ts(a["n_on"], a["mu"])),
    ],
)
def test_float32_inputs_are_computed_in_float64(name, call):
    """The statistics work in float64 whatever the input dtype (float32 inputs are exact in float64)."""
    got = call(F32)
    expected = call({k: v.astype(np.float64) for k, v in F32.items()})
    assert got.dtype == np.float64, name
    np.testing.assert_array_equal(got, expected, err_msg=name)


def test_wstat_no_runtime_warnings_and_empty_bin_limit():
    """n_on = n_off = 0 with mu_sig = 0 gives W = 0 (0 ln 0 = 0), without numpy warnings."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = stats.wstat(np.array([0.0, 0.0, 4.0]), np.array([0.0, 6.0, 0.0]), 0.5, np.array([0.0, 1.0, 1.0]))
        gof = stats.wstat_gof_terms(np.array([0.0, 2.0]), np.array([0.0, 0.0]))
    assert w[0] == 0.0 and np.all(np.isfinite(w))
    assert_close(gof, [0.0, 2 * (2 * math.log(2) - 2)], rtol=1e-15)


# --- found by mutation testing after the likelihood refactor -------------------------------------
def test_wstat_gradient_weights_where_the_on_prediction_vanishes():
    """``mu_on = mu_sig + alpha mu_bkg = 0``: 0 for n_on > 0 (the statistic is infinite there),
    2 for n_on = 0 (``W = 2 mu_on`` there), without numpy warnings."""
    n_on = np.array([3.0, 1.0, 0.5, 0.0, 0.0, 4.0])
    mu_sig = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 2.0])
    mu_bkg = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = stats.wstat_gradient_weights(n_on, np.zeros(6), 0.5, mu_sig, mu_bkg=mu_bkg)
    np.testing.assert_array_equal(w, [0.0, 0.0, 0.0, 2.0, 2.0, 2.0 * (1.0 - 4.0 / 2.5)])


def test_wstat_gradient_weights_float32_inputs_in_float64():
    rng = np.random.default_rng(8)
    n_on, n_off = rng.poisson(5, 40).astype(np.float32), rng.poisson(20, 40).astype(np.float32)
    alpha, mu_sig = rng.uniform(0.05, 0.5, 40).astype(np.float32), rng.uniform(0.5, 9, 40).astype(np.float32)
    mu_bkg = rng.uniform(1, 30, 40).astype(np.float32)
    a, s, b = (x.astype(np.float64) for x in (alpha, mu_sig, mu_bkg))
    w = stats.wstat_gradient_weights(n_on, n_off, alpha, mu_sig, mu_bkg=mu_bkg)
    np.testing.assert_allclose(w, 2.0 * (1.0 - n_on.astype(np.float64) / (s + a * b)), rtol=1e-15, atol=0)


def test_wstat_records_with_alpha_zero_and_no_off_counts():
    """alpha = 0, n_off = 0: the profiled background is 0 (not 0/0 = NaN): W is Cash on mu_sig
    plus the saturated terms; no numpy warnings (also for the gradient and Fisher weight of a
    negative prediction)."""
    rec = stats.get_statistic("wstat")
    data = {"counts": np.array([4.0, 0.0]), "counts_off": np.array([0.0, 0.0]), "alpha": np.array([0.0, 0.0])}
    mu_sig = np.array([2.5, 1.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = rec.value(mu_sig, data)
        value2, grad = rec.value_and_grad(mu_sig, data)
        rec.grad(np.array([-1.0, -1.0]), data)  # mu_bkg = 2 |mu_sig| / 0: no divide warning
        rec.fisher(np.array([-1.0, -1.0]), data)
    expected = [2 * (2.5 - 4 * np.log(2.5)) + 2 * (4 * np.log(4) - 4), 2 * 1.5]
    np.testing.assert_allclose(value, expected, rtol=1e-14, atol=0)
    np.testing.assert_array_equal(value2, value)
    np.testing.assert_allclose(grad, [2 * (1 - 4 / 2.5), 2.0], rtol=1e-14, atol=0)


def test_cash_sum_literal_values():
    n, mu = np.array([2.0, 0.0, 5.0]), np.array([2.0, 3.0, 1.0])
    per_bin = [2 * (2 - 2 * np.log(2)), 2 * 3.0, 2 * 1.0]
    np.testing.assert_allclose(stats.cash_sum(n, mu), sum(per_bin), rtol=1e-15, atol=0)
    np.testing.assert_allclose(
        stats.cash_sum(n, mu, np.array([True, False, True])), per_bin[0] + 2.0, rtol=1e-15, atol=0
    )
    assert isinstance(stats.cash_sum(n, mu), float)
