"""The batched norm problem behind flux points and light curves.

With ``reoptimize=False`` a flux point is a one-parameter fit: in every reco bin ``j`` of every
dataset the predicted signal is ``norm * mu_ref_j + mu_other_j`` (``mu_ref``: the reference model
of the source folded once; ``mu_other``: the other sources, fixed). Every quantity of a flux point
(best norm, its Hessian error, asymmetric errors and upper limit by profile likelihood, TS against
``norm = 0``, a likelihood scan) is therefore a 1-D problem, and the flux points of all energy bins
(and of all time bins of a light curve) are *rows* of one batch: R independent 1-D problems
solved together by vectorised root finding, never a Python loop over bins.

The statistic of a row is the sum over its *cells* (one cell = one unmasked reco bin of one
dataset assigned to that row) of Cash (`xspec_ds.stats.cash`) or WSTAT (`xspec_ds.stats.wstat`)
cells, exactly the terms ``Datasets.stat_sum`` adds up; the semantics follow Gammapy's
``FluxPointsEstimator`` / ``ParameterEstimator`` (Gammapy 2.1, ``gammapy.estimators``):
``norm_err`` from the curvature (``2 / S''``, statistic = -2 ln L), ``errn``/``errp`` where the
statistic rises by ``n_sigma**2``, ``norm_ul = norm + errp(n_sigma_ul)``, ``ts = S(0) - S(norm)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import stats
from ..forward import npred_total
from ..onoff import wstat_gradient_weights

__all__ = ["NormProblem", "solve_norm_problem", "find_roots_bracketed"]

#: Gammapy's default confidence search range for an unbounded parameter (``Parameter.conf_max``):
#: ``1e5 * max(step, |value|)`` on either side of the best fit.
CONF_RANGE_FACTOR = 1e5


def _segment_sum(values: np.ndarray, starts: np.ndarray, nonempty: np.ndarray, n_rows: int) -> np.ndarray:
    """Sum ``values[..., cells]`` per row (cells sorted by row; ``starts`` of the non-empty rows)."""
    out = np.zeros(values.shape[:-1] + (n_rows,))
    if starts.size:
        out[..., nonempty] = np.add.reduceat(values, starts, axis=-1)
    return out


@dataclass
class _Cells:
    """Flat arrays of unmasked reco bins (cells) of one statistic kind, sorted by row."""

    row: np.ndarray  # (C,) int
    dataset: np.ndarray  # (C,) int
    counts: np.ndarray  # (C,) on counts
    mu_ref: np.ndarray  # (C,) reference-model signal
    mu_other: np.ndarray  # (C,) signal of the other (fixed) models
    background: np.ndarray | None = None  # (C,) Cash: fixed background counts
    counts_off: np.ndarray | None = None  # (C,) WSTAT
    alpha: np.ndarray | None = None  # (C,) WSTAT

    def __post_init__(self):
        order = np.argsort(self.row, kind="stable")
        for name in ("row", "dataset", "counts", "mu_ref", "mu_other", "background", "counts_off", "alpha"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, np.ascontiguousarray(np.asarray(value)[order]))

    def segments(self, n_rows: int):
        counts = np.bincount(self.row, minlength=n_rows)
        nonempty = np.flatnonzero(counts)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[nonempty]
        return starts, nonempty

    def mu_sig(self, norm_rows: np.ndarray) -> np.ndarray:
        return norm_rows[..., self.row] * self.mu_ref + self.mu_other


class NormProblem:
    """R independent statistic profiles ``S_r(norm)``, evaluated for all rows at once.

    Parameters
    ----------
    n_rows : int
        Number of rows (flux points).
    n_datasets : int
        Number of datasets (for per-dataset sums such as ``counts`` and ``npred``).
    cash : dict, optional
        Cash cells: arrays ``row``, ``dataset``, ``counts``, ``mu_ref``, ``mu_other``,
        ``background`` (predicted background counts), one entry per unmasked reco bin.
    wstat : dict, optional
        WSTAT cells: ``row``, ``dataset``, ``counts``, ``mu_ref``, ``mu_other``, ``counts_off``,
        ``alpha``.
    """

    def __init__(self, n_rows: int, n_datasets: int, cash: dict | None = None, wstat: dict | None = None):
        self.n_rows = int(n_rows)
        self.n_datasets = int(n_datasets)
        self._parts = []
        for kind, cells in (("cash", cash), ("wstat", wstat)):
            if cells is not None and np.size(cells["row"]):
                c = _Cells(
                    **{
                        k: np.asarray(v, dtype=np.int64 if k in ("row", "dataset") else np.float64)
                        for k, v in cells.items()
                    }
                )
                self._parts.append((kind, c, c.segments(self.n_rows)))

    # per-row sums -------------------------------------------------------------------------
    def _sum(self, per_cell) -> np.ndarray:
        total = None
        for (_, _cells, (starts, nonempty)), values in zip(self._parts, per_cell, strict=True):
            s = _segment_sum(values, starts, nonempty, self.n_rows)
            total = s if total is None else total + s
        return total

    def _per_dataset(self, per_cell) -> np.ndarray:
        """``(R, K)`` sums of per-cell values (``per_cell`` aligned with ``self._parts``)."""
        out = np.zeros(self.n_rows * self.n_datasets)
        for (_, cells, _), values in zip(self._parts, per_cell, strict=True):
            out += np.bincount(cells.row * self.n_datasets + cells.dataset, weights=values, minlength=out.size)
        return out.reshape(self.n_rows, self.n_datasets)

    @property
    def n_cells(self) -> np.ndarray:
        """Number of unmasked reco bins per row (0: the row has no data)."""
        out = np.zeros(self.n_rows, dtype=np.int64)
        for _, cells, _ in self._parts:
            out += np.bincount(cells.row, minlength=self.n_rows)
        return out

    def counts(self) -> np.ndarray:
        """``(R, K)`` sum of on counts per row and dataset."""
        return self._per_dataset([c.counts for _, c, _ in self._parts])

    def npred_excess(self, norm) -> np.ndarray:
        """``(R, K)`` predicted signal of the source, ``norm * mu_ref`` summed over cells."""
        norm = np.asarray(norm, dtype=np.float64)
        return self._per_dataset([norm[c.row] * c.mu_ref for _, c, _ in self._parts])

    def npred(self, norm) -> np.ndarray:
        """``(R, K)`` total predicted counts (signal + background, WSTAT's profiled background)."""
        norm = np.asarray(norm, dtype=np.float64)
        values = []
        for kind, c, _ in self._parts:
            mu_sig = c.mu_sig(norm)
            if kind == "cash":
                values.append(npred_total(mu_sig, c.background))
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    mu_bkg = np.nan_to_num(stats.get_wstat_mu_bkg(c.counts, c.counts_off, c.alpha, mu_sig))
                values.append(npred_total(mu_sig, c.alpha * mu_bkg))
        return self._per_dataset(values)

    # statistic and derivative ------------------------------------------------------------------
    def stat(self, norm) -> np.ndarray:
        """``S_r(norm_r)``; ``norm`` has shape ``(..., R)``, the result too."""
        norm = np.asarray(norm, dtype=np.float64)
        values = []
        for kind, c, _ in self._parts:
            mu_sig = c.mu_sig(norm)
            if kind == "cash":
                values.append(stats.cash(c.counts, npred_total(mu_sig, c.background)))
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    values.append(stats.wstat(c.counts, c.counts_off, c.alpha, mu_sig))
        if not values:
            return np.zeros(norm.shape)
        return self._sum(values)

    def grad(self, norm) -> np.ndarray:
        """``dS_r/dnorm``; ``-inf`` where a cell with counts has a vanishing prediction.

        Below that point the truncated Cash statistic is flat (and WSTAT undefined), so the
        minimum lies above it: ``-inf`` keeps the derivative monotone for the root finder.
        """
        norm = np.asarray(norm, dtype=np.float64)
        values, blocked = [], []
        for kind, c, _ in self._parts:
            mu_sig = c.mu_sig(norm)
            if kind == "cash":
                mu = npred_total(mu_sig, c.background)
                w = stats.cash_gradient_weights(c.counts, mu)
                dead = (c.counts > 0) & (mu <= stats.TRUNCATION_VALUE)
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    mu_bkg = stats.get_wstat_mu_bkg(c.counts, c.counts_off, c.alpha, mu_sig)
                    w = wstat_gradient_weights(c.counts, c.counts_off, c.alpha, mu_sig, mu_bkg)
                dead = (c.counts > 0) & ~(mu_sig + c.alpha * mu_bkg > 0)
            values.append(w * c.mu_ref)
            blocked.append(dead.astype(np.float64))
        if not values:
            return np.zeros(norm.shape)
        g = self._sum(values)
        return np.where(self._sum(blocked) > 0, -np.inf, g)


# root finding ---------------------------------------------------------------------------------
def find_roots_bracketed(f, a, b, fa, fb, xtol, maxiter: int = 200):
    """Vectorised root finding of ``f`` between ``a`` and ``b`` (``fa``, ``fb`` of opposite signs).

    The Illinois variant of regula falsi (Dowell & Jarratt 1971), with a bisection step
    whenever the bracket did not at least halve in the previous step or an end value is not
    finite. Rows whose bracket is NaN are left NaN. ``f`` maps an array of x (one per row) to
    an array of values.

    Returns
    -------
    numpy.ndarray
        The roots, to ``xtol`` (absolute, per row).
    """
    a, b, fa, fb = (np.array(x, dtype=np.float64) for x in (a, b, fa, fb))
    xtol = np.broadcast_to(np.asarray(xtol, dtype=np.float64), a.shape)
    valid = np.isfinite(a) & np.isfinite(b) & (np.sign(fa) != np.sign(fb))
    exact_a, exact_b = valid & (fa == 0), valid & (fb == 0)
    done = ~valid | exact_a | exact_b
    x = np.where(exact_a, a, np.where(exact_b, b, 0.5 * (a + b)))
    last_side = np.zeros(a.shape, dtype=np.int8)
    width_prev = np.abs(b - a) * 2
    for _ in range(maxiter):
        if done.all():
            break
        width = np.abs(b - a)
        bisect = ~(np.isfinite(fa) & np.isfinite(fb)) | (width > 0.5 * width_prev)
        with np.errstate(divide="ignore", invalid="ignore"):
            xs = (a * fb - b * fa) / (fb - fa)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        bad = bisect | ~((xs > lo) & (xs < hi))
        xn = np.where(bad, 0.5 * (a + b), xs)
        xn = np.where(done, x, xn)
        fx = f(xn)
        width_prev = np.where(bad, width * 2, width)  # a bisection resets the halving test
        same_as_b = np.sign(fx) == np.sign(fb)
        # Illinois: when the same end is kept twice, halve its function value
        keep_a = same_as_b & ~done
        keep_b = ~same_as_b & ~done
        fa = np.where(keep_a & (last_side == 1), 0.5 * fa, fa)
        fb = np.where(keep_b & (last_side == -1), 0.5 * fb, fb)
        b, fb = np.where(keep_a, xn, b), np.where(keep_a, fx, fb)
        a, fa = np.where(keep_b, xn, a), np.where(keep_b, fx, fa)
        last_side = np.where(keep_a, 1, np.where(keep_b, -1, last_side)).astype(np.int8)
        x = np.where(done, x, xn)
        newly = ~done & ((fx == 0) | (np.abs(b - a) <= xtol))
        x = np.where(newly & (fx != 0), np.where(np.abs(fa) < np.abs(fb), a, b), x)
        x = np.where(newly & (fx == 0), xn, x)
        done = done | newly
    x = np.where(valid, x, np.nan)
    return x


def _bracket(f, x0, step, direction: float, limit, maxiter: int = 64):
    """Walk from ``x0`` in ``direction`` by doubling steps until ``f > 0`` (vectorised).

    Returns ``(a, fa, b, fb)`` with ``f(a) <= 0 < f(b)``; ``b`` is NaN for rows that did not
    find a sign change before ``limit`` (absolute distance from ``x0``)."""
    a = np.array(x0, dtype=np.float64)
    fa = f(a)
    b = np.full(a.shape, np.nan)
    fb = np.full(a.shape, np.nan)
    found = fa > 0  # already positive at x0: no bracket in this direction (caller handles)
    b = np.where(found, a, b)
    fb = np.where(found, fa, fb)
    active = ~found & np.isfinite(a)
    s = np.array(step, dtype=np.float64) * np.ones(a.shape)
    limit = np.broadcast_to(np.asarray(limit, dtype=np.float64), a.shape)
    lo, flo = a.copy(), fa.copy()
    for _ in range(maxiter):
        if not active.any():
            break
        dist = np.minimum(s, limit)
        x = np.asarray(x0) + direction * dist
        fx = f(np.where(active, x, lo))
        hit = active & (fx > 0)
        b, fb = np.where(hit, x, b), np.where(hit, fx, fb)
        move = active & ~hit
        lo, flo = np.where(move, x, lo), np.where(move, fx, flo)
        active = move & (dist < limit)
        s = s * 2
    return lo, flo, b, fb


def _scale(x) -> np.ndarray:
    return np.maximum(np.abs(x), 1e-3)


def solve_norm_problem(
    problem: NormProblem,
    n_sigma: float = 1.0,
    n_sigma_ul: float = 2.0,
    errn_errp: bool = True,
    ul: bool = True,
    scan_values=None,
    norm_min=None,
    norm_max=None,
    x0: float = 1.0,
    xtol: float = 1e-10,
) -> dict:
    """Best norm, errors, upper limit, TS and scan of every row of ``problem`` at once.

    Parameters
    ----------
    problem : `NormProblem`
    n_sigma, n_sigma_ul : float
        Statistic rise ``n_sigma**2`` for the asymmetric errors and ``n_sigma_ul**2`` for the
        upper limit (Gammapy's ``FluxEstimator`` defaults 1 and 2).
    errn_errp, ul : bool
        Compute the asymmetric errors / the upper limits.
    scan_values : array_like, optional
        Norm values of the likelihood scan (``stat_scan``, shape ``(R, M)``).
    norm_min, norm_max : float, optional
        Bounds of the norm (default: unbounded, searched within Gammapy's ``1e5 max(err, |norm|)``).
    x0 : float
        Starting value (the reference model: 1).
    xtol : float
        Relative tolerance of the roots.

    Returns
    -------
    dict
        Arrays of shape ``(R,)``: ``norm``, ``norm_err``, ``norm_errn``, ``norm_errp``, ``norm_ul``,
        ``ts``, ``stat``, ``stat_null``, ``success``, ``no_counts``; ``(R, K)``: ``counts``, ``npred``,
        ``npred_excess``; ``stat_scan`` ``(R, M)`` when scanned.
    """
    R = problem.n_rows
    lo_lim = -np.inf if norm_min is None or not np.isfinite(norm_min) else float(norm_min)
    hi_lim = np.inf if norm_max is None or not np.isfinite(norm_max) else float(norm_max)
    has_data = problem.n_cells > 0
    counts = problem.counts()
    no_counts = has_data & (counts.sum(axis=1) == 0)

    # 1) best fit: root of the (monotone) derivative, searched from x0 downwards or upwards
    start = np.full(R, float(np.clip(x0, lo_lim, hi_lim)))
    g0 = problem.grad(start)
    up_lim = np.minimum(CONF_RANGE_FACTOR * _scale(start), hi_lim - start)
    dn_lim = np.minimum(CONF_RANGE_FACTOR * _scale(start), start - lo_lim)
    step0 = 0.1 * _scale(start)
    # going up: f = grad (root where it turns positive); going down: f = -grad
    a_up, fa_up, b_up, fb_up = _bracket(problem.grad, start, step0, +1.0, up_lim)

    def neg_grad(x):
        return -problem.grad(x)

    a_dn, fa_dn, b_dn, fb_dn = _bracket(neg_grad, start, step0, -1.0, dn_lim)
    go_up = g0 <= 0
    a = np.where(go_up, a_up, b_dn)
    fa = np.where(go_up, fa_up, -fb_dn)
    b = np.where(go_up, b_up, a_dn)
    fb = np.where(go_up, fb_up, -fa_dn)
    norm = find_roots_bracketed(problem.grad, a, b, fa, fb, xtol * _scale(start))
    # a bound is the optimum when the derivative does not change sign inside the bounds
    at_hi = go_up & np.isnan(b_up) & np.isfinite(hi_lim)
    at_lo = ~go_up & np.isnan(b_dn) & np.isfinite(lo_lim)
    norm = np.where(at_hi, hi_lim, np.where(at_lo, lo_lim, norm))
    success = has_data & ~no_counts & np.isfinite(norm)
    norm = np.where(success, norm, np.nan)

    # 2) curvature error: central differences of the analytic derivative, step ~1e-3 sigma
    def curvature(x, h):
        return (problem.grad(x + h) - problem.grad(x - h)) / (2 * h)

    safe_norm = np.where(success, norm, 1.0)
    h = 1e-4 * _scale(safe_norm)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = curvature(safe_norm, h)
        err = np.sqrt(2.0 / c)
        h2 = np.where(np.isfinite(err) & (err > 0), 1e-3 * err, h)
        c = curvature(safe_norm, h2)
        err = np.sqrt(2.0 / c)
    err = np.where(success & np.isfinite(err), err, np.nan)
    success = success & np.isfinite(err)

    stat_best = np.where(success, problem.stat(safe_norm), np.nan)
    stat_null = problem.stat(np.zeros(R))
    stat_null = np.where(has_data, stat_null, np.nan)
    ts = stat_null - stat_best
    out = {
        "norm": norm,
        "norm_err": n_sigma * err,
        "ts": ts,
        "stat": stat_best,
        "stat_null": stat_null,
        "success": success,
        "no_counts": no_counts,
        "counts": counts,
        "npred": np.where(success[:, None], problem.npred(safe_norm), np.nan),
        "npred_excess": np.where(success[:, None], problem.npred_excess(safe_norm), np.nan),
    }

    # 3) profile-likelihood errors and upper limits: where S rises by sigma^2 above its minimum
    err_step = np.where(np.isfinite(err), err, 0.1 * _scale(safe_norm))
    conf_span = CONF_RANGE_FACTOR * np.maximum(err_step, np.abs(safe_norm))

    def crossing(level, direction, base, base_stat):
        lim = conf_span if direction > 0 else conf_span
        lim = np.minimum(lim, (hi_lim - base) if direction > 0 else (base - lo_lim))

        def f(x):
            return problem.stat(x) - base_stat - level

        a, fa, b, fb = _bracket(f, base, err_step, direction, lim)
        root = find_roots_bracketed(f, a, b, fa, fb, xtol * np.maximum(err_step, 1e-12 * _scale(base)))
        return np.abs(root - base)

    if errn_errp:
        out["norm_errp"] = np.where(success, crossing(n_sigma**2, +1.0, safe_norm, stat_best), np.nan)
        out["norm_errn"] = np.where(success, crossing(n_sigma**2, -1.0, safe_norm, stat_best), np.nan)
    if ul:
        ul_value = safe_norm + crossing(n_sigma_ul**2, +1.0, safe_norm, stat_best)
        # a bin without counts: the limit from norm = 0 (the best physical value), flagged by success
        ul_empty = np.full(R, np.nan)
        if no_counts.any():
            base0 = np.where(no_counts, np.maximum(0.0, lo_lim), np.nan)
            stat0 = np.where(no_counts, stat_null, np.nan)
            ul_empty = base0 + crossing(n_sigma_ul**2, +1.0, np.where(no_counts, base0, 0.0), stat0)
        out["norm_ul"] = np.where(success, ul_value, np.where(no_counts, ul_empty, np.nan))
    if scan_values is not None:
        scan = np.asarray(scan_values, dtype=np.float64)
        grid = np.broadcast_to(scan[:, None], (scan.size, R))
        stat_scan = problem.stat(grid).T  # (R, M)
        out["norm_scan"] = scan
        out["stat_scan"] = np.where(has_data[:, None], stat_scan, np.nan)
    return out
