"""Flux points with ``reoptimize=True``: the slow path, one `xspec_ds.Fit` per energy bin.

In every energy bin the source's reference model is scaled by a free ``norm`` (its own
parameters frozen) and the free parameters of the *other* models are refitted with it
(Gammapy's ``reoptimize=True``); TS, errors, upper limits and scans profile them too. This is
a Python loop over bins (each a full fit), kept for completeness until the batched engine can
take it over; ``reoptimize=False`` is the vectorised path.
"""

from __future__ import annotations

import numpy as np

from ..fit import Datasets, Fit
from ..models import Parameter, ScaleSpectralModel

__all__ = ["solve_reoptimize"]


def solve_reoptimize(estimator, datasets: list, source, group: np.ndarray, n_rows: int) -> dict:
    """Per-bin fits; returns the same dict layout as `solve_norm_problem`."""
    fit = estimator.fit or Fit()
    k = len(datasets)
    keys = ["norm", "norm_err", "norm_errn", "norm_errp", "norm_ul", "ts", "stat", "stat_null"]
    out = {key: np.full(n_rows, np.nan) for key in keys}
    out["success"] = np.zeros(n_rows, bool)
    out["no_counts"] = np.zeros(n_rows, bool)
    for key in ("counts", "npred", "npred_excess"):
        out[key] = np.full((n_rows, k), np.nan if key != "counts" else 0.0)
    scan = None
    if "scan" in estimator.selection_optional:
        from .flux_points import scan_values

        scan = scan_values(estimator.norm)
        out["norm_scan"] = scan
        out["stat_scan"] = np.full((n_rows, scan.size), np.nan)
    copies = [d.copy(name=d.name) for d in datasets]
    spec_ref = source.spectral_model.copy()
    for p in spec_ref.parameters:
        p.frozen = True
    scale = ScaleSpectralModel(spec_ref)
    norm: Parameter = scale.parameters["norm"]
    norm.value = estimator.norm["value"]
    if np.isfinite(estimator.norm["min"]):
        norm.min = estimator.norm["min"]
    if np.isfinite(estimator.norm["max"]):
        norm.max = estimator.norm["max"]
    for d, orig in zip(copies, datasets, strict=True):
        models = []
        for m in orig.models:
            if m.name == source.name:
                new = m.copy()
                new.spectral_model = scale
                models.append(new)
            else:
                models.append(m)
        d.models = models
    base_masks = [None if d.mask_fit is None else np.asarray(d.mask_fit.values, bool) for d in copies]
    for r in range(n_rows):  # one full fit per energy bin (slow path)
        active = []
        for d, bm in zip(copies, base_masks, strict=True):
            in_bin = group == r
            d.mask_fit = in_bin if bm is None else (in_bin & bm)
            mask = d.mask
            if mask is not None and bool(np.asarray(mask.values).any()):
                active.append(d)
        for i, d in enumerate(copies):
            mask = d.mask
            if mask is not None:
                out["counts"][r, i] = float(np.asarray(d.counts.values)[np.asarray(mask.values, bool)].sum())
        if not active:
            continue
        ds = Datasets(active)
        norm.value, norm.frozen = estimator.norm["value"], False
        saved = [(p, p.value) for p in ds.parameters]
        try:
            res = fit.run(ds)
        except ValueError:
            for p, v in saved:
                p.value = v
            continue
        out["norm"][r] = norm.value
        out["norm_err"][r] = estimator.n_sigma * norm.error
        out["stat"][r] = ds.stat_sum()
        out["success"][r] = res.success
        best = [(p, p.value) for p in ds.parameters]
        norm.frozen = True
        norm.value = 0.0
        if any(not p.frozen for p in ds.parameters):
            fit.optimize(ds)
        out["stat_null"][r] = ds.stat_sum()
        for p, v in best:
            p.value = v
        norm.frozen = False
        out["ts"][r] = out["stat_null"][r] - out["stat"][r]
        if "errn-errp" in estimator.selection_optional:
            conf = fit.confidence(ds, norm, sigma=estimator.n_sigma, reoptimize=True)
            out["norm_errn"][r], out["norm_errp"][r] = conf["errn"], conf["errp"]
        if "ul" in estimator.selection_optional:
            conf = fit.confidence(ds, norm, sigma=estimator.n_sigma_ul, reoptimize=True)
            out["norm_ul"][r] = norm.value + conf["errp"]
        if scan is not None:
            prof = fit.stat_profile(ds, norm, reoptimize=True, values=scan)
            out["stat_scan"][r] = prof["stat_scan"]
        for i, d in enumerate(copies):
            if d in active:
                mask = np.asarray(d.mask.values, bool)
                out["npred"][r, i] = float(np.asarray(d.npred().values)[mask].sum())
                out["npred_excess"][r, i] = float(np.asarray(d.npred_signal(model=source.name).values)[mask].sum())
        for p, v in saved:
            p.value = v
    return out
