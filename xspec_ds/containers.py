"""Building and validating the `xarray.Dataset` that holds a spectrum dataset.

Layout (API.md): variables ``counts(energy)``, ``background(energy)``, ``mask_safe(energy)``,
``mask_fit(energy)``, ``exposure(energy_true)``, ``edisp(energy_true, energy)``; optional
``livetime`` (scalar, s), ``gti_start``/``gti_stop`` (dim ``gti``); attrs ``name``,
``meta_table`` (ECSV text) and ``time_reference``. Every check raises an error that names the
variable and the problem.
"""

from __future__ import annotations

import io

import astropy.units as u
import numpy as np
import xarray as xr

from .axes import MapAxis, axis_from_dataset, check_same_axis

__all__ = [
    "VARIABLE_DIMS",
    "as_dataarray",
    "build_dataset",
    "validate_dataset",
    "table_to_text",
    "table_from_text",
]

VARIABLE_DIMS = {
    "counts": ("energy",),
    "background": ("energy",),
    "mask_safe": ("energy",),
    "mask_fit": ("energy",),
    "exposure": ("energy_true",),
    "edisp": ("energy_true", "energy"),
    "counts_off": ("energy",),
    "acceptance": ("energy",),
    "acceptance_off": ("energy",),
}
MASK_VARIABLES = ("mask_safe", "mask_fit")
UNIT_REQUIRED = ("exposure",)
"""Variables refused as bare numbers: counts and background are counts and need no unit."""
COUNT_LIKE = ("counts", "counts_off")
AREA_TIME = u.Unit("m2 s")
DEFAULT_UNITS = {
    "counts": "",
    "background": "",
    "edisp": "",
    "exposure": "m2 s",
    "counts_off": "",
    "acceptance": "",
    "acceptance_off": "",
}
LONG_NAMES = {
    "counts": "observed counts",
    "background": "predicted background counts",
    "mask_safe": "safe data range",
    "mask_fit": "fit range",
    "exposure": "exposure (effective area x livetime)",
    "edisp": "energy dispersion: P(reco bin | true bin)",
    "counts_off": "off counts",
    "acceptance": "on-region acceptance",
    "acceptance_off": "off-region acceptance",
}


def table_to_text(table) -> str:
    """An astropy Table as ECSV text (loss-free: dtypes, units, meta)."""
    buf = io.StringIO()
    table.write(buf, format="ascii.ecsv")
    return buf.getvalue()


def table_from_text(text: str):
    from astropy.table import Table

    return Table.read(text, format="ascii.ecsv")


def as_dataarray(name: str, value, axes: dict[str, MapAxis]) -> xr.DataArray:
    """Turn ``value`` into the DataArray for variable ``name``.

    ``value`` may be a DataArray with edge coordinates (checked against ``axes`` when given),
    or an array / Quantity of the right shape on the axes in ``axes``.
    """
    dims = VARIABLE_DIMS.get(name)
    if dims is None:
        raise KeyError(f"unknown dataset variable {name!r}; known: {sorted(VARIABLE_DIMS)}")
    if isinstance(value, xr.DataArray):
        if tuple(value.dims) != dims:
            if set(value.dims) == set(dims):
                value = value.transpose(*dims)
            else:
                raise ValueError(f"{name}: dims must be {dims}, got {tuple(value.dims)}")
        for d in dims:
            ax = axis_from_dataset(value, d)
            if d in axes:
                check_same_axis(axes[d], ax, f"{name} vs the dataset's other arrays")
            else:
                axes[d] = ax
        da = value.copy(deep=False)
        da.name = name
        return da
    missing = [d for d in dims if d not in axes]
    if missing:
        raise ValueError(f"{name}: a plain array needs the {missing} axis from another argument or a DataArray")
    unit = DEFAULT_UNITS.get(name, "")
    if name in UNIT_REQUIRED and not isinstance(value, u.Quantity):
        raise u.UnitsError(
            f"{name} needs a unit of area x time, e.g. np.full(n, 1e12) * u.Unit('cm2 s'); got a bare "
            f"{type(value).__name__} without unit (a number alone is ambiguous: m2 s and cm2 s differ by 1e4)"
        )
    if isinstance(value, u.Quantity):
        unit = value.unit.to_string()
        data = value.value
    else:
        data = np.asarray(value)
    shape = tuple(axes[d].nbin for d in dims)
    if data.shape != shape:
        raise ValueError(
            f"{name}: shape {data.shape} does not match the energy axes {dict(zip(dims, shape, strict=True))}"
        )
    coords = {}
    for d in dims:
        coords.update(axes[d].coords())
    attrs = {"long_name": LONG_NAMES.get(name, name)}
    if name not in MASK_VARIABLES:
        attrs["units"] = unit
        data = data.astype(np.float64, copy=False)
    else:
        data = data.astype(bool, copy=False)
    return xr.DataArray(data, dims=dims, coords=coords, name=name, attrs=attrs)


