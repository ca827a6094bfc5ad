"""Validation of a spectrum dataset's values before they are used: no silent wrong answers.

`xspec_ds.containers.validate_dataset` checks a Dataset when it is built or a variable is
assigned; it cannot see in-place edits (``ds.counts.values[5] = -3``, ``ds.edisp.values *= 3``)
nor lazily loaded (dask) values. The checks here run where the values are *used*: at the start
of every `xspec_ds.Fit.run` (`validate_fit`), in `SpectrumDataset.stat_sum` (a cheap subset,
`check_stat_inputs`), as per-spectrum flags (`flags`) for obs-dimensioned collections (batched
fits, estimators) without computing anything eagerly, and block by block when lazily loaded
values are computed (`lazy_checked`).

The rules, one per variable (a bin breaking one makes the spectrum invalid):

=================  =====================================================================
``counts``         finite and >= 0 (likewise ``background`` and ``counts_off``)
``exposure``       finite and >= 0 (an area x time; the unit is checked when assigned)
``acceptance``     finite and >= 0, and > 0 in the fit bins (likewise ``acceptance_off``;
                   ``alpha`` divides by it; readers set 0 outside the safe range)
``edisp``          finite, >= 0, and every row (true-energy bin) summing to at most
                   ``1 + EDISP_ROW_SUM_TOL``: a probability kernel (Gammapy's ``EDispKernel``
                   rows sum to the reconstruction efficiency <= 1, never renormalised). Row
                   sums above 1 are what summing datasets (``obs_ds.sum("obs")``) produces:
                   stack with `xspec_ds.stack` instead.
``mask_safe``      boolean (likewise ``mask_fit``)
fit bins           at least one bin in ``mask_safe & mask_fit``, and at least as many as
                   free parameters (else the fit is under-determined)
=================  =====================================================================

Errors are `DatasetValidationError` (a `ValueError`) naming the dataset, the variable, the
problem and the first bad bin with its energy range.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import xarray as xr

from .axes import ENERGY_DIMS, display_unit

__all__ = [
    "DatasetValidationError",
    "EDISP_ROW_SUM_TOL",
    "VALUE_RULES",
    "flags",
    "validate",
    "validate_fit",
    "check_stat_inputs",
    "lazy_checked",
]

EDISP_ROW_SUM_TOL = 1e-6
"""Rounding allowed above 1 in an edisp row sum (float32 RMF matrices sum to 1 +- 1e-7)."""


class DatasetValidationError(ValueError):
    """A dataset's values cannot give a meaningful statistic (names dataset, variable, bin)."""


def _finite_nonneg(x):
    return np.isfinite(x) & (x >= 0)


#: variable -> (elementwise "is fine" predicate, words for a bad value); works on numpy,
#: xarray and dask arrays alike.
VALUE_RULES = {
    "counts": (_finite_nonneg, "must be finite and non-negative"),
    "counts_off": (_finite_nonneg, "must be finite and non-negative"),
    "background": (_finite_nonneg, "must be finite and non-negative"),
    "exposure": (_finite_nonneg, "must be finite and non-negative"),
    "acceptance": (_finite_nonneg, "must be finite and non-negative"),
    "acceptance_off": (_finite_nonneg, "must be finite and non-negative"),
    "edisp": (_finite_nonneg, "probabilities must be finite and non-negative"),
}
MASKS = ("mask_safe", "mask_fit")
POSITIVE_IN_FIT = ("acceptance", "acceptance_off")


def _energy_dims(da) -> list[str]:
    return [d for d in da.dims if d in ENERGY_DIMS]


def _fit_mask_values(data: xr.Dataset):
    """(numpy mask_safe & mask_fit, its dims) without xarray arithmetic; (None, None) if no mask."""
    masks = [data.variables[m] for m in MASKS if m in data.variables]
    if not masks:
        return None, None
    if len(masks) == 2 and masks[0].dims != masks[1].dims:
        mask = _fit_mask(data)
        return np.asarray(mask.values, bool), mask.dims
    values = np.asarray(masks[0].values, bool)
    if len(masks) == 2:
        values = values & np.asarray(masks[1].values, bool)
    return values, masks[0].dims


def _fit_mask(data: xr.Dataset):
    masks = [data[m] for m in MASKS if m in data.variables]
    if not masks:
        return None
    return masks[0] & masks[1] if len(masks) == 2 else masks[0]


