"""Energy ranges by value, whatever unit the file stored its energies in.

A dataset's energy coordinates are plain numbers in the unit of ``attrs["units"]`` (the unit of
the file they were read from: keV for OGIP, TeV for Gammapy's FITS layout; see
`xspec_ds.axes`). Selecting by the bare numbers (``ds.sel(energy=slice(0.66, 30))``) therefore
means different energies for different files. The functions here take Quantities or strings
(``"0.66 TeV"``, ``"660 GeV"``, ``"6.6e8 keV"``) and convert the bounds to the coordinate's unit
before comparing, so the same call selects the same bins on every file.

The rule is Gammapy's ``Geom.energy_mask`` / ``Geom.create_mask``: a bin is selected when it lies
fully inside ``[energy_min, energy_max]``, i.e. ``e_min >= energy_min and e_max <= energy_max``,
compared in the axis unit (astropy converts the bound to the unit of the edges in Gammapy too).
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import xarray as xr

from ..axes import ENERGY_DIMS, edges_from_coords

__all__ = ["as_energy", "energy_mask", "energy_sel_index", "sel"]


def as_energy(value, what: str = "energy") -> u.Quantity:
    """A scalar energy Quantity from a Quantity or a string such as ``"0.66 TeV"``.

    Bare numbers are refused: the unit of a dataset's energy coordinates depends on the file it
    came from, so a number without a unit has no fixed meaning.

    Raises
    ------
    TypeError
        For a bare number (no unit).
    astropy.units.UnitsError
        For a unit that is not an energy.
    """
    if isinstance(value, str):
        try:
            q = u.Quantity(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{what}: cannot parse {value!r} as an energy (e.g. '0.66 TeV')") from exc
    elif isinstance(value, u.Quantity):
        q = value
    else:
        raise TypeError(
            f"{what}: {value!r} has no unit; give a Quantity or a string such as '1 TeV' "
            "(a dataset's energy coordinates are in the unit of the file they were read from)"
        )
    if q.unit.physical_type != "energy":
        raise u.UnitsError(f"{what}: {value!r} is not an energy (unit {q.unit})")
    if q.ndim != 0:
        raise ValueError(f"{what}: expected one energy, got an array of shape {q.shape}")
    return q


def _bounds(edges: u.Quantity, energy_min, energy_max, round_to_edge: bool) -> tuple[float, float]:
    """Bounds in the unit of ``edges`` (None means the axis end)."""
    unit = edges.unit
    lo = edges.value[0] if energy_min is None else as_energy(energy_min, "energy_min").to_value(unit)
    hi = edges.value[-1] if energy_max is None else as_energy(energy_max, "energy_max").to_value(unit)
    if round_to_edge:
        # nearest edge in log energy (Gammapy's MapAxis.round on a log axis)
        log_e = np.log(edges.value)
        lo = edges.value[np.argmin(np.abs(log_e - np.log(lo)))] if lo > 0 else lo
        hi = edges.value[np.argmin(np.abs(log_e - np.log(hi)))] if hi > 0 else hi
    return lo, hi


def energy_mask(
    ds: xr.Dataset | xr.DataArray,
    energy_min=None,
    energy_max=None,
    dim: str = "energy",
    round_to_edge: bool = False,
) -> xr.DataArray:
    """Boolean mask of the bins of ``dim`` lying fully inside ``[energy_min, energy_max]``.

    Gammapy's ``Geom.energy_mask`` rule: ``(e_min >= energy_min) & (e_max <= energy_max)``,
    compared in the unit of the dataset's edge coordinates.

    Parameters
    ----------
    ds : `xarray.Dataset` or `xarray.DataArray`
        Anything with the ``dim``, ``dim_min`` and ``dim_max`` coordinates.
    energy_min, energy_max : `~astropy.units.Quantity` or str, optional
        Bounds in any energy unit (``"0.66 TeV"``); None means the end of the axis.
    dim : {"energy", "energy_true"}
    round_to_edge : bool
        Round each bound to the nearest bin edge (in log energy) first, as Gammapy's option.

    Returns
    -------
    `xarray.DataArray`
        Boolean, dims ``(dim,)``, with the axis' coordinates; named ``"mask_fit"`` so that it can
        be assigned to ``dataset.mask_fit`` directly.

    Examples
    --------
    >>> import xspec_ds as xs
    >>> axis = xs.MapAxis.from_energy_bounds("0.1 TeV", "100 TeV", 3)
    >>> ds = xs.SpectrumDataset.create(axis)
    >>> ds.energy_mask("1 TeV", "1e5 GeV").values.tolist()
    [False, True, True]
    """
    if dim not in ENERGY_DIMS:
        raise ValueError(f"energy_mask: dim must be one of {ENERGY_DIMS}, got {dim!r}")
    if dim not in ds.dims:
        raise ValueError(f"energy_mask: the dataset has no {dim!r} dimension (dims: {tuple(ds.dims)})")
    edges = edges_from_coords(ds, dim)
    lo, hi = _bounds(edges, energy_min, energy_max, round_to_edge)
    e = edges.value
    mask = (e[:-1] >= lo) & (e[1:] <= hi)
    coords = {k: ds.coords[k].variable for k in (dim, f"{dim}_min", f"{dim}_max")}
    return xr.DataArray(mask, dims=(dim,), coords=coords, name="mask_fit")


def energy_sel_index(ds: xr.Dataset | xr.DataArray, dim: str, key) -> slice | np.ndarray:
    """Positional indexer along ``dim`` for a label ``key`` given with units.

    ``key`` is a slice of two energies (bins fully inside, see `energy_mask`; the selected bins
    are contiguous), or one energy (the bin containing it, ``e_min <= E < e_max``; the last bin
    includes its upper edge).
    """
    edges = edges_from_coords(ds, dim)
    if isinstance(key, slice):
        if key.step is not None:
            raise ValueError(f"sel: {dim}= slices by energy take no step, got step {key.step!r}")
        mask = energy_mask(ds, key.start, key.stop, dim=dim).values
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            raise ValueError(
                f"sel: no {dim!r} bin lies fully inside [{key.start}, {key.stop}]; the axis spans "
                f"{edges[0]:.6g} - {edges[-1]:.6g} in {edges.size - 1} bins"
            )
        return slice(int(idx[0]), int(idx[-1]) + 1)
    e = as_energy(key, dim).to_value(edges.unit)
    v = edges.value
    i = int(np.searchsorted(v, e, side="right")) - 1
    if e == v[-1]:
        i = v.size - 2
    if not 0 <= i < v.size - 1:
        raise KeyError(f"sel: {key!r} is outside the {dim!r} axis ({edges[0]:.6g} - {edges[-1]:.6g})")
    return slice(i, i + 1)


def sel(ds: xr.Dataset, indexers: dict | None = None, **kwargs) -> xr.Dataset:
    """`xarray.Dataset.sel` with energies given with units.

    ``energy``/``energy_true`` take ``slice("1 TeV", "10 TeV")`` (the bins lying fully inside,
    Gammapy's ``energy_mask`` rule) or one energy (the bin containing it; the dimension is kept);
    any other dimension (e.g. ``obs``) is passed to `xarray.Dataset.sel` unchanged.

    Returns
    -------
    `xarray.Dataset`
        The selection (a view where xarray gives one); edge coordinates travel with the bins.
    """
    indexers = dict(indexers or {}, **kwargs)
    positional = {}
    for dim in ENERGY_DIMS:
        if dim in indexers:
            key = indexers.pop(dim)
            if dim not in ds.dims:
                raise ValueError(f"sel: the dataset has no {dim!r} dimension (dims: {tuple(ds.dims)})")
            positional[dim] = energy_sel_index(ds, dim, key)
    out = ds.isel(positional) if positional else ds
    return out.sel(indexers) if indexers else out
