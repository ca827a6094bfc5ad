"""Building and validating the `xarray.Dataset` that holds a spectrum dataset.

Layout (API.md): variables ``counts(energy)``, ``background(energy)``, ``mask_safe(energy)``,
``mask_fit(energy)``, ``exposure(energy_true)``, ``edisp(energy_true, energy)``; optional
``livetime`` (scalar, s), ``gti_start``/``gti_stop`` (dim ``gti``); attrs ``name``,
``meta_table`` (ECSV text) and ``time_reference``. Every check raises an error that names the
variable and the problem.
"""

from __future__ import annotations

import functools
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
    var = _variable(name, value, {d: _Axis.from_map_axis(axes[d]) for d in dims})
    coords = {}
    for d in dims:
        coords.update(axes[d].coords())
    return _make_dataset({name: var}, coords, {})[name]


# --------------------------------------------------------------------------------------------
# building a Dataset cheaply: units parsed once, axes compared by identity first, one Dataset
# --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def _unit(text: str) -> u.UnitBase:
    """``astropy.units.Unit(text)``, parsed once per distinct string."""
    return u.Unit(text)


@functools.lru_cache(maxsize=256)
def _unit_text(unit: u.UnitBase) -> str:
    return unit.to_string()


@functools.lru_cache(maxsize=256)
def _is_area_time(text: str) -> bool:
    return _unit(text).is_equivalent(AREA_TIME)


@functools.lru_cache(maxsize=256)
def _energy_unit(text: str) -> tuple[str, bool]:
    """(normalised text, is an energy) of an edge unit string."""
    unit = _unit(text)
    return _unit_text(unit), unit.physical_type == "energy"


@functools.lru_cache(maxsize=256)
def _factor(src: str, dst: str) -> float:
    return _unit(src).to(_unit(dst))


class _Axis:
    """The edges of one energy dimension as found on a DataArray (float64, in ``unit``)."""

    __slots__ = ("dim", "lo", "hi", "unit", "source")

    def __init__(self, dim: str, lo: np.ndarray, hi: np.ndarray, unit: str, source):
        self.dim, self.lo, self.hi, self.unit, self.source = dim, lo, hi, unit, source

    @classmethod
    def from_coords(cls, coords, dim: str, what: str) -> "_Axis":
        lo_var, hi_var = coords.get(f"{dim}_min"), coords.get(f"{dim}_max")
        if lo_var is None or hi_var is None:
            raise ValueError(f"energy dimension {dim!r} has no '{dim}_min'/'{dim}_max' edge coordinates")
        lo_unit = lo_var.attrs.get("units", "TeV")
        hi_unit = hi_var.attrs.get("units", lo_unit)
        unit, ok = _energy_unit(lo_unit)
        if not (ok and _energy_unit(hi_unit)[1]):
            raise u.UnitsError(f"MapAxis {dim!r}: edges must be an energy, got units {lo_unit!r}/{hi_unit!r}")
        lo = np.asarray(lo_var.values, dtype=np.float64)
        hi = np.asarray(hi_var.values, dtype=np.float64)
        if hi_unit != lo_unit:
            hi = hi * _factor(hi_unit, lo_unit)
        n = lo.size
        if (
            lo.ndim != 1
            or n == 0
            or not np.array_equal(lo[1:], hi[:-1])
            or not (lo[0] > 0 and np.all(hi > lo) and np.isfinite(hi[-1]))
        ):
            axis_from_dataset(_ErrorView(coords), dim)  # raises the detailed error
            raise ValueError(f"energy dimension {dim!r}: invalid bin edges")  # pragma: no cover
        return cls(dim, lo, hi, unit, (lo_var._data, hi_var._data))

    @classmethod
    def from_map_axis(cls, axis: MapAxis) -> "_Axis":
        e = axis._edges
        return cls(axis.name, e[:-1], e[1:], _unit_text(axis.unit), None)

    def check_same(self, other: "_Axis", what: str) -> None:
        """Raise (as `check_same_axis`) if ``other`` differs by more than 1e-10 relative."""
        same = other.source is not None and self.source is not None
        if same and other.source[0] is self.source[0] and other.source[1] is self.source[1] and other.unit == self.unit:
            return  # the same arrays
        if other.lo.size == self.lo.size:
            f = 1.0 if other.unit == self.unit else _factor(other.unit, self.unit)
            e0 = np.append(self.lo, self.hi[-1])
            e1 = np.append(other.lo, other.hi[-1]) * f
            if np.all(np.abs(e1 - e0) <= 1e-10 * np.abs(e1)):
                return
        check_same_axis(self.map_axis(), other.map_axis(), what)

    def map_axis(self) -> MapAxis:
        return MapAxis(np.append(self.lo, self.hi[-1]) * _unit(self.unit), name=self.dim)

    def coords(self) -> dict[str, xr.Variable]:
        """The three coordinates exactly as `MapAxis.coords` makes them."""
        n, unit = self.dim, self.unit
        return {
            n: xr.Variable(n, np.sqrt(self.lo * self.hi), {"units": unit, "long_name": f"{n} bin centre (log)"}),
            f"{n}_min": xr.Variable(n, self.lo.copy(), {"units": unit, "long_name": f"{n} lower bin edge"}),
            f"{n}_max": xr.Variable(n, self.hi.copy(), {"units": unit, "long_name": f"{n} upper bin edge"}),
        }


