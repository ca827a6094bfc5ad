"""The chi-square statistic records (value, grad, fisher) of xspec_ds.stats (Sherpa's definitions)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xspec_ds import stats


def _data(seed, kind):
    rng = np.random.default_rng(seed)
    n = rng.poisson(20, 15).astype(float) + 1
    data = {"counts": n}
    if kind == "onoff":
        data.update(counts_off=rng.poisson(30, 15).astype(float), alpha=rng.uniform(0.05, 0.5, 15))
    elif kind == "background":
        data["background"] = rng.uniform(0, 5, 15)
    elif kind == "errors":
        data["stat_err"] = rng.uniform(1, 5, 15)
    return data, rng.uniform(1, 30, 15)


@pytest.mark.parametrize("kind", ["plain", "onoff", "background"])
def test_chi2_values_written_out(kind):
    data, mu = _data(1, kind)
    n = data["counts"]
    b, a = data.get("counts_off", 0.0), data.get("alpha", 0.0)
    d = n - a * b - data.get("background", 0.0)
    var_dv = n + a**2 * b
    var_g = (1 + np.sqrt(n + 0.75)) ** 2 + (a**2 * (1 + np.sqrt(b + 0.75)) ** 2 if kind == "onoff" else 0.0)
    value, _, _ = stats.CHI2_STATISTICS["chi2datavar"]
    np.testing.assert_allclose(value(mu, data), (d - mu) ** 2 / var_dv, rtol=1e-14)
    value, _, _ = stats.CHI2_STATISTICS["chi2gehrels"]
    np.testing.assert_allclose(value(mu, data), (d - mu) ** 2 / var_g, rtol=1e-14)


def test_chi2_with_errors():
    data, mu = _data(2, "errors")
    value, _, _ = stats.CHI2_STATISTICS["chi2"]
    np.testing.assert_allclose(value(mu, data), (data["counts"] - mu) ** 2 / data["stat_err"] ** 2, rtol=1e-14)


def test_gehrels_sigma_examples():
    # Gehrels (1986) eq. 7: sigma = 1 + sqrt(N + 0.75); N = 0 -> 1 + sqrt(0.75)
    _, var = stats.chi2_data_variance(np.array([0.0, 1.0, 100.0]), kind="gehrels")
    np.testing.assert_allclose(np.sqrt(var), [1 + np.sqrt(0.75), 1 + np.sqrt(1.75), 1 + np.sqrt(100.75)], rtol=1e-15)
    with pytest.raises(ValueError, match=r"^unknown chi2 variance .*; use .datavar. or .gehrels.$"):
        stats.chi2_data_variance(np.ones(2), kind="modvar")


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    name=st.sampled_from(sorted(stats.CHI2_STATISTICS)),
    kind=st.sampled_from(["plain", "onoff", "background"]),
)
def test_grad_and_fisher_are_the_derivatives(seed, name, kind):
    data, mu = _data(seed, "errors" if name == "chi2" else kind)
    value, grad, fisher = stats.CHI2_STATISTICS[name]
    h = 1e-4
    num = (value(mu + h, data) - value(mu - h, data)) / (2 * h)
    np.testing.assert_allclose(grad(mu, data), num, rtol=1e-7, atol=0)
    # chi2 is quadratic in mu: the Fisher weight is its exact second derivative
    num2 = (value(mu + h, data) - 2 * value(mu, data) + value(mu - h, data)) / h**2
    np.testing.assert_allclose(fisher(mu, data), num2, rtol=1e-4, atol=0)


# --- edge cases found by mutation testing ------------------------------------------------------
def test_float32_inputs_are_computed_in_float64():
    """float32 counts, errors and predictions give the float64 results (no float32 rounding)."""
    rng = np.random.default_rng(5)
    n32 = rng.poisson(20, 50).astype(np.float32) + np.float32(0.3)
    off32 = rng.poisson(30, 50).astype(np.float32) + np.float32(0.7)
    mu32 = rng.uniform(1, 30, 50).astype(np.float32)
    n, off, mu = (x.astype(np.float64) for x in (n32, off32, mu32))
    gehrels = lambda x: (1.0 + np.sqrt(x + 0.75)) ** 2  # noqa: E731
    d, v = stats.chi2_data_variance(n32, off32, np.full(50, 0.25), kind="gehrels")
    np.testing.assert_allclose(d, n - 0.25 * off, rtol=1e-15, atol=0)
    np.testing.assert_allclose(v, gehrels(n) + 0.0625 * gehrels(off), rtol=1e-15, atol=0)
    _, v = stats.chi2_data_variance(n32, kind="gehrels")
    np.testing.assert_allclose(v, gehrels(n), rtol=1e-15, atol=0)
    var32 = (n32 + np.float32(1.1)).astype(np.float32)
    v64 = var32.astype(np.float64)
    np.testing.assert_allclose(stats.chi2(n32, var32, mu32), (n - mu) ** 2 / v64, rtol=1e-15, atol=0)
    np.testing.assert_allclose(stats.chi2_gradient_weights(n32, var32, mu32), -2 * (n - mu) / v64, rtol=1e-15, atol=0)
    err32 = (np.sqrt(n32) + np.float32(0.1)).astype(np.float32)
    data = {"counts": n32, "stat_err": err32}
    e2 = err32.astype(np.float64) ** 2
    rec = stats.get_statistic("chi2")
    np.testing.assert_allclose(rec.value(mu32, data), (n - mu) ** 2 / e2, rtol=1e-15, atol=0)
    np.testing.assert_allclose(rec.fisher(mu32, data), 2.0 / e2, rtol=1e-15, atol=0)


def test_zero_and_small_variances():
    """sigma^2 <= 0: chi2 NaN, gradient and Fisher weight 0, without numpy warnings;
    0 < sigma^2 < 1 is an ordinary bin."""
    data = np.array([3.0, 3.0, 3.0, 2.0])
    variance = np.array([0.0, 0.25, -1.0, 0.0])
    mu = np.array([1.0, 1.0, 1.0, 2.0])  # the last bin: 0 / 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = stats.chi2(data, variance, mu)
        grad = stats.chi2_gradient_weights(data, variance, mu)
        rec = stats.get_statistic("chi2")
        d = {"counts": data, "stat_err": np.sqrt(np.abs(variance)) * np.sign(variance)}
        fisher = rec.fisher(mu, d)
        rec_value = rec.value(mu, d)
        counts = {"counts": np.array([0.0, 0.25, 4.0])}  # datavar: sigma^2 = N
        datavar = stats.get_statistic("chi2datavar")
        fisher_datavar = datavar.fisher(np.ones(3), counts)
        grad_datavar = datavar.grad(np.ones(3), counts)
    np.testing.assert_array_equal(np.isnan(value), [True, False, True, True])
    assert value[1] == 16.0  # (3 - 1)^2 / 0.25
    np.testing.assert_array_equal(grad, [0.0, -16.0, 0.0, 0.0])
    # stat_err^2: 0, 0.25, 1 (an error of -1 squares to 1), 0
    np.testing.assert_array_equal(fisher, [0.0, 8.0, 2.0, 0.0])
    np.testing.assert_array_equal(rec_value[1:3], [16.0, 4.0])
    np.testing.assert_array_equal(fisher_datavar, [0.0, 8.0, 0.5])
    np.testing.assert_array_equal(grad_datavar, [0.0, 6.0, -1.5])  # -2 (N - mu) / N


def test_errors_statistic_subtracts_background_and_broadcasts():
    n = np.array([10.0, 20.0, 30.0])
    err = np.array([2.0, 4.0, 5.0])
    bkg = np.array([1.0, 2.0, 3.0])
    mu = np.array([[5.0, 15.0, 20.0], [9.0, 18.0, 27.0]])  # two spectra sharing the data
    rec = stats.get_statistic("chi2")
    data = {"counts": n, "stat_err": err, "background": bkg}
    np.testing.assert_allclose(rec.value(mu, data), (n - bkg - mu) ** 2 / err**2, rtol=1e-15, atol=0)
    np.testing.assert_allclose(rec.grad(mu, data), -2 * (n - bkg - mu) / err**2, rtol=1e-15, atol=0)
    fisher = rec.fisher(mu, data)
    assert fisher.shape == (2, 3)
    np.testing.assert_allclose(fisher, np.broadcast_to(2.0 / err**2, (2, 3)), rtol=1e-15, atol=0)
    for name in ("chi2datavar", "chi2gehrels"):
        assert stats.get_statistic(name).fisher(mu, {"counts": n}).shape == (2, 3)


def test_off_counts_without_alpha_are_not_used():
    """counts_off without an alpha cannot be scaled: the known background (if any) is subtracted."""
    n, off, bkg = np.array([10.0, 20.0]), np.array([50.0, 60.0]), np.array([1.0, 2.0])
    d, v = stats.chi2_data_variance(n, n_off=off, alpha=None, background=bkg)
    np.testing.assert_array_equal(d, n - bkg)
    np.testing.assert_array_equal(v, n)
    d, v = stats.chi2_data_variance(n, n_off=None, alpha=np.array([0.1, 0.2]))
    np.testing.assert_array_equal(d, n)
    np.testing.assert_array_equal(v, n)
