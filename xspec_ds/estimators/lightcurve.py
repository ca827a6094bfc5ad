"""`LightCurveEstimator`: flux points per observation or per time interval.

Gammapy's semantics (``gammapy.estimators.LightCurveEstimator``, Gammapy 2.1): the time bins are
the observations' time ranges (first GTI start to last GTI stop; identical ranges merge into one
bin) or the given ``time_intervals``; a dataset belongs to a time bin when its time range lies
inside it (within ``atol``); in each time bin the flux points are those of
`FluxPointsEstimator` on the datasets of that bin (their statistics add up); time bins without
datasets are skipped. Unlike Gammapy, observations without times (e.g. OGIP spectra without GTI)
do not fail: the light curve then has one point per observation along an ``obs`` dimension.

All (time bin x energy bin) flux points are rows of ONE batched norm problem
(`xspec_ds.estimators.profile`): the reference model is folded once per observation (for an
``obs``-dimensioned `xarray.Dataset`, once for all observations, lazily with dask when the
Dataset is), and the fits are one vectorised computation.
"""

from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np
import xarray as xr
from astropy.time import Time

from ..dataset import CM2S
from ..models import Models, SkyModel, SpectralModel
from ..models.spectral import ENERGY_UNIT
from ..validation import validate
from .flux_points import FluxPointsEstimator, _as_list, dataset_arrays, resolve_source, snap_energy_groups
from .flux_points_data import FluxPoints
from .profile import NormProblem

__all__ = ["LightCurveEstimator"]


_REF_MJD: dict = {}


def _reference_mjd(reference: str) -> float:
    """MJD (TT) of a GTI reference time, parsed once per distinct reference string."""
    if reference not in _REF_MJD:
        _REF_MJD[reference] = float(Time(reference, scale="tt").mjd)
    return _REF_MJD[reference]


def _dataset_times(dataset):
    """(first GTI start, last GTI stop) in MJD (TT), or None without GTI (read from the raw
    ``gti_start``/``gti_stop`` variables, see `xspec_ds.GTI`)."""
    var = dataset.data.variables.get("gti_start")
    if var is None or var.size == 0:
        return None
    stop = dataset.data.variables["gti_stop"]
    to_day = u.Unit(var.attrs.get("units", "s")).to(u.day)
    mjd = _reference_mjd(var.attrs.get("time_reference", "2000-01-01T00:00:00"))
    return float(mjd + np.nanmin(var.values) * to_day), float(mjd + np.nanmax(stop.values) * to_day)


def _obs_source(models, source):
    if models is None:
        raise ValueError("an obs-dimensioned xarray.Dataset carries no models: pass models=... to run()")
    if isinstance(models, SpectralModel):
        models = SkyModel(models, name="source")
    models = Models(models)
    try:
        model = models[source]
    except (KeyError, IndexError):
        raise ValueError(f"source {source!r} is not among the models; models are {models.names}") from None
    return model, [m for m in models if isinstance(m, SkyModel) and m is not model]


def _values(da) -> np.ndarray:
    return np.asarray(da.values, dtype=np.float64)


