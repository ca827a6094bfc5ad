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
import scipy.sparse

from .models.quadrature import QuadratureNodes, quadrature_nodes

__all__ = [
    "SparseKernel",
    "prepare_kernel",
    "fold",
    "backproject",
    "integrate_flux",
    "npred_signal",
    "npred_total",
    "nodes_for",
]


def nodes_for(model, energy_min: np.ndarray, energy_max: np.ndarray) -> QuadratureNodes | None:
    """Quadrature nodes for ``model`` on these bins, or None if its integral is closed-form."""
    if model.has_analytic_integral:
        return None
    return quadrature_nodes(energy_min, energy_max)


def integrate_flux(model, energy_min: np.ndarray, energy_max: np.ndarray, nodes=None) -> np.ndarray:
    """Integral flux of a spectral model in each bin, ``cm-2 s-1`` (edges in TeV)."""
    return model._integral(energy_min, energy_max, nodes)


SPARSE_MIN_SIZE = 40_000
"""Kernels with at least this many elements are considered for sparse storage."""
SPARSE_MAX_DENSITY = 0.15
"""... and stored sparse when at most this fraction of their elements is non-zero."""


class SparseKernel:
    """A dispersion matrix kept as the CSR matrix of its transpose, for fast folding.

    Real responses (e.g. OGIP RMFs, stored compressed) are mostly exact zeros: folding only the
    non-zero elements gives the same sums as the dense product (the zeros add nothing) at a
    fraction of the cost.
    """

    __slots__ = ("transposed", "shape")

    def __init__(self, matrix: np.ndarray):
        self.transposed = scipy.sparse.csr_matrix(matrix.T)
        self.shape = matrix.shape

    @property
    def ndim(self) -> int:
        return 2

    def rfold(self, mu_true: np.ndarray) -> np.ndarray:
        if mu_true.ndim == 1:
            return self.transposed @ mu_true
        flat = mu_true.reshape(-1, self.shape[0])
        if flat.shape[0] <= 8:  # a few vectors (value + parameter derivatives): matvecs beat one matmat
            out = np.stack([self.transposed @ row for row in flat])
        else:
            out = (self.transposed @ np.ascontiguousarray(flat.T)).T
        return out.reshape(mu_true.shape[:-1] + (self.shape[1],))


def prepare_kernel(edisp: np.ndarray | None):
    """The kernel to use on hot paths: a `SparseKernel` for a large, mostly-zero 2-D matrix,
    else the array itself (a view: in-place edits stay visible). A sparse copy does not see
    later in-place edits of the matrix; `SpectrumDataset.reset_data_cache` rebuilds it."""
    if edisp is None or edisp.ndim != 2 or edisp.size < SPARSE_MIN_SIZE:
        return edisp
    if np.count_nonzero(edisp) > SPARSE_MAX_DENSITY * edisp.size:
        return edisp
    return SparseKernel(edisp)


def fold(mu_true: np.ndarray, edisp: np.ndarray | None) -> np.ndarray:
    """Fold true-energy counts with the dispersion matrix: ``sum_i mu_true[..., i] edisp[..., i, j]``.

    Parameters
    ----------
    mu_true : numpy.ndarray, shape (..., n_true)
    edisp : numpy.ndarray, shape (..., n_true, n_reco), or None (identity)
    """
    if edisp is None:
        return mu_true
    if isinstance(edisp, SparseKernel):
        return edisp.rfold(mu_true)
    if edisp.ndim == 2:
        # (..., n_true) @ (n_true, n_reco): one BLAS call for any leading shape (einsum does not use BLAS)
        return mu_true @ edisp
    # a matrix per leading index: batched (..., 1, n_true) @ (..., n_true, n_reco), broadcast like einsum "...i,...ij->...j"
    return np.matmul(mu_true[..., None, :], edisp)[..., 0, :]


def backproject(weights: np.ndarray, edisp) -> np.ndarray:
    """The adjoint of `fold`: ``sum_j edisp[..., i, j] weights[..., j]`` (reco -> true energy).

    With ``w_j = dC/dmu_j`` this gives the gradient of a statistic with respect to the true-bin
    counts, ``dC/dmu_true_i``, so the gradient with respect to every model parameter costs one
    pass over the dispersion matrix whatever their number (``dC/dp = sum_i dmu_true_i/dp v_i``).
    """
    if edisp is None:
        return weights
    if isinstance(edisp, SparseKernel):
        return edisp.transposed.T @ weights if weights.ndim == 1 else (edisp.transposed.T @ weights.T).T
    if edisp.ndim == 2:
        return weights @ edisp.T
    return np.matmul(edisp, weights[..., :, None])[..., 0]


def npred_signal(flux: np.ndarray, exposure: np.ndarray, edisp: np.ndarray | None) -> np.ndarray:
    """Predicted signal counts in reco bins from true-bin fluxes and exposure (canonical units)."""
    return fold(flux * exposure, edisp)


def npred_total(signal: np.ndarray | None, background: np.ndarray | None) -> np.ndarray:
    """``max(signal + background, 0)`` (Gammapy clips the total prediction at zero)."""
    if signal is None and background is None:
        raise ValueError("nothing to predict: the dataset has neither models nor background")
    total = background if signal is None else (signal if background is None else signal + background)
    return np.maximum(total, 0.0)  # same as np.clip(total, 0, None), NaN included, and faster
