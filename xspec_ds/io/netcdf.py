"""Loss-free netCDF archives of spectrum datasets.

The `xarray.Dataset` behind a `SpectrumDataset` is written as it is: every variable, the edge
coordinates ``energy_min``/``energy_max`` (CF ``coordinates``), the CF attributes ``units`` and
``long_name``, the GTI, the meta table (ECSV text) and the name. Attributes netCDF cannot hold
(None, bool, dicts, lists of strings) are kept as JSON in ``xspec_ds_json_attrs``. The dataset's
models are kept as their YAML definition in the global attribute ``xspec_ds_models`` (the same
text as Gammapy's models YAML files). Boolean masks go through xarray's bool encoding (int8 with
``dtype: bool``) and come back as bool.

Engine: netCDF-3 (xarray's ``scipy`` engine) writes and reads a 100-bin dataset several times
faster than netCDF-4/HDF5 (measured in ``benchmarks/bench_io.py``), so it is used whenever the
data fit netCDF-3 without change (float64/float32/int32/int16/int8/bool variables, ASCII text);
anything else (e.g. int64, non-ASCII text) is written with ``netcdf4``. Reading picks the
engine from the file's magic bytes. No ``_FillValue`` is written: every value is kept as is.

CF-1.8 (checked with the IOOS ``compliance-checker --test=cf:1.8``): the file carries the global
attributes ``Conventions``, ``title`` and ``history``; every variable a ``long_name``;
dimensionless variables ``units = "1"`` (CF section 3.1; udunits has no empty unit); and each
energy axis its CF cell boundaries ``<dim>_bounds(<dim>, nv)`` named by the ``bounds`` attribute
of the ``<dim>`` coordinate (CF section 7.1, so that ``cf_xarray`` finds them), besides the
``<dim>_min``/``<dim>_max`` coordinates of the API. What was added or changed for CF is
recorded in the global attribute ``xspec_ds_cf`` and undone on reading: round trips stay exact.

Integrity: every variable carries ``xspec_ds_crc32``, the CRC-32 (``zlib.crc32``) of its name,
dims, dtype, attributes and raw little-endian bytes, and the file a global ``xspec_ds_crc32`` over
the global attributes and the (name, role, CRC) list of all variables. Reading verifies them
(`verify_netcdf`): a flipped bit, zeroed block, renamed variable or edited attribute raises
`~xspec_ds.io.DatasetFileError` naming the file and the variable. Files without checksums
(written by other software) are read unverified. Lazily opened files are verified when their
data are computed (`open_netcdf` wraps each dask array in a checking task).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import zlib
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from .atomic import atomic_path

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: ~10x faster
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

__all__ = [
    "write_netcdf",
    "read_netcdf",
    "encode_dataset",
    "decode_dataset",
    "netcdf_engine",
    "verify_netcdf",
    "load_verified",
    "read_nc3",
    "variable_checksum",
    "checksum_head",
    "checksum_of_values",
    "numeric_checksum_head",
    "MODELS_ATTR",
    "CHECKSUM_ATTR",
]

MODELS_ATTR = "xspec_ds_models"
JSON_ATTR = "xspec_ds_json_attrs"
EMPTY_ATTR = "xspec_ds_empty_variables"
CF_ATTR = "xspec_ds_cf"
CHECKSUM_ATTR = "xspec_ds_crc32"
#: checksums of CF bounds variables, which may carry no attributes of their own (CF 7.1)
BOUNDS_CHECKSUM_ATTR = "xspec_ds_crc32_bounds"
CF_CONVENTIONS = "CF-1.8"
#: dtype kinds each spectrum variable may have in a file (anything else is refused on reading)
_FLOAT_VARIABLES = ("exposure", "edisp", "background", "acceptance", "acceptance_off", "livetime")
_COUNT_VARIABLES = ("counts", "counts_off")
_MASK_VARIABLES = ("mask_safe", "mask_fit")
_NC3_DTYPES = {np.dtype(t) for t in ("float64", "float32", "int32", "int16", "int8", "bool")}
NETCDF_SUFFIXES = (".nc", ".nc4", ".cdf", ".netcdf")


def _native_attr(value) -> bool:
    if isinstance(value, bool | np.bool_) or value is None:
        return False
    if isinstance(value, str | int | float | np.integer | np.floating):
        return True
    if isinstance(value, np.ndarray):
        return value.ndim == 1 and value.dtype.kind in "iuf"
    return False


def _split_attrs(attrs: dict) -> dict:
    """Move attrs netCDF cannot store into one JSON string attribute."""
    out, extra = {}, {}
    for k, v in attrs.items():
        (out if _native_attr(v) else extra)[k] = v
    if extra:
        try:
            out[JSON_ATTR] = json.dumps(extra)
        except TypeError as exc:
            raise TypeError(f"cannot store attributes {sorted(extra)} in netCDF: {exc}") from None
    return out


def _join_attrs(attrs: dict) -> dict:
    attrs = dict(attrs)
    text = attrs.pop(JSON_ATTR, None)
    if text:
        attrs.update(json.loads(text))
    return attrs


def _json_default(value):
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_dataset(ds: xr.Dataset, models=None, checksums: bool = True) -> xr.Dataset:
    """The Dataset to write: attrs made netCDF-safe, models as YAML, no fill values, CF, checksums.

    Variables with a zero-length dimension (e.g. an empty GTI) are described in the attribute
    ``xspec_ds_empty_variables`` instead of being written: a zero-length fixed dimension is not
    valid netCDF-3 (the netCDF-C library refuses such files), and they hold no values anyway.
    CF attributes and bounds are added (`add_cf`), then the checksums (``checksums=True``).
    """
    empty = {k: v for k, v in ds.variables.items() if v.ndim and v.size == 0}
    out = (ds.drop_vars(list(empty)) if empty else ds).copy(deep=False)
    attrs = dict(ds.attrs)
    if empty:
        spec = {
            k: {
                "dims": list(v.dims),
                "shape": list(v.shape),
                "dtype": v.dtype.str,
                "attrs": dict(v.attrs),
                "coord": k in ds.coords,
            }
            for k, v in empty.items()
        }
        attrs[EMPTY_ATTR] = json.dumps(spec, default=_json_default)
    if models is not None and len(models):
        attrs[MODELS_ATTR] = models_to_yaml(models)
    out.attrs = _split_attrs(attrs)
    for var in out.variables.values():
        var.attrs = _split_attrs(dict(var.attrs))
        var.encoding = {"_FillValue": None} if var.dtype.kind == "f" else {}
    out = add_cf(out)
    if checksums:
        add_checksums(out)
    return out


def decode_dataset(ds: xr.Dataset, path=None) -> tuple[xr.Dataset, object]:
    """Undo `encode_dataset`: restore attrs, drop encodings; returns (dataset, models or None).

    Checksum attributes still present (files read without `verify_netcdf`) are dropped; the
    spectrum variables' dtypes are checked (``path`` names the file in errors).
    """
    ds = _undo_cf(ds)
    ds.attrs = _join_attrs(ds.attrs)
    ds.attrs.pop(CHECKSUM_ATTR, None)
    ds.attrs.pop(BOUNDS_CHECKSUM_ATTR, None)
    for var in ds.variables.values():
        var.attrs = _join_attrs(var.attrs)
        var.attrs.pop(CHECKSUM_ATTR, None)
        var.encoding = {}
    ds.encoding.pop("unlimited_dims", None)
    empty = ds.attrs.pop(EMPTY_ATTR, None)
    if empty:
        spec = json.loads(empty) if isinstance(empty, str) else empty
        new_vars, new_coords = {}, {}
        for k, v in spec.items():
            var = xr.Variable(tuple(v["dims"]), np.empty(tuple(v["shape"]), dtype=np.dtype(v["dtype"])), v["attrs"])
            (new_coords if v["coord"] else new_vars)[k] = var
        ds = ds.assign_coords(new_coords).assign(new_vars)
    check_dtypes(ds, path)
    text = ds.attrs.pop(MODELS_ATTR, None)
    models = None
    if text:
        models = models_from_yaml(text)
    return ds, models


def check_dtypes(ds: xr.Dataset, path=None) -> None:
    """Refuse files without an ``energy`` dimension, and spectrum variables stored with the
    wrong kind of dtype (e.g. an int8 ``edisp``).

    ``exposure``, ``edisp``, ``background``, the acceptances and ``livetime`` must be floating
    point, ``counts``/``counts_off`` numbers, the masks boolean.
    """
    where = f"{path}: " if path is not None else ""
    if "energy" not in ds.dims:
        raise _error(f"{where}no 'energy' dimension (variables: {sorted(ds.variables)}): not a spectrum dataset file")
    for k, var in ds.variables.items():
        kind = var.dtype.kind
        if k in _FLOAT_VARIABLES and kind != "f":
            raise _error(f"{where}variable {k!r} is stored as {var.dtype}, expected floating point")
        if k in _COUNT_VARIABLES and kind not in "fiu":
            raise _error(f"{where}variable {k!r} is stored as {var.dtype}, expected numbers")
        if k in _MASK_VARIABLES and kind != "b":
            raise _error(f"{where}variable {k!r} is stored as {var.dtype}, expected a boolean mask")


def _error(message: str):
    from . import DatasetFileError

    return DatasetFileError(message)


# --------------------------------------------------------------------------------------------
# CF conventions
# --------------------------------------------------------------------------------------------
def _long_name(name: str) -> str:
    from ..containers import LONG_NAMES

    return LONG_NAMES.get(name, name.replace("_", " "))


def add_cf(out: xr.Dataset) -> xr.Dataset:
    """Add what CF-1.8 asks for (global attrs, long names, units "1", energy bounds); in place.

    Everything added or changed is recorded in the global attribute ``xspec_ds_cf`` so that
    `decode_dataset` restores the dataset exactly. Returns the dataset (with bounds variables).
    """
    from .. import __version__

    record: dict = {"global": [], "attrs": {}, "units": {}, "bounds": [], "labels": {}}
    name = out.attrs.get("name")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    defaults = {
        "Conventions": CF_CONVENTIONS,
        "title": f"xspec_ds spectrum dataset {name}" if name is not None else "xspec_ds spectrum datasets",
        "history": f"{now} written by xspec_ds {__version__}",
    }
    for key, value in defaults.items():
        if key not in out.attrs:
            out.attrs[key] = value
            record["global"].append(key)
    # text-valued dimension coordinates (e.g. ``obs`` names) become auxiliary coordinates:
    # CF coordinate variables are numeric and monotonic (CF 1.8 section 5)
    for dim in list(out.dims):
        if dim in out.coords and out.variables[dim].dtype.kind in "OUS" and f"{dim}_label" not in out.variables:
            var = out.variables[dim]
            label = xr.Variable(var.dims, np.asarray(var.values), dict(var.attrs))
            out = out.drop_vars(dim).assign_coords({f"{dim}_label": label})
            record["labels"][dim] = f"{dim}_label"
    bounds = {}
    for dim in ("energy", "energy_true"):
        lo, hi = out.variables.get(f"{dim}_min"), out.variables.get(f"{dim}_max")
        bname = f"{dim}_bounds"
        if (
            dim in out.coords
            and lo is not None
            and hi is not None
            and lo.dims == (dim,)
            and hi.dims == (dim,)
            and bname not in out.variables
            and "bounds" not in out.variables[dim].attrs
            and "nv" not in out.dims
        ):
            values = np.stack([np.asarray(lo.values), np.asarray(hi.values)], axis=-1)
            bounds[bname] = xr.Variable((dim, "nv"), values, encoding={"_FillValue": None})
            out.variables[dim].attrs["bounds"] = bname
            record["bounds"].append(dim)
    for k, var in out.variables.items():
        if "long_name" not in var.attrs and "standard_name" not in var.attrs:
            var.attrs["long_name"] = _long_name(k)
            record["attrs"].setdefault(k, []).append("long_name")
        if var.attrs.get("units") == "" and var.dtype.kind in "fiu":
            var.attrs["units"] = "1"
            record["units"][k] = ""
    if bounds:
        out = out.assign(bounds)
    out.attrs[CF_ATTR] = json.dumps(record)
    return out


def _undo_cf(ds: xr.Dataset) -> xr.Dataset:
    text = ds.attrs.pop(CF_ATTR, None)
    if not text:
        return ds
    record = json.loads(text)
    for key in record.get("global", []):
        ds.attrs.pop(key, None)
    for k, names in record.get("attrs", {}).items():
        if k in ds.variables:
            for n in names:
                ds.variables[k].attrs.pop(n, None)
    for k, unit in record.get("units", {}).items():
        if k in ds.variables:
            ds.variables[k].attrs["units"] = unit
    drop = []
    for dim in record.get("bounds", []):
        if dim in ds.variables:
            ds.variables[dim].attrs.pop("bounds", None)
        if f"{dim}_bounds" in ds.variables:
            drop.append(f"{dim}_bounds")
    if drop:
        ds = ds.drop_vars(drop)
    for dim, label in record.get("labels", {}).items():
        if label in ds.variables:
            var = ds.variables[label]
            ds = ds.drop_vars(label).assign_coords({dim: xr.Variable(var.dims, var.values, dict(var.attrs))})
    return ds


# --------------------------------------------------------------------------------------------
# checksums
# --------------------------------------------------------------------------------------------
def _canonical(value):
    """An attribute value as plain JSON data, the same before writing and after reading."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        value = value.tolist()
        if len(value) == 1:  # netCDF stores every attribute as an array
            return value[0]
        return value
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value] if len(value) != 1 else _canonical(value[0])
    if isinstance(value, np.generic):
        return value.item()
    return value