def _obs_arrays(data: xr.Dataset, source: SkyModel, others: list) -> dict:
    """Stacked ``(K, n_energy)`` arrays of an ``obs``-dimensioned Dataset, folded in one go.

    ``mu_ref = sum_i F_i exposure_i edisp_ij`` for all observations at once (xarray, so a
    dask-backed Dataset is computed chunk by chunk)."""
    if "obs" not in data.dims:
        raise ValueError("the xarray.Dataset needs an 'obs' dimension (see xs.open_mfdataset)")
    for name in ("counts", "exposure"):
        if name not in data:
            raise ValueError(f"the obs Dataset has no {name!r} variable")
    lo = data.coords["energy_true_min"]
    hi = data.coords["energy_true_max"]
    scale = u.Unit(lo.attrs.get("units", "TeV")).to(ENERGY_UNIT)
    e_lo, e_hi = _values(lo) * scale, _values(hi) * scale
    exp_scale = u.Unit(data["exposure"].attrs.get("units", "m2 s")).to(CM2S)

    def fold(model):
        flux = xr.DataArray(model.spectral_model._integral(e_lo, e_hi), dims=("energy_true",))
        mu_true = flux * data["exposure"] * exp_scale
        if "edisp" in data:
            return (mu_true * data["edisp"]).sum("energy_true")
        if data.sizes["energy_true"] != data.sizes["energy"]:
            raise ValueError("the obs Dataset has no 'edisp' and different true and reco binnings")
        return mu_true.rename(energy_true="energy")

    k, nr = data.sizes["obs"], data.sizes["energy"]
    out = {"counts": _values(data["counts"].transpose("obs", "energy"))}
    out["mu_ref"] = _values(fold(source).transpose("obs", "energy"))
    other = np.zeros((k, nr))
    for m in others:
        other = other + _values(fold(m).transpose("obs", "energy"))
    out["mu_other"] = other
    mask = np.ones((k, nr), bool)
    for name in ("mask_safe", "mask_fit"):
        if name in data:
            mask &= np.broadcast_to(np.asarray(data[name].transpose(..., "energy").values, bool), (k, nr))
    out["mask"] = mask
    if "counts_off" in data:
        out["kind"] = np.array(["wstat"] * k)
        out["counts_off"] = _values(data["counts_off"].transpose("obs", "energy"))
        acc = np.broadcast_to(_values(data["acceptance"].transpose(..., "energy")), (k, nr))
        acc_off = np.broadcast_to(_values(data["acceptance_off"].transpose(..., "energy")), (k, nr))
        out["alpha"] = np.divide(acc, acc_off, out=np.zeros((k, nr)), where=acc_off != 0)
        out["background"] = np.zeros((k, nr))
    else:
        out["kind"] = np.array(["cash"] * k)
        bkg = data["background"].transpose("obs", "energy") if "background" in data else None
        out["background"] = np.zeros((k, nr)) if bkg is None else _values(bkg)
        out["counts_off"] = np.zeros((k, nr))
        out["alpha"] = np.zeros((k, nr))
    names = [str(n) for n in data["obs"].values] if "obs" in data.coords else [str(i) for i in range(k)]
    times = None
    if "gti_start" in data:
        ref = Time(data["gti_start"].attrs.get("time_reference", "2000-01-01T00:00:00"), scale="tt")
        unit = u.Unit(data["gti_start"].attrs.get("units", "s")).to(u.day)
        start = np.nanmin(_values(data["gti_start"].transpose("obs", ...)).reshape(k, -1), axis=1) * unit
        stop = np.nanmax(_values(data["gti_stop"].transpose("obs", ...)).reshape(k, -1), axis=1) * unit
        times = np.stack([ref.tt.mjd + start, ref.tt.mjd + stop], axis=1)
    edges_lo = data.coords["energy_min"]
    escale = u.Unit(edges_lo.attrs.get("units", "TeV")).to(ENERGY_UNIT)
    reco = np.append(_values(edges_lo), _values(data.coords["energy_max"])[-1]) * escale
    return {"arrays": out, "names": names, "times": times, "reco_edges": reco}


def _raw(dataset, name):
    var = dataset.data.variables.get(name)
    return None if var is None else np.asarray(var.values)


def _fast_stackable(datasets: list, source) -> bool:
    """True when the datasets can be folded as one stack: the same sky models (objects) on every
    dataset, no background model, the same true-energy binning, exposure and edisp present."""
    first = datasets[0]
    models = list(first.models)
    if any(not isinstance(m, SkyModel) or m.datasets_names is not None for m in models):
        return False
    e0 = (_raw(first, "energy_true_min"), _raw(first, "energy_true_max"))
    if e0[0] is None or _raw(first, "edisp") is None:
        return False
    unit0 = first.data["energy_true_min"].attrs.get("units")
    kind0 = getattr(first, "stat_type", "cash")
    for d in datasets:
        if list(d.models) != models or getattr(d, "stat_type", "cash") != kind0:
            return False
        if d.data.variables.get("exposure") is None or d.data.variables.get("edisp") is None:
            return False
        if d.data["energy_true_min"].attrs.get("units") != unit0:
            return False
        lo, hi = _raw(d, "energy_true_min"), _raw(d, "energy_true_max")
        if lo.shape != e0[0].shape or not (np.array_equal(lo, e0[0]) and np.array_equal(hi, e0[1])):
            return False
    return True


