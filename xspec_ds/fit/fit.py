"""Maximum-likelihood fitting: optimisation, covariance, likelihood profiles, confidence intervals.

The statistic is ``-2 ln L`` (Cash or WSTAT), so a 1-sigma interval of one parameter is where
the profile rises by 1 and the covariance is ``2 H^-1`` with ``H`` the Hessian of the statistic
(as Gammapy with MINUIT, ``errordef = 1``).

Backends:

- ``"scipy"`` (default): Fisher scoring with a trust radius where every dataset gives its expected
  information (one fold of the value and Jacobian rows per iteration; `_fisher_scoring`), else
  (or if scoring fails, e.g. at a bound) L-BFGS-B with the analytic gradient; then Newton steps on
  a Hessian from central differences of that gradient, which also gives the covariance.
  ``optimize_opts={"method": "lbfgsb"}`` skips the scoring;
- ``"minuit"``: iminuit's MIGRAD and HESSE (optional dependency: ``pip install xspec_ds[fit]``).

Parameters are rescaled to order unity (``value / 10^floor(log10 |value|)``) for the
optimiser, as Gammapy does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.optimize
import xarray as xr  # noqa: F401  (type hints of FitResult)

from ..models import Parameter, Parameters
from ..validation import validate_fit
from . import covariance as _cov
from .datasets import Datasets
from .joint import JointLikelihood

__all__ = ["Fit", "FitResult", "OptimizeResult", "CovarianceResult"]


def _as_datasets(datasets) -> Datasets:
    return datasets if isinstance(datasets, Datasets) else Datasets(datasets)


class _Objective:
    """Total statistic and gradient as a function of scaled free-parameter values."""

    def __init__(self, datasets: Datasets, params: list[Parameter]):
        self.datasets = datasets
        self.params = params
        scales = []
        for p in params:
            v = abs(p.value)
            scales.append(10.0 ** np.floor(np.log10(v)) if v > 0 else 1.0)
        self.scales = np.array(scales)
        self.nfev = 0
        self._last = None  # (x, stat, grad) of the latest evaluation
        self._last_value = None  # (x, stat) of the latest value-only evaluation
        self._last_fisher = None  # (x, stat, grad, info) of the latest scoring evaluation
        self._joint = None

    def x0(self) -> np.ndarray:
        return np.array([p.value for p in self.params]) / self.scales

    def set(self, x: np.ndarray) -> None:
        for p, v in zip(self.params, np.asarray(x) * self.scales, strict=True):
            p.value = v

    def bounds(self) -> list[tuple]:
        out = []
        for p, s in zip(self.params, self.scales, strict=True):
            lo = p.min / s if np.isfinite(p.min) else None
            hi = p.max / s if np.isfinite(p.max) else None
            out.append((lo, hi))
        return out

    def fun_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        self.set(x)
        # MINUIT asks for fun(x) and grad(x) separately at the same x: evaluate once
        last = self._last
        if last is not None and np.array_equal(last[0], x):
            return last[1], last[2].copy()
        self.nfev += 1
        if self._joint is None:
            # same-binning datasets sharing models: one vectorised pass (a snapshot of the data, taken here)
            self._joint = JointLikelihood(self.datasets)
        stat, grad = self._joint.stat_gradient(self.params)
        if not np.isfinite(stat):
            stat, grad = np.inf, np.zeros_like(x)
        else:
            grad = grad * self.scales
        self._last = (np.array(x, dtype=float, copy=True), stat, grad)
        return stat, grad.copy()

    def fun_grad_fisher(self, x: np.ndarray):
        """Statistic, gradient and expected information in scaled space, from one fold of the
        value and Jacobian rows per dataset (`JointLikelihood.stat_grad_fisher`); None when a
        dataset cannot give the information. Shares `fun_grad`'s cache of the latest point."""
        self.set(x)
        last = self._last_fisher
        if last is not None and np.array_equal(last[0], x):
            return last[1], last[2].copy(), last[3].copy()
        if self._joint is None:
            self._joint = JointLikelihood(self.datasets)
        out = self._joint.stat_grad_fisher(self.params)
        if out is None:
            return None
        self.nfev += 1
        stat, grad, info = out
        if not np.isfinite(stat):
            stat, grad, info = np.inf, np.zeros_like(x), np.zeros((x.size, x.size))
        else:
            grad, info = grad * self.scales, info * np.outer(self.scales, self.scales)
        self._last = (np.array(x, dtype=float, copy=True), stat, grad)
        self._last_fisher = (self._last[0], stat, grad, info)
        return stat, grad.copy(), info.copy()

    def fun(self, x: np.ndarray) -> float:
        """The statistic alone (one fold per dataset; the latest full evaluation if at ``x``)."""
        last = self._last
        if last is not None and np.array_equal(last[0], x):
            self.set(x)
            return last[1]
        value = self._last_value
        if value is not None and np.array_equal(value[0], x):
            self.set(x)
            return value[1]
        self.set(x)
        self.nfev += 1
        if self._joint is None:
            self._joint = JointLikelihood(self.datasets)
        stat = self._joint.stat_value()
        stat = stat if np.isfinite(stat) else np.inf
        self._last_value = (np.array(x, dtype=float, copy=True), stat)
        return stat

    def grad(self, x: np.ndarray) -> np.ndarray:
        return self.fun_grad(x)[1]

    def hessian(self, x: np.ndarray) -> np.ndarray:
        """Central differences of the analytic gradient (symmetrised)."""
        n = x.size
        h = 1e-4 * np.maximum(np.abs(x), 1.0)
        lo_b = np.array([b[0] if b[0] is not None else -np.inf for b in self.bounds()])
        hi_b = np.array([b[1] if b[1] is not None else np.inf for b in self.bounds()])
        hess = np.empty((n, n))
        for k in range(n):
            xp, xm = x.copy(), x.copy()
            xp[k] = min(x[k] + h[k], hi_b[k])
            xm[k] = max(x[k] - h[k], lo_b[k])
            hess[:, k] = (self.grad(xp) - self.grad(xm)) / (xp[k] - xm[k])
        self.set(x)
        return 0.5 * (hess + hess.T)