def _attrs_text(attrs: dict) -> str:
    return json.dumps({k: _canonical(v) for k, v in attrs.items() if k != CHECKSUM_ATTR}, sort_keys=True, default=str)


def variable_checksum(name: str, dims, attrs: dict, values) -> str:
    """CRC-32 (hex) of a variable's name, dims, shape, dtype kind, attributes and raw bytes.

    Numbers are hashed as little-endian bytes (netCDF-3 stores big-endian; the value is what
    counts), text as JSON. ``zlib.crc32`` runs at several GB/s: ~0.05 ms for a 200 x 100 float64
    ``edisp``.
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "OUS":
        tag, data = "str", json.dumps([str(v) for v in arr.ravel().tolist()]).encode()
        return f"{zlib.crc32(data, checksum_head(name, dims, arr.shape, tag, attrs)):08x}"
    return checksum_of_values(checksum_head(name, dims, arr.shape, _number_tag(arr.dtype), attrs), arr)


def _number_tag(dtype) -> str:
    return np.dtype(dtype).newbyteorder("<").str


def checksum_head(name: str, dims, shape, tag: str, attrs: dict) -> int:
    """The CRC-32 of a variable's description (the seed `checksum_of_values` continues from);
    ``tag``: ``"str"`` for text, else the little-endian numpy dtype string of the decoded values."""
    head = json.dumps([name, list(dims), list(shape), tag, _attrs_text(attrs)])
    return zlib.crc32(head.encode())


def checksum_of_values(head: int, values) -> str:
    """Finish `variable_checksum` of numeric ``values`` from its `checksum_head` (lazy readers
    precompute the head once per file when they open a collection)."""
    arr = np.asarray(values)
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and np.little_endian is False):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return f"{zlib.crc32(np.ascontiguousarray(arr).tobytes(), head):08x}"


def numeric_checksum_head(name: str, dims, shape, dtype, attrs: dict) -> int:
    """`checksum_head` of a numeric variable whose decoded values have ``dtype``."""
    return checksum_head(name, dims, shape, _number_tag(dtype), attrs)


def _dataset_checksum(attrs: dict, roles: dict, sums: dict) -> str:
    items = sorted([k, roles[k], sums[k]] for k in sums)
    return f"{zlib.crc32(json.dumps([items, _attrs_text(attrs)]).encode()):08x}"


def add_checksums(ds: xr.Dataset) -> None:
    """Store `variable_checksum` in each variable's and the dataset checksum in the global attrs (in place)."""
    sums = {}
    bounds = _bounds_names(ds)
    for k, var in ds.variables.items():
        var.attrs.pop(CHECKSUM_ATTR, None)
        sums[k] = variable_checksum(k, var.dims, var.attrs, var.values)
        if k not in bounds:
            var.attrs[CHECKSUM_ATTR] = sums[k]
    ds.attrs.pop(CHECKSUM_ATTR, None)
    if bounds:
        ds.attrs[BOUNDS_CHECKSUM_ATTR] = json.dumps({k: sums[k] for k in sorted(bounds)})
    coord_names = set(ds.coords)
    roles = {k: "coord" if k in coord_names else "data" for k in sums}
    ds.attrs[CHECKSUM_ATTR] = _dataset_checksum(ds.attrs, roles, sums)