def _stacked_arrays(datasets: list, source) -> dict:
    """``(K, n_energy)`` arrays of datasets sharing models and binning, folded in ONE einsum."""
    first = datasets[0]
    k = len(datasets)
    scale = u.Unit(first.data["energy_true_min"].attrs.get("units", "TeV")).to(ENERGY_UNIT)
    e_lo, e_hi = _raw(first, "energy_true_min") * scale, _raw(first, "energy_true_max") * scale
    scales: dict = {}  # unit string -> factor to cm2 s, parsed once

    def exposure_of(d):
        var = d.data.variables["exposure"]
        unit = var.attrs.get("units", "m2 s")
        if unit not in scales:
            scales[unit] = u.Unit(unit).to(CM2S)
        return np.asarray(var.values) * scales[unit]

    exposure = np.stack([exposure_of(d) for d in datasets])
    edisp = np.stack([_raw(d, "edisp") for d in datasets])
    counts = np.stack([_raw(d, "counts") for d in datasets]).astype(np.float64)
    nr = counts.shape[1]

    def fold(model):
        flux = model.spectral_model._integral(e_lo, e_hi)
        return np.einsum("kt,ktr->kr", exposure * flux, edisp)

    out = {"counts": counts, "mu_ref": fold(source), "mu_other": np.zeros((k, nr))}
    for m in first.models:
        if m is not source:
            out["mu_other"] = out["mu_other"] + fold(m)
    mask = np.ones((k, nr), bool)
    for name in ("mask_safe", "mask_fit"):
        values = [_raw(d, name) for d in datasets]
        mask &= np.stack([np.ones(nr, bool) if v is None else v.astype(bool) for v in values])
    out["mask"] = mask
    zeros = np.zeros((k, nr))
    if getattr(first, "stat_type", "cash") == "wstat":
        out["kind"] = np.array(["wstat"] * k)
        out["counts_off"] = np.stack([_raw(d, "counts_off") for d in datasets]).astype(np.float64)
        acc = np.stack([_raw(d, "acceptance") for d in datasets]).astype(np.float64)
        acc_off = np.stack([_raw(d, "acceptance_off") for d in datasets]).astype(np.float64)
        out["alpha"] = np.divide(acc, acc_off, out=np.zeros((k, nr)), where=acc_off != 0)
        out["background"] = zeros
    else:
        out["kind"] = np.array(["cash"] * k)
        bkg = [_raw(d, "background") for d in datasets]
        out["background"] = np.stack([np.zeros(nr) if b is None else b for b in bkg]).astype(np.float64)
        out["counts_off"] = out["alpha"] = zeros
    return out


