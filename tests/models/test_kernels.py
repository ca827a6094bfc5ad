"""Pure model kernels of a parameter array: rows of a batch equal the object at those values,
the Jacobians equal finite differences, and no kernel call changes a parameter."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .test_spectral import EDGES, MODELS

E_LO, E_HI = EDGES[:-1], EDGES[1:]
CENTERS = np.sqrt(E_LO * E_HI)


def _theta_rows(model, k, seed=0):
    """K parameter rows around the model's values (free parameters varied by up to 20%)."""
    rng = np.random.default_rng(seed)
    theta = np.tile(model.theta(), (k, 1))
    for i, p in enumerate(model.parameters):
        if not p.frozen and theta[0, i] != 0:
            theta[:, i] *= rng.uniform(0.8, 1.2, k)
    return theta


def _set(model, row):
    for p, v in zip(model.parameters, row, strict=True):
        p.value = v / p._scale_to_canonical


@pytest.mark.parametrize("name", sorted(MODELS))
def test_batch_rows_equal_object(name):
    model = MODELS[name]()
    theta = _theta_rows(model, 4)
    before = model.theta().copy()
    flux = model.integral_kernel(theta, E_LO, E_HI)
    dnde = model.dnde_kernel(theta, CENTERS)
    np.testing.assert_array_equal(model.theta(), before)  # kernels never change parameters
    assert flux.shape == (4, E_LO.size) and dnde.shape == (4, E_LO.size)
    for row, f, d in zip(theta, flux, dnde, strict=True):
        _set(model, row)
        np.testing.assert_allclose(f, model._integral(E_LO, E_HI), rtol=1e-12, atol=0)
        np.testing.assert_allclose(d, model._dnde(CENTERS), rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_jacobians_vs_finite_differences(name):
    model = MODELS[name]()
    theta = _theta_rows(model, 3, seed=1)
    jac = model.integral_jacobian(theta, E_LO, E_HI)
    djac = model.dnde_jacobian(theta, CENTERS)
    n_par = len(model.parameters)
    assert jac.shape == (3, n_par, E_LO.size) and djac.shape == (3, n_par, E_LO.size)
    for i in range(n_par):
        h = 1e-5 * np.abs(theta[:, i : i + 1]) + 1e-30
        tp, tm = theta.copy(), theta.copy()
        tp[:, i : i + 1] += h
        tm[:, i : i + 1] -= h
        fd = (model.integral_kernel(tp, E_LO, E_HI) - model.integral_kernel(tm, E_LO, E_HI)) / (2 * h)
        scale = np.abs(fd).max() + 1e-300
        np.testing.assert_allclose(jac[:, i], fd, rtol=1e-5, atol=1e-8 * scale, err_msg=model.parameters[i].name)
        fd = (model.dnde_kernel(tp, CENTERS) - model.dnde_kernel(tm, CENTERS)) / (2 * h)
        scale = np.abs(fd).max() + 1e-300
        np.testing.assert_allclose(djac[:, i], fd, rtol=1e-5, atol=1e-8 * scale, err_msg=model.parameters[i].name)


def test_power_law_integral_closed_form():
    """Independent closed form of the power-law integral and its index derivative."""
    model = MODELS["pl"]()
    theta = np.array([[2.4, 3e-12, 1.0], [1.7, 1e-11, 2.0]])
    flux = model.integral_kernel(theta, E_LO, E_HI)
    for (g, a, e0), f in zip(theta, flux, strict=True):
        expected = a * e0 / (1 - g) * ((E_HI / e0) ** (1 - g) - (E_LO / e0) ** (1 - g))
        np.testing.assert_allclose(f, expected, rtol=1e-12, atol=0)


@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple),
    name=st.sampled_from(["pl", "lp", "ecpl", "sum", "scale"]),
)
def test_kernels_broadcast_over_leading_shape(shape, name):
    model = MODELS[name]()
    n = int(np.prod(shape)) if shape else 1
    theta = _theta_rows(model, n, seed=2).reshape(shape + (-1,))
    flux = model.integral_kernel(theta, E_LO, E_HI)
    jac = model.integral_jacobian(theta, E_LO, E_HI)
    assert flux.shape == shape + (E_LO.size,)
    assert jac.shape == shape + (len(model.parameters), E_LO.size)
    flat = model.integral_kernel(theta.reshape(n, -1), E_LO, E_HI)
    np.testing.assert_array_equal(flux.reshape(n, -1), flat)


def test_index_near_one_batch_is_stable():
    """Rows with index near 1 (series branch) next to ordinary rows (closed form)."""
    model = MODELS["pl"]()
    theta = np.array([[1.0 + 1e-7, 1e-12, 1.0], [2.5, 1e-12, 1.0], [1.0, 1e-12, 1.0]])
    jac = model.integral_jacobian(theta, E_LO, E_HI)
    flux = model.integral_kernel(theta, E_LO, E_HI)
    for row, j, f in zip(theta, jac, flux, strict=True):
        single = model.integral_jacobian(row, E_LO, E_HI)
        np.testing.assert_allclose(j, single, rtol=1e-12, atol=0)
        np.testing.assert_allclose(f, model.integral_kernel(row, E_LO, E_HI), rtol=1e-12, atol=0)
    # index = 1: d/dindex of A E0 ln(E2/E1)-type integral, -A E0 (l2^2 - l1^2)/2 with l = ln(E/E0)
    expected = -1e-12 * (np.log(E_HI) ** 2 - np.log(E_LO) ** 2) / 2
    np.testing.assert_allclose(jac[2, 0], expected, rtol=1e-10, atol=0)


@pytest.mark.parametrize("name", ["pl", "lp", "ecpl", "sum"])
def test_integral_and_jacobian_equals_separate_kernels(name):
    """The fused call (the power law's edge-power path) equals the separate kernels."""
    model = MODELS[name]()
    theta = _theta_rows(model, 5, seed=3)
    flux, jac = model.integral_and_jacobian(theta, E_LO, E_HI)
    np.testing.assert_allclose(flux, model.integral_kernel(theta, E_LO, E_HI), rtol=1e-11, atol=0)
    full = model.integral_jacobian(theta, E_LO, E_HI)
    scale = np.abs(full).max(axis=-1, keepdims=True)
    np.testing.assert_allclose(jac, full, rtol=1e-10, atol=1e-12 * scale.max())
    _, sub = model.integral_and_jacobian(theta, E_LO, E_HI, wrt=[1, 0])
    np.testing.assert_array_equal(sub, jac[:, [1, 0]])