# per-spectrum flags (lazy-friendly) -------------------------------------------------------------
def flags(data: xr.Dataset, n_free: int = 0) -> xr.Dataset:
    """Per-spectrum validity flags of a (possibly obs-dimensioned, possibly dask) Dataset.

    Every energy dimension is reduced; other dimensions (e.g. ``obs``) are kept, so each
    spectrum gets its own flags. Nothing is computed: with dask-backed input the flags are
    lazy (``.compute()`` them, or combine them with the fit results).

    Parameters
    ----------
    data : `xarray.Dataset`
        A spectrum dataset, with or without extra dimensions.
    n_free : int
        Number of free parameters: ``fit_bins_ok`` needs at least that many fit bins (and 1).

    Returns
    -------
    `xarray.Dataset`
        Boolean ``<variable>_ok`` for every variable present (``edisp_ok`` includes the row-sum
        rule), ``masks_ok`` (boolean dtype), ``n_fit_bins`` (int), ``fit_bins_ok`` and ``valid``
        (all of them).
    """
    out = {}
    for name, (ok, _) in VALUE_RULES.items():
        if name in data.variables:
            da = data[name]
            good = ok(da).all(_energy_dims(da))
            if name == "edisp" and "energy" in da.dims:
                good = good & (da.sum("energy") <= 1 + EDISP_ROW_SUM_TOL).all(
                    [d for d in da.dims if d == "energy_true"]
                )
            if name in POSITIVE_IN_FIT and "energy" in da.dims:
                mask = _fit_mask(data)
                if mask is not None:
                    good = good & ((da > 0) | ~mask).all("energy")
            out[f"{name}_ok"] = good
    out["masks_ok"] = xr.DataArray(all(data[m].dtype == bool for m in MASKS if m in data.variables))
    mask = _fit_mask(data)
    if mask is None:
        n_fit = xr.DataArray(data.sizes.get("energy", 0))
    else:
        n_fit = mask.astype(bool).sum("energy")
    out["n_fit_bins"] = n_fit
    out["fit_bins_ok"] = n_fit >= max(int(n_free), 1)
    valid = None
    for k, v in out.items():
        if k.endswith("_ok"):
            valid = v if valid is None else valid & v
    out["valid"] = valid
    return xr.Dataset(out)


# raising checks ------------------------------------------------------------------------------------
def _bin_text(data: xr.Dataset, dim: str, i: int) -> str:
    lo_c, hi_c = data.coords.get(f"{dim}_min"), data.coords.get(f"{dim}_max")
    if lo_c is None or hi_c is None:
        return f"{dim} bin {i}"
    unit = u.Unit(lo_c.attrs.get("units", "TeV"))
    lo_all, hi_all = np.asarray(lo_c.values, float), np.asarray(hi_c.values, float)
    shown = display_unit(lo_all, hi_all, unit)
    scale = (1.0 * unit).to_value(shown) if unit.is_equivalent(shown) else 1.0
    return f"{dim} bin {i} ({lo_all[i] * scale:.4g}-{hi_all[i] * scale:.4g} {shown})"


def _where(data: xr.Dataset, dims: tuple[str, ...], index: tuple[int, ...], only: str | None = None) -> str:
    parts = []
    for d, i in zip(dims, index, strict=True):
        if only is not None and d in ENERGY_DIMS and d != only:
            continue
        if d in ENERGY_DIMS:
            parts.append(_bin_text(data, d, i))
        elif d in data.coords and data.coords[d].ndim == 1:
            parts.append(f"{d} {i} ({data.coords[d].values[i]!r})")  # e.g. the file's dataset name
        else:
            parts.append(f"{d} {i}")
    return ", ".join(parts)


def _label(name) -> str:
    return f"dataset {name!r}" if name is not None else "dataset"


