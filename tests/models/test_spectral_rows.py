"""Spectral kernels on parameter rows, against independent references (issue 14, mutation testing).

The kernels (`dnde_kernel`, `dnde_jacobian`, `integral_kernel`, `integral_jacobian`,
`integral_and_jacobian`) take parameter rows ``theta[..., P]``. Each row here is compared with a
formula written out in this file for that row alone: power-law bin integrals and their index
derivative by `scipy.integrate.quad` of the integrand written here (never the package's own
``dnde``), the analytic partial derivatives of each ``dnde`` formula written here, and
quadrature models against the same Gauss-Legendre nodes applied to those derivatives. Rows mix
indices far from 1, near 1 (``|1 - index| < 0.05``: the expm1 form) and very near 1
(``< 1e-3``: the series form), references other than 1 TeV and amplitudes of order 1, so every
branch of the batch code and every ``E / E0`` is exercised.
"""

from __future__ import annotations

import math
import warnings

import astropy.units as u
import numpy as np
import pytest
from scipy.integrate import quad

import xspec_ds as xs
from xspec_ds.models.quadrature import quadrature_nodes

from .._asserts import assert_close

EDGES = np.geomspace(0.1, 100.0, 9)  # contiguous bins
LO, HI = EDGES[:-1], EDGES[1:]
GAP_LO = np.array([0.1, 0.5, 2.0, 10.0])  # bins with gaps: no shared edges
GAP_HI = np.array([0.3, 1.0, 5.0, 60.0])
E = np.array([0.15, 0.7, 1.0, 2.5, 9.0, 40.0])
DNDE = "cm-2 s-1 TeV-1"

# (index, amplitude, reference): far from 1, exactly 1, series range, expm1 range, < 1, steep
PL_ROWS = np.array(
    [
        [2.3, 2.0, 1.0],
        [1.0, 3.0e-1, 2.0],
        [1.0004, 1.5, 0.7],
        [1.03, 5.0, 3.0],
        [0.4, 0.25, 1.5],
        [3.1, 4.0, 0.5],
    ]
)


def pl_flux(index, amplitude, reference, e1, e2):
    return quad(lambda e: amplitude * (e / reference) ** -index, e1, e2, epsrel=1e-13, epsabs=0)[0]


def pl_dflux_dindex(index, amplitude, reference, e1, e2):
    f = lambda e: -amplitude * (e / reference) ** -index * math.log(e / reference)  # noqa: E731
    # split at the reference, where the integrand changes sign, so quad stays relative-accurate
    cut = min(max(reference, e1), e2)
    return sum(quad(f, a, b, epsrel=1e-13, epsabs=0)[0] for a, b in ((e1, cut), (cut, e2)) if b > a)


def pl_reference(rows, lo, hi):
    """(flux, [dF/dindex, dF/dA, dF/dE0]) per row and bin, written out here."""
    flux = np.array([[pl_flux(*r, a, b) for a, b in zip(lo, hi)] for r in rows])
    d_index = np.array([[pl_dflux_dindex(*r, a, b) for a, b in zip(lo, hi)] for r in rows])
    d_amp = flux / rows[:, 1:2]
    d_ref = rows[:, 0:1] / rows[:, 2:3] * flux  # F = A E0^index int E^-index dE
    return flux, np.stack([d_index, d_amp, d_ref], axis=1)


def _rows_shapes(rows):
    """(K, P) rows and the same rows as (K, 1, P) (the element-wise branches)."""
    return [(rows, lambda a: a), (rows[:, None, :], lambda a: a[:, None])]