@dataclass
class OptimizeResult:
    success: bool
    message: str
    nfev: int
    total_stat: float
    backend: str
    parameters: Parameters
    x: np.ndarray = field(repr=False, default=None)
    hessian: np.ndarray | None = field(repr=False, default=None)
    """Hessian of the statistic in parameter-value space at the optimum (scipy backend), reused
    by `Fit.covariance` in `Fit.run` instead of being computed a second time."""
    backend_message: str = ""
    """The backend's own words (``message`` uses `xspec_ds.fit.covariance.MESSAGES`)."""


@dataclass
class CovarianceResult:
    success: bool
    message: str
    matrix: np.ndarray
    parameters: Parameters
    backend: str


@dataclass
class FitResult:
    """Result of `Fit.run`: ``success``, ``total_stat``, ``parameters`` (all of the models'),
    the optimisation and covariance parts, and the covariance matrix of the free parameters."""

    optimize_result: OptimizeResult
    covariance_result: CovarianceResult | None
    models: object = None
    n_bins: int | None = None
    """Number of bins (groups of grouped spectra) summed in the statistic, over all datasets."""

    @property
    def dof(self) -> int | None:
        """Degrees of freedom: ``n_bins`` minus the number of free parameters (Sherpa's ``dof``)."""
        if self.n_bins is None:
            return None
        return self.n_bins - len(self.optimize_result.parameters)

    @property
    def reduced_stat(self) -> float:
        """``total_stat / dof`` (Sherpa's ``rstat``; NaN when dof <= 0)."""
        dof = self.dof
        return self.total_stat / dof if dof else float("nan")

    @property
    def success(self) -> bool:
        ok = self.optimize_result.success
        return ok and (self.covariance_result is None or self.covariance_result.success)

    @property
    def total_stat(self) -> float:
        return self.optimize_result.total_stat

    @property
    def parameters(self) -> Parameters:
        return self.models.parameters if self.models is not None else self.optimize_result.parameters

    @property
    def nfev(self) -> int:
        return self.optimize_result.nfev

    @property
    def message(self) -> str:
        """Optimisation and covariance outcome in one vocabulary (`xspec_ds.fit.covariance`)."""
        opt = self.optimize_result
        return _cov.result_message(opt.success, opt.backend_message or opt.message, self.covariance_result)

    @property
    def backend_message(self) -> str:
        """The optimiser backend's own message."""
        return self.optimize_result.backend_message or self.optimize_result.message

    @property
    def covariance(self) -> "xr.DataArray | None":
        """Covariance of the free parameters, dims ``("parameter", "parameter_j")`` (NaN if it failed)."""
        cov = self.covariance_result
        if cov is None:
            return None
        params = list(cov.parameters)
        labels = _cov.parameter_labels(params, self.models)
        return _cov.covariance_dataarray(cov.matrix, labels, [p.unit.to_string() for p in params])

    @property
    def correlation(self) -> "xr.DataArray | None":
        """Correlation matrix of the free parameters, labelled as `covariance`."""
        cov = self.covariance
        return None if cov is None else _cov.correlation_dataarray(cov)

    def __repr__(self):
        return (
            f"FitResult(success={self.success}, total_stat={self.total_stat:.6g}, nfev={self.nfev}, "
            f"backend={self.optimize_result.backend!r}, message={self.message!r})"
        )