def _bounds_names(ds: xr.Dataset) -> set:
    """Variables named by a CF ``bounds`` attribute."""
    return {str(v.attrs["bounds"]) for v in ds.variables.values() if "bounds" in v.attrs} & set(ds.variables)


def _check_block(block, name, dims, attrs, expected, path):
    actual = variable_checksum(name, dims, attrs, block)
    if actual != expected:
        raise _error(
            f"{path}: variable {name!r} fails its checksum (stored {expected}, computed {actual}): "
            "the file is corrupt (damaged bytes)"
        )
    return block


def verify_netcdf(ds: xr.Dataset, path, variables=None) -> xr.Dataset:
    """Verify the checksums of a netCDF file opened with xarray (not yet decoded).

    Parameters
    ----------
    ds : `xarray.Dataset`
        As returned by ``xarray.open_dataset(path, decode_times=False)``, before `decode_dataset`.
    path : str or Path
        The file (named in errors).
    variables : list of str, optional
        Verify only these variables' data (the file-level checksum is always verified).

    Returns
    -------
    `xarray.Dataset`
        ``ds`` without the checksum attributes. Variables held in memory (or read lazily by
        xarray's backend) are verified now; dask-backed ones (``chunks=``) get a checking task
        that raises when they are computed.

    Raises
    ------
    `~xspec_ds.io.DatasetFileError`
        Naming the file and the variable, for any mismatch, or a checksum attribute missing
        from a file that has others (a renamed or lost attribute).

    Notes
    -----
    Files without any ``xspec_ds_crc32`` attribute (other software) are returned unverified.
    To verify one variable of a file read elsewhere (e.g. a dask task loading one block)::

        with xr.open_dataset(path, decode_times=False) as raw:
            verify_netcdf(raw, path, variables=[name])
            values = raw[name].values
    """
    stored_global = ds.attrs.get(CHECKSUM_ATTR)
    all_vars = ds.variables
    stored = {k: v.attrs.get(CHECKSUM_ATTR) for k, v in all_vars.items()}
    if BOUNDS_CHECKSUM_ATTR in ds.attrs:
        try:
            bounds_sums = json.loads(_canonical(ds.attrs[BOUNDS_CHECKSUM_ATTR]))
        except (TypeError, ValueError) as exc:
            raise _error(f"{path}: attribute {BOUNDS_CHECKSUM_ATTR} is damaged: {exc}") from None
        for k in bounds_sums:
            if k in stored and stored[k] is None:
                stored[k] = bounds_sums[k]
    if stored_global is None and all(v is None for v in stored.values()):
        return ds  # written by other software: nothing to verify
    if stored_global is None:
        raise _error(f"{path}: the global {CHECKSUM_ATTR} attribute is missing (damaged header)")
    missing = sorted(k for k, v in stored.items() if v is None)
    if missing:
        raise _error(f"{path}: variable(s) {missing} have no {CHECKSUM_ATTR} attribute (damaged header)")
    coord_names = set(ds.coords)
    roles = {k: "coord" if k in coord_names else "data" for k in stored}
    expected = _dataset_checksum(ds.attrs, roles, {k: _canonical(v) for k, v in stored.items()})
    if expected != _canonical(stored_global):
        raise _error(
            f"{path}: the file's checksum (global {CHECKSUM_ATTR}) does not match its variables "
            "and attributes: a renamed or added variable, or an edited attribute (damaged header)"
        )
    names = list(stored) if variables is None else [k for k in variables if k in stored]
    replace = {}
    for k in names:
        var = all_vars[k]
        want = _canonical(stored[k])
        attrs = {a: v for a, v in var.attrs.items() if a != CHECKSUM_ATTR}
        if _is_dask(var):
            import dask.array as da

            arr = var.data
            one = arr.rechunk(arr.shape) if arr.npartitions > 1 else arr
            checked = one.map_blocks(
                functools.partial(_check_block, name=k, dims=var.dims, attrs=attrs, expected=want, path=str(path)),
                dtype=arr.dtype,
                meta=np.empty((0,) * arr.ndim, dtype=arr.dtype),
            )
            if one is not arr:
                checked = da.rechunk(checked, arr.chunks)
            replace[k] = xr.Variable(var.dims, checked, attrs, dict(var.encoding))
        else:
            _check_block(var.values, k, var.dims, attrs, want, str(path))
    for var in ds.variables.values():
        var.attrs.pop(CHECKSUM_ATTR, None)
    ds.attrs.pop(CHECKSUM_ATTR, None)
    ds.attrs.pop(BOUNDS_CHECKSUM_ATTR, None)
    if replace:
        ds = ds.assign_coords({k: v for k, v in replace.items() if k in coord_names})
        ds = ds.assign({k: v for k, v in replace.items() if k not in coord_names})
    return ds


