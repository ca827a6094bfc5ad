"""Log-space Gauss-Legendre quadrature (`xspec_ds.models.quadrature`) against closed forms.

In ``t = ln E`` the rule integrates ``f(e^t) e^t``; for ``f = E^k`` the integrand ``e^((k+1) t)`` is
smooth, so an order-8 rule on sub-intervals of width <= 0.1 is exact to rounding, and the result
must equal ``(E2^(k+1) - E1^(k+1)) / (k+1)`` (``ln(E2/E1)`` for ``k = -1``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xspec_ds.models.quadrature import MAX_DLOG, ORDER, quadrature_nodes

from .._asserts import assert_close


def power_integral(k: float, e1, e2):
    if k == -1:
        return np.log(e2 / e1)
    return (e2 ** (k + 1) - e1 ** (k + 1)) / (k + 1)


@pytest.mark.parametrize("k", [-3.7, -2.0, -1.0, 0.0, 0.5, 2.0])
def test_powers_of_energy_are_integrated_exactly(k):
    e1 = np.array([0.1, 0.13, 1.0, 3.0, 0.05])
    e2 = np.array([0.13, 1.0, 1.001, 300.0, 200.0])
    nodes = quadrature_nodes(e1, e2)
    assert_close(nodes.integrate(nodes.energy**k), power_integral(k, e1, e2), rtol=1e-13)


def test_weights_sum_to_bin_width_and_nodes_inside_bins():
    e1 = np.array([[0.1, 2.0], [7.0, 0.5]])  # leading dimensions are kept
    e2 = np.array([[0.2, 2.5], [70.0, 0.51]])
    nodes = quadrature_nodes(e1, e2)
    assert nodes.energy.shape[:-1] == e1.shape == nodes.weights.shape[:-1]
    assert_close(nodes.weights.sum(-1), e2 - e1, rtol=1e-13)
    assert np.all(nodes.energy > e1[..., None]) and np.all(nodes.energy < e2[..., None])
    assert np.all(nodes.weights > 0)
    # the widest bin (ln 10 wide) sets the number of sub-intervals: ceil(ln 10 / 0.1) = 24
    n_sub = int(np.ceil(np.log(10.0) / MAX_DLOG))
    assert nodes.energy.shape[-1] == n_sub * ORDER


@settings(max_examples=50, deadline=None)
@given(
    e1=st.floats(1e-3, 1e3),
    ratio=st.floats(1.0001, 1e4),
    index=st.floats(-4, 4),
    cut=st.floats(1e-3, 10.0),
)
def test_cutoff_power_law_matches_scipy(e1, ratio, index, cut):
    """A smooth non-polynomial integrand vs scipy quad of the written formula (1e-9 relative)."""
    from scipy.integrate import quad

    e2 = e1 * ratio

    def f(e):
        return e**-index * np.exp(-cut * e / e1)

    nodes = quadrature_nodes(np.array([e1]), np.array([e2]))
    got = nodes.integrate(f(nodes.energy))[0]
    ref = quad(lambda t: f(np.exp(t)) * np.exp(t), np.log(e1), np.log(e2), epsabs=0, epsrel=1e-13, limit=500)[0]
    assert_close(got, ref, rtol=1e-9)
