"""Slicing spectrum datasets along their energy axes (label operations on the xarray.Dataset).

Slicing is ``Dataset.isel`` on the energy dimensions: every variable defined on a sliced axis
is cut (``edisp`` along both), the edge coordinates ``*_min``/``*_max`` travel with the data
and are therefore kept exactly. GTI, livetime, meta_table and other attrs are kept, as in
Gammapy's ``MapDataset.slice_by_idx``. Plain ``ds.sel(energy=slice(1, 10))`` (selection on the
bin-centre coordinate) gives a valid dataset too.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import xarray as xr

from ..axes import ENERGY_DIMS, edges_from_coords

__all__ = ["slice_by_idx", "slice_by_energy", "energy_slice"]


def _normalise(dim: str, index, nbin: int) -> slice:
    if isinstance(index, (int, np.integer)):
        # Gammapy drops an axis indexed by an integer; a spectrum needs its energy axes, so an
        # integer selects a one-bin slice instead.
        i = int(index) + nbin if int(index) < 0 else int(index)
        if not 0 <= i < nbin:
            raise IndexError(f"slice_by_idx: index {index} out of range for axis {dim!r} with {nbin} bins")
        return slice(i, i + 1)
    if not isinstance(index, slice):
        raise TypeError(f"slice_by_idx: axis {dim!r} needs an int or a slice, got {type(index).__name__}")
    if index.step not in (None, 1):
        raise ValueError(
            f"slice_by_idx: step {index.step} on axis {dim!r} would leave gaps between bins; "
            "use resample_energy_axis or downsample to merge bins"
        )
    start, stop, _ = index.indices(nbin)
    if stop <= start:
        raise ValueError(f"slice_by_idx: {index} selects no bins of axis {dim!r} ({nbin} bins)")
    return slice(start, stop)


def slice_by_idx(ds: xr.Dataset, slices: dict, name: str | None = None) -> xr.Dataset:
    """Sub-dataset by bin index (Gammapy's ``slice_by_idx``).

    Parameters
    ----------
    ds : `xarray.Dataset`
        A spectrum dataset (an extra ``obs`` dimension is fine).
    slices : dict
        ``{"energy": slice(i, j)}`` and/or ``{"energy_true": ...}``; an integer selects one bin
        (the axis is kept, unlike Gammapy which drops it). Steps other than 1 are refused.
    name : str, optional
        Name of the result (``attrs["name"]``); kept from ``ds`` when None.

    Returns
    -------
    `xarray.Dataset`
        A new Dataset (arrays copied; dask arrays stay lazy).
    """
    if not isinstance(slices, dict):
        raise TypeError(f"slices must be a dict of axis name -> slice, got {type(slices).__name__}")
    bad = [k for k in slices if k not in ENERGY_DIMS]
    if bad:
        raise ValueError(f"slice_by_idx: unknown axis {bad}; a spectrum dataset has axes {list(ENERGY_DIMS)}")
    missing = [k for k in slices if k not in ds.dims]
    if missing:
        raise ValueError(f"slice_by_idx: the dataset has no axis {missing}")
    index = {k: _normalise(k, v, ds.sizes[k]) for k, v in slices.items()}
    out = ds.isel(index).copy(deep=True)
    if name is not None:
        out.attrs["name"] = str(name)
    return out


def _as_energy(value, unit: u.UnitBase) -> float:
    q = u.Quantity(value)
    if q.unit == u.dimensionless_unscaled:
        q = q * unit
    return float(q.to_value(unit))


def energy_slice(ds: xr.Dataset, energy_min=None, energy_max=None) -> slice:
    """The reco-bin index slice Gammapy's ``slice_by_energy`` selects.

    Each bound snaps to the nearest bin edge in log energy (Gammapy's ``MapAxis.group_table``:
    edge pixel ``round(log-interpolated edge position)``); bounds outside the axis are clipped.
    """
    edges = edges_from_coords(ds, "energy")
    unit, e = edges.unit, edges.value
    lo = e[0] if energy_min is None else _as_energy(energy_min, unit)
    hi = e[-1] if energy_max is None else _as_energy(energy_max, unit)
    if not (lo > 0 and hi > 0):
        raise ValueError(f"slice_by_energy: energies must be positive, got {lo} and {hi} {unit}")
    pos = np.interp(np.log([lo, hi]), np.log(e), np.arange(e.size))
    i0, i1 = (int(x) for x in np.round(pos))
    if i1 <= i0:
        raise ValueError(
            f"slice_by_energy: [{lo:.6g}, {hi:.6g}] {unit} contains no bin of the energy axis "
            f"[{e[0]:.6g}, {e[-1]:.6g}] {unit} ({e.size - 1} bins)"
        )
    return slice(i0, i1)


def slice_by_energy(ds: xr.Dataset, energy_min=None, energy_max=None, name: str | None = None) -> xr.Dataset:
    """Sub-dataset in a reco-energy range (Gammapy's ``slice_by_energy``; see `energy_slice`).

    ``energy_min``/``energy_max`` are Quantities, strings (``"1 TeV"``) or floats in the axis
    unit; None means the axis bound.
    """
    return slice_by_idx(ds, {"energy": energy_slice(ds, energy_min, energy_max)}, name=name)
