"""`fit_batch`: thousands of independent spectral fits at once.

Every spectrum along ``dim`` gets its own copy of the model's free parameters (frozen ones are
shared). The fit is a damped Newton (Levenberg-Marquardt) iteration on ``(K, P)`` arrays:

- the model's pure kernels give the true-bin fluxes and their Jacobian for all K rows
  (`xspec_ds.models.SpectralModel.integral_kernel`), `xspec_ds.likelihood` folds them and gives
  the statistic, its gradient ``g`` (adjoint fold) and the expected information ``F``
  (``J^T diag(W) J``, Fisher scoring; for Poisson data with a log-linear model this is the
  iteratively reweighted least squares of GLMs);
- each row takes the step ``-(F + lambda diag F)^-1 g`` (Levenberg 1944, Marquardt 1963), clipped
  to the parameter bounds; a row whose statistic does not decrease multiplies its own ``lambda``
  by 10 and keeps its point, a row that improves divides it by 10;
- a row has converged when the expected distance to the minimum ``edm = g^T F^-1 g / 2`` (as
  MINUIT's EDM) is below ``tol``;
- the covariance is ``2 H^-1`` with ``H`` from central differences of the analytic gradient (the
  same recipe as the scalar `Fit`), for all rows at once.

Rows that do not converge in ``max_iter`` iterations, or whose Hessian is not positive
definite, are refitted one by one with the scalar `Fit` and flagged (``refit`` True); spectra
with nothing to fit (all bins masked, a single bin, fewer bins than free parameters, zero counts)
come back with ``success`` False, NaN values and the reason in ``message``.

Memory grows with one chunk of spectra (``chunk_size``), not with K. A dask-backed input runs as
one task per dask chunk along ``dim`` (on a ``dask.distributed`` cluster when a ``Client`` is
active: nothing else changes).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import forward, likelihood
from ..batch import SpectrumBatch, batch_from_datasets, batch_from_xarray
from ..models import SkyModel, SpectralModel

__all__ = ["fit_batch"]


class _Spec:
    """The model's free parameters as columns of a ``(K, P)`` array, in canonical units."""

    def __init__(self, model, fixed: dict | None = None):
        spec = getattr(model, "spectral_model", model)
        if not isinstance(spec, SpectralModel):
            raise TypeError(f"model must be a SpectralModel or SkyModel, got {type(model).__name__}")
        self.spec = spec
        self.params = list(spec.parameters)
        fixed = fixed or {}
        free, seen = [], set()
        for p in self.params:
            if not p.frozen and id(p) not in seen and id(p) not in fixed:
                free.append(p)
                seen.add(id(p))
        self.free = free
        self.base = spec.theta()
        for i, p in enumerate(self.params):
            if id(p) in fixed:
                self.base[i] = fixed[id(p)] * p._scale_to_canonical
        # selection matrix: theta_all[:, i] = x[:, f] for every occurrence i of free parameter f
        self.sel = np.zeros((len(self.params), len(free)))
        for f, p in enumerate(free):
            for i, q in enumerate(self.params):
                if q is p:
                    self.sel[i, f] = 1.0
        self.cols = [np.flatnonzero(self.sel[:, f]) for f in range(len(free))]
        # each free parameter used once (the usual case): Jacobian rows by position, no matmul
        self.single = [int(c[0]) for c in self.cols] if all(c.size == 1 for c in self.cols) else None
        self.to_canonical = np.array([p._scale_to_canonical for p in free])
        start = np.array([p.canonical for p in free])
        self.xscale = np.array([10.0 ** np.floor(np.log10(abs(v))) if v != 0 else 1.0 for v in start])
        self.x0 = start / self.xscale if free else np.zeros(0)
        lo = np.array([p.min for p in free], dtype=float) * self.to_canonical / self.xscale
        hi = np.array([p.max for p in free], dtype=float) * self.to_canonical / self.xscale
        self.lo = np.where(np.isfinite(lo), lo, -np.inf)
        self.hi = np.where(np.isfinite(hi), hi, np.inf)
        self.norm = next((f for f, p in enumerate(free) if p.is_norm), None)

    def theta(self, x: np.ndarray) -> np.ndarray:
        th = np.repeat(self.base[None, :], x.shape[0], axis=0)
        for f, cols in enumerate(self.cols):
            th[:, cols] = (x[:, f] * self.xscale[f])[:, None]
        return th


