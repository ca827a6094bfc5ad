"""`FluxPointsEstimator`: flux points (an SED) from one or several spectrum datasets.

Gammapy's method (``gammapy.estimators.FluxPointsEstimator``, Gammapy 2.1; the GADF "binned
likelihoods" note; Fermi-LAT 3FGL, Acero et al. 2015, ApJS 218, 23; HGPS, H.E.S.S. 2018, A&A
612, A1): in every energy bin the reference model of the source is scaled by a free ``norm``,
all other parameters frozen, and fitted to the reco bins of that energy bin (joint over the
datasets: their statistics add up). Here the reference model is folded once per dataset and
all energy bins are solved in one vectorised computation (`xspec_ds.estimators.profile`).

Rules taken from Gammapy (semantics only):

- requested energy edges are snapped to the nearest reco-bin edges of the datasets (in log
  energy; ``MapAxis.group_table``) separately for each requested bin; a bin that collapses or
  lies outside the data gives a NaN point with ``success = False``;
- a flux point uses the reco bins of its group where ``mask_safe AND mask_fit`` is True;
- ``norm`` is unbounded unless ``norm={"min": ..., "max": ...}``; the profile roots are searched
  within ``1e5 max(err, |norm|)`` of the best fit (Gammapy's ``Parameter.conf_min/conf_max``);
- ``norm_err`` is ``n_sigma`` times the curvature error, ``norm_errn``/``norm_errp`` where the
  statistic rises by ``n_sigma**2``, ``norm_ul = norm + errp(n_sigma_ul)``, ``ts = S(0) - S(norm)``;
  the scan is at ``geomspace(0.2, 5, 11)`` (Gammapy's default norm scan).
"""

from __future__ import annotations

import logging
import warnings

import astropy.units as u
import numpy as np
import xarray as xr
import yaml

from ..validation import validate
from .flux_points_data import FluxPoints, _reference_fluxes
from .profile import NormProblem, solve_norm_problem

__all__ = ["FluxPointsEstimator", "snap_energy_groups"]

log = logging.getLogger(__name__)

OPTIONAL = ("errn-errp", "ul", "scan")


def parse_selection(selection_optional) -> list[str]:
    """``None`` -> [], ``"all"`` -> every optional step; unknown names raise."""
    if selection_optional is None:
        return []
    if selection_optional == "all":
        return list(OPTIONAL)
    if isinstance(selection_optional, str):
        selection_optional = [selection_optional]
    unknown = set(selection_optional) - set(OPTIONAL) - {"sensitivity"}
    if unknown:
        raise ValueError(f"unknown selection_optional {sorted(unknown)}; use 'all' or a list of {list(OPTIONAL)}")
    return [s for s in selection_optional if s in OPTIONAL]


def snap_energy_groups(reco_edges, energy_edges) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reco bins of every requested energy bin, by Gammapy's rule (``MapAxis.group_table``).

    Each requested edge goes to the nearest reco edge in log energy (clipped to the axis), for
    each requested bin separately.

    Parameters
    ----------
    reco_edges : array_like
        Reco-energy edges (TeV), increasing.
    energy_edges : array_like
        Requested edges (TeV).

    Returns
    -------
    lo, hi : numpy.ndarray of int
        Reco-bin index range ``[lo, hi)`` of every requested bin (``lo == hi``: empty).
    group : numpy.ndarray of int
        Requested-bin index of every reco bin (-1: in no flux point).
    """
    reco_edges = np.asarray(reco_edges, dtype=np.float64)
    energy_edges = np.asarray(energy_edges, dtype=np.float64)
    n = reco_edges.size - 1
    pix = np.interp(np.log(energy_edges), np.log(reco_edges), np.arange(n + 1) - 0.5)
    idx = (np.round(pix + 0.5)).astype(np.int64)  # edge index 0..n (np.round: half to even, as Gammapy)
    lo, hi = idx[:-1], idx[1:]
    hi = np.maximum(hi, lo)
    group = np.full(n, -1, dtype=np.int64)
    for k in range(lo.size):  # few requested bins; each reco bin is assigned at most once
        group[lo[k] : hi[k]] = np.where(group[lo[k] : hi[k]] < 0, k, group[lo[k] : hi[k]])
    return lo, hi, group


def _as_list(datasets) -> list:
    from ..fit import Datasets

    if isinstance(datasets, Datasets):
        return list(datasets)
    if isinstance(datasets, (list, tuple)):
        return list(datasets)
    return [datasets]


def find_source(models, source):
    """``models[source]`` (a name or an index), or a ValueError listing the models' names."""
    try:
        return models[source]
    except (KeyError, IndexError):
        raise ValueError(
            f"source {source!r} is not among the models of the datasets; models are {models.names}"
        ) from None


