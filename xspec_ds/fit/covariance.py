"""Honest fit results: labelled covariance and correlation, errors never stale, one message vocabulary.

After `xspec_ds.Fit` optimises, the covariance of the free parameters is ``2 H^-1`` (``H`` the
Hessian of the ``-2 ln L`` statistic; Gammapy/MINUIT with ``errordef = 1``). This module turns
the backend's matrix into what users see:

- a covariance accepted only when it is finite, symmetric positive definite (all eigenvalues
  > 0) — otherwise it is a failure: every free parameter's ``error`` becomes NaN (never the
  numbers of an earlier fit, nor square roots of a broken inverse), the stored matrices are NaN,
  a `CovarianceWarning` is issued and the result's ``success``/``message`` say so;
- `xarray.DataArray` covariance and correlation with dims ``("parameter", "parameter_j")`` and
  the parameter names as coordinates, on the fit result (free parameters) and on every
  spectral model (``model.covariance``/``model.correlation`` over ``model.parameters``, zero
  rows and columns for frozen parameters, as Gammapy's model covariance);
- messages in one vocabulary (`MESSAGES`): the optimiser's and the covariance's outcome in
  words that agree with ``success``; the backend's own text is kept in ``backend_message``.

The correlation is ``C_ij / sqrt(C_ii C_jj)`` (e.g. James, *Statistical Methods in
Experimental Physics*, 2nd ed., sec. 2.3).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..models.errors import correlation_dataarray, covariance_dataarray  # noqa: F401  (re-exported)

__all__ = [
    "CovarianceWarning",
    "MESSAGES",
    "check_covariance",
    "covariance_dataarray",
    "correlation_dataarray",
    "parameter_labels",
    "finish_covariance",
    "invalidate_errors",
    "optimize_message",
    "result_message",
]


class CovarianceWarning(UserWarning):
    """The covariance could not be computed: parameter errors are NaN."""


MESSAGES = {
    "optimize_ok": "Optimization terminated successfully",
    "optimize_failed": "Optimization failed",
    "covariance_ok": "covariance computed",
    "covariance_failed": "covariance failed",
    "covariance_skipped": "covariance not computed (optimization failed)",
}
"""The words of every fit result message."""


def parameter_labels(params, models=None) -> list[str]:
    """Unique labels of ``params``: the parameter name, or ``"<model>.<name>"`` where two free
    parameters share a name (e.g. two power laws' ``index``)."""
    names = [p.name for p in params]
    if len(set(names)) == len(names):
        return names
    owner = {}
    for m in models or []:
        for p in m.parameters:
            owner.setdefault(id(p), m.name)
    labels = [f"{owner.get(id(p), 'model')}.{p.name}" if names.count(p.name) > 1 else p.name for p in params]
    # still not unique (same model name twice): number them
    return [f"{lab}[{k}]" if labels.count(lab) > 1 else lab for k, lab in enumerate(labels)]


def check_covariance(matrix: np.ndarray) -> tuple[bool, str]:
    """Is ``matrix`` a usable covariance? ``(ok, reason)``: finite, symmetric (to 1e-8
    relative) and positive definite (positive variances and correlation-matrix eigenvalues)."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.size == 0:
        return False, "no free parameters"
    if not np.all(np.isfinite(m)):
        return False, "non-finite covariance (singular Hessian)"
    scale = np.sqrt(np.outer(np.abs(np.diag(m)), np.abs(np.diag(m))))
    if np.any(np.abs(m - m.T) > 1e-8 * np.where(scale > 0, scale, 1.0)):
        return False, "covariance not symmetric"
    diag = np.diag(m)
    if not np.all(diag > 0):
        return False, "Hessian not positive definite"
    # eigenvalues of the correlation matrix: scale-free (variances span ~1e-24 to 1e2)
    d = 1.0 / np.sqrt(diag)
    try:
        eig = np.linalg.eigvalsh(0.5 * (m + m.T) * np.outer(d, d))
    except np.linalg.LinAlgError:
        return False, "covariance eigenvalues did not converge"
    if not np.all(eig > 0):
        return False, "Hessian not positive definite"
    return True, ""


def invalidate_errors(params, models, reason: str) -> None:
    """Set every free parameter's error to NaN and the models' matrices to NaN, with a
    `CovarianceWarning` naming ``reason`` (after a failed optimisation or covariance)."""
    for p in params:
        p.error = np.nan
    _attach(models, params, np.full((len(params), len(params)), np.nan))
    warnings.warn(
        f"{MESSAGES['covariance_failed']}: {reason}; the parameter errors are set to NaN",
        CovarianceWarning,
        stacklevel=3,
    )


def finish_covariance(params, matrix: np.ndarray, ok: bool, backend_message: str, models) -> tuple:
    """Check the backend's covariance, set errors and the models' matrices.

    Returns ``(ok, message, matrix)``: on failure (the backend's own verdict or `check_covariance`)
    the matrix is all NaN, errors are NaN and a `CovarianceWarning` is issued.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    good, reason = check_covariance(matrix)
    if ok and good:
        for p, var in zip(params, np.diag(matrix), strict=True):
            p.error = float(np.sqrt(var))
        _attach(models, params, matrix)
        return True, f"{MESSAGES['covariance_ok']} ({backend_message})", matrix
    reason = backend_message if not ok else reason
    matrix = np.full(matrix.shape, np.nan)
    invalidate_errors(params, models, reason)
    return False, f"{MESSAGES['covariance_failed']}: {reason}", matrix


def _attach(models, params, matrix: np.ndarray) -> None:
    """Each spectral model's block of the covariance, over ``model.parameters`` (zero rows and
    columns for parameters that were not free), as labelled ``covariance``/``correlation``."""
    index = {id(p): k for k, p in enumerate(params)}
    for model in models or []:
        spec = getattr(model, "spectral_model", None)
        if spec is None:
            continue
        own = list(spec.parameters)
        pos = np.array([index.get(id(p), -1) for p in own], dtype=int)
        sel = pos >= 0
        cov = np.zeros((pos.size, pos.size))
        cov[np.ix_(sel, sel)] = matrix[np.ix_(pos[sel], pos[sel])]
        # labelled DataArrays are built when first read (`SpectralModel.covariance`): a fit
        # of a few milliseconds should not spend one of them building coordinates
        spec._set_covariance(cov, [p.name for p in own], [p.unit.to_string() for p in own])


def optimize_message(success: bool, backend_message: str) -> str:
    """The optimiser's outcome in the `MESSAGES` vocabulary (backend text in parentheses
    only on failure: e.g. L-BFGS-B's 'ABNORMAL_TERMINATION_IN_LNSRCH' at an accepted minimum
    is not shown beside success)."""
    if success:
        return MESSAGES["optimize_ok"]
    return f"{MESSAGES['optimize_failed']}: {backend_message}"


def result_message(optimize_success: bool, optimize_msg: str, covariance_result) -> str:
    """One message for a fit result: optimisation outcome, then covariance outcome."""
    first = optimize_message(optimize_success, optimize_msg)
    if covariance_result is None:
        return f"{first}; {MESSAGES['covariance_skipped']}" if not optimize_success else first
    return f"{first}; {covariance_result.message}"
