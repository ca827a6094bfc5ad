"""Spectral models against independent references (issue 14).

Every ``dnde`` below is written out from the formula in the model's docstring / Gammapy's
documentation with literal parameter values, so a wrong formula in the package cannot also be in
the reference. Integrals are compared with closed forms written here, or with
`scipy.integrate.quad` of these independently written functions (never of the model's own
``dnde``). Tolerances: 1e-13 relative for values computed in closed form (rounding only), 1e-9
for the package's Gauss-Legendre quadrature (documented accuracy < 1e-9 on smooth models).
"""

from __future__ import annotations

import math

import astropy.units as u
import numpy as np
import pytest
from scipy.integrate import quad

import xspec_ds as xs

from .._asserts import assert_close

E = np.array([0.13, 0.5, 1.0, 2.5, 4.0, 17.0, 80.0])  # TeV: both sides of every reference/break
EDGES = np.array([0.1, 0.3, 1.0, 2.2, 3.9, 4.1, 12.0, 50.0, 100.0])  # bins straddling 2.2 and 4 TeV
DNDE = "cm-2 s-1 TeV-1"
FLUX = "cm-2 s-1"


# ------------------------------------------------------------------------------------------------
# the references: plain Python with literal numbers (E in TeV, dN/dE in cm-2 s-1 TeV-1)
# ------------------------------------------------------------------------------------------------
def ref_pl(e):
    return 3e-12 * (e / 1.7) ** -2.4


def ref_pl2(e):
    # amplitude 1e-11 cm-2 s-1 between 0.2 and 50 TeV, index 2.7: N (1-g) E^-g / (50^(1-g) - 0.2^(1-g))
    return 1e-11 * (1 - 2.7) * e**-2.7 / (50.0 ** (1 - 2.7) - 0.2 ** (1 - 2.7))


def ref_lp_ln(e):
    # A (E/E0)^(-alpha - beta ln(E/E0)), natural log, E0 = 2 TeV
    return 4e-12 * (e / 2.0) ** (-2.3 - 0.25 * math.log(e / 2.0))


def ref_lp_log10(e):
    # the literature's log10 form, A (E/E0)^(-alpha - beta10 log10(E/E0)) with beta10 = 0.4
    return 1e-11 * (e / 1.0) ** (-2.2 - 0.4 * math.log10(e / 1.0))


def ref_ecpl(e):
    # A (E/E0)^-index exp(-(lambda E)^alpha) with alpha = 0.6 (the two common forms differ here)
    return 2e-12 * (e / 1.5) ** -1.5 * math.exp(-((0.3 * e) ** 0.6))


def ref_ecpl_alpha1(e):
    return 2e-12 * (e / 1.0) ** -1.8 * math.exp(-0.2 * e)


def ref_bpl(e):
    return 5e-12 * (e / 2.2) ** (-1.7 if e < 2.2 else -3.1)


def ref_sbpl(e):
    # A (E/E0)^-i1 [1 + (E/Eb)^((i2 - i1)/beta)]^-beta, E0 = 1.3 TeV, Eb = 4 TeV
    return 6e-12 * (e / 1.3) ** -1.6 * (1 + (e / 4.0) ** ((3.0 - 1.6) / 0.7)) ** -0.7


def ref_const(e):
    return 5e-13


def ref_template(e):
    # nodes (1, 8e-12), (2, 2e-12), (4, 1e-12): straight lines in log-log between (and beyond) them
    if e < 2.0:
        return 8e-12 * e**-2.0  # slope ln(2e-12/8e-12)/ln 2 = -2 through (1, 8e-12); extrapolated below 1
    return 2e-12 * (e / 2.0) ** -1.0  # slope ln(1/2)/ln 2 = -1 through (2, 2e-12); extrapolated above 4


def ref_scaled_lp(e):
    return 1.7 * 1e-12 * (e / 1.0) ** (-2.0 - 0.1 * math.log(e))


def ref_sum(e):
    return 1e-12 * e**-2.0 + 1e-12 * e**-1.2 * math.exp(-0.5 * e)


def ref_product(e):
    return 1e-12 * e**-2.0 * 1.3 * e**-0.2