def resolve_source(datasets: list, source):
    """The `SkyModel` named (or indexed) ``source`` among the datasets' models, checked for a norm."""
    from ..fit import Datasets

    model = find_source(Datasets(datasets).models, source)
    spec = getattr(model, "spectral_model", None)
    if spec is None:
        raise ValueError(f"source {source!r} is a {type(model).__name__}, not a SkyModel with a spectral model")
    if not any(getattr(p, "is_norm", False) for p in spec.parameters):
        raise ValueError(
            f"the model of source {source!r} ({type(spec).__name__}) has no norm-like parameter (amplitude, norm, ...) "
            "to scale; wrap it as xs.ScaleSpectralModel(model) to estimate flux points"
        )
    return model


def dataset_arrays(dataset, source) -> dict:
    """Per-reco-bin arrays of one dataset for the norm problem (reference model folded once).

    Returns a dict with ``kind`` ("cash" or "wstat"), ``counts``, ``mu_ref`` (the source's
    predicted signal), ``mu_other`` (all other sources), ``mask`` and ``background`` (Cash) or
    ``counts_off``/``alpha`` (WSTAT), all ``(n_energy,)`` float arrays.
    """
    hot = dataset._hot()
    if hot.counts is None:
        raise ValueError(f"dataset {dataset.name!r} has no counts: cannot estimate fluxes")
    nbin = hot.counts.size
    sky = dataset._sky_models
    mu_ref = np.zeros(nbin)
    mu_other = np.zeros(nbin)
    for m in sky:
        values = np.asarray(dataset._npred_signal_values(model=m), dtype=np.float64)
        if m is source or (m.name == source.name and m.spectral_model is source.spectral_model):
            mu_ref = mu_ref + values
        else:
            mu_other = mu_other + values
    mask = hot.mask
    mask = np.ones(nbin, bool) if mask is None else np.asarray(mask, bool)
    out = {
        "counts": np.asarray(hot.counts, dtype=np.float64),
        "mu_ref": mu_ref,
        "mu_other": mu_other,
        "mask": mask,
    }
    if getattr(dataset, "stat_type", "cash") == "wstat":
        hot = dataset._require("flux points")
        out["kind"] = "wstat"
        out["counts_off"] = np.asarray(hot.n_off, dtype=np.float64)
        out["alpha"] = np.asarray(hot.alpha, dtype=np.float64)
    else:
        out["kind"] = "cash"
        bkg = dataset._npred_background_values()
        out["background"] = np.zeros(nbin) if bkg is None else np.asarray(bkg, dtype=np.float64)
    return out


def build_problem(arrays: list[dict], rows: list[np.ndarray], n_rows: int) -> NormProblem:
    """A `NormProblem` from per-dataset arrays; ``rows[k]`` maps dataset k's reco bins to rows (-1: none)."""
    parts = {"cash": [], "wstat": []}
    for k, (a, row) in enumerate(zip(arrays, rows, strict=True)):
        sel = a["mask"] & (row >= 0)
        if not sel.any():
            continue
        cell = {
            "row": row[sel],
            "dataset": np.full(int(sel.sum()), k),
            "counts": a["counts"][sel],
            "mu_ref": a["mu_ref"][sel],
            "mu_other": a["mu_other"][sel],
        }
        if a["kind"] == "cash":
            cell["background"] = a["background"][sel]
        else:
            cell["counts_off"] = a["counts_off"][sel]
            cell["alpha"] = a["alpha"][sel]
        parts[a["kind"]].append(cell)
    merged = {}
    for kind, cells in parts.items():
        merged[kind] = {key: np.concatenate([c[key] for c in cells]) for key in cells[0]} if cells else None
    return NormProblem(n_rows, len(arrays), cash=merged["cash"], wstat=merged["wstat"])