def _list_arrays(datasets: list, source) -> dict:
    """Stacked ``(K, n_energy)`` arrays of a list of datasets.

    Datasets that share their models and true-energy binning are folded in one vectorised
    step; otherwise the reference model is folded once per dataset (`dataset_arrays`)."""
    edges = [d._energy_axis.edges.to_value(u.TeV) for d in datasets[:1]]
    for d in datasets[1:]:
        lo = _raw(d, "energy_min")
        if lo is None or lo.shape != _raw(datasets[0], "energy_min").shape:
            raise ValueError(
                f"all datasets must have aligned reco energy axes; {d.name!r} differs from {datasets[0].name!r}"
            )
        e = (
            d._energy_axis.edges.to_value(u.TeV)
            if not np.array_equal(lo, _raw(datasets[0], "energy_min"))
            else edges[0]
        )
        if not np.allclose(e, edges[0], rtol=1e-9, atol=0):
            raise ValueError(
                f"all datasets must have aligned reco energy axes; {d.name!r} differs from {datasets[0].name!r}"
            )
    if _fast_stackable(datasets, source):
        out = _stacked_arrays(datasets, source)
    else:
        per = [dataset_arrays(d, source) for d in datasets]
        nr = per[0]["counts"].size
        out = {}
        for key in ("counts", "mu_ref", "mu_other", "mask"):
            out[key] = np.stack([p[key] for p in per])
        out["kind"] = np.array([p["kind"] for p in per])
        zeros = np.zeros(nr)
        out["background"] = np.stack([p.get("background", zeros) for p in per])
        out["counts_off"] = np.stack([p.get("counts_off", zeros) for p in per])
        out["alpha"] = np.stack([p.get("alpha", zeros) for p in per])
    times = [_dataset_times(d) for d in datasets]
    if all(t is None for t in times):
        times = None
    elif any(t is None for t in times):
        missing = [d.name for d, t in zip(datasets, times, strict=True) if t is None]
        warnings.warn(
            f"datasets {missing} have no GTI: the light curve uses an 'obs' axis (one point per dataset)", stacklevel=3
        )
        times = None
    else:
        times = np.array(times)
    return {"arrays": out, "names": [d.name for d in datasets], "times": times, "reco_edges": edges[0]}


def _problem_from_pairs(
    arrays: dict, pair_t: np.ndarray, pair_k: np.ndarray, group: np.ndarray, n_groups: int, n_rows: int, n_datasets: int
):
    """One `NormProblem` for all (time bin, dataset) pairs, built without a loop over datasets."""
    sel = arrays["mask"][pair_k] & (group >= 0)[None, :]  # (P, Nr)
    p_idx, j_idx = np.nonzero(sel)
    k_idx = pair_k[p_idx]
    row = pair_t[p_idx] * n_groups + group[j_idx]
    kinds = arrays["kind"][k_idx]
    parts = {}
    for kind in ("cash", "wstat"):
        m = kinds == kind
        if not m.any():
            parts[kind] = None
            continue
        kk, jj = k_idx[m], j_idx[m]
        cells = {
            "row": row[m],
            "dataset": kk,
            "counts": arrays["counts"][kk, jj],
            "mu_ref": arrays["mu_ref"][kk, jj],
            "mu_other": arrays["mu_other"][kk, jj],
        }
        if kind == "cash":
            cells["background"] = arrays["background"][kk, jj]
        else:
            cells["counts_off"] = arrays["counts_off"][kk, jj]
            cells["alpha"] = arrays["alpha"][kk, jj]
        parts[kind] = cells
    return NormProblem(n_rows, n_datasets, cash=parts["cash"], wstat=parts["wstat"])