@contextlib.contextmanager
def open_eager(path, engine: str, **kwargs):
    """``xarray.open_dataset`` for reading values now, safe in dask worker threads.

    The HDF5 and netCDF-C libraries are not thread-safe. xarray guards its lazy array reads with
    its own locks, but not the attribute reads of ``open_dataset`` itself: two dask tasks opening
    netCDF-4 files at once crashed the interpreter (segmentation fault in ``get_attrs``). Here the
    whole open, read and close holds the lock xarray uses for that library (so it also excludes
    xarray's lazy reads in other threads) and xarray is told not to take it again. Use it only for
    values read inside the ``with`` block; a lazily opened Dataset must keep xarray's own locking.
    netCDF-3 (``engine="scipy"``) needs no lock.

    Yields
    ------
    xarray.Dataset
        Opened with ``decode_times=False, decode_timedelta=False, cache=False`` and ``kwargs``.
    """
    from xarray.backends import locks

    lock = {"netcdf4": locks.combine_locks([locks.NETCDFC_LOCK, locks.HDF5_LOCK]), "h5netcdf": locks.HDF5_LOCK}.get(
        engine
    )
    opts = {"decode_times": False, "decode_timedelta": False, "cache": False, **kwargs}
    if lock is None:
        with xr.open_dataset(path, engine=engine, **opts) as ds:
            yield ds
        return
    with lock, xr.open_dataset(path, engine=engine, lock=False, **opts) as ds:
        yield ds