def norm_settings(norm) -> dict:
    """Gammapy's default norm (value 1, unbounded, log scan 0.2-5 with 11 values), updated by ``norm``."""
    out = {
        "value": 1.0,
        "min": np.nan,
        "max": np.nan,
        "scan_min": 0.2,
        "scan_max": 5.0,
        "scan_n_values": 11,
        "scan_values": None,
    }
    if norm is None:
        return out
    if hasattr(norm, "value") and hasattr(norm, "scan_n_values"):  # a Parameter
        norm = {
            "value": norm.value,
            "min": norm.min,
            "max": norm.max,
            "scan_min": norm.scan_min if norm.scan_min is not None else 0.2,
            "scan_max": norm.scan_max if norm.scan_max is not None else 5.0,
            "scan_n_values": norm.scan_n_values,
        }
    unknown = set(norm) - set(out)
    if unknown:
        raise TypeError(f"invalid norm setting(s) {sorted(unknown)}; known: {sorted(out)}")
    out.update(norm)
    return out


def scan_values(settings: dict) -> np.ndarray:
    if settings["scan_values"] is not None:
        return np.asarray(settings["scan_values"], dtype=np.float64)
    return np.geomspace(settings["scan_min"], settings["scan_max"], int(settings["scan_n_values"]))


def result_to_dataset(res: dict, shape: tuple, dims: tuple, selection: list, dataset_names: list) -> dict:
    """Data variables (name -> (dims, values)) of a `FluxPoints` from a solved problem's result."""
    out = {}
    scalar = ["norm", "norm_err", "ts", "stat", "stat_null"]
    if "errn-errp" in selection:
        scalar += ["norm_errn", "norm_errp"]
    if "ul" in selection:
        scalar += ["norm_ul"]
    for name in scalar:
        out[name] = (dims, res[name].reshape(shape), {"units": ""})
    with np.errstate(invalid="ignore"):
        ts = np.clip(res["ts"], 0, None)
        sqrt_ts = np.where(res["norm"] > 0, np.sqrt(ts), -np.sqrt(ts))
    out["sqrt_ts"] = (dims, sqrt_ts.reshape(shape), {"units": ""})
    for name in ("counts", "npred", "npred_excess"):
        out[name] = (dims + ("dataset",), res[name].reshape(shape + (len(dataset_names),)), {"units": ""})
    out["success"] = (dims, res["success"].reshape(shape))
    if "ul" in selection:
        with np.errstate(invalid="ignore"):
            is_ul = (sqrt_ts < 2.0) | res["no_counts"]
        out["is_ul"] = (dims, is_ul.reshape(shape))
    if "scan" in selection:
        out["stat_scan"] = (dims + ("norm_scan",), res["stat_scan"].reshape(shape + (-1,)), {"units": ""})
    return out


