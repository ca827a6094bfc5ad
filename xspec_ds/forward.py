"""Forward folding: model -> predicted counts.

For true-energy bin ``i`` with edges ``[E_i, E_i+1]`` and reco bin ``j``:

- ``F_i = integral dN/dE dE`` over the bin (analytic for power laws, otherwise
  log-space Gauss-Legendre quadrature, see `xspec_ds.models.quadrature`),
- ``mu_true_i = F_i * exposure_i``,
- ``npred_signal_j = sum_i mu_true_i * edisp_ij`` (edisp rows are the probabilities of true
  bin ``i`` landing in reco bin ``j``, never renormalised; as Gammapy's ``EDispKernel``),
- ``npred = max(npred_signal + npred_background, 0)``.

All functions take plain float arrays in canonical units (TeV, cm2 s, cm-2 s-1) and broadcast
over leading dimensions, e.g. an ``obs`` dimension of many spectra.
"""

from __future__ import annotations

import numpy as np

from .models.quadrature import QuadratureNodes, quadrature_nodes

__all__ = ["fold", "integrate_flux", "npred_signal", "npred_total", "nodes_for"]


def nodes_for(model, energy_min: np.ndarray, energy_max: np.ndarray) -> QuadratureNodes | None:
    """Quadrature nodes for ``model`` on these bins, or None if its integral is closed-form."""
    if model.has_analytic_integral:
        return None
    return quadrature_nodes(energy_min, energy_max)


def integrate_flux(model, energy_min: np.ndarray, energy_max: np.ndarray, nodes=None) -> np.ndarray:
    """Integral flux of a spectral model in each bin, ``cm-2 s-1`` (edges in TeV)."""
    return model._integral(energy_min, energy_max, nodes)


def fold(mu_true: np.ndarray, edisp: np.ndarray | None) -> np.ndarray:
    """Fold true-energy counts with the dispersion matrix: ``sum_i mu_true[..., i] edisp[..., i, j]``.

    Parameters
    ----------
    mu_true : numpy.ndarray, shape (..., n_true)
    edisp : numpy.ndarray, shape (..., n_true, n_reco), or None (identity)
    """
    if edisp is None:
        return mu_true
    if edisp.ndim == 2:
        # (..., n_true) @ (n_true, n_reco): one BLAS call for any leading shape (einsum does not use BLAS)
        return mu_true @ edisp
    # a matrix per leading index: batched (..., 1, n_true) @ (..., n_true, n_reco), broadcast like einsum "...i,...ij->...j"
    return np.matmul(mu_true[..., None, :], edisp)[..., 0, :]


def npred_signal(flux: np.ndarray, exposure: np.ndarray, edisp: np.ndarray | None) -> np.ndarray:
    """Predicted signal counts in reco bins from true-bin fluxes and exposure (canonical units)."""
    return fold(flux * exposure, edisp)


def npred_total(signal: np.ndarray | None, background: np.ndarray | None) -> np.ndarray:
    """``max(signal + background, 0)`` (Gammapy clips the total prediction at zero)."""
    if signal is None and background is None:
        raise ValueError("nothing to predict: the dataset has neither models nor background")
    total = background if signal is None else (signal if background is None else signal + background)
    return np.maximum(total, 0.0)  # same as np.clip(total, 0, None), NaN included, and faster
