"""Float assertions of the test suite (issue 14: tests that can fail).

Project rule: compare floats with `assert_close` (``numpy.testing.assert_allclose`` with
``atol=0`` unless an absolute tolerance is asked for explicitly), or with
``pytest.approx(..., abs=...)``. ``pytest.approx`` without ``abs=`` also accepts anything within
1e-12, and ``np.isclose``/``np.allclose`` without ``atol=`` anything within 1e-8: both are vacuous
on fluxes (1e-11 to 1e-16 in cm-2 s-1 TeV-1) and their errors. ``tests/test_suite_rules.py``
enforces the rule on every test source.

Tolerances are set from the numerics: ~1e-12 where the computation is exact up to rounding,
the quadrature accuracy (1e-6 or better) where it is numeric.
"""

from __future__ import annotations

import numpy as np

__all__ = ["assert_close", "close"]


def assert_close(actual, desired, rtol: float = 1e-12, atol: float = 0.0, err_msg: str = "") -> None:
    """``numpy.testing.assert_allclose`` with ``atol=0`` by default and a tight default ``rtol``.

    Parameters
    ----------
    actual, desired : array_like
        Values compared element-wise (broadcast).
    rtol : float
        Relative tolerance (default 1e-12: exact up to rounding).
    atol : float
        Absolute tolerance; 0 by default so that small quantities are compared relatively.
    err_msg : str
        Printed on failure.
    """
    np.testing.assert_allclose(
        np.asarray(actual, dtype=np.float64),
        np.asarray(desired, dtype=np.float64),
        rtol=rtol,
        atol=atol,
        err_msg=err_msg,
    )


def close(actual, desired, rtol: float = 1e-12, atol: float = 0.0) -> np.ndarray:
    """Element-wise ``np.isclose`` with ``atol=0`` by default (boolean array)."""
    return np.isclose(actual, desired, rtol=rtol, atol=atol)


def assert_gradient_is_central_difference(ds, params, rtol: float, atol_stat: float = 1e-8) -> None:
    """``ds._stat_gradient(params)`` (the adjoint fold) equals central differences of
    ``ds.stat_sum()`` with steps of 1e-6 of each value, compared as d stat / d ln p (scale-free, so
    amplitudes of 1e-11 are held to the same standard) within ``rtol`` and ``atol_stat`` times the
    statistic; the parameters are left as found."""
    stat, grad = ds._stat_gradient(params)
    for k, p in enumerate(params):
        v0, h = p.value, 1e-6 * abs(p.value)
        p.value = v0 + h
        up = ds.stat_sum()
        p.value = v0 - h
        down = ds.stat_sum()
        p.value = v0
        assert_close(grad[k] * v0, (up - down) / (2 * h) * v0, rtol=rtol, atol=atol_stat * abs(stat))