class _Chunk:
    """The likelihood of a chunk of spectra as a function of scaled free parameters ``x``."""

    def __init__(self, spec: _Spec, batch: SpectrumBatch):
        self.spec, self.batch = spec, batch
        self.nodes = forward.nodes_for(spec.spec, batch.e_lo, batch.e_hi)
        self.nfree = len(spec.free)

    def arrays(self, rows):
        b = self.batch
        exp = b.exposure[rows] if b.exposure.ndim == 2 else b.exposure
        edisp = b.edisp[rows] if b.edisp is not None and b.edisp.ndim == 3 else b.edisp
        return {k: v[rows] for k, v in b.data.items()}, b.mask[rows], exp, edisp

    def flux(self, x):
        th = self.spec.theta(x)
        return th, self.spec.spec.integral_kernel(th, self.batch.e_lo, self.batch.e_hi, self.nodes)

    @np.errstate(over="ignore", invalid="ignore", divide="ignore")
    def stat(self, x, rows):
        data, mask, exp, edisp = self.arrays(rows)
        _, flux = self.flux(x)
        mu = likelihood.predict(flux, exp, edisp)
        return likelihood.stat_sum(self.batch.statistic, mu, data, mask)

    @np.errstate(over="ignore", invalid="ignore", divide="ignore")
    def stat_grad(self, x, rows, fisher=True):
        data, mask, exp, edisp = self.arrays(rows)
        th = self.spec.theta(x)
        b = self.batch
        if self.spec.single is not None:
            flux, dflux = self.spec.spec.integral_and_jacobian(th, b.e_lo, b.e_hi, self.nodes, wrt=self.spec.single)
        else:
            flux, jac = self.spec.spec.integral_and_jacobian(th, b.e_lo, b.e_hi, self.nodes)
            dflux = np.matmul(self.spec.sel.T, jac)
        dflux *= self.spec.xscale[:, None]  # (K, F, Nt) per scaled x
        mu = likelihood.predict(flux, exp, edisp)
        stat, grad, _ = likelihood.stat_grad(self.batch.statistic, flux, dflux, exp, edisp, data, mask, mu_sig=mu)
        info = (
            likelihood.fisher(self.batch.statistic, flux, dflux, exp, edisp, data, mask, mu_sig=mu) if fisher else None
        )
        return stat, grad, info

    def norm_start(self, x, rows):
        """Rescale the norm parameter so that the predicted signal matches the excess counts."""
        f = self.spec.norm
        if f is None:
            return x
        data, mask, exp, edisp = self.arrays(rows)
        _, flux = self.flux(x)
        mu = likelihood.predict(flux, exp, edisp)
        if "counts_off" in data:
            bkg = data["alpha"] * data["counts_off"]
        else:
            bkg = data.get("background", 0.0)
        excess = np.sum(np.where(mask, data["counts"] - bkg, 0.0), axis=-1)
        signal = np.sum(np.where(mask, mu, 0.0), axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = excess / signal
        ok = np.isfinite(ratio) & (ratio > 1e-6) & (ratio < 1e6) & (self.spec.lo[f] < 0)
        x = x.copy()
        x[ok, f] *= ratio[ok]
        return x


BACKTRACK = np.array([0.5, 0.25, 0.1, 0.03])
"""Fractions of a failed Levenberg-Marquardt step tried (at once) before the damping grows."""


FISHER_ITERATIONS = 5
"""Iterations on the expected information (Fisher scoring: robust far from the minimum) before the
Newton steps use the observed Hessian where it is positive definite (quadratic convergence)."""


def _observed_where_positive(chunk, xa, rows, g, F):
    """The observed Hessian (forward differences of the analytic gradient, one gradient per free
    parameter for all rows) where it is positive definite, else the expected information ``F``."""
    nf = xa.shape[1]
    h = 1e-6 * np.maximum(np.abs(xa), 1e-3)
    hess = np.empty_like(F)
    for f in range(nf):
        xp = xa.copy()
        xp[:, f] += h[:, f]
        hess[:, :, f] = (chunk.stat_grad(xp, rows, fisher=False)[1] - g) / h[:, f, None]
    hess = 0.5 * (hess + np.swapaxes(hess, -1, -2))
    with np.errstate(invalid="ignore"):
        positive = np.all(np.linalg.eigvalsh(hess) > 0, axis=-1) & np.all(np.isfinite(hess), axis=(1, 2))
    return np.where(positive[:, None, None], hess, F)


def _solve(F, g):
    """Batched ``F^-1 g`` (NaN rows where singular)."""
    try:
        return np.linalg.solve(F, g[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = np.full_like(g, np.nan)
        for k in range(g.shape[0]):  # rare: only when some row is singular
            try:
                out[k] = np.linalg.solve(F[k], g[k])
            except np.linalg.LinAlgError:
                pass
        return out


def _newton(chunk: _Chunk, x: np.ndarray, rows: np.ndarray, max_iter: int, tol: float):
    """Levenberg-Marquardt on the rows ``rows``; returns ``(x, converged, n_iter, stat, grad)``
    with ``grad`` the gradient at the final point of the converged rows."""
    k = x.shape[0]
    converged = np.zeros(k, bool)
    grad_final = np.full(x.shape, np.nan)
    n_iter = np.zeros(k, int)
    stat = np.full(k, np.nan)
    lam = np.full(k, 1e-3)
    active = np.array(rows, dtype=int)
    lo, hi = chunk.spec.lo, chunk.spec.hi
    for it in range(max_iter):
        if not active.size:
            break
        xa = x[active]
        s, g, F = chunk.stat_grad(xa, active)
        stat[active] = s
        if it >= FISHER_ITERATIONS:
            F = _observed_where_positive(chunk, xa, active, g, F)
        d0 = _solve(F, g)
        edm = 0.5 * np.einsum("kp,kp->k", g, d0)
        done = np.isfinite(edm) & (edm < tol) & np.isfinite(s)
        converged[active[done]] = True
        grad_final[active[done]] = g[done]
        keep = ~done
        active, xa, s, g, F = active[keep], xa[keep], s[keep], g[keep], F[keep]
        if not active.size:
            break
        n_iter[active] += 1
        diag = np.einsum("kpp->kp", F)
        damp = F + (lam[active, None] * np.maximum(diag, 1e-12))[:, :, None] * np.eye(F.shape[-1])
        step = -_solve(damp, g)
        step = np.where(np.isfinite(step), step, 0.0)
        xn = np.clip(xa + step, lo, hi)
        sn = chunk.stat(xn, active)
        # accept a step that does not increase the statistic beyond its rounding (1e-13 relative:
        # a Cash sum of 1e6 counts is known to ~1e-10, where a converged row's EDM lives)
        tol_s = 1e-13 * np.abs(s)
        better = np.isfinite(sn) & (sn <= s + tol_s)
        full = better.copy()
        fail = np.flatnonzero(~better)
        if fail.size:
            # backtracking along the same step for the rows whose full step failed (curved valleys,
            # a norm stepping through zero): shorter steps, all evaluated in one call
            fracs = BACKTRACK
            xt = np.clip(xa[fail][None] + fracs[:, None, None] * step[fail][None], lo, hi)
            st = chunk.stat(xt.reshape(-1, xa.shape[1]), np.tile(active[fail], fracs.size)).reshape(fracs.size, -1)
            ok_t = np.isfinite(st) & (st <= s[fail] + tol_s[fail])
            first = np.argmax(ok_t, axis=0)  # the longest step that decreases the statistic
            found = ok_t.any(axis=0)
            pick = fail[found]
            xn[pick] = xt[first[found], np.flatnonzero(found)]
            sn[pick] = st[first[found], np.flatnonzero(found)]
            better[pick] = True
        x[active[better]] = xn[better]
        stat[active[better]] = sn[better]
        lam[active] = np.where(
            full, np.maximum(lam[active] / 10, 1e-12), np.where(better, lam[active], lam[active] * 10)
        )
        # a row whose step changed nothing (stuck at a bound or at float precision) stops here
        stuck = ~better & (lam[active] > 1e12)
        active = active[~stuck]
    return x, converged, n_iter, stat, grad_final


def _covariance(chunk: _Chunk, x: np.ndarray, rows: np.ndarray, grad: np.ndarray):
    """``2 H^-1`` in canonical units, with H from forward differences of the analytic gradient
    (``grad``: the gradient at ``x``; one more gradient per free parameter for all rows)."""
    k, nf = x.shape[0], x.shape[1]
    cov = np.full((k, nf, nf), np.nan)
    ok = np.zeros(k, bool)
    if not rows.size:
        return cov, ok
    xa, g0 = x[rows], grad[rows]
    h = 1e-5 * np.maximum(np.abs(xa), 1.0)
    hess = np.empty((rows.size, nf, nf))
    for f in range(nf):  # one shifted gradient per parameter, all rows at once
        xp = xa.copy()
        up = xa[:, f] + h[:, f] <= chunk.spec.hi[f]  # step down at an upper bound
        xp[:, f] = np.where(up, xa[:, f] + h[:, f], xa[:, f] - h[:, f])
        gp = chunk.stat_grad(xp, rows, fisher=False)[1]
        hess[:, :, f] = (gp - g0) / (xp[:, f] - xa[:, f])[:, None]
    hess = 0.5 * (hess + np.swapaxes(hess, -1, -2))
    with np.errstate(invalid="ignore"):
        try:
            inv = np.linalg.inv(hess)
        except np.linalg.LinAlgError:
            inv = np.stack([_safe_inv(m) for m in hess])
    cov_x = 2.0 * inv
    good = np.all(np.isfinite(cov_x), axis=(1, 2)) & np.all(np.einsum("kpp->kp", cov_x) > 0, axis=1)
    scale = chunk.spec.xscale
    cov[rows] = cov_x * np.outer(scale, scale)
    ok[rows] = good
    return cov, ok


def _safe_inv(m):
    try:
        return np.linalg.inv(m)
    except np.linalg.LinAlgError:
        return np.full_like(m, np.nan)


def _data_flags(batch: SpectrumBatch, nfree: int) -> np.ndarray:
    """Reason per spectrum why it cannot be fitted ('' if it can)."""
    nbin = batch.mask.sum(axis=1)
    counts = np.sum(np.where(batch.mask, batch.data["counts"], 0.0), axis=1)
    reason = np.full(len(batch), "", dtype=object)
    reason[counts == 0] = "zero counts in the fit range"
    reason[nbin < nfree] = f"fewer fit bins than free parameters ({nfree})"
    reason[nbin == 1] = "a single bin in the fit range"
    reason[nbin == 0] = "all bins masked"
    return reason


def _fit_spectra(spec: _Spec, batch: SpectrumBatch, max_iter: int, tol: float):
    """Values (canonical), covariance (canonical), stat, converged, n_iter, reason for a batch."""
    k, nf = len(batch), len(spec.free)
    chunk = _Chunk(spec, batch)
    reason = _data_flags(batch, nf)
    rows = np.flatnonzero(reason == "")
    x = np.repeat(spec.x0[None, :], k, axis=0)
    if rows.size:
        x[rows] = chunk.norm_start(x[rows], rows)
    x, conv, n_iter, stat, grad = _newton(chunk, x, rows, max_iter, tol)
    cov, cov_ok = _covariance(chunk, x, np.flatnonzero(conv), grad)
    values = x * spec.xscale
    return values, cov, stat, conv & cov_ok, n_iter, reason


def _null_stat(spec_full: _Spec, model, batch: SpectrumBatch, null: dict, max_iter: int, tol: float):
    """Statistic of the null hypothesis per spectrum (``null`` parameters fixed)."""
    fixed = {id(p): v for p, v in null.items()}
    spec = _Spec(model, fixed=fixed)
    chunk = _Chunk(spec, batch)
    k = len(batch)
    x = np.repeat(spec.x0[None, :], k, axis=0)
    rows = np.arange(k)
    only_norm_zero = all(p.is_norm and v == 0 for p, v in null.items())
    if spec.free and not only_norm_zero:
        x, _, _, stat, _ = _newton(chunk, x, rows, max_iter, tol)
        return stat
    return chunk.stat(x, rows)


def _scalar_refit(model, item, params):
    """One spectrum refitted with the scalar `Fit` (a copy of the model; the input is unchanged)."""
    from ..io import as_dataset_object
    from .fit import Fit

    data = item if isinstance(item, xr.Dataset) else item.data
    obj = as_dataset_object(data.copy(deep=False), kind="auto")
    spec = getattr(model, "spectral_model", model).copy()
    obj.models = SkyModel(spec, name="fit-batch-refit")
    try:
        result = Fit().run(obj)
    except Exception as exc:  # a failed refit is reported, not raised
        return None, str(exc)
    by_id = {id(p): q for p, q in zip(getattr(model, "spectral_model", model).parameters, spec.parameters, strict=True)}
    copies = [by_id[id(p)] for p in params]
    values = np.array([q.canonical for q in copies])
    cov = None
    if result.covariance is not None:
        free = [p for p in obj.models.parameters if not p.frozen]
        pos = {id(p): i for i, p in enumerate(free)}
        idx = [pos[id(q)] for q in copies]
        cov = np.asarray(result.covariance)[np.ix_(idx, idx)] * np.outer(
            [q._scale_to_canonical for q in copies], [q._scale_to_canonical for q in copies]
        )
    return (values, cov, result.total_stat, result.success), result.message


def _names(params) -> list[str]:
    names, seen = [], {}
    for p in params:
        n = p.name
        seen[n] = seen.get(n, 0) + 1
        names.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return names


def _fit_chunk(items, labels, model, dim, statistic, max_iter, tol, refit, null) -> xr.Dataset:
    """Fit one chunk: ``items`` is an xarray.Dataset along ``dim`` or a list of datasets."""
    if isinstance(items, xr.Dataset):
        batch = batch_from_xarray(items, dim, statistic=statistic)
    else:
        batch = batch_from_datasets(items, statistic=statistic)
    spec = _Spec(model)
    values, cov, stat, success, n_iter, reason = _fit_spectra(spec, batch, max_iter, tol)
    k, nf = values.shape
    message = np.where(reason == "", np.where(success, "converged", "not converged"), reason).astype(object)
    refitted = np.zeros(k, bool)
    if refit:
        for i in np.flatnonzero((reason == "") & ~success):
            item = items.isel({dim: i}) if isinstance(items, xr.Dataset) else items[i]
            out, msg = _scalar_refit(model, item, spec.free)
            refitted[i] = True
            if out is None:
                message[i] = f"batch fit not converged; scalar Fit failed: {msg}"
                continue
            values[i], cov_i, stat[i], success[i] = out
            cov[i] = cov_i if cov_i is not None else np.nan
            message[i] = f"batch fit not converged; refitted with scalar Fit: {msg}"
    bad = reason != ""
    values[bad] = np.nan
    cov[bad] = np.nan
    stat[bad] = np.nan
    success &= ~bad
    names = _names(spec.free)
    to_value = spec.to_canonical
    out = {}
    for f, (name, p) in enumerate(zip(names, spec.free, strict=True)):
        unit = p.unit.to_string()
        out[name] = ((dim,), values[:, f] / to_value[f], {"units": unit})
        err = np.sqrt(np.where(np.einsum("kpp->kp", cov)[:, f] > 0, np.einsum("kpp->kp", cov)[:, f], np.nan))
        out[f"{name}_err"] = ((dim,), err / to_value[f], {"units": unit})
    cov_value = cov / np.outer(to_value, to_value)
    out["covariance"] = ((dim, "parameter", "parameter_j"), cov_value, {"units": "product of the parameters' units"})
    out["stat"] = ((dim,), stat, {"long_name": f"best-fit {batch.statistic} statistic"})
    out["success"] = ((dim,), success.astype(bool))
    out["message"] = ((dim,), message.astype(str))
    out["n_iter"] = ((dim,), n_iter.astype(np.int64))
    out["refit"] = ((dim,), refitted, {"long_name": "refitted with the scalar Fit after the batch fit"})
    if null is not None:
        stat0 = _null_stat(spec, model, batch, null, max_iter, tol)
        stat0 = np.where(bad, np.nan, stat0)
        ts = stat0 - stat
        ref_f = [spec.free.index(p) for p in null if p in spec.free]
        sign = np.ones(k)
        if ref_f:
            p0 = next(p for p in null if p in spec.free)
            sign = np.sign(values[:, ref_f[0]] - null[p0] * p0._scale_to_canonical)
        out["stat_null"] = ((dim,), stat0)
        out["ts"] = ((dim,), ts)
        out["sqrt_ts"] = ((dim,), sign * np.sqrt(np.clip(ts, 0, None)))
    ds = xr.Dataset(
        {k_: xr.Variable(*v) for k_, v in out.items()},
        coords={dim: (dim, np.asarray(labels)), "parameter": names, "parameter_j": names},
    )
    return ds


def _null_spec(model, ts, null):
    """``{parameter: value}`` of the null hypothesis, or None without TS."""
    if not ts and null is None:
        return None
    spec = getattr(model, "spectral_model", model)
    if null is None:
        norm = next((p for p in spec.parameters if p.is_norm and not p.frozen), None)
        if norm is None:
            raise ValueError("ts=True needs a free norm parameter (is_norm) or an explicit null={name: value}")
        return {norm: 0.0}
    out = {}
    for name, value in dict(null).items():
        if name not in spec.parameters.names:
            raise ValueError(f"null parameter {name!r} is not a parameter of the model ({spec.parameters.names})")
        p = spec.parameters[name]
        if p.frozen:
            raise ValueError(f"null parameter {name!r} is frozen: the null must fix a free parameter")
        out[p] = float(value)
    return out


def fit_batch(
    data,
    model,
    dim: str = "obs",
    statistic: str | None = None,
    ts: bool = False,
    null: dict | None = None,
    chunk_size: int = 2048,
    max_iter: int = 50,
    tol: float = 1e-8,
    refit: bool = True,
) -> xr.Dataset:
    """Fit ``model`` independently to every spectrum along ``dim`` of ``data``.

    Parameters
    ----------
    data : `xarray.Dataset` or list of datasets
        Spectra on one binning: a Dataset with dimension ``dim`` (lazy or not; variables without
        ``dim`` are shared by all spectra), or a list of `SpectrumDataset` /
        `SpectrumDatasetOnOff` / `xarray.Dataset`. Cash is used without ``counts_off``, WSTAT
        with it. Masks (``mask_safe AND mask_fit``) and dispersion may differ per spectrum.
    model : `SpectralModel` or `SkyModel`
        Starting values and bounds; frozen parameters are shared. It is not changed.
    dim : str
        The dimension along which spectra are independent.
    statistic : str, optional
        Override the statistic (a name in `xspec_ds.stats.STATISTICS`).
    ts : bool
        Also fit the null hypothesis and return ``stat_null``, ``ts`` and signed ``sqrt_ts``.
    null : dict, optional
        ``{parameter name: value}`` fixed in the null hypothesis (implies ``ts``); default the
        model's norm parameter at 0.
    chunk_size : int
        Spectra per vectorised chunk of an in-memory input (memory grows with it, not with K).
        A dask-backed input uses its own chunks along ``dim``, one task each.
    max_iter : int
        Newton iterations per spectrum before the scalar `Fit` takes over.
    tol : float
        Convergence threshold on the expected distance to the minimum (EDM).
    refit : bool
        Refit non-converged spectra with the scalar `Fit` (flagged in ``refit``).

    Returns
    -------
    `xarray.Dataset`
        Along ``dim``: for each free parameter ``p`` the variables ``p`` and ``p_err`` (in the
        parameter's unit, in their ``units`` attribute), ``covariance`` with dims
        ``(dim, "parameter", "parameter_j")``, ``stat``, ``success``, ``message``, ``n_iter``,
        ``refit``; with ``ts``: ``stat_null``, ``ts``, ``sqrt_ts``. ``attrs["units"]`` holds the
        units as a JSON string ``{name: unit}`` (netCDF attributes cannot be dicts).

    Raises
    ------
    ValueError
        ``dim`` missing from the data, a model without free parameters, spectra of one batch on
        different binnings (naming the spectrum), non-finite data (naming the spectrum and the
        variable).

    Examples
    --------
    >>> result = xs.fit_batch(xs.open_mfdataset("runs/*.nc"), xs.PowerLawSpectralModel())  # doctest: +SKIP
    >>> result["index"].plot()  # doctest: +SKIP
    """
    import json

    spec = _Spec(model)
    if not spec.free:
        raise ValueError(f"the model {type(spec.spec).__name__} has no free parameters: nothing to fit")
    null_map = _null_spec(model, ts, null)
    # validation hook
    kwargs = dict(model=model, dim=dim, statistic=statistic, max_iter=max_iter, tol=tol, refit=refit, null=null_map)
    if isinstance(data, xr.Dataset):
        if dim not in data.dims:
            raise ValueError(f"dimension {dim!r} is not in the data (its dimensions are {sorted(data.sizes)})")
        k = data.sizes[dim]
        labels = np.asarray(data[dim].values) if dim in data.coords else np.arange(k)
        chunks = _dim_chunks(data, dim)
        if chunks:
            import dask

            bounds = np.cumsum((0,) + tuple(chunks))
            tasks = [
                dask.delayed(_fit_chunk)(data.isel({dim: slice(a, b)}), labels[a:b], **kwargs)
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)
            ]
            parts = list(dask.compute(*tasks))
        else:
            parts = [
                _fit_chunk(data.isel({dim: slice(a, a + chunk_size)}), labels[a : a + chunk_size], **kwargs)
                for a in range(0, k, chunk_size)
            ]
    else:
        items = list(data)
        if not items:
            raise ValueError("no datasets to fit")
        labels = np.array([str(getattr(d, "name", None) or d.attrs.get("name", i)) for i, d in enumerate(items)])
        parts = [
            _fit_chunk(items[a : a + chunk_size], labels[a : a + chunk_size], **kwargs)
            for a in range(0, len(items), chunk_size)
        ]
    result = parts[0] if len(parts) == 1 else xr.concat(parts, dim=dim)
    units = {name: p.unit.to_string() for name, p in zip(_names(spec.free), spec.free, strict=True)}
    result.attrs["units"] = json.dumps(units)
    result.attrs["statistic"] = statistic or ("wstat" if _has_off(data) else "cash")
    result.attrs["model"] = json.dumps(spec.spec.to_dict(), default=str)
    return result


def _dim_chunks(data: xr.Dataset, dim: str):
    """dask chunk sizes along ``dim`` (None for in-memory data); variables chunked differently
    (e.g. `xs.open_mfdataset`: one chunk per file, other chunks for shared variables) are unified."""
    try:
        chunks = data.chunks
    except ValueError:  # inconsistent chunks between variables
        chunks = data.unify_chunks().chunks
    return chunks.get(dim) if chunks else None


def _has_off(data) -> bool:
    if isinstance(data, xr.Dataset):
        return "counts_off" in data.variables
    first = next(iter(data))
    return "counts_off" in (first if isinstance(first, xr.Dataset) else first.data).variables
