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
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from .atomic import atomic_path

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: ~10x faster
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

__all__ = ["write_netcdf", "read_netcdf", "encode_dataset", "decode_dataset", "netcdf_engine", "MODELS_ATTR"]

MODELS_ATTR = "xspec_ds_models"
JSON_ATTR = "xspec_ds_json_attrs"
EMPTY_ATTR = "xspec_ds_empty_variables"
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


def encode_dataset(ds: xr.Dataset, models=None) -> xr.Dataset:
    """The Dataset to write: attrs made netCDF-safe, models as YAML, no fill values.

    Variables with a zero-length dimension (e.g. an empty GTI) are described in the attribute
    ``xspec_ds_empty_variables`` instead of being written: a zero-length fixed dimension is not
    valid netCDF-3 (the netCDF-C library refuses such files), and they hold no values anyway.
    """
    empty = {k: v for k, v in ds.variables.items() if v.ndim and v.size == 0}
    out = ds.drop_vars(list(empty)) if empty else ds.copy(deep=False)
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
    return out


def decode_dataset(ds: xr.Dataset) -> tuple[xr.Dataset, object]:
    """Undo `encode_dataset`: restore attrs, drop encodings; returns (dataset, models or None)."""
    ds.attrs = _join_attrs(ds.attrs)
    for var in ds.variables.values():
        var.attrs = _join_attrs(var.attrs)
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
    text = ds.attrs.pop(MODELS_ATTR, None)
    models = None
    if text:
        models = models_from_yaml(text)
    return ds, models


def models_to_yaml(models) -> str:
    """Models as the YAML text of Gammapy's models files (``components: [...]``)."""
    return yaml.dump(models.to_dict(), Dumper=_Dumper, sort_keys=False)


def models_from_yaml(text: str):
    from ..models import Models

    return Models.from_dict(yaml.load(text, Loader=_Loader))


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
    """Open a netCDF file as a decoded `xarray.Dataset` (lazy with ``chunks``); returns (ds, models)."""
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
    return decode_dataset(ds)


def read_netcdf(cls, filename, name: str | None = None, engine: str | None = None, **kwargs):
    """Read a netCDF file written by `write_netcdf` into a dataset of class ``cls`` (in memory)."""
    engine = engine or file_engine(filename)
    with xr.open_dataset(filename, engine=engine, decode_times=False, decode_timedelta=False, cache=False) as raw:
        ds = raw.load()
    ds, models = decode_dataset(ds)
    if name is not None:
        ds.attrs["name"] = str(name)
    return cls.from_xarray(ds, models=models, validate=kwargs.pop("validate", True))
