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
from ..models.spectral import ENERGY_UNIT
from ..models import Models, SkyModel, SpectralModel
from .flux_points import FluxPointsEstimator, _as_list, dataset_arrays, resolve_source, snap_energy_groups
from .flux_points_data import FluxPoints
from .profile import NormProblem

__all__ = ["LightCurveEstimator"]


def _dataset_times(dataset):
    gti = getattr(dataset, "gti", None)
    if gti is None or len(gti) == 0:
        return None
    return float(gti.time_start[0].tt.mjd), float(gti.time_stop[-1].tt.mjd)


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


def _list_arrays(datasets: list, source) -> dict:
    """Stacked ``(K, n_energy)`` arrays of a list of datasets (reference model folded once each)."""
    per = [dataset_arrays(d, source) for d in datasets]
    k, nr = len(per), per[0]["counts"].size
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
    edges = [d._energy_axis.edges.to_value(u.TeV) for d in datasets]
    for d, e in zip(datasets[1:], edges[1:], strict=True):
        if e.shape != edges[0].shape or not np.allclose(e, edges[0], rtol=1e-9, atol=0):
            raise ValueError(f"all datasets must have aligned reco energy axes; {d.name!r} differs from {datasets[0].name!r}")
    return {"arrays": out, "names": [d.name for d in datasets], "times": times, "reco_edges": edges[0]}


def _problem_from_pairs(arrays: dict, pair_t: np.ndarray, pair_k: np.ndarray, group: np.ndarray, n_groups: int, n_rows: int, n_datasets: int):
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
            source, others = _obs_source(models, self.source)
            info = _obs_arrays(datasets, source, others)
        else:
            datasets = _as_list(datasets)
            if not datasets:
                raise ValueError("no datasets given")
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
            inside = (times[None, :, 0] >= intervals[:, None, 0] - atol) & (times[None, :, 1] <= intervals[:, None, 1] + atol)
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
