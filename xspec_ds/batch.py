"""Arrays of K spectra for the batched likelihood (`xspec_ds.likelihood`, `xspec_ds.fit.batch`).

A `SpectrumBatch` holds the numbers of K spectra on one binning, in canonical units: data arrays
``(K, Nr)`` (``counts`` and ``background`` for Cash; ``counts``, ``counts_off`` and ``alpha`` for
WSTAT), the fit mask ``(K, Nr)`` (``mask_safe AND mask_fit``), the exposure ``(K, Nt)`` or ``(Nt,)``
and the dispersion ``(Nt, Nr)`` or ``(K, Nt, Nr)``: responses shared by all spectra stay
unbroadcast (one matrix, not K copies).

It is built from an ``obs``-dimensioned `xarray.Dataset` (variables without the dimension are
shared) or from a list of datasets (`SpectrumDataset` or `xarray.Dataset` objects on one binning).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
import xarray as xr

from .axes import edges_from_coords

__all__ = ["SpectrumBatch", "batch_from_xarray", "batch_from_datasets"]

CM2S = u.Unit("cm2 s")
TEV = u.TeV
_DATA_VARS = ("counts", "background", "counts_off", "acceptance", "acceptance_off", "exposure", "edisp")


@dataclass
class SpectrumBatch:
    """K spectra as arrays (see the module docstring).

    Attributes
    ----------
    labels : numpy.ndarray, shape (K,)
        The spectra's labels (the ``dim`` coordinate, or dataset names), used in messages.
    statistic : str
        ``"cash"`` or ``"wstat"`` (from the variables present).
    data : dict of numpy.ndarray
        ``(K, Nr)`` arrays for the statistic record (`xspec_ds.stats.Statistic`).
    mask : numpy.ndarray of bool, shape (K, Nr)
    exposure : numpy.ndarray, shape (K, Nt) or (Nt,), ``cm2 s``
    edisp : numpy.ndarray, shape (Nt, Nr) or (K, Nt, Nr), or None
    e_lo, e_hi : numpy.ndarray, shape (Nt,)
        True-energy bin edges in TeV.
    """

    labels: np.ndarray
    statistic: str
    data: dict
    mask: np.ndarray
    exposure: np.ndarray
    edisp: np.ndarray | None
    e_lo: np.ndarray
    e_hi: np.ndarray
    reco_edges: np.ndarray = field(repr=False, default=None)

    def __len__(self) -> int:
        return self.mask.shape[0]

    def take(self, idx) -> "SpectrumBatch":
        """The spectra at positions ``idx`` (shared responses stay shared)."""
        idx = np.asarray(idx)
        return SpectrumBatch(
            labels=self.labels[idx],
            statistic=self.statistic,
            data={k: v[idx] for k, v in self.data.items()},
            mask=self.mask[idx],
            exposure=self.exposure[idx] if self.exposure.ndim == 2 else self.exposure,
            edisp=self.edisp[idx] if self.edisp is not None and self.edisp.ndim == 3 else self.edisp,
            e_lo=self.e_lo,
            e_hi=self.e_hi,
            reco_edges=self.reco_edges,
        )


def _values(var, dim: str, trailing: tuple) -> tuple[np.ndarray, bool]:
    """Float64 values of ``var`` with ``dim`` first (``per`` True) or unbatched (``per`` False)."""
    if dim in var.dims:
        arr = var.transpose(dim, *trailing).values
        return np.asarray(arr, dtype=np.float64) if arr.dtype != bool else np.asarray(arr), True
    arr = var.transpose(*trailing).values
    return (np.asarray(arr, dtype=np.float64) if arr.dtype != bool else np.asarray(arr)), False


def _first_bad(bad: np.ndarray, labels, per: bool) -> tuple[str, tuple]:
    if per:
        k = int(np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))[0])
        label = labels[k].item() if isinstance(labels[k], np.generic) else labels[k]  # 'run1' or 1, not np.str_(...)
        return f"spectrum {label!r}", tuple(int(i) for i in np.argwhere(bad[k])[0])
    return "all spectra (shared variable)", tuple(int(i) for i in np.argwhere(bad)[0])


def _check_finite(arr: np.ndarray, name: str, labels, per: bool) -> None:
    """Non-finite values, then the value rules of `xspec_ds.validation` (non-negative counts,
    background, exposure, acceptances, edisp; edisp rows summing to at most 1), vectorised over
    the batch; the error names the spectrum, the variable and the first bad bin."""
    from .validation import EDISP_ROW_SUM_TOL, VALUE_RULES

    bad = ~np.isfinite(arr)
    if bad.any():
        where, first = _first_bad(bad, labels, per)
        raise ValueError(
            f"non-finite values in variable {name!r} of {where}: {int(bad.sum())} value(s), first at bin {first}"
        )
    rule = VALUE_RULES.get(name)
    if rule is not None:
        ok, words = rule
        bad = ~ok(arr)
        if bad.any():
            where, first = _first_bad(bad, labels, per)
            raise ValueError(
                f"variable {name!r} of {where} {words}: {int(bad.sum())} bad value(s), first at bin {first}"
            )
    if name == "edisp" and arr.ndim >= 2:
        over = arr.sum(axis=-1) > 1 + EDISP_ROW_SUM_TOL
        if over.any():
            where, first = _first_bad(over, labels, per and arr.ndim == 3)
            raise ValueError(
                f"variable 'edisp' of {where}: rows (true-energy bins) must sum to at most 1 (probabilities), "
                f"first above 1 at true-energy bin {first}; datasets summed with xarray add their kernels: use xs.stack"
            )


def batch_from_xarray(ds: xr.Dataset, dim: str = "obs", statistic: str | None = None) -> SpectrumBatch:
    """A `SpectrumBatch` of the spectra along ``dim`` of ``ds`` (computed if dask-backed).

    Raises
    ------
    ValueError
        ``dim`` missing; no counts; non-finite data (naming the spectrum, the variable and the bin).
    """
    if dim not in ds.dims:
        raise ValueError(f"dimension {dim!r} is not in the data (its dimensions are {sorted(ds.sizes)})")
    if "counts" not in ds.variables:
        raise ValueError("the data have no 'counts' variable: nothing to fit")
    k = ds.sizes[dim]
    labels = np.asarray(ds[dim].values)  # positions 0..k-1 when dim has no coordinate (xarray)
    n_reco = ds.sizes["energy"]
    arrays, per = {}, {}
    for name in _DATA_VARS:
        if name not in ds.variables:
            continue
        trailing = tuple(d for d in ds[name].dims if d != dim)
        arrays[name], per[name] = _values(ds[name], dim, trailing)
        _check_finite(arrays[name], name, labels, per[name])

    def per_spectrum(name):
        a = arrays[name]
        return a if per[name] else np.broadcast_to(a, (k,) + a.shape)

    mask = np.ones((k, n_reco), dtype=bool)
    for m in ("mask_safe", "mask_fit"):
        if m in ds.variables:
            trailing = tuple(d for d in ds[m].dims if d != dim)
            vals, p = _values(ds[m], dim, trailing)
            mask &= np.asarray(vals, dtype=bool)
    data = {"counts": per_spectrum("counts")}
    if statistic is None:
        statistic = "wstat" if "counts_off" in arrays else "cash"
    if "counts_off" in arrays:
        data["counts_off"] = per_spectrum("counts_off")
        if "acceptance" in arrays and "acceptance_off" in arrays:
            acc, acc_off = per_spectrum("acceptance"), per_spectrum("acceptance_off")
            with np.errstate(divide="ignore", invalid="ignore"):
                data["alpha"] = np.nan_to_num(acc / acc_off, nan=0.0, posinf=0.0, neginf=0.0)
        else:
            data["alpha"] = np.ones((k, n_reco))
    if "background" in arrays:
        data["background"] = per_spectrum("background")
    if "exposure" not in arrays:
        raise ValueError("the data have no 'exposure' variable: cannot predict counts")
    scale = float(u.Unit(ds["exposure"].attrs.get("units", "m2 s")).to(CM2S))
    exposure = arrays["exposure"] * scale
    e_true = edges_from_coords(ds, "energy_true").to_value(TEV)
    return SpectrumBatch(
        labels=labels,
        statistic=statistic,
        data=data,
        mask=mask,
        exposure=exposure,
        edisp=arrays.get("edisp"),
        e_lo=e_true[:-1],
        e_hi=e_true[1:],
        reco_edges=edges_from_coords(ds, "energy").to_value(TEV),
    )


def _as_xarray(d) -> xr.Dataset:
    return d if isinstance(d, xr.Dataset) else d.data


def batch_from_datasets(datasets, statistic: str | None = None) -> SpectrumBatch:
    """A `SpectrumBatch` of a list of datasets on one binning (shared responses unbroadcast).

    Raises
    ------
    ValueError
        Empty list; a dataset whose ``energy`` or ``energy_true`` binning differs from the first
        one's (naming it); mixed on-off and Cash datasets; non-finite data.
    """
    dss = [_as_xarray(d) for d in datasets]
    if not dss:
        raise ValueError("no datasets to fit")
    names = [str(d.attrs.get("name", i)) for i, d in enumerate(dss)]
    ref = {dim_: edges_from_coords(dss[0], dim_).to_value(TEV) for dim_ in ("energy", "energy_true")}
    for i, d in enumerate(dss[1:], start=1):
        for dim_, edges in ref.items():
            other = edges_from_coords(d, dim_).to_value(TEV)
            if other.shape != edges.shape or not np.allclose(other, edges, rtol=1e-10, atol=0):
                raise ValueError(
                    f"spectrum {names[i]!r} has a different {dim_!r} binning ({other.size - 1} bins, "
                    f"[{other[0]:.6g}, {other[-1]:.6g}] TeV) from spectrum {names[0]!r} "
                    f"({edges.size - 1} bins, [{edges[0]:.6g}, {edges[-1]:.6g}] TeV): a batch needs one binning"
                )
    kinds = {"counts_off" in d.variables for d in dss}
    if len(kinds) > 1:
        raise ValueError("a batch mixes on-off (counts_off) and Cash datasets: fit them separately")
    for name in ("exposure", "edisp"):  # a response missing from some datasets only: no silent identity kernel
        present = [name in d.variables for d in dss]
        if any(present) and not all(present):
            i = present.index(False)
            raise ValueError(f"spectrum {names[i]!r} has no {name!r} variable (others have it)")
    # shared responses: keep one copy when every dataset has the same array
    shared = {}
    for name in ("exposure", "edisp"):
        if name in dss[0].variables:
            first = dss[0][name]
            unit = first.attrs.get("units", "")
            if all(
                d[name].attrs.get("units", "") == unit and np.array_equal(d[name].values, first.values) for d in dss[1:]
            ):
                shared[name] = first
    stacked = {}
    for name in ("counts", "background", "counts_off", "acceptance", "acceptance_off", "mask_safe", "mask_fit"):
        present = [name in d.variables for d in dss]
        if not any(present):
            continue
        if not all(present):
            i = present.index(False)
            raise ValueError(f"spectrum {names[i]!r} has no {name!r} variable (others have it)")
        stacked[name] = (("obs_", "energy"), np.stack([np.asarray(d[name].values) for d in dss]))
    for name in ("exposure", "edisp"):
        if name in shared:
            stacked[name] = shared[name].variable
        elif name in dss[0].variables:
            scale0 = u.Unit(dss[0][name].attrs.get("units", "m2 s" if name == "exposure" else ""))
            vals = []
            for d in dss:
                s = u.Unit(d[name].attrs.get("units", "m2 s" if name == "exposure" else "")).to(scale0)
                vals.append(np.asarray(d[name].values, dtype=np.float64) * s)
            stacked[name] = xr.Variable(("obs_",) + dss[0][name].dims, np.stack(vals), attrs=dict(dss[0][name].attrs))
    coords = {c: dss[0].coords[c] for c in dss[0].coords if set(dss[0].coords[c].dims) <= {"energy", "energy_true"}}
    coords["obs_"] = ("obs_", np.array(names, dtype=object))
    combined = xr.Dataset(stacked, coords=coords)
    return batch_from_xarray(combined, "obs_", statistic=statistic)