class Fit:
    """Fit models to datasets by minimising the total statistic.

    Parameters
    ----------
    backend : {"scipy", "minuit"}
    optimize_opts, covariance_opts, confidence_opts : dict, optional
        Passed to the backend. scipy: ``method`` (``"auto"``: scoring then L-BFGS-B if needed;
        ``"lbfgsb"``), ``options`` (L-BFGS-B's; ``maxiter`` also limits the scoring),
        ``scoring_max_iter``, ``scoring_ftol``, ``newton_steps``. minuit: ``tol``, ``strategy``.

    Examples
    --------
    >>> result = Fit().run(datasets)  # doctest: +SKIP
    >>> result.success, result.parameters["index"].error  # doctest: +SKIP
    """

    def __init__(
        self,
        backend: str = "scipy",
        optimize_opts: dict | None = None,
        covariance_opts: dict | None = None,
        confidence_opts: dict | None = None,
        store_trace: bool = False,
    ):
        if backend not in ("scipy", "minuit"):
            raise ValueError(f"unknown fit backend {backend!r}; use 'scipy' or 'minuit'")
        if backend == "minuit":
            _import_iminuit()
        self.backend = backend
        self.optimize_opts = dict(optimize_opts or {})
        self.covariance_opts = dict(covariance_opts or {})
        self.confidence_opts = dict(confidence_opts or {})
        self.store_trace = store_trace

    # --------------------------------------------------------------------------------------
    def run(self, datasets) -> FitResult:
        """Optimise, then compute the covariance; parameter values and errors are updated."""
        datasets = _as_datasets(datasets)
        validate_fit(datasets)  # xspec_ds.validation: models, free parameters, values, fit bins
        opt = self.optimize(datasets)
        if opt.success:
            cov = self.covariance(datasets, _hessian=opt.hessian)
        else:  # no stale errors from an earlier fit (xspec_ds.fit.covariance)
            cov = None
            _cov.invalidate_errors(
                list(opt.parameters), datasets.models, f"optimization failed ({opt.backend_message})"
            )
        from ..xrayfit import n_fit_bins  # x-ray hook: bins (groups) in the statistic, for dof

        return FitResult(opt, cov, models=datasets.models, n_bins=sum(n_fit_bins(d) for d in datasets))

    def _free(self, datasets: Datasets) -> list[Parameter]:
        params = [p for p in datasets.parameters if not p.frozen]
        if not params:
            validate_fit(datasets)  # raises "no model set" or "every parameter ... is frozen"
        return params

    def optimize(self, datasets) -> OptimizeResult:
        datasets = _as_datasets(datasets)
        for d in datasets:  # in-place edits of a sparse or banded kernel since the last fit
            d._refresh_kernels()
        params = self._free(datasets)
        obj = _Objective(datasets, params)
        x0 = obj.x0()
        scoring = self.backend == "scipy" and self.optimize_opts.get("method", "auto") == "auto"
        first = obj.fun_grad_fisher(x0) if scoring else None  # the scoring's first evaluation doubles as the check
        stat0 = first[0] if first is not None else obj.fun(x0)
        if not np.isfinite(stat0):
            raise ValueError("the statistic is not finite at the starting parameters")
        hessian = None
        if self.backend == "minuit":
            x, ok, msg = _minuit_optimize(obj, x0, self.optimize_opts)
        else:
            x, ok, msg, hess_x = _scipy_optimize(obj, x0, self.optimize_opts)
            if hess_x is not None:
                hessian = hess_x / np.outer(obj.scales, obj.scales)
        obj.set(x)
        stat = obj.fun(x)  # the objective's own total (one vectorised pass for same-binning datasets)
        message = _cov.optimize_message(ok, msg)
        return OptimizeResult(ok, message, obj.nfev, stat, self.backend, Parameters(params), x, hessian, msg)

    def covariance(self, datasets, _hessian=None) -> CovarianceResult:
        """Covariance ``2 H^-1`` of the free parameters at the current values; sets errors.

        ``_hessian`` (value space, from `optimize` of the same free parameters) skips the
        numerical Hessian."""
        datasets = _as_datasets(datasets)
        params = self._free(datasets)
        obj = _Objective(datasets, params)
        x = obj.x0()
        if self.backend == "minuit":
            cov_x, ok, msg = _minuit_covariance(obj, x)
        else:
            if _hessian is not None and np.shape(_hessian) == (x.size, x.size):
                hess = _hessian * np.outer(obj.scales, obj.scales)
            else:
                hess = obj.hessian(x)
            try:
                cov_x = 2.0 * np.linalg.inv(hess)
                ok = bool(np.all(np.isfinite(cov_x)) and np.all(np.diag(cov_x) > 0))
                msg = "Hessian inverted" if ok else "Hessian not positive definite"
            except np.linalg.LinAlgError:
                cov_x, ok, msg = np.full((x.size, x.size), np.nan), False, "singular Hessian"
        matrix = cov_x * np.outer(obj.scales, obj.scales)
        # errors, labelled model matrices, NaN + warning on failure: xspec_ds.fit.covariance
        ok, msg, matrix = _cov.finish_covariance(params, matrix, ok, msg, datasets.models)
        return CovarianceResult(ok, msg, matrix, Parameters(params), self.backend)

    # profiles ---------------------------------------------------------------------------
    def _scan_values(self, parameter: Parameter) -> np.ndarray:
        if parameter.scan_min is not None and parameter.scan_max is not None:
            lo, hi = parameter.scan_min, parameter.scan_max
        else:
            err = (
                parameter.error
                if parameter.error and np.isfinite(parameter.error)
                else abs(parameter.value) * 0.1 or 1.0
            )
            lo = parameter.value - parameter.scan_n_sigma * err
            hi = parameter.value + parameter.scan_n_sigma * err
        return np.linspace(lo, hi, parameter.scan_n_values)

    def stat_profile(self, datasets, parameter, reoptimize: bool = False, values=None) -> dict:
        """Statistic as a function of one parameter (others re-fitted when ``reoptimize``).

        Returns a dict with ``"<name>_scan"`` (values), ``"stat_scan"`` and ``"fit_results"``.
        """
        datasets = _as_datasets(datasets)
        parameter = datasets.parameters[parameter] if not isinstance(parameter, Parameter) else parameter
        values = self._scan_values(parameter) if values is None else np.asarray(values, dtype=float)
        saved = [(p, p.value, p.frozen) for p in datasets.parameters]
        stats_, results = [], []
        try:
            parameter.frozen = True
            for v in values:
                parameter.value = v
                if reoptimize and any(not p.frozen for p in datasets.parameters):
                    res = self.optimize(datasets)
                    results.append(res)
                    stats_.append(res.total_stat)
                else:
                    stats_.append(datasets.stat_sum())
        finally:
            for p, v, fr in saved:
                p.value, p.frozen = v, fr
        return {f"{parameter.name}_scan": values, "stat_scan": np.array(stats_), "fit_results": results}

    def confidence(self, datasets, parameter, sigma: float = 1.0, reoptimize: bool = True) -> dict:
        """Profile-likelihood confidence interval: where the statistic rises by ``sigma**2``.

        Returns ``{"success", "errp", "errn", "nfev"}`` (distances above and below the best fit).
        """
        datasets = _as_datasets(datasets)
        parameter = datasets.parameters[parameter] if not isinstance(parameter, Parameter) else parameter
        best = parameter.value
        saved = [(p, p.value, p.frozen) for p in datasets.parameters]
        stat0 = datasets.stat_sum()
        err = parameter.error if parameter.error and np.isfinite(parameter.error) else max(abs(best) * 0.1, 1e-3)
        nfev = 0

        def delta(v):
            nonlocal nfev
            nfev += 1
            parameter.value = v
            if reoptimize and any(not p.frozen for p in datasets.parameters):
                stat = self.optimize(datasets).total_stat
            else:
                stat = datasets.stat_sum()
            for p, val, _ in saved:
                if p is not parameter:
                    p.value = val
            return stat - stat0 - sigma**2

        out = {"success": True, "nfev": 0}
        try:
            parameter.frozen = True
            for key, sign in (("errp", 1.0), ("errn", -1.0)):
                limit = parameter.max if sign > 0 else parameter.min
                step = err
                far = best + sign * step
                found = False
                for _ in range(30):
                    if np.isfinite(limit) and sign * (far - limit) > 0:
                        far = limit
                    if delta(far) > 0:
                        found = True
                        break
                    if np.isfinite(limit) and far == limit:
                        break
                    step *= 2
                    far = best + sign * step
                if not found:
                    out[key] = np.nan
                    out["success"] = False
                    continue
                root = scipy.optimize.brentq(delta, best, far, xtol=1e-6 * max(abs(err), 1e-12))
                out[key] = abs(root - best)
        finally:
            for p, v, fr in saved:
                p.value, p.frozen = v, fr
        out["nfev"] = nfev
        return out


