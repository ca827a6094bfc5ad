"""The chi-square statistic records (value, grad, fisher) of xspec_ds.stats (Sherpa's definitions)."""

from __future__ import annotations

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
    with pytest.raises(ValueError, match="unknown chi2 variance"):
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