class FluxPointsEstimator:
    """Flux points: the reference model's ``norm`` fitted in each energy bin (Gammapy's semantics).

    Parameters
    ----------
    energy_edges : `~astropy.units.Quantity`
        Edges of the flux-point bins (snapped to the datasets' reco edges, as Gammapy).
    source : str or int
        Name or index of the source among the datasets' models.
    n_sigma, n_sigma_ul : float
        Sigma of the asymmetric errors (statistic rise ``n_sigma**2``) and of the upper limits.
    selection_optional : None, "all" or list of {"errn-errp", "ul", "scan"}
        Optional quantities (Gammapy's names).
    reoptimize : bool
        False (default): only the norm is free, every other parameter frozen at its current
        value; the whole SED is one vectorised computation. True: the other models' free
        parameters are refitted in every bin with `xspec_ds.Fit`, one bin after the other (slow
        path, as Gammapy).
    norm : dict or `xspec_ds.Parameter`, optional
        Norm settings: ``min``, ``max`` (default unbounded), ``scan_min``, ``scan_max``,
        ``scan_n_values`` (default 0.2, 5, 11, log-spaced), ``scan_values``.
    fit : `xspec_ds.Fit`, optional
        The fitter of the ``reoptimize=True`` path.

    Examples
    --------
    >>> fpe = FluxPointsEstimator(energy_edges=[1, 3, 10] * u.TeV, source="crab", selection_optional="all")  # doctest: +SKIP
    >>> fp = fpe.run(datasets)  # doctest: +SKIP
    >>> fp.to_table(sed_type="dnde")  # doctest: +SKIP
    """

    tag = "FluxPointsEstimator"

    def __init__(
        self,
        energy_edges=(1, 10) * u.TeV,
        source=0,
        n_sigma: float = 1,
        n_sigma_ul: float = 2,
        selection_optional=None,
        reoptimize: bool = False,
        norm=None,
        fit=None,
        sum_over_energy_groups: bool = False,
    ):
        energy_edges = u.Quantity(energy_edges)
        if energy_edges.unit == u.dimensionless_unscaled or not energy_edges.unit.is_equivalent(u.TeV):
            raise u.UnitsError(f"energy_edges must be energies, got {energy_edges!r}")
        values = energy_edges.to_value(u.TeV)
        if values.ndim != 1 or values.size < 2 or np.any(np.diff(values) <= 0) or np.any(values <= 0):
            raise ValueError(f"energy_edges must be at least two increasing positive energies, got {energy_edges}")
        if n_sigma <= 0 or n_sigma_ul <= 0:
            raise ValueError("n_sigma and n_sigma_ul must be positive")
        self.energy_edges = energy_edges
        self.source = source
        self.n_sigma = float(n_sigma)
        self.n_sigma_ul = float(n_sigma_ul)
        self.selection_optional = parse_selection(selection_optional)
        self.reoptimize = bool(reoptimize)
        self.norm = norm_settings(norm)
        self.fit = fit
        if sum_over_energy_groups:
            raise NotImplementedError("sum_over_energy_groups=True is not supported")

    def __repr__(self):
        return (
            f"FluxPointsEstimator(energy_edges={self.energy_edges!r}, source={self.source!r}, n_sigma={self.n_sigma}, "
            f"n_sigma_ul={self.n_sigma_ul}, selection_optional={self.selection_optional}, reoptimize={self.reoptimize})"
        )

    # ------------------------------------------------------------------------------------------
    def _groups(self, datasets):
        edges = [d._energy_axis.edges.to_value(u.TeV) for d in datasets]
        ref = edges[0]
        for d, e in zip(datasets[1:], edges[1:], strict=True):
            if e.shape != ref.shape or not np.allclose(e, ref, rtol=1e-9, atol=0):
                raise ValueError(
                    f"all datasets must have aligned reco energy axes; {d.name!r} differs from {datasets[0].name!r}"
                )
        requested = self.energy_edges.to_value(u.TeV)
        if requested[-1] <= ref[0] or requested[0] >= ref[-1]:
            raise ValueError(
                f"energy_edges {self.energy_edges} lie outside the datasets' reco energy range "
                f"[{ref[0]:.4g}, {ref[-1]:.4g}] TeV"
            )
        lo, hi, group = snap_energy_groups(ref, requested)
        empty = hi <= lo
        if empty.any():
            warnings.warn(
                f"no reco bins in requested energy bin(s) {np.flatnonzero(empty).tolist()} "
                f"(outside [{ref[0]:.4g}, {ref[-1]:.4g}] TeV or narrower than a reco bin): NaN points, success=False",
                stacklevel=3,
            )
        emin = np.where(empty, requested[:-1], ref[np.minimum(lo, ref.size - 1)])
        emax = np.where(empty, requested[1:], ref[np.minimum(hi, ref.size - 1)])
        return group, emin, emax

    def run(self, datasets) -> FluxPoints:
        """Estimate the flux points of ``datasets`` (a dataset, a list, or `xspec_ds.Datasets`)."""
        datasets = _as_list(datasets)
        if not datasets:
            raise ValueError("no datasets given")
        for d in datasets:  # the value rules of xspec_ds.validation (bins without data are allowed)
            validate(d, fit_bins=False)
            getattr(d, "_refresh_kernels", lambda: None)()  # in-place edits of a sparse or banded kernel
        source = resolve_source(datasets, self.source)
        group, emin, emax = self._groups(datasets)
        n_rows = emin.size
        if self.reoptimize:
            from .reoptimize import solve_reoptimize

            res = solve_reoptimize(self, datasets, source, group, n_rows)
        else:
            arrays = [dataset_arrays(d, source) for d in datasets]
            problem = build_problem(arrays, [group] * len(datasets), n_rows)
            res = self._solve(problem)
        return self._flux_points(res, emin, emax, source, [d.name for d in datasets])

    def _solve(self, problem: NormProblem) -> dict:
        sel = self.selection_optional
        return solve_norm_problem(
            problem,
            n_sigma=self.n_sigma,
            n_sigma_ul=self.n_sigma_ul,
            errn_errp="errn-errp" in sel,
            ul="ul" in sel,
            scan_values=scan_values(self.norm) if "scan" in sel else None,
            norm_min=self.norm["min"],
            norm_max=self.norm["max"],
            x0=self.norm["value"],
        )

    def _flux_points(self, res, emin, emax, source, names, outer=None) -> FluxPoints:
        """Assemble `FluxPoints`; ``outer`` = (dim, size, coords) for a light curve."""
        eref = np.sqrt(emin * emax)
        nb = emin.size
        if outer is None:
            shape, dims, extra_coords = (nb,), ("energy",), {}
        else:
            dim, size, extra_coords = outer
            shape, dims = (size, nb), (dim, "energy")
        data_vars = result_to_dataset(res, shape, dims, self.selection_optional, names)
        spec = source.spectral_model
        if np.any(spec(np.concatenate([emin, emax]) * u.TeV).value < 0):
            log.warning("the reference model predicts a negative flux: interpret the flux points with care")
        ref = _reference_fluxes(spec, emin, emax, eref)
        units = {
            "ref_dnde": "cm-2 s-1 TeV-1",
            "ref_flux": "cm-2 s-1",
            "ref_eflux": "erg cm-2 s-1",
            "ref_e2dnde": "erg cm-2 s-1",
        }
        for key, values in ref.items():
            data_vars[key] = (("energy",), values, {"units": u.Unit(units[key]).to_string()})
        coords = {
            "energy": ("energy", eref, {"units": "TeV"}),
            "energy_min": ("energy", emin, {"units": "TeV"}),
            "energy_max": ("energy", emax, {"units": "TeV"}),
            "e_ref": ("energy", eref, {"units": "TeV"}),
            "dataset": ("dataset", np.array(names, dtype=str)),
        }
        if "scan" in self.selection_optional:
            coords["norm_scan"] = ("norm_scan", res["norm_scan"])
        coords.update(extra_coords)
        attrs = {
            "sed_type_init": "likelihood",
            "n_sigma": self.n_sigma,
            "n_sigma_ul": self.n_sigma_ul,
            "sqrt_ts_threshold_ul": 2.0,
            "source": source.name,
            "estimator": type(self).__name__,
            "reoptimize": int(self.reoptimize),
            "reference_model": yaml.safe_dump(spec.to_dict(), sort_keys=False),
        }
        data = xr.Dataset(data_vars, coords=coords, attrs=attrs)
        return FluxPoints(data, reference_model=spec.copy())
