"""Integration of spectral models over energy bins.

Smooth models without a closed-form integral are integrated with Gauss-Legendre quadrature in
``t = ln E`` (``integral f(E) dE = integral f(e^t) e^t dt``): each bin is split into equal
sub-intervals no wider than ``max_dlog`` in ``ln E`` and each sub-interval gets an ``order``-point
rule. With the defaults (0.1, 8) the relative error on power laws with curvature or exponential
cutoffs is below 1e-9 (checked against `scipy.integrate.quad` in the tests), well inside the
1e-6 required; Gammapy's own numerical integration reaches about 3e-5 (log-parabola) and 8e-4
(near a cutoff).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["QuadratureNodes", "quadrature_nodes"]

MAX_DLOG = 0.1
ORDER = 8


@dataclass(frozen=True)
class QuadratureNodes:
    """Nodes ``energy`` (shape ``(nbin, k)``) and weights (same shape, including the ``E``
    Jacobian) such that ``(f(energy) * weights).sum(-1)`` integrates ``f`` over each bin."""

    energy: np.ndarray
    weights: np.ndarray

    def integrate(self, values: np.ndarray) -> np.ndarray:
        return np.einsum("...k,...k->...", values, self.weights)


def quadrature_nodes(
    energy_min: np.ndarray, energy_max: np.ndarray, max_dlog: float = MAX_DLOG, order: int = ORDER
) -> QuadratureNodes:
    """Gauss-Legendre nodes in log energy for the bins ``[energy_min, energy_max]``.

    Parameters
    ----------
    energy_min, energy_max : `numpy.ndarray`
        Bin edges (floats, any common unit), positive; leading dimensions are allowed.
    max_dlog : float
        Largest sub-interval width in natural-log energy.
    order : int
        Points of the Gauss-Legendre rule in each sub-interval.

    Returns
    -------
    QuadratureNodes
    """
    lo = np.log(np.asarray(energy_min, dtype=np.float64))
    hi = np.log(np.asarray(energy_max, dtype=np.float64))
    width = hi - lo
    n_sub = max(1, int(np.ceil(np.max(width, initial=0.0) / max_dlog - 1e-9)))
    x, w = np.polynomial.legendre.leggauss(order)
    # sub-interval k of bin b spans lo + width*(k, k+1)/n_sub
    sub = (np.arange(n_sub)[:, None] + 0.5 * (x[None, :] + 1.0)).ravel() / n_sub  # (n_sub*order,)
    t = lo[..., None] + width[..., None] * sub
    energy = np.exp(t)
    weights = energy * (0.5 * width[..., None] / n_sub) * np.tile(w, n_sub)
    return QuadratureNodes(energy=energy, weights=weights)