@pytest.mark.parametrize(
    "select", [slice(None), [0, 4, 5], [0, 3, 4, 5], [1, 2], [0, 2]], ids=["mixed", "far", "far+expm1", "near", "pair"]
)
@pytest.mark.parametrize("edges", ["contiguous", "gaps"])
@pytest.mark.parametrize("layout", [0, 1], ids=["K,P", "K,1,P"])
def test_power_law_integral_rows_match_quad(select, edges, layout):
    rows = PL_ROWS[select]
    lo, hi = (LO, HI) if edges == "contiguous" else (GAP_LO, GAP_HI)
    flux_ref, jac_ref = pl_reference(rows, lo, hi)
    theta, shape = _rows_shapes(rows)[layout]
    model = xs.PowerLawSpectralModel()
    scale = np.abs(jac_ref).max(axis=-1, keepdims=True)  # dF/dindex crosses 0 inside bins near E0

    assert_close(model.integral_kernel(theta, lo, hi), shape(flux_ref), rtol=1e-11)
    jac = model.integral_jacobian(theta, lo, hi)
    assert jac.shape == theta.shape[:-1] + (3, lo.size)
    assert_close(jac / shape(scale), shape(jac_ref / scale), rtol=1e-10, atol=1e-12)
    flux2, jac2 = model.integral_and_jacobian(theta, lo, hi)
    assert_close(flux2, shape(flux_ref), rtol=1e-11)
    assert_close(jac2 / shape(scale), shape(jac_ref / scale), rtol=1e-10, atol=1e-12)
    _, jac_wrt = model.integral_and_jacobian(theta, lo, hi, wrt=[1])  # amplitude only
    assert jac_wrt.shape == theta.shape[:-1] + (1, lo.size)
    assert_close(jac_wrt[..., 0, :], shape(flux_ref / rows[:, 1:2]), rtol=1e-11)


def test_power_law_rows_of_rows_keep_their_leading_axes():
    """theta of shape (2, 3, P): the parameter axis is the last one, the result (2, 3, N)."""
    theta = PL_ROWS.reshape(2, 3, 3)
    flux_ref, jac_ref = pl_reference(PL_ROWS, LO, HI)
    model = xs.PowerLawSpectralModel()
    assert_close(model.integral_kernel(theta, LO, HI), flux_ref.reshape(2, 3, -1), rtol=1e-11)
    flux, jac = model.integral_and_jacobian(theta, LO, HI)
    assert flux.shape == (2, 3, LO.size) and jac.shape == (2, 3, 3, LO.size)
    scale = np.abs(jac_ref).max(axis=-1, keepdims=True).reshape(2, 3, 3, 1)
    assert_close(jac / scale, (jac_ref / scale.reshape(6, 3, 1)).reshape(2, 3, 3, -1), rtol=1e-10, atol=1e-12)
    jac1 = model.integral_jacobian(theta, LO, HI)
    assert_close(jac1 / scale, (jac_ref / scale.reshape(6, 3, 1)).reshape(2, 3, 3, -1), rtol=1e-10, atol=1e-12)
    dnde = model.dnde_kernel(theta, E)
    expected = PL_ROWS[:, 1:2] * (E / PL_ROWS[:, 2:3]) ** -PL_ROWS[:, 0:1]
    assert dnde.shape == (2, 3, E.size)
    assert_close(dnde, expected.reshape(2, 3, -1), rtol=1e-13)
    jac = model.dnde_jacobian(theta, E)
    assert jac.shape == (2, 3, 3, E.size)
    assert_close(jac[..., 1, :], (expected / PL_ROWS[:, 1:2]).reshape(2, 3, -1), rtol=1e-13)


def test_power_law_integral_of_no_bins():
    theta = PL_ROWS[:2]
    empty = np.array([], dtype=float)
    assert xs.PowerLawSpectralModel().integral_kernel(theta, empty, empty).shape == (2, 0)
    flux, jac = xs.PowerLawSpectralModel().integral_and_jacobian(theta, empty, empty)
    assert flux.shape == (2, 0) and jac.shape == (2, 3, 0)


def test_float32_inputs_are_computed_in_float64():
    """Parameters and energies given in float32 are promoted first: the result has float64
    precision (a float32 evaluation would be ~1e-7 off)."""
    theta32 = PL_ROWS[[0, 5]].astype(np.float32)
    e32 = E.astype(np.float32)
    t, e = theta32.astype(np.float64), e32.astype(np.float64)
    model = xs.PowerLawSpectralModel()
    expected = t[:, 1:2] * (e / t[:, 2:3]) ** -t[:, 0:1]
    for out in (model.dnde_kernel(theta32, e32), model.dnde_jacobian(theta32, e32)[:, 1, :] * t[:, 1:2]):
        assert out.dtype == np.float64
        assert_close(out, expected, rtol=1e-14)
    flux_ref, _ = pl_reference(t, LO, HI)
    assert_close(model.integral_kernel(theta32, LO, HI), flux_ref, rtol=1e-11)
    assert_close(model.integral_jacobian(theta32, LO, HI)[:, 1], flux_ref / t[:, 1:2], rtol=1e-11)
    assert_close(model.integral_and_jacobian(theta32, LO, HI)[0], flux_ref, rtol=1e-11)
    # the template interpolates in log E: float32 energies must not be logged in float32
    template = xs.TemplateSpectralModel(energy=[0.1, 1.0, 100.0] * u.TeV, values=[1e-9, 1e-11, 1e-16] * u.Unit(DNDE))
    log_e, log_v = np.log([0.1, 1.0, 100.0]), np.log([1e-9, 1e-11, 1e-16])
    out = template.dnde_kernel(np.empty(0), e32)
    assert out.dtype == np.float64
    assert_close(out, np.exp(np.interp(np.log(e), log_e, log_v)), rtol=1e-13)
    # and the Quantity interface: float32 energies in TeV
    m = xs.PowerLawSpectralModel(index=2.3, amplitude="2e-11 cm-2 s-1 TeV-1")
    val = m(e32 * u.TeV)
    assert val.dtype == np.float64
    assert_close(val.to_value("cm-2 s-1 TeV-1"), 2e-11 * e**-2.3, rtol=1e-14)