def load_verified(path, name: str, engine: str | None = None) -> np.ndarray:
    """The values of one variable of a netCDF file, after checking the file's checksums and dtypes.

    For readers that load one variable per task (e.g. a dask graph over many files): the file's
    global checksum and this variable's CRC-32 are verified, and the spectrum variables' dtypes
    checked (`check_dtypes`), so a damaged file raises `~xspec_ds.io.DatasetFileError` naming
    the file and the variable when the task runs. Costs one CRC-32 of the variable (~0.05 ms for a
    200 x 100 ``edisp``) and the JSON of the header attributes.
    """
    engine = engine or file_engine(path)
    try:
        raw = read_nc3(path) if engine == "scipy" else None  # whole file in ~0.5 ms
        if raw is None:
            with open_eager(path, engine) as lazy:
                if name not in lazy.variables:
                    raise _error(f"{path}: no variable {name!r} (variables: {sorted(lazy.variables)})")
                lazy.variables[name].load()
                raw = lazy.copy()
        if name not in raw.variables:
            raise _error(f"{path}: no variable {name!r} (variables: {sorted(raw.variables)})")
        values = np.asarray(raw.variables[name].values)
        raw = verify_netcdf(raw, path, variables=[name])
        check_dtypes(_undo_cf(raw), path)
        return values
    except Exception as exc:
        from . import DatasetFileError

        if isinstance(exc, DatasetFileError):
            raise
        raise _error(f"{path}: cannot read variable {name!r}: {type(exc).__name__}: {exc}") from exc