# backends -----------------------------------------------------------------------------------
SCORING_MAX_ITER = 100
"""Iterations of Fisher scoring before the fit falls back to L-BFGS-B."""
SCORING_FTOL = 1e-10
"""Fisher scoring has converged when its next step is predicted to lower the statistic by less
than this (the Newton polish that follows makes the minimum exact)."""


def _fisher_scoring(obj: _Objective, x0: np.ndarray, lo: np.ndarray, hi: np.ndarray, opts: dict):
    """Fisher scoring in scaled parameter space, with a trust radius.

    Each iteration solves ``I step = -g`` with ``I`` the expected information and ``g`` the
    gradient of the statistic, both from one fold per dataset (`_Objective.fun_grad_fisher`):
    the scoring step (Cash 1979 for Poisson data; the Gauss-Newton step of Sherpa's ``levmar``
    for chi2). The step is shortened to a trust radius that grows after steps the quadratic
    model predicted well and shrinks after poor or rejected ones (Moré 1978; Nocedal & Wright,
    *Numerical Optimization*, ch. 4): far from the optimum a full scoring step can overshoot by
    orders of magnitude. A step is taken when it lowers the statistic; steps are clipped to
    the bounds. The scoring has converged when the predicted decrease ``-g.s - s.I.s / 2`` of
    the next step is below ``scoring_ftol``.

    ``opts``: ``scoring_max_iter`` (default: ``options["maxiter"]`` if given, else
    `SCORING_MAX_ITER`), ``scoring_ftol`` (`SCORING_FTOL`).
    Returns ``(x, converged, message)``; ``converged`` False sends the fit to L-BFGS-B from ``x``.
    """
    x = np.array(x0, dtype=float)
    out = obj.fun_grad_fisher(x)
    if out is None or not np.isfinite(out[0]):
        return x, False, "Fisher scoring unavailable"
    f, g, info = out
    ftol = opts.get("scoring_ftol", SCORING_FTOL)
    max_iter = opts.get("scoring_max_iter", opts.get("options", {}).get("maxiter", SCORING_MAX_ITER))
    radius = max(1.0, 0.5 * float(np.linalg.norm(x)))  # scaled values are O(1): see _Objective
    ridge = 0.0
    for it in range(max_iter):
        damp = np.diag(info).copy()
        damp[~(damp > 0)] = 1.0
        try:
            step = np.linalg.solve(info + ridge * np.diag(damp), -g)
        except np.linalg.LinAlgError:
            step = np.full_like(x, np.nan)
        if not np.all(np.isfinite(step)):  # singular information: regularise (Levenberg-Marquardt)
            ridge = max(10.0 * ridge, 1e-9)
            if ridge > 1e12:
                return x, False, "Fisher scoring: singular information"
            continue
        if -(g @ step + 0.5 * step @ info @ step) < ftol:
            return x, True, f"Fisher scoring converged ({it} iterations)"
        length = float(np.linalg.norm(step))
        if length > radius:
            step = step * (radius / length)
        xn = np.clip(x + step, lo, hi)
        s = xn - x
        length = float(np.linalg.norm(s))
        if length == 0.0:
            return x, False, "Fisher scoring: step stopped by the bounds"
        predicted = -(g @ s + 0.5 * s @ info @ s)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a trial step may overshoot
            trial = obj.fun_grad_fisher(xn)
        if trial is None:
            return x, False, "Fisher scoring unavailable"
        fn, gn, infon = trial
        if np.isfinite(fn) and fn <= f:
            rho = (f - fn) / predicted if predicted > 0 else 1.0
            if rho > 0.75 and length > 0.9 * radius:
                radius *= 2.0
            elif rho < 0.25:
                radius = 0.5 * length
            x, f, g, info = xn, fn, gn, infon
            ridge = ridge / 10.0 if ridge > 1e-9 else 0.0
        else:
            radius = 0.25 * length
            if radius < 1e-12 * (1.0 + float(np.linalg.norm(x))):
                return x, False, "Fisher scoring: no step lowers the statistic"
    return x, False, "Fisher scoring: iteration limit"