def build_dataset(
    arrays: dict, name: str | None = None, gti=None, meta_table=None, livetime=None, attrs: dict | None = None
) -> xr.Dataset:
    """Assemble and validate a spectrum `xarray.Dataset` from named arrays (None skipped)."""
    axes: dict[str, MapAxis] = {}
    # DataArrays first, they define axes
    order = sorted(arrays, key=lambda k: not isinstance(arrays[k], xr.DataArray))
    das = {}
    for key in order:
        value = arrays[key]
        if value is None:
            continue
        das[key] = as_dataarray(key, value, axes)
    coords = {}
    for ax in axes.values():
        coords.update(ax.coords())
    variables = {k: xr.DataArray(v.data, dims=v.dims, attrs=dict(v.attrs), name=k) for k, v in das.items()}
    ds = xr.Dataset(variables, coords=coords, attrs=dict(attrs or {}))
    if name is not None:
        ds.attrs["name"] = str(name)
    if gti is not None:
        for k, v in gti.to_xarray().items():
            ds[k] = v
        ds.attrs["time_reference"] = gti.time_ref.tt.isot
    if meta_table is not None:
        ds.attrs["meta_table"] = table_to_text(meta_table)
    if livetime is not None:
        ds["livetime"] = xr.Variable((), float(u.Quantity(livetime, u.s).to_value(u.s)), {"units": "s"})
    validate_dataset(ds)
    return ds


def _check_counts(name: str, values: np.ndarray) -> None:
    if not np.all(np.isfinite(values)):
        bad = np.flatnonzero(~np.isfinite(values.ravel()))
        raise ValueError(f"{name} has non-finite values (NaN or inf) in {bad.size} bin(s), first at index {bad[0]}")
    if np.any(values < 0):
        bad = np.flatnonzero(values.ravel() < 0)
        raise ValueError(f"{name} has negative values in {bad.size} bin(s), first at index {bad[0]}")


def validate_dataset(ds: xr.Dataset, check_values: bool = True) -> None:
    """Check a spectrum Dataset: dims, edge coordinates, units and values.

    Lazy (dask) variables are checked for dims and units only, never computed.
    """
    for name, dims in VARIABLE_DIMS.items():
        if name not in ds.variables:
            continue
        var = ds[name]
        core = tuple(d for d in var.dims if d in ("energy", "energy_true"))
        if core != dims:
            raise ValueError(f"{name}: energy dims must be {dims}, got {tuple(var.dims)}")
    for dim in ("energy", "energy_true"):
        if dim in ds.dims:
            axis_from_dataset(ds, dim)  # raises if edges missing or not contiguous
    if "exposure" in ds.variables:
        unit = u.Unit(ds["exposure"].attrs.get("units", "m2 s"))
        if not unit.is_equivalent(AREA_TIME):
            raise u.UnitsError(f"exposure unit {unit} is not area x time (e.g. 'm2 s', 'cm2 s')")
    if "edisp" in ds.variables:
        unit = u.Unit(ds["edisp"].attrs.get("units", ""))
        if unit != u.dimensionless_unscaled:
            raise u.UnitsError(f"edisp must be dimensionless (probabilities), got unit {unit}")
    for name in MASK_VARIABLES:
        if name in ds.variables and ds[name].dtype != bool:
            raise TypeError(f"{name} must be boolean, got dtype {ds[name].dtype}")
    if not check_values:
        return
    for name in COUNT_LIKE + ("background", "exposure"):
        if name in ds.variables and not _is_lazy(ds[name]):
            _check_counts(name, np.asarray(ds[name].values))
    if "edisp" in ds.variables and not _is_lazy(ds["edisp"]):
        m = np.asarray(ds["edisp"].values)
        if not np.all(np.isfinite(m)) or np.any(m < 0):
            raise ValueError("edisp has negative or non-finite probabilities")
        if np.any(m.sum(axis=-1) > 1 + 1e-6):
            raise ValueError("edisp rows (true-energy bins) sum to more than 1: not a probability kernel")


def _is_lazy(da: xr.DataArray) -> bool:
    return not isinstance(da.variable._data, np.ndarray)
