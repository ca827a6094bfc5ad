"""The batched norm problem: vectorised root finding and the 1-D fits against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from xspec_ds import stats
from xspec_ds.estimators.profile import NormProblem, find_roots_bracketed, solve_norm_problem


def test_find_roots_bracketed_vectorised_cubic():
    c = np.array([0.001, 1.0, 8.0, 1e3, 27.0])

    def f(x):
        return x**3 - c

    a = np.zeros_like(c)
    b = np.full_like(c, 20.0)
    roots = find_roots_bracketed(f, a, b, f(a), f(b), xtol=1e-13)
    assert_allclose(roots, np.cbrt(c), rtol=1e-10, atol=0)


def test_find_roots_bracketed_invalid_bracket_is_nan():
    roots = find_roots_bracketed(
        lambda x: x - 5.0,
        np.array([0.0, 0.0]),
        np.array([1.0, 10.0]),
        np.array([-5.0, -5.0]),
        np.array([-4.0, 5.0]),
        1e-12,
    )
    assert np.isnan(roots[0])
    assert_allclose(roots[1], 5.0, rtol=1e-12, atol=0)


def one_bin_cash(n, b, s):
    """R rows, one Cash cell each: counts n, background b, reference signal s."""
    n, b, s = (np.atleast_1d(np.asarray(x, float)) for x in (n, b, s))
    r = np.arange(n.size)
    return NormProblem(
        n.size, 1, cash={"row": r, "dataset": 0 * r, "counts": n, "mu_ref": s, "mu_other": 0 * s, "background": b}
    )


def scalar_cash(norm, n, b, s):
    return float(stats.cash(n, b + norm * s))


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(min_value=5, max_value=5000),
    b=st.floats(min_value=0.1, max_value=50.0),
    s=st.floats(min_value=1.0, max_value=500.0),
)
def test_one_bin_cash_against_closed_forms(n, b, s):
    res = solve_norm_problem(one_bin_cash(n, b, s), n_sigma=1, n_sigma_ul=2, scan_values=[0.5, 1.0, 2.0])
    best = (n - b) / s  # dC/dmu = 0 at mu = n
    assert_allclose(res["norm"], best, rtol=1e-8, atol=1e-10)
    # curvature: C'' = 2 n s^2 / mu^2 at mu = n -> sigma = sqrt(2 / C'') = sqrt(n) / s
    assert_allclose(res["norm_err"], np.sqrt(n) / s, rtol=1e-5, atol=0)
    # profile crossings from scipy on the scalar statistic (independent computation)
    cmin = scalar_cash(best, n, b, s)
    up = scipy.optimize.brentq(
        lambda x: scalar_cash(x, n, b, s) - cmin - 1, best, best + 100 * np.sqrt(n) / s, xtol=1e-14
    )
    lo = scipy.optimize.brentq(lambda x: scalar_cash(x, n, b, s) - cmin - 1, -b / s + 1e-12, best, xtol=1e-14)
    ul = scipy.optimize.brentq(
        lambda x: scalar_cash(x, n, b, s) - cmin - 4, best, best + 100 * np.sqrt(n) / s, xtol=1e-14
    )
    assert_allclose(res["norm_errp"], up - best, rtol=1e-7, atol=0)
    assert_allclose(res["norm_errn"], best - lo, rtol=1e-7, atol=0)
    assert_allclose(res["norm_ul"], ul, rtol=1e-8, atol=0)
    # TS against norm = 0 is the Cash sqrt(TS)^2 of counts over the known background
    assert_allclose(res["ts"], stats.cash_sqrt_ts(n, b) ** 2, rtol=1e-8, atol=1e-9)
    assert_allclose(res["stat_scan"][0], [scalar_cash(x, n, b, s) for x in (0.5, 1.0, 2.0)], rtol=1e-12, atol=0)
    assert res["success"].all()


def test_rows_are_independent_and_vectorised():
    n, b, s = [10.0, 200.0, 3000.0], [1.0, 5.0, 20.0], [9.0, 100.0, 2500.0]
    together = solve_norm_problem(one_bin_cash(n, b, s))
    for k in range(3):
        alone = solve_norm_problem(one_bin_cash(n[k], b[k], s[k]))
        for key in ("norm", "norm_err", "norm_errn", "norm_errp", "norm_ul", "ts"):
            assert_allclose(together[key][k], alone[key][0], rtol=1e-9, atol=0)


def test_sum_over_cells_and_datasets():
    # row 0: two cells in two datasets; row 1: one cell; row 2: no cells (no data)
    p = NormProblem(
        3,
        2,
        cash={
            "row": [1, 0, 0],
            "dataset": [0, 0, 1],
            "counts": [7.0, 3.0, 4.0],
            "mu_ref": [2.0, 1.0, 1.5],
            "mu_other": [0.0, 0.5, 0.0],
            "background": [1.0, 0.2, 0.3],
        },
    )
    norm = np.array([1.3, 0.7, 2.0])
    expected0 = stats.cash(3.0, 0.2 + 0.5 + 1.3 * 1.0) + stats.cash(4.0, 0.3 + 1.3 * 1.5)
    expected1 = stats.cash(7.0, 1.0 + 0.7 * 2.0)
    assert_allclose(p.stat(norm), [expected0, expected1, 0.0], rtol=1e-14, atol=0)
    assert_allclose(p.counts(), [[3.0, 4.0], [7.0, 0.0], [0.0, 0.0]], rtol=0, atol=0)
    res = solve_norm_problem(p)
    assert res["success"].tolist() == [True, True, False]
    assert np.isnan(res["norm"][2]) and np.isnan(res["ts"][2])


def test_wstat_cells_match_stats_wstat():
    n_on, n_off, alpha, s = (
        np.array([12.0, 0.0, 30.0]),
        np.array([20.0, 5.0, 0.0]),
        np.array([0.2, 0.1, 0.25]),
        np.array([8.0, 1.0, 20.0]),
    )
    r = np.arange(3)
    p = NormProblem(
        1,
        1,
        wstat={
            "row": 0 * r,
            "dataset": 0 * r,
            "counts": n_on,
            "mu_ref": s,
            "mu_other": 0 * s,
            "counts_off": n_off,
            "alpha": alpha,
        },
    )
    for norm in (0.3, 1.0, 1.7):
        assert_allclose(p.stat(np.array([norm])), [stats.wstat(n_on, n_off, alpha, norm * s).sum()], rtol=1e-13, atol=0)
    res = solve_norm_problem(p)
    # the best norm minimises the summed WSTAT (scipy on the scalar function)
    ref = scipy.optimize.minimize_scalar(
        lambda x: stats.wstat(n_on, n_off, alpha, x * s).sum(),
        bounds=(0.01, 10),
        method="bounded",
        options={"xatol": 1e-12},
    )
    assert_allclose(res["norm"], ref.x, rtol=1e-6, atol=0)


def test_zero_counts_row_gives_a_flagged_upper_limit():
    # Cash, no counts, no background: S(norm) = 2 norm s -> UL where 2 s UL = n_sigma_ul^2
    s = 4.0
    p = one_bin_cash(0.0, 0.0, s)
    res = solve_norm_problem(p, n_sigma_ul=2)
    assert not res["success"][0] and res["no_counts"][0]
    assert np.isnan(res["norm"][0])
    assert_allclose(res["norm_ul"], [4.0 / (2 * s)], rtol=1e-9, atol=0)


def test_bounds_are_respected():
    res = solve_norm_problem(one_bin_cash(2.0, 10.0, 5.0), norm_min=0.0)
    # the unbounded best fit is negative ((2 - 10) / 5); with norm >= 0 it sits on the bound
    assert res["norm"][0] == 0.0


@pytest.mark.parametrize("n_sigma", [1.0, 2.0, 3.0])
def test_n_sigma_scales_errors(n_sigma):
    res = solve_norm_problem(one_bin_cash(400.0, 10.0, 100.0), n_sigma=n_sigma)
    base = solve_norm_problem(one_bin_cash(400.0, 10.0, 100.0), n_sigma=1.0)
    assert_allclose(res["norm_err"], n_sigma * base["norm_err"], rtol=1e-12, atol=0)
    best, cmin = res["norm"][0], res["stat"][0]
    for key, sign in (("norm_errp", 1), ("norm_errn", -1)):
        x = best + sign * res[key][0]
        assert_allclose(scalar_cash(x, 400.0, 10.0, 100.0) - cmin, n_sigma**2, rtol=1e-8, atol=0)