# ------------------------------------------------------------------------------------------------
# dnde Jacobians: each partial derivative written out here, references != 1, amplitudes O(1)
# ------------------------------------------------------------------------------------------------
def _pl(t, e):
    i, a, r = t
    f = a * (e / r) ** -i
    return f, [-np.log(e / r) * f, f / a, i / r * f]


def _lp(t, e):
    a, r, al, be = t
    x = np.log(e / r)
    f = a * np.exp(-x * (al + be * x))
    return f, [f / a, (al + 2 * be * x) / r * f, -x * f, -(x**2) * f]


def _ecpl(t, e):
    i, a, r, lam, al = t
    f = a * (e / r) ** -i * np.exp(-((lam * e) ** al))
    return f, [
        -np.log(e / r) * f,
        f / a,
        i / r * f,
        -al * lam ** (al - 1) * e**al * f,
        -((lam * e) ** al) * np.log(lam * e) * f,
    ]


def _plnorm(t, e):
    n, tilt, r = t
    f = n * (e / r) ** -tilt
    return f, [f / n, -np.log(e / r) * f, tilt / r * f]


def _const(t, e):
    (c,) = t
    return c * np.ones_like(e), [np.ones_like(e)]


JAC_CASES = {
    "pl": (xs.PowerLawSpectralModel, _pl, [[2.3, 2.0, 1.7], [1.2, 0.5, 0.4]]),
    "lp": (xs.LogParabolaSpectralModel, _lp, [[3.0, 2.0, 2.3, 0.25], [0.7, 0.6, 1.8, -0.1]]),
    "ecpl": (xs.ExpCutoffPowerLawSpectralModel, _ecpl, [[1.5, 2.0, 1.5, 0.3, 0.6], [2.1, 0.4, 0.8, 1.0, 1.7]]),
    "pl-norm": (xs.PowerLawNormSpectralModel, _plnorm, [[1.3, 0.2, 2.0], [0.8, -0.4, 0.5]]),
    "const": (xs.ConstantSpectralModel, _const, [[2.5], [0.3]]),
}


@pytest.mark.parametrize("case", sorted(JAC_CASES))
def test_dnde_kernel_and_jacobian_rows_match_written_derivatives(case):
    cls, ref, rows = JAC_CASES[case]
    rows = np.array(rows)
    model = cls()
    flux = np.array([ref(r, E)[0] for r in rows])
    jac = np.array([np.stack(ref(r, E)[1]) for r in rows])
    assert_close(model.dnde_kernel(rows, E), flux, rtol=1e-13)
    scale = np.abs(jac).max(axis=-1, keepdims=True)  # derivatives in ln(E/E0) vanish at E0
    assert_close(model.dnde_jacobian(rows, E) / scale, jac / scale, rtol=1e-12, atol=1e-14)


