"""Joint fits over many datasets in one vectorised pass.

`JointLikelihood` groups the datasets of a joint fit that share a binning, a statistic and the
same sky models (and have no background model and a dense dispersion matrix): their arrays are
stacked once, at the start of the fit, into ``(K, N)`` arrays, and every evaluation integrates the
shared model once on the common true-energy grid, folds all K spectra with one batched product and
sums the statistic and its adjoint gradient with `xspec_ds.likelihood` (K rows, one theta).
Datasets that do not fit in a group (sparse responses, background models, a binning of their own)
are evaluated one by one as before. The numbers are those of the per-dataset sum (the order of the
additions differs: ~1e-13 relative).

The stacked arrays are a snapshot taken when the fit starts (`Fit.optimize` and
`Fit.covariance` build one per call), so the data must not change during a fit.
"""

from __future__ import annotations

import numpy as np

from .. import likelihood

__all__ = ["JointLikelihood"]

MIN_GROUP = 2
"""Smallest number of datasets worth stacking into a group."""


class _Group:
    """K same-binning datasets stacked into ``(K, ...)`` arrays."""

    def __init__(self, datasets, inputs):
        self.first = datasets[0]
        record, _, grid, _, _, _ = inputs[0]
        self.record = record
        self.grid = grid
        keys = inputs[0][1].keys()
        self.data = {k: np.stack([inp[1][k] for inp in inputs]) for k in keys}
        n_reco = self.data["counts"].shape[1]
        masks = [inp[5] if inp[5] is not None else np.ones(n_reco, bool) for inp in inputs]
        self.mask = np.stack(masks)
        exposures = [inp[3] for inp in inputs]
        edisps = [inp[4] for inp in inputs]
        self.exposure = np.stack(exposures)
        first = edisps[0]
        if first is None or all(e is first or np.array_equal(e, first) for e in edisps[1:]):
            self.edisp = first  # one shared matrix: a plain BLAS product for all K
        else:
            self.edisp = np.stack(edisps)

    def stat_gradient(self, params, index, cache):
        flux, rows, dflux = self.first._model_fluxes(self.grid, index, cache)
        if flux is None:
            flux = np.zeros(self.exposure.shape[-1])
        stat, g, _ = likelihood.stat_grad(self.record, flux, dflux, self.exposure, self.edisp, self.data, self.mask)
        grad = np.zeros(len(params))
        if g is not None:
            np.add.at(grad, rows, g.sum(axis=0))
        return float(np.sum(stat)), grad

    def stat_value(self, cache):
        """The summed statistic alone (one fold, no adjoint)."""
        flux, _, _ = self.first._model_fluxes(self.grid, {}, cache)
        if flux is None:
            flux = np.zeros(self.exposure.shape[-1])
        stat, _, _ = likelihood.stat_grad(self.record, flux, None, self.exposure, self.edisp, self.data, self.mask)
        return float(np.sum(stat))

    def stat_grad_fisher(self, params, index, cache):
        """`stat_gradient` plus the expected information, summed over the K spectra."""
        flux, rows, dflux = self.first._model_fluxes(self.grid, index, cache)
        n = len(params)
        if flux is None or dflux is None:
            stat, _ = self.stat_gradient(params, index, cache)
            return stat, np.zeros(n), np.zeros((n, n))
        stat, g, info, _ = likelihood.stat_grad_fisher(
            self.record, flux, dflux, self.exposure, self.edisp, self.data, self.mask
        )
        return (float(np.sum(stat)), *likelihood.on_parameters(g.sum(axis=0), info.sum(axis=0), rows, n))


def _group_key(d, inputs):
    """Hashable description of what must be equal for datasets to share a group, or None."""
    record, data, grid, exposure, edisp, mask = inputs
    if exposure is None or not isinstance(edisp, np.ndarray) or edisp.ndim != 2:
        return None
    if getattr(d, "background_model", None) is not None:
        return None
    models = tuple(id(ev.model) for ev in d.evaluators.values())
    return (
        type(d),
        record.name,
        tuple(sorted(data)),
        models,
        grid.e_lo.tobytes(),
        grid.e_hi.tobytes(),
        edisp.shape,
    )


class JointLikelihood:
    """Total statistic and gradient of a joint fit, with same-binning datasets vectorised.

    Parameters
    ----------
    datasets : `Datasets`
    """

    def __init__(self, datasets):
        self.groups, self.singles = [], []
        # per dataset: the last fold and the parameter values it was made with; when only the norm
        # changed the fold is skipped (`SpectrumDataset._signal_from_fold_cache`). Lives for one fit.
        self.fold_cache: dict = {}
        buckets: dict = {}
        for d in datasets:
            try:
                inputs = d._likelihood_inputs()
                key = _group_key(d, inputs)
            except (AttributeError, ValueError):
                key, inputs = None, None
            if key is None:
                self.singles.append(d)
            else:
                buckets.setdefault(key, []).append((d, inputs))
        for members in buckets.values():
            if len(members) >= MIN_GROUP:
                self.groups.append(_Group([m[0] for m in members], [m[1] for m in members]))
            else:
                self.singles.extend(m[0] for m in members)

    def stat_gradient(self, params) -> tuple[float, np.ndarray]:
        """Sum of the statistic over all datasets and its gradient with respect to ``params``."""
        index = {id(p): k for k, p in enumerate(params)}
        # model fluxes shared between datasets for this one evaluation (none to share with one dataset)
        cache: dict | None = {} if len(self.groups) + len(self.singles) > 1 else None
        total, grad = 0.0, np.zeros(len(params))
        for g in self.groups:
            s, gr = g.stat_gradient(params, index, cache)
            total += s
            grad += gr
        for d in self.singles:
            s, gr = d._stat_gradient(params, cache=cache, fold_cache=self.fold_cache)
            total += s
            grad += gr
        return total, grad

    def stat_value(self) -> float:
        """Sum of the statistic over all datasets, without the gradient."""
        cache: dict | None = {} if len(self.groups) + len(self.singles) > 1 else None
        total = 0.0
        for g in self.groups:
            total += g.stat_value(cache)
        for d in self.singles:
            total += d._stat_value(cache=cache, fold_cache=self.fold_cache)
        return total

    def stat_grad_fisher(self, params):
        """Total statistic, gradient and expected information (``(P, P)``) for Fisher scoring,
        or None if a dataset cannot give its information (`SpectrumDataset._stat_grad_fisher`)."""
        index = {id(p): k for k, p in enumerate(params)}
        cache: dict | None = {} if len(self.groups) + len(self.singles) > 1 else None
        n = len(params)
        total, grad, info = 0.0, np.zeros(n), np.zeros((n, n))
        for d in self.singles:  # first: one without information ends the call before any group folds
            out = d._stat_grad_fisher(params, cache=cache)
            if out is None:
                return None
            total, grad, info = total + out[0], grad + out[1], info + out[2]
        for g in self.groups:
            s, gr, inf = g.stat_grad_fisher(params, index, cache)
            total, grad, info = total + s, grad + gr, info + inf
        return total, grad, info