class LightCurveEstimator(FluxPointsEstimator):
    """Light curve: flux points per observation (default) or per time interval.

    Parameters
    ----------
    energy_edges : `~astropy.units.Quantity`
        Energy bins of the light curve (default one bin, 1-10 TeV, as Gammapy).
    source : str or int
        Source name or index among the models.
    time_intervals : list of (`~astropy.time.Time`, `~astropy.time.Time`), optional
        Time bins; default: one per distinct observation time range.
    atol : `~astropy.units.Quantity` or str
        Tolerance of the "dataset inside the time bin" test (Gammapy: 1e-6 s).
    **kwargs
        `FluxPointsEstimator` options (``n_sigma``, ``n_sigma_ul``, ``selection_optional``,
        ``norm``, ``reoptimize``).

    Examples
    --------
    >>> lc = LightCurveEstimator(energy_edges=[1, 10] * u.TeV, source="crab", selection_optional=["ul"]).run(datasets)  # doctest: +SKIP
    >>> lc.to_table(format="lightcurve", sed_type="flux")  # doctest: +SKIP
    """

    tag = "LightCurveEstimator"

    def __init__(self, energy_edges=(1, 10) * u.TeV, source=0, time_intervals=None, atol="1e-6 s", **kwargs):
        super().__init__(energy_edges=energy_edges, source=source, **kwargs)
        self.time_intervals = time_intervals
        self.atol = u.Quantity(atol)

    def _intervals(self, times):
        if self.time_intervals is None:
            return np.unique(times, axis=0)  # sorted by start; identical ranges merge
        out = []
        for pair in self.time_intervals:
            t0, t1 = (t if isinstance(t, Time) else Time(t) for t in pair)
            out.append((t0.tt.mjd, t1.tt.mjd))
        return np.array(out, dtype=np.float64).reshape(-1, 2)

    def run(self, datasets, models=None) -> FluxPoints:
        """Estimate the light curve.

        Parameters
        ----------
        datasets : list of datasets, `xspec_ds.Datasets`, or `xarray.Dataset` with an ``obs`` dimension
        models : optional
            Models for an ``obs``-dimensioned Dataset (which carries none).
        """
        if self.reoptimize:
            raise NotImplementedError("LightCurveEstimator supports reoptimize=False (the batched path) only")
        if isinstance(datasets, xr.Dataset):
            validate(datasets, fit_bins=False)  # one vectorised pass over obs (xspec_ds.validation)
            source, others = _obs_source(models, self.source)
            info = _obs_arrays(datasets, source, others)
        else:
            datasets = _as_list(datasets)
            if not datasets:
                raise ValueError("no datasets given")
            for d in datasets:
                validate(d, fit_bins=False)
                getattr(d, "_refresh_kernels", lambda: None)()  # in-place edits of a sparse or banded kernel
            source = resolve_source(datasets, self.source)
            info = _list_arrays(datasets, source)
        arrays, names, times = info["arrays"], info["names"], info["times"]
        k = len(names)
        reco = info["reco_edges"]
        requested = self.energy_edges.to_value(u.TeV)
        if requested[-1] <= reco[0] or requested[0] >= reco[-1]:
            raise ValueError(
                f"energy_edges {self.energy_edges} lie outside the datasets' reco energy range [{reco[0]:.4g}, {reco[-1]:.4g}] TeV"
            )
        lo, hi, group = snap_energy_groups(reco, requested)
        empty = hi <= lo
        emin = np.where(empty, requested[:-1], reco[np.minimum(lo, reco.size - 1)])
        emax = np.where(empty, requested[1:], reco[np.minimum(hi, reco.size - 1)])
        nb = emin.size
        if times is None:
            if self.time_intervals is not None:
                raise ValueError("time_intervals were given but the datasets carry no times (GTI)")
            pair_t = pair_k = np.arange(k)
            outer = ("obs", k, {"obs": ("obs", np.array(names, dtype=str))})
            n_t = k
        else:
            intervals = self._intervals(times)
            atol = self.atol.to_value(u.day)
            inside = (times[None, :, 0] >= intervals[:, None, 0] - atol) & (
                times[None, :, 1] <= intervals[:, None, 1] + atol
            )
            keep = inside.any(axis=1)
            if not keep.any():
                raise ValueError("LightCurveEstimator: no datasets in the time intervals")
            intervals, inside = intervals[keep], inside[keep]
            pair_t, pair_k = np.nonzero(inside)
            n_t = intervals.shape[0]
            outer = (
                "time",
                n_t,
                {
                    "time_min": ("time", intervals[:, 0], {"units": "d", "format": "mjd", "scale": "tt"}),
                    "time_max": ("time", intervals[:, 1], {"units": "d", "format": "mjd", "scale": "tt"}),
                },
            )
        problem = _problem_from_pairs(arrays, pair_t, pair_k, group, nb, n_t * nb, k)
        res = self._solve(problem)
        fp = self._flux_points(res, emin, emax, source, names, outer=outer)
        fp.data.attrs["estimator"] = type(self).__name__
        return fp