MODELS = {
    "pl": (
        lambda: xs.PowerLawSpectralModel(index=2.4, amplitude="3e-12 cm-2 s-1 TeV-1", reference="1.7 TeV"),
        ref_pl,
    ),
    "pl2": (
        lambda: xs.PowerLaw2SpectralModel(amplitude="1e-11 cm-2 s-1", index=2.7, emin="0.2 TeV", emax="50 TeV"),
        ref_pl2,
    ),
    "lp-ln": (
        lambda: xs.LogParabolaSpectralModel(amplitude="4e-12 cm-2 s-1 TeV-1", reference="2 TeV", alpha=2.3, beta=0.25),
        ref_lp_ln,
    ),
    "lp-log10": (
        lambda: xs.LogParabolaSpectralModel.from_log10(
            amplitude="1e-11 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.2, beta=0.4
        ),
        ref_lp_log10,
    ),
    "ecpl-alpha0.6": (
        lambda: xs.ExpCutoffPowerLawSpectralModel(
            index=1.5, amplitude="2e-12 cm-2 s-1 TeV-1", reference="1.5 TeV", lambda_="0.3 TeV-1", alpha=0.6
        ),
        ref_ecpl,
    ),
    "ecpl-alpha1": (
        lambda: xs.ExpCutoffPowerLawSpectralModel(index=1.8, amplitude="2e-12 cm-2 s-1 TeV-1", lambda_="0.2 TeV-1"),
        ref_ecpl_alpha1,
    ),
    "bpl": (
        lambda: xs.BrokenPowerLawSpectralModel(
            index1=1.7, index2=3.1, amplitude="5e-12 cm-2 s-1 TeV-1", ebreak="2.2 TeV"
        ),
        ref_bpl,
    ),
    "sbpl": (
        lambda: xs.SmoothBrokenPowerLawSpectralModel(
            index1=1.6, index2=3.0, amplitude="6e-12 cm-2 s-1 TeV-1", ebreak="4 TeV", reference="1.3 TeV", beta=0.7
        ),
        ref_sbpl,
    ),
    "const": (lambda: xs.ConstantSpectralModel(const="5e-13 cm-2 s-1 TeV-1"), ref_const),
    "template": (
        lambda: xs.TemplateSpectralModel(
            energy=[1.0, 2.0, 4.0] * u.TeV, values=[8e-12, 2e-12, 1e-12] * u.Unit("cm-2 s-1 TeV-1")
        ),
        ref_template,
    ),
    "scale": (
        lambda: xs.ScaleSpectralModel(xs.LogParabolaSpectralModel(alpha=2.0, beta=0.1, reference="1 TeV"), norm=1.7),
        ref_scaled_lp,
    ),
    "sum": (
        lambda: xs.PowerLawSpectralModel(index=2.0) + xs.ExpCutoffPowerLawSpectralModel(index=1.2, lambda_="0.5 TeV-1"),
        ref_sum,
    ),
    "product": (
        lambda: xs.PowerLawSpectralModel(index=2.0) * xs.PowerLawNormSpectralModel(norm=1.3, tilt=0.2),
        ref_product,
    ),
}
KINKS = {"bpl": [2.2], "template": [1.0, 2.0, 4.0]}  # where the reference is not smooth


def quad_ref(f, e1, e2, kinks=()):
    """``integral f dE`` over [e1, e2] by scipy quad in ln E of the *reference* function."""
    pts = [math.log(p) for p in kinks if e1 < p < e2]
    val, _ = quad(lambda t: f(math.exp(t)) * math.exp(t), math.log(e1), math.log(e2), points=pts or None,
                  epsabs=0, epsrel=1e-13, limit=500)  # fmt: skip
    return val


@pytest.mark.parametrize("name", sorted(MODELS))
def test_dnde_matches_written_formula(name):
    make, ref = MODELS[name]
    got = make()(E * u.TeV).to_value(DNDE)
    assert_close(got, [ref(e) for e in E], rtol=1e-13, err_msg=name)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_integral_matches_quad_of_written_formula(name):
    make, ref = MODELS[name]
    model = make()
    got = model.integral(EDGES[:-1] * u.TeV, EDGES[1:] * u.TeV).to_value(FLUX)
    expected = [quad_ref(ref, a, b, KINKS.get(name, ())) for a, b in zip(EDGES[:-1], EDGES[1:])]
    tol = 1e-12 if model.has_analytic_integral else 1e-9
    assert_close(got, expected, rtol=tol, err_msg=name)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_energy_flux_matches_quad_of_written_formula(name):
    make, ref = MODELS[name]
    got = make().energy_flux(EDGES[:-1] * u.TeV, EDGES[1:] * u.TeV).to_value("TeV cm-2 s-1")
    expected = [quad_ref(lambda e: e * ref(e), a, b, KINKS.get(name, ())) for a, b in zip(EDGES[:-1], EDGES[1:])]
    # kinked models (bpl, template) are integrated by Gauss-Legendre across the kink: looser
    assert_close(got, expected, rtol=1e-4 if name in KINKS else 1e-9, err_msg=name)