def _check_values(name: str, values: np.ndarray, dims: tuple, label: str, where, offset=None, rows=True) -> None:
    """The value rule of ``name`` (and the edisp row sums) on numpy ``values`` with ``dims``;
    ``where(dims, index)`` describes a bin; ``offset`` shifts block-local indices (dask blocks)."""
    ok, words = VALUE_RULES[name]
    offset = np.zeros(values.ndim, int) if offset is None else np.asarray(offset)
    row_rule = rows and name == "edisp" and "energy" in dims and "energy_true" in dims
    sums = None
    if ok is _finite_nonneg and values.size and values.dtype.kind == "f":
        # reductions without temporaries (a 6000 x 3000 kernel: ~2x faster than the masks); NaN makes
        # min() NaN, so any bad value leads to the search below that names it. With no negative
        # element a row sum is finite exactly when its elements are (an overflowing sum of finite
        # elements finds no bad element below and fails the row rule): the kernel's row sums,
        # needed anyway, replace the max().
        fine = bool(np.min(values) >= 0)
        if fine and row_rule:
            sums = values.sum(axis=dims.index("energy"))
            fine = bool(np.all(np.isfinite(sums)))
        elif fine:
            fine = bool(np.max(values) < np.inf)
    else:
        fine = False
    bad = np.zeros((), bool) if fine else ~ok(values)
    if bad.any():
        idx = np.unravel_index(int(np.flatnonzero(bad.ravel())[0]), values.shape)
        value = values[idx]
        what = "a non-finite value" if not np.isfinite(value) else f"a {'zero' if value == 0 else 'negative'} value"
        raise DatasetValidationError(
            f"{label}: variable {name!r} {words}, got {what} ({value:.6g}) at "
            f"{where(dims, tuple(np.add(idx, offset)))} ({int(bad.sum())} bad bin(s){' in this chunk' if offset.any() else ''})"
        )
    if row_rule:
        axis = dims.index("energy")
        sums = values.sum(axis=axis) if sums is None else sums
        over = sums > 1 + EDISP_ROW_SUM_TOL
        if over.any():
            rest = tuple(d for d in dims if d != "energy")
            idx = np.unravel_index(int(np.flatnonzero(over.ravel())[0]), sums.shape)
            shift = np.delete(offset, axis)
            raise DatasetValidationError(
                f"{label}: variable 'edisp' rows (true-energy bins) must sum to at most 1 (probabilities of "
                f"reconstruction), got {sums[idx]:.6g} at {where(rest, tuple(np.add(idx, shift)))} "
                f"({int(over.sum())} row(s) above 1). Datasets summed with xarray (obs_ds.sum('obs')) add their "
                "kernels: use xs.stack."
            )


def _check_variable(data: xr.Dataset, name: str, label: str) -> None:
    da = data.variables[name]
    values = np.asarray(da.values, dtype=np.float64)
    _check_values(name, values, da.dims, label, lambda dims, idx: _where(data, dims, idx))
    if name in POSITIVE_IN_FIT and "energy" in da.dims:
        mask, mdims = _fit_mask_values(data)
        if mask is not None:
            if mdims == da.dims:
                zero, zdims = (values <= 0) & mask, da.dims
            else:
                zero_da = (data[name] <= 0) & _fit_mask(data)
                zero, zdims = np.asarray(zero_da.values), zero_da.dims
            if zero.any():
                idx = np.unravel_index(int(np.flatnonzero(zero.ravel())[0]), zero.shape)
                raise DatasetValidationError(
                    f"{label}: variable {name!r} must be positive in the fit bins (alpha = acceptance / "
                    f"acceptance_off), got 0 at {_where(data, zdims, idx)} ({int(zero.sum())} bad bin(s))"
                )


def validate(dataset, n_free: int = 0, name: str | None = None, fit_bins: bool = True) -> None:
    """Raise `DatasetValidationError` if a dataset's values cannot give a meaningful statistic.

    Parameters
    ----------
    dataset : `SpectrumDataset` or `xarray.Dataset`
        Dask-backed values are computed (this is the point where they are used).
    n_free : int
        Free parameters of the fit: the dataset needs at least that many fit bins.
    name : str, optional
        Name used in messages (default: the dataset's name).
    fit_bins : bool
        Also require fit bins (at least one, and ``n_free``). Estimators, whose energy or time
        bins may legitimately hold no data (they return upper limits there), pass False.

    Raises
    ------
    DatasetValidationError
        Naming the dataset, the variable, the rule and the first bad bin with its energies.
    TypeError
        If a mask is not boolean.
    """
    data = dataset.data if hasattr(dataset, "data") and isinstance(dataset.data, xr.Dataset) else dataset
    if not isinstance(data, xr.Dataset):
        raise TypeError(f"validate: expected a SpectrumDataset or xarray.Dataset, got {type(dataset).__name__}")
    label = _label(name if name is not None else data.attrs.get("name"))
    for m in MASKS:
        if m in data.variables and data[m].dtype != bool:
            raise TypeError(
                f"{label}: variable {m!r} must be boolean, got dtype {data[m].dtype} "
                f"(cast it with .astype(bool) after checking what it means)"
            )
    for name_ in VALUE_RULES:
        if name_ in data.variables:
            if name_ == "counts" and _is_net(data):
                _check_net_counts(data, label)
                continue
            _check_variable(data, name_, label)
    if fit_bins:
        _check_fit_bins(data, label, n_free)


