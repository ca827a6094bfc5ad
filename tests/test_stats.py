"""Cash, WSTAT and Li & Ma against direct, independently written evaluations."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from xspec_ds import stats

from ._requirements import require_gammapy

counts_arrays = hnp.arrays(np.float64, st.integers(1, 30), elements=st.integers(0, 500).map(float))


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_cash_vs_direct(data):
    n = data.draw(counts_arrays)
    mu = data.draw(hnp.arrays(np.float64, n.shape, elements=st.floats(1e-20, 1e4)))
    expected = [2.0 * (m - k * math.log(m)) for k, m in zip(n, mu)]
    np.testing.assert_allclose(stats.cash(n, mu), expected, rtol=1e-12, atol=1e-12)
    mask = data.draw(hnp.arrays(bool, n.shape))
    direct_sum = sum(e for e, keep in zip(expected, mask) if keep)
    assert stats.cash_sum(n, mu, mask) == pytest.approx(direct_sum, rel=1e-12, abs=1e-9)
    assert stats.cash_sum(n, mu) == pytest.approx(sum(expected), rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("mu", [0.0, -3.0, 1e-30, 1e-25])
def test_cash_truncation(mu):
    n = 4.0
    # mu <= 1e-25 is replaced by 1e-25 in the log and in the linear term (Gammapy)
    expected = 2.0 * (1e-25 - n * math.log(1e-25))
    assert float(stats.cash(n, mu)) == pytest.approx(expected, rel=1e-14, abs=0)
    assert np.isfinite(stats.cash(n, mu))


def test_cash_just_above_truncation_not_truncated():
    mu = 2e-25
    assert float(stats.cash(1.0, mu)) == pytest.approx(2.0 * (mu - math.log(mu)), rel=1e-14, abs=0)


def test_cash_zero_counts_is_twice_mu():
    mu = np.array([0.5, 3.0, 100.0])
    np.testing.assert_allclose(stats.cash(np.zeros(3), mu), 2 * mu, rtol=1e-15)


def test_cash_broadcasts_over_obs():
    rng = np.random.default_rng(1)
    n = rng.poisson(5, size=(7, 12)).astype(float)
    mu = rng.uniform(0.1, 10, size=(7, 12))
    out = stats.cash(n, mu)
    assert out.shape == (7, 12)
    for k in range(7):
        np.testing.assert_array_equal(out[k], stats.cash(n[k], mu[k]))


def test_cash_gradient_weights_vs_finite_difference():
    n = np.array([0.0, 3.0, 10.0])
    mu = np.array([0.7, 2.5, 12.0])
    h = 1e-6
    fd = (stats.cash(n, mu + h) - stats.cash(n, mu - h)) / (2 * h)
    np.testing.assert_allclose(stats.cash_gradient_weights(n, mu), fd, rtol=1e-6)


# WSTAT ---------------------------------------------------------------------------------------
def wstat_xspec(S, B, alpha, mu_sig):
    """XSPEC manual, Appendix B ("Poisson data with Poisson background"), with t_s = alpha,
    t_b = 1 and model rate m = mu_sig / alpha, including its special cases written out."""
    ts, tb = alpha, 1.0
    m = mu_sig / alpha
    if S == 0:
        wi = ts * m - B * math.log(tb / (ts + tb))
    elif B == 0:
        if m < S / (ts + tb):
            wi = -tb * m - S * math.log(ts / (ts + tb))
        else:
            wi = ts * m + S * (math.log(S) - math.log(ts * m) - 1)
    else:
        d = math.sqrt(((ts + tb) * m - S - B) ** 2 + 4 * (ts + tb) * B * m)
        f = (S + B - (ts + tb) * m + d) / (2 * (ts + tb))
        wi = (
            ts * m
            + (ts + tb) * f
            - S * math.log(ts * m + ts * f)
            - B * math.log(tb * f)
            - S * (1 - math.log(S))
            - B * (1 - math.log(B))
        )
    return 2 * wi


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 200),
    st.integers(0, 200),
    st.floats(0.01, 5.0),
    st.floats(1e-3, 300.0),
)
def test_wstat_vs_xspec_formula(n_on, n_off, alpha, mu_sig):
    got = float(stats.wstat(n_on, n_off, alpha, mu_sig))
    assert got == pytest.approx(wstat_xspec(n_on, n_off, alpha, mu_sig), rel=1e-8, abs=1e-8)


@pytest.mark.parametrize(
    "n_on, n_off, alpha, mu_sig",
    [(0, 7, 0.3, 2.0), (0, 0, 0.3, 2.0), (9, 0, 0.5, 1.0), (9, 0, 0.5, 20.0), (4, 10, 0.2, 3.0)],
)
def test_wstat_special_cases(n_on, n_off, alpha, mu_sig):
    got = float(stats.wstat(n_on, n_off, alpha, mu_sig))
    assert np.isfinite(got)
    assert got == pytest.approx(wstat_xspec(n_on, n_off, alpha, mu_sig), rel=1e-10, abs=1e-10)


def test_wstat_vectorised_matches_scalar():
    rng = np.random.default_rng(3)
    n_on = rng.poisson(3, size=(4, 9)).astype(float)
    n_off = rng.poisson(5, size=(4, 9)).astype(float)
    alpha = rng.uniform(0.1, 2, size=(4, 9))
    mu = rng.uniform(0.01, 8, size=(4, 9))
    out = stats.wstat(n_on, n_off, alpha, mu)
    expected = np.vectorize(wstat_xspec)(n_on, n_off, alpha, mu)
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 1000), st.integers(0, 1000), st.floats(1e-3, 100.0), st.floats(0.0, 1e4))
def test_wstat_mu_bkg_never_negative(n_on, n_off, alpha, mu_sig):
    mu_bkg = float(stats.get_wstat_mu_bkg(n_on, n_off, alpha, mu_sig))
    assert mu_bkg >= 0.0
    assert np.isfinite(mu_bkg)


@pytest.mark.parametrize("n_on, n_off, alpha, mu_sig", [(12, 30, 0.25, 4.0), (3, 1, 1.5, 0.5), (50, 8, 0.1, 49.0)])
def test_wstat_mu_bkg_maximises_likelihood(n_on, n_off, alpha, mu_sig):
    """mu_bkg is the argmin over b of the Poisson on/off -2 ln L (direct 1-D scan)."""

    def neg2logl(b):
        mu_on = mu_sig + alpha * b
        return 2 * (mu_on - n_on * np.log(mu_on) + b - n_off * np.log(b))

    grid = np.linspace(1e-6, 3 * (n_on + n_off) + 10, 400001)
    best = grid[np.argmin(neg2logl(grid))]
    assert float(stats.get_wstat_mu_bkg(n_on, n_off, alpha, mu_sig)) == pytest.approx(best, abs=2e-4 * grid[-1])


# Li & Ma ---------------------------------------------------------------------------------------
def test_li_ma_hand_computation():
    # n_on = 100, n_off = 300, alpha = 0.2 (eq. 17):
    # 2 [100 ln(1.2/0.2 * 100/400) + 300 ln(1.2 * 300/400)] = 2 [100 ln 1.5 + 300 ln 0.9]
    expected = math.sqrt(2 * (100 * math.log(1.5) + 300 * math.log(0.9)))
    assert expected == pytest.approx(4.2280861, rel=1e-7, abs=0)
    assert float(stats.li_ma_significance(100, 300, 0.2)) == pytest.approx(expected, rel=1e-12, abs=0)


def test_li_ma_sign_and_zero():
    assert float(stats.li_ma_significance(10, 200, 0.1)) < 0  # deficit: 10 < 20
    assert float(stats.li_ma_significance(20, 200, 0.1)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n_on, n_off, alpha", [(25, 40, 0.3), (7, 2, 0.5), (12, 10, 0.5), (6, 0, 0.4)])
def test_li_ma_equals_wstat_likelihood_ratio(n_on, n_off, alpha):
    """eq. 17 is sqrt of the on/off likelihood ratio: WSTAT(mu_sig=0) - WSTAT(best mu_sig) (excess cases)."""
    best = n_on - alpha * n_off
    assert best > 0
    ts = float(stats.wstat(n_on, n_off, alpha, 0.0) - stats.wstat(n_on, n_off, alpha, best))
    assert abs(float(stats.li_ma_significance(n_on, n_off, alpha))) == pytest.approx(math.sqrt(max(ts, 0)), abs=1e-7)


def test_li_ma_vs_gammapy():
    gp = require_gammapy("gammapy.stats")
    rng = np.random.default_rng(5)
    n_on = rng.poisson(30, 20)
    n_off = rng.poisson(60, 20)
    alpha = rng.uniform(0.1, 1, 20)
    ref = gp.WStatCountsStatistic(n_on=n_on, n_off=n_off, alpha=alpha).sqrt_ts
    np.testing.assert_allclose(stats.li_ma_significance(n_on, n_off, alpha), ref, rtol=1e-9, atol=1e-9)


def test_cash_sqrt_ts_hand():
    # n = 10 over a background of 4: TS = C(4) - C(10) = 2[(4 - 10 ln 4) - (10 - 10 ln 10)]
    ts = 2 * ((4 - 10 * math.log(4)) - (10 - 10 * math.log(10)))
    assert float(stats.cash_sqrt_ts(10, 4)) == pytest.approx(math.sqrt(ts), rel=1e-12, abs=0)