class _ErrorView:
    """Minimal stand-in with ``.coords`` for `axis_from_dataset` on the error path."""

    def __init__(self, coords):
        self.coords = {k: xr.DataArray(v) for k, v in coords.items()}


def _variable(name: str, value, axes: dict) -> xr.Variable:
    """Variable ``name`` from a DataArray (its axes registered or checked) or an array / Quantity."""
    dims = VARIABLE_DIMS.get(name)
    if dims is None:
        raise KeyError(f"unknown dataset variable {name!r}; known: {sorted(VARIABLE_DIMS)}")
    if isinstance(value, xr.DataArray):
        var = value.variable
        if tuple(var.dims) != dims:
            if set(var.dims) != set(dims):
                raise ValueError(f"{name}: dims must be {dims}, got {tuple(var.dims)}")
            var = var.transpose(*dims)
        coords = value.coords.variables
        for d in dims:
            ax = _Axis.from_coords(coords, d, name)
            if d in axes:
                axes[d].check_same(ax, f"{name} vs the dataset's other arrays")
            else:
                axes[d] = ax
        return xr.Variable(dims, var._data, dict(value.attrs))
    missing = [d for d in dims if d not in axes]
    if missing:
        raise ValueError(f"{name}: a plain array needs the {missing} axis from another argument or a DataArray")
    if name in UNIT_REQUIRED and not isinstance(value, u.Quantity):
        raise u.UnitsError(
            f"{name} needs a unit of area x time, e.g. np.full(n, 1e12) * u.Unit('cm2 s'); got a bare "
            f"{type(value).__name__} without unit (a number alone is ambiguous: m2 s and cm2 s differ by 1e4)"
        )
    if isinstance(value, u.Quantity):
        unit = _unit_text(value.unit)
        data = value.value
    else:
        unit = DEFAULT_UNITS.get(name, "")
        data = np.asarray(value)
    shape = tuple(axes[d].lo.size for d in dims)
    if data.shape != shape:
        raise ValueError(
            f"{name}: shape {data.shape} does not match the energy axes {dict(zip(dims, shape, strict=True))}"
        )
    attrs = {"long_name": LONG_NAMES.get(name, name)}
    if name not in MASK_VARIABLES:
        attrs["units"] = unit
        data = data.astype(np.float64, copy=False)
    else:
        data = data.astype(bool, copy=False)
    return xr.Variable(dims, data, attrs)


def _make_dataset(data_vars: dict, coords: dict, attrs: dict) -> xr.Dataset:
    """``xr.Dataset(data_vars, coords=coords, attrs=attrs)`` without the generic merge machinery.

    The inputs here are already aligned (one set of edges per dimension, checked), so the
    Dataset is assembled directly with a pandas index per energy dimension, about 10x faster than
    the public constructor; if this xarray lacks the (private) direct constructor, the public
    one is used. Tests compare both (``tests/test_containers.py``).
    """
    try:
        from xarray.core.indexes import PandasIndex

        variables = {}
        indexes = {}
        for k, v in coords.items():
            if v.dims == (k,):
                index = PandasIndex.from_variables({k: v}, options={})
                variables.update(index.create_variables({k: v}))
                indexes[k] = index
            else:
                variables[k] = v
        dims: dict[str, int] = {}
        for k, v in {**data_vars, **variables}.items():
            for d, n in zip(v.dims, v.shape, strict=True):
                if dims.setdefault(d, n) != n:
                    raise ValueError(f"{k}: dimension {d!r} has length {n}, other variables have {dims[d]}")
        ordered = {**data_vars, **variables}
        return xr.Dataset._construct_direct(ordered, set(coords), dims, attrs, indexes=indexes)
    except (AttributeError, ImportError, TypeError):  # pragma: no cover - other xarray versions
        return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def build_dataset(
    arrays: dict, name: str | None = None, gti=None, meta_table=None, livetime=None, attrs: dict | None = None
) -> xr.Dataset:
    """Assemble and validate a spectrum `xarray.Dataset` from named arrays (None skipped).

    DataArrays (with edge coordinates) define the axes and are checked against each other
    (arrays sharing the same edge objects are not compared again); plain arrays and Quantities
    take the axes of the DataArrays. Unit strings are parsed once per process (`_unit`), the
    checks are vectorised and the Dataset is assembled once (`_make_dataset`).
    """
    axes: dict[str, _Axis] = {}
    # DataArrays first, they define axes
    order = sorted(arrays, key=lambda k: not isinstance(arrays[k], xr.DataArray))
    variables = {}
    for key in order:
        value = arrays[key]
        if value is None:
            continue
        variables[key] = _variable(key, value, axes)
    coords = {}
    for ax in axes.values():
        coords.update(ax.coords())
    ds_attrs = dict(attrs or {})
    if name is not None:
        ds_attrs["name"] = str(name)
    if gti is not None:
        variables.update(gti.to_xarray())
        ds_attrs["time_reference"] = gti.time_ref.tt.isot
    if meta_table is not None:
        ds_attrs["meta_table"] = table_to_text(meta_table)
    if livetime is not None:
        variables["livetime"] = xr.Variable((), float(u.Quantity(livetime, u.s).to_value(u.s)), {"units": "s"})
    ds = _make_dataset(variables, coords, ds_attrs)
    validate_dataset(ds)
    return ds


