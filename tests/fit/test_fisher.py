"""Fit covariance against the Fisher information computed by hand (issue 14).

For the Cash statistic ``C = 2 sum_j (mu_j - n_j ln mu_j)`` the fit reports ``cov = 2 H^-1`` with
``H`` the Hessian of ``C`` (``errordef = 1``, as Gammapy/MINUIT). Written out,

    H_ab / 2 = sum_j [ n_j / mu_j^2 d_a mu_j d_b mu_j + (1 - n_j / mu_j) d_a d_b mu_j ],

the *observed* information (Cash 1979; e.g. Sherpa's and Gammapy's covariance). For Asimov data
(``n = mu`` at the truth) the second term vanishes and ``cov^-1 = sum_j d_a mu d_b mu / mu``, the
*expected* (Fisher) information. Here ``mu_j = sum_i M_ij X_i F_i`` with the power-law bin flux
``F_i = A E0 int (E/E0)^-index dE`` and its derivatives written as integrals evaluated with
`scipy.integrate.quad` (``t = ln(E/E0)``): ``dF/dA = F/A``, ``dF/dindex = -A E0 int t e^((1-index) t) dt``,
``d2F/dindex2 = A E0 int t^2 e^((1-index) t) dt``, ``d2F/dA dindex = (dF/dindex)/A``, ``d2F/dA2 = 0``.
Nothing here uses the package's gradients or Hessian.
"""

from __future__ import annotations

import math

import astropy.units as u
import numpy as np
import pytest
from scipy.integrate import quad

import xspec_ds as xs

from .._asserts import assert_close
from .._requirements import require
from ..conftest import build_arrays

E0 = 1.0  # TeV


def _moment(index: float, e1: float, e2: float, k: int) -> float:
    """``E0 int_{e1}^{e2} (E/E0)^-index ln(E/E0)^k dE`` by quad in t = ln(E/E0)."""
    g = 1.0 - index
    val, _ = quad(lambda t: t**k * math.exp(g * t), math.log(e1 / E0), math.log(e2 / E0), epsabs=0, epsrel=1e-13)
    return E0 * val


def pl_mu_and_derivatives(amp, index, et, exposure_cm2s, kernel):
    """mu (n_reco,), jacobian (2, n_reco) and second derivatives (2, 2, n_reco) in (amplitude, index)."""
    m0 = np.array([_moment(index, a, b, 0) for a, b in zip(et[:-1], et[1:])])
    m1 = np.array([_moment(index, a, b, 1) for a, b in zip(et[:-1], et[1:])])
    m2 = np.array([_moment(index, a, b, 2) for a, b in zip(et[:-1], et[1:])])
    flux = amp * m0
    d_flux = np.array([m0, -amp * m1])
    dd_flux = np.array([[np.zeros_like(m0), -m1], [-m1, amp * m2]])

    def fold(f):
        return (f * exposure_cm2s) @ kernel

    return fold(flux), fold(d_flux), fold(dd_flux)


def covariance_by_hand(n, mu, jac, hess_mu):
    info = np.einsum("j,aj,bj->ab", n / mu**2, jac, jac) + np.einsum("j,abj->ab", 1.0 - n / mu, hess_mu)
    return np.linalg.inv(info)  # 2 H^-1 with H = 2 info


def _fit_dataset(counts=None, seed=4, exposure=1e11, n=15, edisp="diagonal"):
    arrays, er, et = build_arrays(n=n, exposure_scale_m2s=exposure, background_level=0.0, edisp=edisp)
    del arrays["background"]
    if counts is not None:
        arrays["counts"] = arrays["counts"].copy(data=counts)
    model = xs.PowerLawSpectralModel(index=2.3, amplitude="2e-11 cm-2 s-1 TeV-1", reference=E0 * u.TeV)
    ds = xs.SpectrumDataset(models=xs.SkyModel(model, name="src"), name="fisher", **arrays)
    if counts is None:
        ds.fake(random_state=seed)
    return ds, model, arrays, et


def _fitted_cov(model):
    names = model.parameters.names
    k = [names.index("amplitude"), names.index("index")]
    return np.asarray(model.covariance)[np.ix_(k, k)]


