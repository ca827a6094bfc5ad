"""Statistic records and `xspec_ds.likelihood`: records equal the per-bin functions, the adjoint
gradient equals finite differences, the Fisher weight equals the expected Hessian, and a batch
of K spectra equals K single evaluations."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from xspec_ds import likelihood, stats


def _problem(rng, k, nt=12, nr=8, onoff=False, batched_edisp=False):
    edisp = rng.uniform(0, 1, (nt, nr))
    edisp /= edisp.sum(axis=1, keepdims=True) * 1.1
    if batched_edisp:
        edisp = edisp * rng.uniform(0.8, 1.0, (k, nt, 1))
    exposure = rng.uniform(1, 3, (k, nt))
    flux = rng.uniform(0.5, 5, (k, nt))
    dflux = rng.normal(size=(k, 3, nt))
    counts = rng.poisson(5, (k, nr)).astype(float)
    data = {"counts": counts}
    if onoff:
        data["counts_off"] = rng.poisson(20, (k, nr)).astype(float)
        data["alpha"] = rng.uniform(0.05, 0.5, (k, nr))
        data["counts"][:, 0] = 0.0
        data["counts_off"][:, 1] = 0.0
    else:
        data["background"] = rng.uniform(0, 2, (k, nr))
    mask = rng.uniform(size=(k, nr)) < 0.8
    return flux, dflux, exposure, edisp, data, mask


def test_get_statistic_unknown_names_known():
    with pytest.raises(ValueError, match=r"unknown statistic 'chi3'.*'cash'.*'wstat'"):
        stats.get_statistic("chi3")
    assert stats.get_statistic("cash") is stats.STATISTICS["cash"]


@pytest.mark.parametrize("name", ["cash", "wstat"])
def test_record_value_equals_per_bin_function(name):
    rng = np.random.default_rng(1)
    _, _, _, _, data, _ = _problem(rng, 4, onoff=name == "wstat")
    mu_sig = rng.uniform(0, 10, data["counts"].shape)
    rec = stats.get_statistic(name)
    if name == "cash":
        expected = stats.cash(data["counts"], np.maximum(mu_sig + data["background"], 0))
    else:
        expected = stats.wstat(data["counts"], data["counts_off"], data["alpha"], mu_sig)
    np.testing.assert_allclose(rec.value(mu_sig, data), expected, rtol=1e-14, atol=0)


@pytest.mark.parametrize("name", ["cash", "wstat"])
def test_record_grad_is_derivative_of_value(name):
    rng = np.random.default_rng(2)
    _, _, _, _, data, _ = _problem(rng, 3, onoff=name == "wstat")
    mu_sig = rng.uniform(0.5, 10, data["counts"].shape)
    rec = stats.get_statistic(name)
    h = 1e-6 * mu_sig
    fd = (rec.value(mu_sig + h, data) - rec.value(mu_sig - h, data)) / (2 * h)
    np.testing.assert_allclose(rec.grad(mu_sig, data), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["cash", "wstat"])
def test_record_fisher_is_expected_second_derivative(name):
    """Fisher weight = E[d2 value / d mu_sig2] over Poisson data drawn from the model itself."""
    rng = np.random.default_rng(3)
    mu_sig, b, alpha = 7.0, 12.0, 0.3
    n = 400_000
    if name == "cash":
        data = {"counts": rng.poisson(mu_sig + 1.0, n).astype(float), "background": np.full(n, 1.0)}
        expected = 2.0 / (mu_sig + 1.0)
    else:
        data = {
            "counts": rng.poisson(mu_sig + alpha * b, n).astype(float),
            "counts_off": rng.poisson(b, n).astype(float),
            "alpha": np.full(n, alpha),
        }
        expected = 2.0 / (mu_sig + alpha * (1 + alpha) * b)
    rec = stats.get_statistic(name)
    h = 1e-3
    second = (rec.grad(np.full(n, mu_sig + h), data) - rec.grad(np.full(n, mu_sig - h), data)) / (2 * h)
    np.testing.assert_allclose(second.mean(), expected, rtol=0.02)
    np.testing.assert_allclose(rec.fisher(np.full(1, mu_sig), {k: v[:1] for k, v in data.items()}), expected, rtol=0.1)


@settings(max_examples=30, deadline=None)
@given(
    k=st.integers(1, 5),
    onoff=st.booleans(),
    batched=st.booleans(),
    seed=st.integers(0, 2**31),
)
@example(k=2, onoff=False, batched=False, seed=432817)  # the statistic sums to -0.04 from terms of ~10
def test_batch_equals_single_and_gradient_equals_fd(k, onoff, batched, seed):
    rng = np.random.default_rng(seed)
    flux, dflux, exposure, edisp, data, mask = _problem(rng, k, onoff=onoff, batched_edisp=batched)
    name = "wstat" if onoff else "cash"
    stat, grad, _ = likelihood.stat_grad(name, flux, dflux, exposure, edisp, data, mask)
    assert stat.shape == (k,) and grad.shape == (k, 3)
    for i in range(k):
        e = edisp[i] if batched else edisp
        d = {key: v[i] for key, v in data.items()}
        s1, g1, _ = likelihood.stat_grad(name, flux[i], dflux[i], exposure[i], e, d, mask[i])
        # the sum may cancel to near 0 (Cash terms of both signs): rounding is relative to the terms
        terms = likelihood.masked_sum(
            np.abs(likelihood.stat_array(name, likelihood.predict(flux[i], exposure[i], e), d)), mask[i]
        )
        np.testing.assert_allclose(stat[i], s1, rtol=1e-13, atol=1e-14 * terms)
        np.testing.assert_allclose(grad[i], g1, rtol=1e-10, atol=1e-12)
        # the gradient along each Jacobian direction: d/dt stat(flux + t dflux_p)
        for p in range(3):
            t = 1e-6
            sp = likelihood.stat_sum(name, likelihood.predict(flux[i] + t * dflux[i, p], exposure[i], e), d, mask[i])
            sm = likelihood.stat_sum(name, likelihood.predict(flux[i] - t * dflux[i, p], exposure[i], e), d, mask[i])
            np.testing.assert_allclose(grad[i, p], (sp - sm) / (2 * t), rtol=1e-5, atol=1e-6)


def test_fisher_is_jt_w_j():
    rng = np.random.default_rng(5)
    flux, dflux, exposure, edisp, data, mask = _problem(rng, 3, batched_edisp=True)
    info = likelihood.fisher("cash", flux, dflux, exposure, edisp, data, mask)
    for i in range(3):
        jac = (dflux[i] * exposure[i]) @ edisp[i]
        mu = flux[i] * exposure[i] @ edisp[i] + data["background"][i]
        w = np.where(mask[i], 2.0 / mu, 0.0)
        np.testing.assert_allclose(info[i], (jac * w) @ jac.T, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", ["cash", "wstat"])
def test_value_and_grad_equals_separate(name):
    rng = np.random.default_rng(7)
    _, _, _, _, data, _ = _problem(rng, 3, onoff=name == "wstat")
    mu_sig = rng.uniform(0, 10, data["counts"].shape)
    rec = stats.get_statistic(name)
    value, grad = rec.value_and_grad(mu_sig, data)
    np.testing.assert_array_equal(value, rec.value(mu_sig, data))
    np.testing.assert_array_equal(grad, rec.grad(mu_sig, data))


def _chi2_data(rng, k, nr, name):
    n = rng.poisson(20, (k, nr)).astype(float) + 1
    data = {"counts": n}
    if name == "chi2":
        data["stat_err"] = rng.uniform(1, 5, (k, nr))
    return data


@pytest.mark.parametrize("kernel", ["dense", "banded", "sparse", "identity", "batched"])
@pytest.mark.parametrize("name", ["cash", "wstat", "chi2datavar", "chi2gehrels", "chi2"])
def test_stat_grad_fisher_equals_stat_grad_and_fisher(name, kernel):
    """One fold of the value and Jacobian rows gives the statistic and gradient of `stat_grad`
    (fold + adjoint) and the information of `fisher`, for every statistic record and every kind of
    kernel (a banded and a sparse kernel as `forward.prepare_kernel` builds them for large matrices)."""
    from xspec_ds import forward

    rng = np.random.default_rng(7)
    k, nt, nr = 3, 240, 200
    flux, dflux, exposure, edisp, data, mask = _problem(rng, k, nt=nt, nr=nr, onoff=name == "wstat")
    if name.startswith("chi2"):
        data = _chi2_data(rng, k, nr, name)
    if kernel == "banded":  # a Gaussian band: most of each row below 1e-12 of its sum
        j, i = np.meshgrid(np.arange(nr), np.arange(nt) * nr / nt)
        edisp = np.exp(-0.5 * ((j - i) / 3.0) ** 2) * 0.9 / (3.0 * np.sqrt(2 * np.pi))
        edisp = forward.prepare_kernel(edisp)
        assert isinstance(edisp, forward.BandedKernel)
    elif kernel == "sparse":
        edisp = np.where(rng.uniform(size=(nt, nr)) < 0.05, edisp, 0.0)
        edisp = forward.prepare_kernel(edisp)
        assert isinstance(edisp, forward.SparseKernel)
    elif kernel == "identity":
        edisp = None
        flux, dflux, exposure = flux[..., :nr], dflux[..., :nr], exposure[..., :nr]
    elif kernel == "batched":
        edisp = edisp * rng.uniform(0.8, 1.0, (k, nt, 1))
    # one model for all K spectra (a joint-fit group) and one model per spectrum
    for f, df in ((flux[0], dflux[0]), (flux, dflux)):
        stat, grad, info, w = likelihood.stat_grad_fisher(name, f, df, exposure, edisp, data, mask)
        s0, g0, w0 = likelihood.stat_grad(name, f, df, exposure, edisp, data, mask)
        i0 = likelihood.fisher(name, f, df, exposure, edisp, data, mask)
        np.testing.assert_allclose(stat, s0, rtol=1e-12, atol=0)
        np.testing.assert_allclose(grad, g0, rtol=1e-9, atol=1e-9 * np.abs(g0).max())
        np.testing.assert_allclose(info, i0, rtol=1e-12, atol=0)
        np.testing.assert_allclose(w, w0, rtol=1e-11, atol=1e-12 * np.abs(w0).max())
        assert grad.shape == (k, 3) and info.shape == (k, 3, 3)


def test_stat_grad_without_signal_model_uses_zero_signal():
    """``flux=None``: no fold, ``mu_sig = 0``: Cash of the counts on the background alone."""
    rng = np.random.default_rng(11)
    _, _, exposure, edisp, data, mask = _problem(rng, 3)
    stat, grad, w = likelihood.stat_grad("cash", None, None, exposure, edisp, data, mask)
    n, b = data["counts"], data["background"]
    expected = np.sum(np.where(mask, 2.0 * (b - n * np.log(b)), 0.0), axis=-1)
    np.testing.assert_allclose(stat, expected, rtol=1e-13, atol=0)
    assert grad is None
    np.testing.assert_allclose(w, np.where(mask, 2.0 * (1.0 - n / b), 0.0), rtol=1e-13, atol=0)


def test_stat_grad_of_a_record_without_value_and_grad():
    """chi2datavar has separate value and grad functions: ``sum (n - b - mu)^2 / n`` and its
    gradient ``sum_j -2 (n_j - b_j - mu_j) / n_j J_jp`` with the explicit Jacobian."""
    rng = np.random.default_rng(12)
    flux, dflux, exposure, edisp, data, mask = _problem(rng, 2)
    data["counts"] = data["counts"] + 1.0  # variance n > 0 in every bin
    assert stats.get_statistic("chi2datavar").value_and_grad is None
    stat, grad, w = likelihood.stat_grad("chi2datavar", flux, dflux, exposure, edisp, data, mask)
    for i in range(2):
        mu = (flux[i] * exposure[i]) @ edisp
        jac = (dflux[i] * exposure[i]) @ edisp  # (P, Nr)
        resid = data["counts"][i] - data["background"][i] - mu
        var = data["counts"][i]
        m = mask[i]
        np.testing.assert_allclose(stat[i], np.sum((resid**2 / var)[m]), rtol=1e-12, atol=0)
        np.testing.assert_allclose(grad[i], jac[:, m] @ (-2.0 * resid / var)[m], rtol=1e-10, atol=0)
        np.testing.assert_allclose(w[i], np.where(m, -2.0 * resid / var, 0.0), rtol=1e-12, atol=0)


def test_fisher_identity_kernel():
    """``edisp=None`` (identity): ``I = (dflux exposure) diag(2 / mu) (dflux exposure)^T`` on the mask."""
    rng = np.random.default_rng(13)
    flux, dflux, exposure, _, data, mask = _problem(rng, 2, nt=8, nr=8)
    info = likelihood.fisher("cash", flux, dflux, exposure, None, data, mask)
    for i in range(2):
        jac = dflux[i] * exposure[i]
        w = np.where(mask[i], 2.0 / (flux[i] * exposure[i] + data["background"][i]), 0.0)
        np.testing.assert_allclose(info[i], (jac * w) @ jac.T, rtol=1e-12, atol=0)


def test_masked_sum_over_the_last_axis_with_and_without_mask():
    values = np.arange(2 * 3 * 5, dtype=float).reshape(2, 3, 5) ** 1.5
    expected = np.array([[sum(values[i, j, :]) for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(likelihood.masked_sum(values, None), expected, rtol=1e-15, atol=0)
    mask = (np.arange(5) % 2 == 0) & np.ones((2, 3, 1), dtype=bool)
    expected = np.array([[sum(values[i, j, ::2]) for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(likelihood.masked_sum(values, mask), expected, rtol=1e-15, atol=0)
    # stat_sum without a mask: every bin of every spectrum
    rng = np.random.default_rng(14)
    _, _, _, _, data, _ = _problem(rng, 3)
    mu_sig = rng.uniform(0.5, 5, data["counts"].shape)
    per_bin = stats.cash(data["counts"], mu_sig + data["background"])
    np.testing.assert_allclose(likelihood.stat_sum("cash", mu_sig, data), per_bin.sum(axis=1), rtol=1e-14, atol=0)


def test_cash_record_without_background_and_at_zero_prediction():
    """No background: ``mu = max(mu_sig, 0)``; where it is 0 the gradient weight is 0 (C is flat
    at the truncation value there)."""
    rec = stats.get_statistic("cash")
    n = np.array([0.0, 3.0, 3.0, 4.0])
    mu_sig = np.array([0.0, 0.0, -2.0, 2.0])
    data = {"counts": n}
    expected = stats.cash(n, np.array([0.0, 0.0, 0.0, 2.0]))
    np.testing.assert_array_equal(rec.value(mu_sig, data), expected)
    np.testing.assert_array_equal(rec.grad(mu_sig, data), [0.0, 0.0, 0.0, 2.0 * (1.0 - 4.0 / 2.0)])
    value, grad = rec.value_and_grad(mu_sig, {"counts": n, "background": np.zeros(4)})
    np.testing.assert_array_equal(value, expected)
    np.testing.assert_array_equal(grad, [0.0, 0.0, 0.0, -2.0])


def test_wstat_record_with_alpha_zero():
    """alpha = 0 (no off exposure): the profiled background is 0 (not NaN), so the on counts
    are Cash on mu_sig: ``W' = 2 (1 - n_on / mu_sig)``, Fisher weight ``2 / mu_sig``."""
    rec = stats.get_statistic("wstat")
    data = {"counts": np.array([5.0, 5.0]), "counts_off": np.array([10.0, 10.0]), "alpha": np.array([0.0, 0.2])}
    mu_sig = np.array([4.0, 4.0])
    grad = rec.grad(mu_sig, data)
    assert grad[0] == 2.0 * (1.0 - 5.0 / 4.0)
    mu_bkg = stats.get_wstat_mu_bkg(5.0, 10.0, 0.2, 4.0)
    np.testing.assert_allclose(grad[1], 2.0 * (1.0 - 5.0 / (4.0 + 0.2 * mu_bkg)), rtol=1e-14, atol=0)
    np.testing.assert_array_equal(rec.value_and_grad(mu_sig, data)[1], grad)
    assert rec.fisher(mu_sig, data)[0] == 0.5