# ------------------------------------------------------------------------------------------------
# closed forms
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "emin, emax, index", [(0.2, 50.0, 2.7), (0.1, 100.0, 1.0), (1.0, 10.0, 0.5), (0.3, 3.0, 2.0), (1.0, 2.0, -1.0)]
)
def test_power_law2_integral_over_its_range_is_amplitude(emin, emax, index):
    model = xs.PowerLaw2SpectralModel(amplitude="3.3e-11 cm-2 s-1", index=index, emin=emin * u.TeV, emax=emax * u.TeV)
    whole = model.integral(emin * u.TeV, emax * u.TeV).to_value(FLUX)
    assert_close(whole, 3.3e-11, rtol=1e-13)
    # and so is the sum over any binning of that range
    edges = np.geomspace(emin, emax, 11)
    parts = model.integral(edges[:-1] * u.TeV, edges[1:] * u.TeV).to_value(FLUX)
    assert_close(parts.sum(), 3.3e-11, rtol=1e-13)
    # dN/dE integrates to the amplitude too (quad of the model's dnde, here only a consistency check)
    val = quad(lambda e: float(model(e * u.TeV).to_value(DNDE)), emin, emax, epsabs=0, epsrel=1e-12)[0]
    assert_close(val, 3.3e-11, rtol=1e-10)


def test_power_law2_dnde_literal():
    # index 2, [1, 10] TeV: dN/dE = N E^-2 / (1 - 1/10) = N E^-2 / 0.9
    model = xs.PowerLaw2SpectralModel(amplitude="9e-12 cm-2 s-1", index=2.0, emin="1 TeV", emax="10 TeV")
    assert_close(model([1.0, 2.0, 5.0] * u.TeV).to_value(DNDE), [1e-11, 2.5e-12, 4e-13], rtol=1e-14)


def test_broken_power_law_integral_closed_form_across_break():
    model = MODELS["bpl"][0]()
    got = model.integral(1.0 * u.TeV, 5.0 * u.TeV).to_value(FLUX)
    # A Eb/(1-i) [(E2/Eb)^(1-i) - (E1/Eb)^(1-i)] on each side of Eb = 2.2
    below = 5e-12 * 2.2 / (1 - 1.7) * (1.0 - (1.0 / 2.2) ** (1 - 1.7))
    above = 5e-12 * 2.2 / (1 - 3.1) * ((5.0 / 2.2) ** (1 - 3.1) - 1.0)
    assert_close(got, below + above, rtol=1e-13)


def test_constant_and_template_integrals_closed_form():
    assert_close(MODELS["const"][0]().integral(2 * u.TeV, 7 * u.TeV).to_value(FLUX), 5e-13 * 5, rtol=1e-14)
    t = MODELS["template"][0]()
    # 8e-12 int_1^2 E^-2 dE = 4e-12 ; 2e-12 * 2 int_2^4 dE/E = 4e-12 ln 2
    assert_close(t.integral(1 * u.TeV, 4 * u.TeV).to_value(FLUX), 4e-12 + 4e-12 * math.log(2), rtol=1e-13)


def test_exp_cutoff_forms_differ_for_alpha_not_one():
    """exp(-(lambda E)^alpha) (Gammapy's) and exp(-lambda E^alpha) differ when alpha != 1 and
    lambda != 1 TeV-1: the model must follow the first."""
    model = MODELS["ecpl-alpha0.6"][0]()
    e = 10.0
    gammapy_form = 2e-12 * (e / 1.5) ** -1.5 * math.exp(-((0.3 * e) ** 0.6))
    other_form = 2e-12 * (e / 1.5) ** -1.5 * math.exp(-0.3 * e**0.6)
    assert abs(gammapy_form / other_form - 1) > 0.1  # the test point separates the forms
    assert_close(model(e * u.TeV).to_value(DNDE), gammapy_form, rtol=1e-14)


def test_log_parabola_ln_and_log10_forms_agree_after_conversion():
    ln_model = xs.LogParabolaSpectralModel(
        amplitude="1e-11 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.2, beta=0.4 / math.log(10)
    )
    log10_model = MODELS["lp-log10"][0]()
    assert_close(log10_model.parameters["beta"].value, 0.4 / math.log(10), rtol=1e-15)
    assert_close(log10_model(E * u.TeV).to_value(DNDE), ln_model(E * u.TeV).to_value(DNDE), rtol=1e-14)
    # and the ln form with beta = 0.4 is a different spectrum (the two logs are not interchangeable)
    wrong = xs.LogParabolaSpectralModel(amplitude="1e-11 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.2, beta=0.4)
    assert abs(wrong(10 * u.TeV).to_value(DNDE) / ref_lp_log10(10.0) - 1) > 0.5