def _is_dask(var: xr.Variable) -> bool:
    """True for dask-backed variables (looks at the wrapped array only: reads no data, and
    avoids ``Variable.chunks``, whose protocol checks cost more than the checksum)."""
    data = var._data  # noqa: SLF001
    return hasattr(data, "dask") and hasattr(data, "chunks")


def models_to_yaml(models) -> str:
    """Models as the YAML text of Gammapy's models files (``components: [...]``)."""
    return yaml.dump(models.to_dict(), Dumper=_Dumper, sort_keys=False)


@functools.lru_cache(maxsize=64)
def _parse_yaml(text: str):
    return yaml.load(text, Loader=_Loader)


def models_from_yaml(text: str):
    """Models from their YAML text (the parsed text is cached: many files share one model)."""
    import copy

    from ..models import Models

    return Models.from_dict(copy.deepcopy(_parse_yaml(text)))


def netcdf_engine(ds: xr.Dataset) -> str:
    """``"scipy"`` (netCDF-3, fast) if ``ds`` fits netCDF-3 unchanged, else ``"netcdf4"``."""
    for var in ds.variables.values():
        if var.dtype not in _NC3_DTYPES:
            return "netcdf4"
        for v in var.attrs.values():
            if isinstance(v, str) and not v.isascii():
                return "netcdf4"
    for v in ds.attrs.values():
        if isinstance(v, str) and not v.isascii():
            return "netcdf4"
    return "scipy"