def test_ecpl_lambda_derivative_at_zero_cutoff():
    """At lambda = 0 (no cutoff, the null hypothesis of a cutoff search) ``d dnde / d lambda`` is
    its limit ``-alpha lambda^(alpha-1) E^alpha dnde``: ``-E dnde`` for alpha = 1, 0 for alpha > 1;
    no warning is emitted (alpha < 1, where it diverges, gives 0)."""
    model = xs.ExpCutoffPowerLawSpectralModel()
    rows = np.array([[2.0, 1.5, 1.0, 0.0, 1.0], [2.0, 1.5, 1.0, 0.0, 2.0], [2.0, 1.5, 1.0, 0.0, 0.5]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jac = model.dnde_jacobian(rows, E)
    dnde = 1.5 * E**-2.0
    assert_close(jac[0, 3], -E * dnde, rtol=1e-14)
    np.testing.assert_array_equal(jac[1:, 3], 0.0)
    np.testing.assert_array_equal(jac[:, 4], 0.0)  # d/dalpha: (lambda E)^alpha ln(lambda E) -> 0
    # the alpha = 1 value is the slope of dnde in lambda from the right
    h = 1e-7
    f = lambda lam: 1.5 * E**-2.0 * np.exp(-lam * E)  # noqa: E731
    assert_close(jac[0, 3], (f(h) - f(0.0)) / h, rtol=1e-5)


# ------------------------------------------------------------------------------------------------
# quadrature models: the Jacobian is the quadrature of the analytic dnde derivatives, on the
# nodes given by the caller (coarse nodes here, so that any other nodes give other numbers)
# ------------------------------------------------------------------------------------------------
def _coarse(lo, hi):
    return quadrature_nodes(lo, hi, order=2)


def test_quadrature_model_integral_and_jacobian_use_the_given_nodes():
    nodes = _coarse(LO, HI)
    default = quadrature_nodes(LO, HI)
    t = np.array([3.0, 2.0, 2.3, 0.25])
    model = xs.LogParabolaSpectralModel()
    f, jac = _lp(t, nodes.energy)
    expected_flux = nodes.integrate(f)
    expected_jac = np.stack([nodes.integrate(j) for j in jac])
    assert not np.allclose(expected_flux, default.integrate(_lp(t, default.energy)[0]), rtol=1e-6, atol=0)
    assert_close(model.integral_kernel(t, LO, HI, nodes), expected_flux, rtol=1e-13)
    assert_close(model.integral_jacobian(t, LO, HI, nodes), expected_jac, rtol=1e-12)
    flux, jac2 = model.integral_and_jacobian(t, LO, HI, nodes)
    assert_close(flux, expected_flux, rtol=1e-13)
    assert_close(jac2, expected_jac, rtol=1e-12)
    # the analytic-integral models ignore the nodes; the default nodes are used without them
    assert_close(model.integral_jacobian(t, LO, HI), [default.integrate(j) for j in _lp(t, default.energy)[1]])


def test_scale_and_compound_pass_the_nodes_to_their_terms():
    nodes = _coarse(LO, HI)
    lp_t = np.array([3.0, 2.0, 2.3, 0.25])
    ec_t = np.array([1.5, 2.0, 1.5, 0.3, 0.6])
    lp, ec = xs.LogParabolaSpectralModel(), xs.ExpCutoffPowerLawSpectralModel()
    f_lp, j_lp = _lp(lp_t, nodes.energy)
    f_ec, j_ec = _ecpl(ec_t, nodes.energy)

    scale = xs.ScaleSpectralModel(lp)
    st = np.concatenate([[0.7], lp_t])
    assert_close(scale.integral_kernel(st, LO, HI, nodes), 0.7 * nodes.integrate(f_lp), rtol=1e-13)
    expected = [nodes.integrate(f_lp)] + [0.7 * nodes.integrate(j) for j in j_lp]
    assert_close(scale.integral_jacobian(st, LO, HI, nodes), expected, rtol=1e-12)

    ct = np.concatenate([lp_t, ec_t])
    for op, sign in (("add", 1.0), ("sub", -1.0)):
        comp = xs.CompoundSpectralModel(lp, ec, op)
        assert_close(
            comp.integral_kernel(ct, LO, HI, nodes), nodes.integrate(f_lp) + sign * nodes.integrate(f_ec), rtol=1e-12
        )
        expected = [nodes.integrate(j) for j in j_lp] + [sign * nodes.integrate(j) for j in j_ec]
        assert_close(comp.integral_jacobian(ct, LO, HI, nodes), expected, rtol=1e-11)
        flux, jac = comp.integral_and_jacobian(ct, LO, HI, nodes)
        assert_close(jac, expected, rtol=1e-11)
    prod = xs.CompoundSpectralModel(lp, ec, "mul")
    assert_close(prod.integral_kernel(ct, LO, HI, nodes), nodes.integrate(f_lp * f_ec), rtol=1e-12)
    expected = [nodes.integrate(j * f_ec) for j in j_lp] + [nodes.integrate(f_lp * j) for j in j_ec]
    assert_close(prod.integral_jacobian(ct, LO, HI, nodes), expected, rtol=1e-11)


def test_model_without_parameters_has_an_empty_jacobian():
    template = xs.TemplateSpectralModel(
        energy=[0.1, 1.0, 100.0] * u.TeV, values=[1e-9, 1e-11, 1e-16] * u.Unit("cm-2 s-1 TeV-1")
    )
    theta = np.empty((2, 3, 0))
    flux, jac = template.integral_and_jacobian(theta, LO, HI)
    assert flux.shape == (2, 3, LO.size) and jac.shape == (2, 3, 0, LO.size)
    assert template.integral_jacobian(theta, LO, HI).shape == (2, 3, 0, LO.size)
    assert template.dnde_jacobian(theta, E).shape == (2, 3, 0, E.size)
    assert_close(flux[1, 2], template.integral(LO * u.TeV, HI * u.TeV).to_value("cm-2 s-1"), rtol=1e-14)


# ------------------------------------------------------------------------------------------------
# _integral_deriv (the dataset's gradient): parameters by identity
# ------------------------------------------------------------------------------------------------
def test_integral_deriv_of_a_foreign_parameter_is_zero():
    pl = xs.PowerLawSpectralModel(index=2.3, amplitude="2e-11 cm-2 s-1 TeV-1", reference="1.7 TeV")
    flux, _ = pl_reference(np.array([[2.3, 2e-11, 1.7]]), LO, HI)
    foreign = xs.PowerLawSpectralModel().amplitude
    d = pl._integral_deriv(LO, HI, [foreign, pl.amplitude, foreign])
    np.testing.assert_array_equal(d[[0, 2]], 0.0)
    assert_close(d[1], flux[0] / 2e-11, rtol=1e-11)


def test_current_value_integral_and_numeric_jacobians_use_the_given_nodes():
    """``_integral`` (the dataset's cached-nodes call) and the central-difference Jacobian of a
    quadrature model without analytic derivatives (smooth broken power law) integrate on the
    caller's nodes."""
    nodes = _coarse(LO, HI)
    lp = xs.LogParabolaSpectralModel(amplitude="3e-12 cm-2 s-1 TeV-1", reference="2 TeV", alpha=2.3, beta=0.25)
    t = (3e-12, 2.0, 2.3, 0.25)
    assert_close(lp._integral(LO, HI, nodes), nodes.integrate(_lp(t, nodes.energy)[0]), rtol=1e-13)
    d_alpha = nodes.integrate(_lp(t, nodes.energy)[1][2])  # the dataset's gradient row of alpha
    assert_close(lp._integral_deriv(LO, HI, [lp.alpha], nodes)[0], d_alpha, rtol=1e-12)

    def sbpl(t, e):
        i1, i2, a, eb, r, beta = t
        return a * (e / r) ** -i1 * (1 + (e / eb) ** ((i2 - i1) / beta)) ** -beta

    t = np.array([1.8, 2.9, 2.0, 3.0, 1.5, 0.7])
    model = xs.SmoothBrokenPowerLawSpectralModel()
    assert_close(model.integral_kernel(t, LO, HI, nodes), nodes.integrate(sbpl(t, nodes.energy)), rtol=1e-13)
    jac = model.integral_jacobian(t, LO, HI, nodes)
    for k in range(t.size):  # central differences of the reference on the same nodes
        h = 1e-6 * abs(t[k])
        tp, tm = t.copy(), t.copy()
        tp[k] += h
        tm[k] -= h
        expected = (nodes.integrate(sbpl(tp, nodes.energy)) - nodes.integrate(sbpl(tm, nodes.energy))) / (2 * h)
        scale = np.abs(expected).max()
        assert_close(jac[k] / scale, expected / scale, rtol=1e-7, atol=1e-9, err_msg=str(k))


def test_constant_integral_jacobian_is_the_bin_width():
    rows = np.array([[2.5], [0.3]])
    model = xs.ConstantSpectralModel()
    np.testing.assert_array_equal(model.integral_jacobian(rows, LO, HI)[:, 0], np.broadcast_to(HI - LO, (2, LO.size)))
    assert_close(model.integral_kernel(rows, LO, HI), rows * (HI - LO), rtol=1e-15)
