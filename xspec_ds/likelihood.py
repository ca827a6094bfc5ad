"""The likelihood: fold model fluxes, evaluate a statistic record, its gradient and information.

This module is the only place where forward folding meets a fit statistic. Every function takes
plain float arrays in canonical units and broadcasts over leading dimensions, so the same code
serves one spectrum (``SpectrumDataset``, ``Fit``: K = 1) and K spectra at once
(`xspec_ds.fit.batch.fit_batch`).

Shapes (``...`` is any leading shape, e.g. ``(K,)``; ``P`` parameters, ``Nt`` true bins,
``Nr`` reco bins):

- ``flux`` ``(..., Nt)``: integral flux per true bin (``cm-2 s-1``);
- ``dflux`` ``(..., P, Nt)``: its Jacobian with respect to the parameters;
- ``exposure`` ``(..., Nt)`` or ``(Nt,)`` (shared); ``edisp`` ``(Nt, Nr)`` (shared) or
  ``(..., Nt, Nr)`` or None (identity), or a `xspec_ds.forward.SparseKernel`;
- ``data``: a mapping of arrays broadcastable to ``(..., Nr)`` (see `xspec_ds.stats.Statistic`);
- ``mask`` ``(..., Nr)`` bool or None (all bins).

The gradient uses the adjoint of the fold: with ``w_j = dC/dmu_j`` (the statistic record's
``grad``), ``dC/dtheta_p = sum_i dF_i/dtheta_p exposure_i sum_j edisp_ij w_j``, so the
dispersion matrix is traversed once whatever the number of parameters (`forward.backproject`).
The expected information is ``I = J^T diag(W) J`` with ``J = d mu_sig / d theta`` and ``W`` the
record's ``fisher`` weight (Fisher scoring; e.g. Cash 1979, Sherpa's ``levmar`` on chi2).
"""

from __future__ import annotations

import numpy as np

from . import forward
from .stats import Statistic, get_statistic

__all__ = [
    "predict",
    "stat_array",
    "stat_sum",
    "stat_grad",
    "stat_grad_fisher",
    "fisher",
    "masked_sum",
    "on_parameters",
]


def predict(flux: np.ndarray, exposure: np.ndarray, edisp) -> np.ndarray:
    """Predicted signal counts per reco bin: ``fold(flux * exposure, edisp)``, shape ``(..., Nr)``."""
    return forward.npred_signal(flux, exposure, edisp)


def masked_sum(values: np.ndarray, mask) -> np.ndarray | float:
    """Sum over the last axis where ``mask`` is True (all bins when ``mask`` is None)."""
    if mask is None:
        return np.sum(values, axis=-1)
    return np.sum(values, axis=-1, where=mask)


def stat_array(statistic: Statistic | str, mu_sig: np.ndarray, data) -> np.ndarray:
    """Per-bin statistic ``statistic.value(mu_sig, data)``, shape ``(..., Nr)``."""
    return get_statistic(statistic).value(mu_sig, data)


def stat_sum(statistic: Statistic | str, mu_sig: np.ndarray, data, mask=None):
    """Statistic summed over the masked bins, shape ``(...)``."""
    return masked_sum(stat_array(statistic, mu_sig, data), mask)


def stat_grad(
    statistic: Statistic | str,
    flux: np.ndarray | None,
    dflux: np.ndarray | None,
    exposure: np.ndarray,
    edisp,
    data,
    mask=None,
    mu_sig: np.ndarray | None = None,
):
    """Statistic, its gradient with respect to the parameters, and the per-bin weights.

    Parameters
    ----------
    statistic : `Statistic` or str
    flux : numpy.ndarray, shape ``(..., Nt)``, or None
        True-bin fluxes (None: no signal model, ``mu_sig = 0``; give ``mu_sig`` to skip the fold).
    dflux : numpy.ndarray, shape ``(..., P, Nt)``, or None
        Flux Jacobian (None: no gradient is computed, ``grad`` is None).
    exposure, edisp : see the module docstring.
    data : mapping of arrays, see `xspec_ds.stats.Statistic`.
    mask : numpy.ndarray of bool, shape ``(..., Nr)``, optional
    mu_sig : numpy.ndarray, optional
        Already folded signal counts.

    Returns
    -------
    stat : numpy.ndarray, shape ``(...)``
        Masked sum of the statistic.
    grad : numpy.ndarray, shape ``(..., P)``, or None
        ``d stat / d theta`` (adjoint fold).
    weights : numpy.ndarray, shape ``(..., Nr)``
        ``d stat / d mu_sig`` per reco bin, zero outside the mask (callers add gradients of
        parameters that act on the prediction directly, e.g. a background norm).
    """
    record = get_statistic(statistic)
    if mu_sig is None:
        mu_sig = predict(flux, exposure, edisp) if flux is not None else np.zeros(np.shape(data["counts"]))
    if record.value_and_grad is not None:
        value, w = record.value_and_grad(mu_sig, data)
    else:
        value, w = record.value(mu_sig, data), record.grad(mu_sig, data)
    stat = masked_sum(value, mask)
    if mask is not None:
        w = np.where(mask, w, 0.0)
    grad = None
    if dflux is not None:
        v = forward.backproject(w, edisp) * exposure  # dC/dmu_true times exposure: (..., Nt)
        grad = np.matmul(dflux, v[..., :, None])[..., 0]
    return stat, grad, w