def test_wstat_fisher_float32_alpha_in_float64():
    rec = stats.get_statistic("wstat")
    alpha32 = np.array([0.1, 0.3, 0.7], dtype=np.float32)
    data = {"counts": np.array([5.0, 8.0, 2.0]), "counts_off": np.array([30.0, 12.0, 7.0]), "alpha": alpha32}
    mu_sig = np.array([2.0, 3.5, 1.25])
    a = alpha32.astype(np.float64)
    b = stats.get_wstat_mu_bkg(data["counts"], data["counts_off"], a, mu_sig)
    np.testing.assert_allclose(rec.fisher(mu_sig, data), 2.0 / (mu_sig + a * (1 + a) * b), rtol=1e-15, atol=0)


@pytest.mark.parametrize("shared", ["flux", "dflux"])
def test_stat_grad_fisher_broadcasts_flux_and_jacobian_leading_shapes(shared):
    """A flux shared by K spectra with a Jacobian per spectrum (and the reverse) broadcast to K
    rows, as `stat_grad` does, and integer inputs are computed in float64."""
    rng = np.random.default_rng(8)
    k, nt, nr = 4, 30, 20
    flux, dflux, exposure, edisp, data, mask = _problem(rng, k, nt=nt, nr=nr)
    if shared == "flux":
        flux = flux[0]
    else:
        dflux = dflux[0]
    stat, grad, info, _ = likelihood.stat_grad_fisher("cash", flux, dflux, exposure, edisp, data, mask)
    full_flux = np.broadcast_to(flux, (k, nt))
    full_dflux = np.broadcast_to(dflux, (k, 3, nt))
    s0, g0, _ = likelihood.stat_grad("cash", full_flux, full_dflux, exposure, edisp, data, mask)
    i0 = likelihood.fisher("cash", full_flux, full_dflux, exposure, edisp, data, mask)
    np.testing.assert_allclose(stat, s0, rtol=1e-12, atol=0)
    np.testing.assert_allclose(grad, g0, rtol=1e-9, atol=1e-9 * np.abs(g0).max())
    np.testing.assert_allclose(info, i0, rtol=1e-12, atol=0)
    assert grad.shape == (k, 3) and info.shape == (k, 3, 3)
    ints = likelihood.stat_grad_fisher("cash", np.ones(nt, int), np.ones((1, nt), int), exposure, edisp, data, mask)
    floats = likelihood.stat_grad_fisher("cash", np.ones(nt), np.ones((1, nt)), exposure, edisp, data, mask)
    for a, b in zip(ints, floats, strict=True):
        np.testing.assert_array_equal(a, b)