def _scipy_optimize(obj: _Objective, x0: np.ndarray, opts: dict):
    """Fisher scoring where every dataset gives its information (one fold per iteration), else
    or when it fails L-BFGS-B with the analytic gradient; then Newton steps on the Hessian from
    central differences of the gradient (exact minimum, and the Hessian for the covariance).
    ``opts["method"]``: ``"auto"`` (default) or ``"lbfgsb"`` (skip the scoring)."""
    bounds = obj.bounds()
    lo = np.array([b[0] if b[0] is not None else -np.inf for b in bounds])
    hi = np.array([b[1] if b[1] is not None else np.inf for b in bounds])
    method = opts.get("method", "auto")
    if method not in ("auto", "lbfgsb"):
        raise ValueError(f"unknown scipy fit method {method!r}; use 'auto' or 'lbfgsb'")
    scored = False
    if method == "auto":
        x, scored, msg = _fisher_scoring(obj, x0, lo, hi, opts)
        if not scored and np.all(np.isfinite(x)) and np.isfinite(obj.fun(x)):
            x0 = x  # L-BFGS-B goes on from the best point reached
    if not scored:
        options = {"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-9}
        options.update(opts.get("options", {}))
        res = scipy.optimize.minimize(obj.fun_grad, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
        x, msg, success = res.x, str(res.message), bool(res.success)
    else:
        success = True
    ok = bool(np.all(np.isfinite(x)))
    # Newton polish: exact minimum (and a good Hessian for the covariance)
    f = obj.fun(x)
    hess = None
    for _ in range(opts.get("newton_steps", 4)):
        g = obj.grad(x)
        hess = obj.hessian(x)
        try:
            step = np.linalg.solve(hess, g)
        except np.linalg.LinAlgError:
            hess = None
            break
        xn = np.clip(x - step, lo, hi)
        fn = obj.fun(xn)
        if not fn <= f:
            break
        converged = f - fn < 1e-10
        x, f = xn, fn
        if converged:
            # the step was tiny: the Hessian just computed holds at x for the covariance
            break
    else:
        hess = None  # no converged step: let the covariance compute its own at the final x
    if not ok:
        msg = "optimisation failed: " + msg
    elif not success:
        # L-BFGS-B may stop on 'ABNORMAL' line searches at a true minimum; accept small gradients
        g = obj.grad(x)
        ok = bool(np.max(np.abs(g)) < 1e-3)
        msg = msg if not ok else msg + " (gradient small: accepted)"
    return x, ok, msg, hess


def _import_iminuit():
    try:
        import iminuit  # noqa: F401
    except ImportError:
        raise ImportError("the 'minuit' backend needs iminuit: pip install 'xspec_ds[fit]'") from None
    return iminuit


def _minuit_optimize(obj: _Objective, x0: np.ndarray, opts: dict):
    iminuit = _import_iminuit()
    m = iminuit.Minuit(obj.fun, x0, grad=obj.grad, name=[p.name for p in obj.params])
    m.errordef = iminuit.Minuit.LEAST_SQUARES
    m.limits = obj.bounds()
    # tol 0.01 (Gammapy uses 0.1): with the analytic gradient, MIGRAD at 0.1 stops ~1e-4 (relative) short of
    # the minimum that L-BFGS-B+Newton and Gammapy reach; 0.01 costs ~5 more evaluations (benchmarks/bench_core.py)
    m.tol = opts.get("tol", 0.01)
    m.strategy = opts.get("strategy", 1)
    m.migrad()
    obj._minuit = m
    return np.array(m.values), bool(m.valid), "MIGRAD " + ("converged" if m.valid else "failed")


def _minuit_covariance(obj: _Objective, x: np.ndarray):
    iminuit = _import_iminuit()
    m = iminuit.Minuit(obj.fun, x, grad=obj.grad, name=[p.name for p in obj.params])
    m.errordef = iminuit.Minuit.LEAST_SQUARES
    m.limits = obj.bounds()
    # HESSE at strategy 1 (the default) overestimated the power-law covariance by 0.5-0.6 % against the
    # hand-computed observed information (tests/fit/test_fisher.py); strategy 2 is within 5e-5
    m.strategy = 2
    m.hesse()
    obj.set(x)
    if m.covariance is None:
        return np.full((x.size, x.size), np.nan), False, "HESSE failed"
    return np.array(m.covariance), bool(m.accurate), "HESSE " + ("accurate" if m.accurate else "not accurate")