BACKENDS = ["scipy", pytest.param("minuit", marks=pytest.mark.filterwarnings("ignore"))]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("edisp", ["diagonal", "smeared"])
def test_power_law_covariance_is_observed_information(backend, edisp):
    if backend == "minuit":
        require("iminuit")
    ds, model, arrays, et = _fit_dataset(edisp=edisp)
    model.index.value, model.amplitude.value = 2.0, 1.5e-11
    result = xs.Fit(backend=backend).run(ds)
    assert result.success
    amp, index = model.amplitude.value, model.index.value  # cm-2 s-1 TeV-1 (the model's unit), 1
    exposure = arrays["exposure"].values * 1e4  # m2 s -> cm2 s
    mu, jac, hess_mu = pl_mu_and_derivatives(amp, index, et, exposure, arrays["edisp"].values)
    n = ds.counts.values
    assert_close(ds.npred().values, mu, rtol=1e-12)  # the same prediction
    # the fit sits at the MLE: the score vanishes (in units of the errors; scipy ends with a Newton
    # polish, MINUIT stops at its EDM tolerance)
    score = np.einsum("j,aj->a", 1.0 - n / mu, jac)
    expected = covariance_by_hand(n, mu, jac, hess_mu)
    assert np.all(np.abs(score) * np.sqrt(np.diag(expected)) < (1e-6 if backend == "scipy" else 1e-2))
    got = _fitted_cov(model)
    rtol = 1e-6 if backend == "scipy" else 2e-4  # central differences of the analytic gradient / HESSE
    assert_close(got, expected, rtol=rtol)
    assert np.sign(got[0, 1]) == np.sign(expected[0, 1]) != 0  # the sign of the correlation
    assert_close([model.amplitude.error, model.index.error], np.sqrt(np.diag(expected)), rtol=rtol)
    # the result's matrix (free parameters in `result.parameters` order) is the same matrix
    free = [p.name for p in result.parameters if not p.frozen]
    order = [free.index("amplitude"), free.index("index")]
    assert_close(np.asarray(result.covariance)[np.ix_(order, order)], got, rtol=1e-14)


def test_asimov_covariance_is_inverse_expected_fisher_information():
    """Counts equal to the true prediction: the MLE is the truth and cov^-1 = sum d_a mu d_b mu / mu."""
    ds0, model0, arrays, et = _fit_dataset(n=12, exposure=5e10)
    exposure = arrays["exposure"].values * 1e4
    mu, jac, _ = pl_mu_and_derivatives(2e-11, 2.3, et, exposure, arrays["edisp"].values)
    ds, model, _, _ = _fit_dataset(counts=mu, n=12, exposure=5e10)
    model.index.value, model.amplitude.value = 2.1, 3e-11
    assert xs.Fit().run(ds).success
    assert_close([model.amplitude.value, model.index.value], [2e-11, 2.3], rtol=1e-7)
    fisher = np.einsum("aj,bj,j->ab", jac, jac, 1.0 / mu)
    expected = np.linalg.inv(fisher)
    got = _fitted_cov(model)
    assert_close(got, expected, rtol=1e-5)
    # amplitude and index are correlated here (E0 = 1 TeV is not the decorrelation energy): the
    # off-diagonal term is large, and its sign is the hand-computed one
    corr = expected[0, 1] / math.sqrt(expected[0, 0] * expected[1, 1])
    assert 0.1 < abs(corr) < 0.99
    assert np.sign(got[0, 1]) == np.sign(corr)


def test_amplitude_only_covariance_closed_form():
    """Index frozen, no background: cov = A^2 / sum(n) exactly (one-parameter observed information)."""
    ds, model, _, _ = _fit_dataset(seed=11)
    model.index.frozen = True
    model.amplitude.value = 3e-11
    assert xs.Fit().run(ds).success
    a = model.amplitude.value
    n_tot = ds.counts.values.sum()
    assert_close(a, 2e-11 * n_tot / ds.npred().values.sum() * (a / 2e-11), rtol=1e-12)  # consistency
    names = model.parameters.names
    assert_close(
        np.asarray(model.covariance)[names.index("amplitude"), names.index("amplitude")], a**2 / n_tot, rtol=1e-6
    )
    assert_close(model.amplitude.error, a / math.sqrt(n_tot), rtol=1e-6)
    assert np.all(np.asarray(model.covariance)[names.index("index")] == 0)  # frozen: zero row and column


@pytest.mark.parametrize("unit", ["cm-2 s-1 TeV-1", "m-2 s-1 GeV-1"])
def test_covariance_in_the_parameter_unit(unit):
    """Errors and covariance are in the parameter's own unit: the same fit in another amplitude unit
    gives the hand-computed covariance converted by the unit factor."""
    ds, model, arrays, et = _fit_dataset(seed=7)
    model.amplitude.unit = unit
    model.index.value = 2.1
    assert xs.Fit().run(ds).success
    scale = u.Unit(unit).to("cm-2 s-1 TeV-1")
    amp = model.amplitude.value * scale
    mu, jac, hess_mu = pl_mu_and_derivatives(amp, model.index.value, et, arrays["exposure"].values * 1e4,
                                             arrays["edisp"].values)  # fmt: skip
    expected = covariance_by_hand(ds.counts.values, mu, jac, hess_mu)
    expected = expected / np.outer([scale, 1.0], [scale, 1.0])
    assert_close(_fitted_cov(model), expected, rtol=1e-6)
