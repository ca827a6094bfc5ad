"""Power-law integral and its index derivative in the branches near index = 1, with a reference
energy != 1 TeV (found by mutation testing: the slow branches were only tested with E0 = 1).

References: ``F = A E0 x1^g expm1(g L) / g`` with ``g = 1 - index``, ``x1 = E1/E0``, ``L = ln(E2/E1)``
(exact, ``math.expm1`` keeps full precision for tiny ``g L``); ``dF/dindex = -A E0 int t e^(g t) dt``
over ``t in [ln(E1/E0), ln(E2/E0)]`` by `scipy.integrate.quad`.
"""

from __future__ import annotations

import math

import astropy.units as u
import numpy as np
import pytest
from scipy.integrate import quad

import xspec_ds as xs

from .._asserts import assert_close

A, E0 = 3.3e-12, 1.7  # cm-2 s-1 TeV-1, TeV
E1 = np.array([0.1, 0.5, 1.7, 3.0, 20.0])
E2 = np.array([0.5, 1.7, 2.718281828459045 * 1.7, 20.0, 100.0])


def integral_ref(index: float, e1: float, e2: float) -> float:
    g = 1.0 - index
    big_l = math.log(e2 / e1)
    if g == 0:
        return A * E0 * big_l
    return A * E0 * (e1 / E0) ** g * math.expm1(g * big_l) / g


@pytest.mark.parametrize("g", [0.049, 0.02, -0.03, 1e-4, -3e-7, 6e-11, -4e-11, 0.0])
def test_power_law_integral_near_index_one(g):
    """Covers the expm1 branch (|g| < 0.05) and its series (|g L| < 1e-10) with E0 = 1.7 TeV; the
    series' first-order term matters at 1e-12 when |g L| is just below 1e-10."""
    index = 1.0 - g
    model = xs.PowerLawSpectralModel(index=index, amplitude=A * u.Unit("cm-2 s-1 TeV-1"), reference=E0 * u.TeV)
    got = model.integral(E1 * u.TeV, E2 * u.TeV).to_value("cm-2 s-1")
    assert_close(got, [integral_ref(index, a, b) for a, b in zip(E1, E2)], rtol=2e-14)


@pytest.mark.parametrize("index", [1.0, 1 + 2e-4, 1 - 9e-4, 1.6, 0.3, 2.5])
def test_power_law_index_derivative_with_reference(index):
    model = xs.PowerLawSpectralModel(index=index, amplitude=A * u.Unit("cm-2 s-1 TeV-1"), reference=E0 * u.TeV)
    got = model._integral_deriv(E1, E2, [model.parameters["index"]])[0]
    g = 1.0 - index
    expected = [
        -A * E0 * quad(lambda t: t * math.exp(g * t), math.log(a / E0), math.log(b / E0), epsabs=0, epsrel=1e-13)[0]
        for a, b in zip(E1, E2)
    ]
    # the bin starting at E0 has t in [0, 1]: no cancellation, tight; others to the closed-form rounding
    assert_close(got, expected, rtol=1e-10)


def test_constant_dnde_has_the_energy_shape():
    model = xs.ConstantSpectralModel(const="5e-13 cm-2 s-1 TeV-1")
    e = np.array([[0.3, 1.0, 4.0], [2.0, 5.0, 9.0]]) * u.TeV
    out = model(e)
    assert out.shape == (2, 3)
    assert_close(out.to_value("cm-2 s-1 TeV-1"), np.full((2, 3), 5e-13), rtol=0)


def test_power_law_derivative_with_free_reference():
    """A free reference energy falls back to finite differences: dF/dE0 = index F / E0 (F ~ E0^index)."""
    model = xs.PowerLawSpectralModel(index=2.4, amplitude=A * u.Unit("cm-2 s-1 TeV-1"), reference=E0 * u.TeV)
    ref = model.parameters["reference"]
    ref.frozen = False
    params = [model.parameters["amplitude"], model.parameters["index"], ref]
    deriv = model._integral_deriv(E1, E2, params)
    flux = model._integral(E1, E2)
    assert_close(deriv[0], flux / A, rtol=1e-13)
    assert_close(deriv[2], 2.4 * flux / E0, rtol=1e-8)


def test_finite_difference_derivative_of_a_small_nonlinear_parameter():
    """The generic (finite-difference) derivative with a parameter value << 1: d/dlambda of an
    exponential cutoff, lambda = 0.02 TeV-1, against quad of -A E (E/E0)^-index exp(-lambda E)."""
    model = xs.ExpCutoffPowerLawSpectralModel(index=2.0, amplitude="1e-12 cm-2 s-1 TeV-1", lambda_="0.02 TeV-1")
    lam = model.parameters["lambda_"]
    got = model._integral_deriv(E1, E2, [lam])[0]
    expected = [
        quad(lambda e: -1e-12 * e * e**-2.0 * math.exp(-0.02 * e), a, b, epsabs=0, epsrel=1e-12)[0]
        for a, b in zip(E1, E2)
    ]
    assert_close(got, expected, rtol=1e-7)