def _check_counts(name: str, values: np.ndarray) -> None:
    ok = (values >= 0) & (values < np.inf)  # one pass: False for NaN, inf and negatives
    if ok.all():
        return
    if not np.all(np.isfinite(values)):
        bad = np.flatnonzero(~np.isfinite(values.ravel()))
        raise ValueError(f"{name} has non-finite values (NaN or inf) in {bad.size} bin(s), first at index {bad[0]}")
    bad = np.flatnonzero(values.ravel() < 0)
    raise ValueError(f"{name} has negative values in {bad.size} bin(s), first at index {bad[0]}")


def _check_edges(variables, dim: str) -> None:
    """Edges of ``dim`` present, 1-D, an energy, positive, increasing and contiguous (vectorised)."""
    _Axis.from_coords(variables, dim, dim)


def validate_dataset(ds: xr.Dataset, check_values: bool = True) -> None:
    """Check a spectrum Dataset: dims, edge coordinates, units and values.

    Lazy (dask) variables are checked for dims and units only, never computed. Works on the
    Dataset's `xarray.Variable` objects (no DataArray is built) with unit strings parsed once.
    """
    variables = ds.variables
    for name, dims in VARIABLE_DIMS.items():
        var = variables.get(name)
        if var is None:
            continue
        core = tuple(d for d in var.dims if d in ("energy", "energy_true"))
        if core != dims:
            raise ValueError(f"{name}: energy dims must be {dims}, got {tuple(var.dims)}")
    for dim in ("energy", "energy_true"):
        if dim in ds.dims:
            _check_edges(variables, dim)  # raises if edges missing or not contiguous
    if "exposure" in variables:
        text = variables["exposure"].attrs.get("units", "m2 s")
        if not _is_area_time(text):
            raise u.UnitsError(f"exposure unit {_unit(text)} is not area x time (e.g. 'm2 s', 'cm2 s')")
    if "edisp" in variables:
        unit = _unit(variables["edisp"].attrs.get("units", ""))
        if unit != u.dimensionless_unscaled:
            raise u.UnitsError(f"edisp must be dimensionless (probabilities), got unit {unit}")
    for name in MASK_VARIABLES:
        if name in variables and variables[name].dtype != bool:
            raise TypeError(f"{name} must be boolean, got dtype {variables[name].dtype}")
    if not check_values:
        return
    for name in COUNT_LIKE + ("background", "exposure"):
        var = variables.get(name)
        if var is not None and not _is_lazy_var(var):
            _check_counts(name, np.asarray(var.values))
    var = variables.get("edisp")
    if var is not None and not _is_lazy_var(var):
        m = np.asarray(var.values)
        if not ((m >= 0) & (m < np.inf)).all():
            raise ValueError("edisp has negative or non-finite probabilities")
        if np.any(m.sum(axis=-1) > 1 + 1e-6):
            raise ValueError("edisp rows (true-energy bins) sum to more than 1: not a probability kernel")


def _is_lazy_var(var: xr.Variable) -> bool:
    return not isinstance(var._data, np.ndarray)


def _is_lazy(da: xr.DataArray) -> bool:
    return not isinstance(da.variable._data, np.ndarray)