def _is_net(data: xr.Dataset) -> bool:
    """A background-subtracted (NET) spectrum fitted with its own errors (``stat_type = "chi2"``
    with ``stat_err``, e.g. Swift BAT): its counts may be negative."""
    return data.attrs.get("stat_type") == "chi2" and "stat_err" in data.variables


def _check_net_counts(data: xr.Dataset, label: str) -> None:
    values = np.asarray(data["counts"].values, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        idx = np.unravel_index(int(np.flatnonzero(bad.ravel())[0]), values.shape)
        raise DatasetValidationError(
            f"{label}: variable 'counts' must be finite, got {values[idx]} at "
            f"{_where(data, data['counts'].dims, idx)} ({int(bad.sum())} bad bin(s))"
        )


def _check_fit_bins(data: xr.Dataset, label: str, n_free: int) -> None:
    if "energy" not in data.dims:
        return
    mask, mdims = _fit_mask_values(data)
    if mask is None:
        n_fit, rest = np.full((), data.sizes["energy"]), ()
    else:
        n_fit = mask.sum(axis=mdims.index("energy"))
        rest = tuple(d for d in mdims if d != "energy")
    if (n_fit == 0).any():
        where = ""
        if n_fit.ndim:
            first = np.unravel_index(int(np.flatnonzero(n_fit.ravel() == 0)[0]), n_fit.shape)
            where = f" (first at {_where(data, rest, first)})"
        raise DatasetValidationError(
            f"{label}: no fit bins: every bin is masked out by mask_safe & mask_fit{where}; "
            "set mask_fit, e.g. dataset.energy_mask('1 TeV', '10 TeV'), or check mask_safe"
        )
    if n_free and (n_fit < n_free).any():
        raise DatasetValidationError(
            f"{label}: {int(n_fit.min())} fit bin(s) for {n_free} free parameter(s): the fit is under-determined; "
            "widen the fit range or freeze parameters"
        )


def validate_fit(datasets, params=None) -> None:
    """The checks `xspec_ds.Fit.run` makes before optimising (one call site).

    Models are set and there are free parameters; every dataset passes `validate`; the
    datasets together have at least as many fit bins as free parameters.
    """
    datasets = list(datasets)
    if not datasets:
        raise ValueError("nothing to fit: no datasets given")
    without = [d.name for d in datasets if not len(d.models)]
    if len(without) == len(datasets):
        raise ValueError(
            f"no model set on dataset(s) {without}: set dataset.models = xs.SkyModel(spectral_model, name=...) "
            "(or a spectral model) before fitting"
        )
    if params is None:
        from .fit.datasets import Datasets

        params = [p for p in Datasets(datasets).parameters if not p.frozen]
    if not params:
        raise ValueError("no free parameters to fit: every parameter of the models is frozen")
    for d in datasets:
        validate(d)
    total = 0
    for d in datasets:
        mask, _ = _fit_mask_values(d.data)
        total += int(mask.sum()) if mask is not None else d.data.sizes["energy"]
    if total < len(params):
        names = ", ".join(p.name for p in params)
        raise DatasetValidationError(
            f"{total} fit bin(s) in dataset(s) {[d.name for d in datasets]} for {len(params)} free parameter(s) "
            f"({names}): the fit is under-determined; widen the fit range or freeze parameters"
        )


_min, _max, _any = np.minimum.reduce, np.maximum.reduce, np.logical_or.reduce


def check_stat_inputs(dataset, hot, mask) -> None:
    """Cheap check in `SpectrumDataset.stat_sum` (numpy views, a few microseconds): raise the
    full `validate` error if counts, background, exposure (or on-off counts and acceptances)
    hold NaN or negative values, a dense ``edisp`` row sums to more than 1, or no bin is in the
    mask, so ``stat_sum`` never returns a finite number for invalid data.

    Infinite values make the statistic itself non-finite; `SpectrumDataset.stat_sum` then runs
    the full `validate`. The ``edisp`` row sums cost as much as the fold itself, so they are
    checked once per set of cached hot arrays (on first use and whenever a variable is
    replaced); in-place edits of the kernel's values (``ds.edisp.values *= 3``) are caught by
    `validate`, which every `xspec_ds.Fit.run` calls, and by the assignment checks.
    """
    # bare ufunc reductions (no np.min wrappers): ~1 us each on small arrays; NaN fails ``min >= 0``
    bad = mask is not None and not _any(mask)
    arrays = [None if _is_net(dataset.data) else hot.counts, hot.background, hot._exposure]
    if hasattr(dataset, "_onoff"):  # the raw arrays (alpha is cached: in-place edits of acceptances)
        get = dataset.data._variables.get
        arrays += [None if (v := get(k)) is None else v.values for k in ("counts_off", "acceptance", "acceptance_off")]
        if not bad:  # acceptances > 0 in the fit bins (alpha divides by acceptance_off)
            for acc in arrays[-2:]:
                if acc is not None and acc.shape == np.shape(mask):
                    bad = bad or not _min(np.where(mask, acc, 1.0), axis=None) > 0
    for k, arr in enumerate(arrays):
        if arr is not None and arr.size and not bad:
            bad = not _min(arr, axis=None) >= 0
            if k >= 3 and not bad:  # on-off: an infinite acceptance would vanish into alpha = 0
                bad = not _max(arr, axis=None) < np.inf
    edisp = hot.edisp
    if not bad and getattr(dataset, "_edisp_checked", None) is not hot:
        # the kernel's row sums cost as much as the fold itself: checked once per set of hot
        # arrays (i.e. whenever a variable is replaced), and by every Fit.run
        if isinstance(edisp, np.ndarray) and edisp.ndim == 2 and edisp.size:
            bad = not _max(edisp @ np.ones(edisp.shape[1])) <= 1 + EDISP_ROW_SUM_TOL  # NaN rows fail
        if not bad:
            dataset._edisp_checked = hot
    if bad:
        validate(dataset)


# lazily loaded values -------------------------------------------------------------------------------
def lazy_checked(data: xr.Dataset, name: str | None = None) -> xr.Dataset:
    """A copy of ``data`` whose dask-backed variables check their values when computed.

    Every dask variable with a rule in `VALUE_RULES` is wrapped block by block
    (`dask.array.Array.map_blocks`): computing a block with a bad value raises
    `DatasetValidationError` naming the dataset, the variable, the first bad bin of the block
    (global indices, energies, and the ``obs`` label, e.g. the file's dataset name) and the
    rule. The ``edisp`` row sums are checked in blocks that hold whole rows (chunk ``energy``
    as one piece, as `xspec_ds.open_mfdataset` does). In-memory variables are returned as is
    (check them with `validate`). Nothing is computed here.

    Parameters
    ----------
    data : `xarray.Dataset`
        Typically from `xspec_ds.open_mfdataset` / `xspec_ds.open_dataset` with ``chunks``.
    name : str, optional
        Name used in messages (default: ``attrs["name"]``).
    """
    label = _label(name if name is not None else data.attrs.get("name"))
    # the coordinates (small, in memory) describe bins in messages raised inside dask tasks
    context = xr.Dataset(coords={k: v.variable for k, v in data.coords.items() if v.ndim <= 1}).load()

    def where(dims, index):
        return _where(context, dims, index)

    out = data.copy()
    for var in VALUE_RULES:
        if var not in data.variables or not _is_dask(data[var]):
            continue
        darr = data[var].data
        out[var] = data[var].copy(
            data=darr.map_blocks(
                _check_block, var=var, dims=data[var].dims, label=label, where=where, dtype=darr.dtype, meta=darr._meta
            )
        )
    return out


def _is_dask(da) -> bool:
    return type(da.data).__module__.startswith("dask")


def _check_block(block, var, dims, label, where, block_info=None):
    offset = [loc[0] for loc in block_info[0]["array-location"]] if block_info else None
    rows = True
    if var == "edisp" and block_info and "energy" in dims:  # a partial row sum says nothing
        axis = dims.index("energy")
        rows = block.shape[axis] == block_info[0]["shape"][axis]
    _check_values(var, np.asarray(block, dtype=np.float64), dims, label, where, offset, rows=rows)
    return block