def fisher(
    statistic: Statistic | str,
    flux: np.ndarray,
    dflux: np.ndarray,
    exposure: np.ndarray,
    edisp,
    data,
    mask=None,
    mu_sig: np.ndarray | None = None,
) -> np.ndarray:
    """Expected information ``J^T diag(W) J`` of the masked statistic, shape ``(..., P, P)``.

    ``J = fold(dflux * exposure, edisp)`` is ``d mu_sig / d theta`` and ``W`` the record's
    ``fisher`` weight (zero outside ``mask``).
    """
    record = get_statistic(statistic)
    if mu_sig is None:
        mu_sig = predict(flux, exposure, edisp)
    weight = record.fisher(mu_sig, data)
    if mask is not None:
        weight = np.where(mask, weight, 0.0)
    jac = _fold_rows(dflux * np.asarray(exposure)[..., None, :], edisp)
    return np.matmul(jac * weight[..., None, :], np.swapaxes(jac, -1, -2))


def _fold_rows(mu_true: np.ndarray, edisp) -> np.ndarray:
    """Fold ``(..., R, Nt)`` rows: one kernel for all, or one per spectrum ``(..., Nt, Nr)``."""
    if isinstance(edisp, np.ndarray) and edisp.ndim > 2:  # (..., R, Nt) @ (..., Nt, Nr)
        return np.matmul(mu_true, edisp)
    return forward.fold(mu_true, edisp)


def stat_grad_fisher(
    statistic: Statistic | str,
    flux: np.ndarray,
    dflux: np.ndarray,
    exposure: np.ndarray,
    edisp,
    data,
    mask=None,
):
    """Statistic, gradient and expected information from one fold of the value and Jacobian rows.

    The rows ``[flux; dflux] * exposure`` (``1 + P`` of them) are folded together: a
    `xspec_ds.forward.BandedKernel` reads each block of the matrix once for all rows, so one
    evaluation costs about one pass over the matrix, against two for `stat_grad` (fold, then the
    adjoint) plus one more for `fisher`. With ``J = d mu_sig / d theta`` (the folded Jacobian
    rows) and ``w = dC / d mu_sig``, the gradient is ``J w`` and the expected information
    ``J diag(W) J^T`` (``W`` the record's ``fisher`` weight): what Fisher scoring needs
    (`xspec_ds.fit.fit`; Cash 1979 for the Poisson case).

    Parameters
    ----------
    statistic, exposure, edisp, data, mask : as `stat_grad`.
    flux : numpy.ndarray, shape ``(..., Nt)``
    dflux : numpy.ndarray, shape ``(..., P, Nt)``

    Returns
    -------
    stat : numpy.ndarray, shape ``(...)``
    grad : numpy.ndarray, shape ``(..., P)``
    info : numpy.ndarray, shape ``(..., P, P)``
        Expected information ``J diag(W) J^T`` (zero weight outside ``mask``).
    weights : numpy.ndarray, shape ``(..., Nr)``
        ``d stat / d mu_sig``, zero outside ``mask``.

    Examples
    --------
    Same statistic and gradient as `stat_grad` (identity dispersion, one parameter, the norm):

    >>> import numpy as np
    >>> flux, exposure = np.array([1.0, 2.0]), np.array([3.0, 3.0])
    >>> data = {"counts": np.array([2.0, 7.0])}
    >>> s, g, info, _ = stat_grad_fisher("cash", flux, flux[None], exposure, None, data)
    >>> bool(np.allclose(g, stat_grad("cash", flux, flux[None], exposure, None, data)[1], rtol=1e-14, atol=0))
    True
    """
    record = get_statistic(statistic)
    flux, dflux = np.asarray(flux), np.asarray(dflux)  # float64 after the product with the exposure
    lead = np.broadcast_shapes(flux.shape[:-1], dflux.shape[:-2])
    rows = np.concatenate(
        [
            np.broadcast_to(flux[..., None, :], lead + (1, flux.shape[-1])),
            np.broadcast_to(dflux, lead + dflux.shape[-2:]),
        ],
        axis=-2,
    )
    folded = _fold_rows(rows * np.asarray(exposure)[..., None, :], edisp)
    mu_sig, jac = folded[..., 0, :], folded[..., 1:, :]
    if record.value_and_grad is not None:
        value, w = record.value_and_grad(mu_sig, data)
    else:
        value, w = record.value(mu_sig, data), record.grad(mu_sig, data)
    stat = masked_sum(value, mask)
    weight = record.fisher(mu_sig, data)
    if mask is not None:
        w = np.where(mask, w, 0.0)
        weight = np.where(mask, weight, 0.0)
    grad = np.matmul(jac, w[..., :, None])[..., 0]
    info = np.matmul(jac * weight[..., None, :], np.swapaxes(jac, -1, -2))
    return stat, grad, info, w


def on_parameters(grad: np.ndarray, info: np.ndarray, rows, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gradient ``(R,)`` and information ``(R, R)`` of Jacobian rows as ``(n,)`` and ``(n, n)`` arrays
    of the fit's parameters; row ``r`` belongs to parameter ``rows[r]`` (a parameter used by two
    models owns two rows, whose terms add)."""
    scatter = np.zeros((len(rows), n))
    scatter[np.arange(len(rows)), rows] = 1.0
    return grad @ scatter, scatter.T @ info @ scatter