def file_engine(path) -> str:
    """Engine for an existing file from its magic bytes (netCDF-3 ``CDF``, netCDF-4 ``HDF``)."""
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic[:3] == b"CDF":
        return "scipy"
    if magic[:4] == b"\x89HDF":
        return "netcdf4"
    raise ValueError(f"{path}: not a netCDF file (first bytes {magic!r})")


def write_netcdf(dataset, filename, overwrite: bool = False, engine: str | None = None) -> None:
    """Write a dataset (SpectrumDataset or `xarray.Dataset`) to a netCDF file, atomically.

    Parameters
    ----------
    dataset : `~xspec_ds.SpectrumDataset` or `xarray.Dataset`
    filename : str or Path
    overwrite : bool
        Replace an existing file (else `FileExistsError`).
    engine : {"scipy", "netcdf4"}, optional
        Default: netCDF-3 (``scipy``) when the data fit it unchanged, else ``netcdf4``.
    """
    ds = getattr(dataset, "data", dataset)
    models = getattr(dataset, "models", None) if not isinstance(dataset, xr.Dataset) else None
    enc = encode_dataset(ds, models)
    engine = engine or netcdf_engine(enc)
    suffix = Path(filename).suffix or ".nc"
    with atomic_path(filename, overwrite=overwrite, suffix=suffix) as tmp:
        enc.to_netcdf(tmp, engine=engine)


def open_netcdf(filename, chunks=None, engine: str | None = None) -> tuple[xr.Dataset, object]:
    """Open a netCDF file as a decoded `xarray.Dataset` (lazy with ``chunks``); returns (ds, models).

    Checksums of variables held in memory are verified now; those of dask-backed variables
    when they are computed (`verify_netcdf`).
    """
    engine = engine or file_engine(filename)
    ds = xr.open_dataset(
        filename,
        engine=engine,
        chunks=chunks,
        decode_times=False,
        decode_timedelta=False,
        mask_and_scale=True,
        cache=False,
    )
    ds = verify_netcdf(ds, filename)
    return decode_dataset(ds, filename)


def read_nc3(filename) -> xr.Dataset | None:
    """A netCDF-3 file as an in-memory `xarray.Dataset` (`xspec_ds.io.nc3.read_xarray`: the same
    Dataset as ``xarray.open_dataset(filename, engine="scipy", decode_times=False).load()`` for the
    files `write_netcdf` writes, read with one ``read()``, several times faster).

    Returns None when the file needs more of xarray's CF decoding (fill values, scale/offset,
    character arrays, record variables): the caller then uses xarray.
    """
    from . import nc3

    try:
        return nc3.read_xarray(filename)
    except nc3.UnsupportedError:
        return None


def read_netcdf(cls, filename, name: str | None = None, engine: str | None = None, **kwargs):
    """Read a netCDF file written by `write_netcdf` into a dataset of class ``cls`` (in memory).

    netCDF-3 files are read by `read_nc3` (xarray's backend when it declines); checksums
    are verified (`verify_netcdf`) and dtypes checked before the dataset is built.
    """
    engine = engine or file_engine(filename)
    ds = read_nc3(filename) if engine == "scipy" else None
    if ds is None:
        with open_eager(filename, engine) as raw:
            ds = raw.load()
    ds = verify_netcdf(ds, filename)
    ds, models = decode_dataset(ds, filename)
    if name is not None:
        ds.attrs["name"] = str(name)
    return cls.from_xarray(ds, models=models, validate=kwargs.pop("validate", True))
