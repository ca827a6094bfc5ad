"""Lazy (dask-backed) opening of one or many dataset files.

`open_mfdataset` opens many observations (netCDF or Gammapy FITS) as one `xarray.Dataset`
with a new leading dimension ``obs`` (coordinate: the dataset names), ready for
``xs.stack`` or a batched fit. Every file must have the same energy binning (edges equal
exactly); the GTI tables of different lengths are padded with NaN along ``gti``.
netCDF files are read lazily through xarray's backends; FITS files are read when opened and
wrapped in dask arrays (FITS tables are small and not chunk-addressable).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import xarray as xr

from ..ops.stack import concat_meta_tables

__all__ = ["open_dataset", "open_mfdataset"]


def _is_netcdf(path) -> bool:
    from . import _NETCDF_READ_SUFFIXES, _is_netcdf_name, detect_format

    return _is_netcdf_name(path, _NETCDF_READ_SUFFIXES) or detect_format(path) == "netcdf"


def _open_one(path, chunks=None, engine: str | None = None) -> xr.Dataset:
    """One file as an `xarray.Dataset` with dask arrays (models, if any, in ``attrs``)."""
    from . import DatasetFileError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    chunks = {} if chunks is None else chunks
    if _is_netcdf(path):
        from .netcdf import MODELS_ATTR, open_netcdf

        try:
            ds, models = open_netcdf(path, chunks=chunks, engine=engine)
        except Exception as exc:  # any failure of a backend on a damaged file
            raise DatasetFileError(f"{path}: cannot open as a netCDF spectrum dataset: {exc}") from exc
        if models is not None:
            ds.attrs[MODELS_ATTR] = models.to_yaml()
        ds = _load_edges(ds)
        ds.encoding["source"] = str(path)
        return ds
    from . import read_dataset

    data = read_dataset(None, path).data
    out = _load_edges(data.chunk(chunks))
    out.encoding["source"] = str(path)
    return out


def open_dataset(path, chunks=None, engine: str | None = None) -> xr.Dataset:
    """Open one dataset file (netCDF or FITS) as a lazy, dask-backed `xarray.Dataset`.

    Parameters
    ----------
    path : str or Path
    chunks : dict or int, optional
        dask chunks (xarray's meaning); default one chunk per variable.
    engine : str, optional
        netCDF engine (default from the file's magic bytes).

    Returns
    -------
    `xarray.Dataset`
        Same variables and coordinates as ``SpectrumDataset.read(path).data``; ``.spectrum``
        gives the dataset API on it.
    """
    return _open_one(path, chunks=chunks, engine=engine)


_EDGE_COORDS = ("energy_min", "energy_max", "energy_true_min", "energy_true_max")


def _load_edges(ds: xr.Dataset) -> xr.Dataset:
    """Edge coordinates in memory (they are small and every axis operation needs them)."""
    return ds.assign_coords({k: ds[k].variable.compute() for k in _EDGE_COORDS if k in ds.coords})


def _edges(ds: xr.Dataset) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    out = {}
    for d in ("energy", "energy_true"):
        if d in ds.dims:
            lo, hi = ds.coords[f"{d}_min"], ds.coords[f"{d}_max"]
            out[d] = (np.asarray(lo.values), np.asarray(hi.values), lo.attrs.get("units", ""))
    return out


def _to_obs(ds: xr.Dataset, reference: dict | None) -> xr.Dataset:
    """Check the binning against ``reference`` and add the ``obs`` dimension."""
    source = ds.encoding.get("source", "<dataset>")
    if reference is not None:
        edges = _edges(ds)
        if set(edges) != set(reference) - {"time_reference"}:
            raise ValueError(f"{source}: energy dims {sorted(edges)} differ from the first file's {sorted(reference)}")
        for d, (lo, hi, unit) in edges.items():
            if d not in reference:
                continue
            rlo, rhi, runit = reference[d]
            if unit != runit or lo.shape != rlo.shape or not (np.array_equal(lo, rlo) and np.array_equal(hi, rhi)):
                raise ValueError(
                    f"{source}: the {d!r} binning differs from the first file's; "
                    "open_mfdataset needs the same edges in every file (resample first)"
                )
    name = ds.attrs.get("name", Path(source).stem)
    ref_time = (reference or {}).get("time_reference")
    if ref_time is not None and "gti_start" in ds.variables and ds.attrs.get("time_reference", ref_time) != ref_time:
        from astropy.time import Time

        shift = (Time(ds.attrs["time_reference"], scale="tt") - Time(ref_time, scale="tt")).to_value("s")
        ds = ds.assign(gti_start=ds["gti_start"] + shift, gti_stop=ds["gti_stop"] + shift)
        for k in ("gti_start", "gti_stop"):
            ds[k].attrs["time_reference"] = ref_time
    if "gti" in ds.dims:
        ds = ds.assign_coords(gti=np.arange(ds.sizes["gti"]))
    data_vars = list(ds.data_vars)
    out = ds[data_vars].expand_dims(obs=[name])
    out = out.assign_coords({k: v for k, v in ds.coords.items() if k not in out.coords})
    out.attrs = dict(ds.attrs)
    out.encoding = dict(ds.encoding)
    return out


def open_mfdataset(
    paths, chunks=None, parallel: bool = True, engine: str | None = None, concat_dim: str = "obs"
) -> xr.Dataset:
    """Open many dataset files lazily, stacked along a new ``obs`` dimension.

    Parameters
    ----------
    paths : str, Path or iterable of those
        Files (a glob pattern string is expanded, sorted).
    chunks : dict or int, optional
        dask chunks for each file (default one chunk per variable and file).
    parallel : bool
        Open the files in parallel with ``dask.delayed`` (xarray's ``parallel``).
    engine : str, optional
        netCDF engine; default from each file's first bytes.
    concat_dim : str
        Name of the new dimension (``"obs"``).

    Returns
    -------
    `xarray.Dataset`
        Variables gain a leading ``obs`` dim (coordinate: the dataset names); the energy
        coordinates are shared; ``gti_start``/``gti_stop`` are NaN-padded to the longest GTI.
        Attributes are those of the first file, except ``name``, which becomes the ``obs`` coordinate,
        and ``meta_table``, whose rows are those of all files (`xspec_ds.ops.stack.concat_meta_tables`).
    """
    if isinstance(paths, str | Path):
        import glob

        text = str(paths)
        paths = sorted(glob.glob(text)) if any(c in text for c in "*?[") else [text]
    paths = [Path(p) for p in (paths if isinstance(paths, Iterable) else [paths])]
    if not paths:
        raise ValueError("open_mfdataset: no files given (or the pattern matched nothing)")
    first = _open_one(paths[0], chunks=chunks, engine=engine)
    reference = _edges(first)
    reference["time_reference"] = first.attrs.get("time_reference")
    if all(_is_netcdf(p) for p in paths):
        combined = _mf_netcdf(paths, first, reference, chunks=chunks, parallel=parallel, engine=engine)
    else:
        opened = [_to_obs(first, None)] + [
            _to_obs(_open_one(p, chunks=chunks, engine=engine), reference) for p in paths[1:]
        ]
        combined = xr.concat(
            opened,
            dim="obs",
            data_vars="all",
            coords="minimal",
            compat="override",
            join="outer",
            combine_attrs="override",
        )
        meta = concat_meta_tables([ds.attrs.get("meta_table") for ds in opened])
        if meta is not None:
            combined.attrs["meta_table"] = meta
    if concat_dim != "obs":
        combined = combined.rename({"obs": concat_dim})
    if "gti" in combined.coords:
        combined = combined.drop_vars("gti")
    combined.attrs.pop("name", None)
    return combined


_ENERGY_DIMS = ("energy", "energy_true")


def _read_meta(path, small_vars, engine):
    """Name, attrs, edges and the small (non-energy) variables of one netCDF file, read eagerly.

    netCDF-3 headers are parsed with ``scipy.io.netcdf_file`` on a memory map (about 0.3 ms a
    file, several times faster than a full ``xarray.open_dataset``); netCDF-4 files go through
    xarray.
    """
    from .netcdf import EMPTY_ATTR, JSON_ATTR, file_engine

    eng = engine or file_engine(path)
    out = {}
    if eng == "scipy":
        from scipy.io import netcdf_file

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            f = netcdf_file(path, "r", mmap=True)
            try:
                attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f._attributes.items()}
                for k in _EDGE_COORDS + tuple(small_vars):
                    if k in f.variables:
                        var = f.variables[k]
                        value = np.array(var[:] if var.shape else var.getValue(), copy=True)
                        if getattr(var, "_attributes", {}).get("dtype", b"") in (b"bool", "bool"):
                            value = value.astype(bool)
                        out[k] = value
            finally:
                var = None  # drop the last view of the memory map so close() can unmap the file
                f.close()
    else:
        with xr.open_dataset(path, engine=eng, decode_times=False, decode_timedelta=False, cache=False) as ds:
            attrs = dict(ds.attrs)
            for k in _EDGE_COORDS + tuple(small_vars):
                if k in ds.variables:
                    out[k] = np.asarray(ds[k].values)
    extra = attrs.pop(JSON_ATTR, None)
    if extra:
        attrs.update(json.loads(extra))
    empty = attrs.pop(EMPTY_ATTR, None)
    if empty:
        for k, v in json.loads(empty).items():
            out.setdefault(k, np.empty(tuple(v["shape"]), dtype=np.dtype(v["dtype"])))
    return attrs, out, eng


def _load_block(path, name, engine, ndim_extra):
    """One file's values of variable ``name``, with a leading length-1 ``obs`` axis (a dask task)."""
    with xr.open_dataset(path, engine=engine, decode_times=False, decode_timedelta=False, cache=False) as ds:
        return np.asarray(ds[name].values)[(None,) + (slice(None),) * ndim_extra]


def _mf_netcdf(paths, first, reference, chunks, parallel, engine):
    """Fast `open_mfdataset` for netCDF: headers read eagerly, energy arrays as one dask task per file."""
    import dask.array as da
    from dask.base import tokenize

    big = [k for k, v in first.data_vars.items() if any(d in _ENERGY_DIMS for d in v.dims)]
    small = [k for k in first.data_vars if k not in big]
    # gti variables may be described (not stored) when empty: always look for them
    small += [k for k in ("gti_start", "gti_stop") if k not in small]

    def meta(p):
        return _read_meta(p, small, engine)

    if parallel and len(paths) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=4) as pool:
            metas = list(pool.map(meta, paths))
    else:
        metas = [meta(p) for p in paths]

    ref_time = reference.get("time_reference")
    names = []
    for p, (attrs, values, _) in zip(paths, metas, strict=True):
        for d in _ENERGY_DIMS:
            if d not in reference:
                continue
            lo, hi = values.get(f"{d}_min"), values.get(f"{d}_max")
            rlo, rhi, _unit = reference[d]
            if lo is None or lo.shape != rlo.shape or not (np.array_equal(lo, rlo) and np.array_equal(hi, rhi)):
                raise ValueError(
                    f"{p}: the {d!r} binning differs from the first file's; "
                    "open_mfdataset needs the same edges in every file (resample first)"
                )
        names.append(str(attrs.get("name", Path(p).stem)))
        t_ref = attrs.get("time_reference", ref_time)
        if ref_time is not None and t_ref != ref_time and "gti_start" in values:
            from astropy.time import Time

            shift = (Time(t_ref, scale="tt") - Time(ref_time, scale="tt")).to_value("s")
            values["gti_start"] = values["gti_start"] + shift
            values["gti_stop"] = values["gti_stop"] + shift

    n = len(paths)
    data_vars = {}
    for k in big:
        var = first[k].variable
        token = tokenize(k, [str(p) for p in paths])
        name = f"open_mfdataset-{k}-{token}"
        graph = {
            (name, i) + (0,) * var.ndim: (_load_block, str(p), k, metas[i][2], var.ndim) for i, p in enumerate(paths)
        }
        arr = da.Array(
            graph,
            name,
            chunks=((1,) * n,) + tuple((s,) for s in var.shape),
            dtype=var.dtype,
            meta=np.empty((0,) * (var.ndim + 1), dtype=var.dtype),
        )
        data_vars[k] = xr.Variable(("obs",) + var.dims, arr, dict(var.attrs))
    for k in small:
        items = [m[1].get(k) for m in metas]
        if all(v is None for v in items):
            continue
        template = next(v for v in items if v is not None)
        if template.ndim == 0:
            stacked = np.array(
                [np.nan if v is None else v for v in items],
                dtype=np.result_type(template, float) if any(v is None for v in items) else template.dtype,
            )
        else:
            length = max(0 if v is None else v.shape[0] for v in items)
            dtype = np.result_type(template.dtype, np.float64) if template.dtype.kind in "fiu" else template.dtype
            stacked = np.full((n, length) + template.shape[1:], np.nan if dtype.kind == "f" else 0, dtype=dtype)
            for i, v in enumerate(items):
                if v is not None:
                    stacked[i, : v.shape[0]] = v
        dims = ("obs",) + (first[k].dims if k in first.variables else ("gti",))
        attrs = dict(first[k].attrs) if k in first.variables else {}
        data_vars[k] = xr.Variable(dims, da.from_array(stacked, chunks=stacked.shape), attrs)
    coords = {k: v.variable for k, v in first.coords.items() if all(d in _ENERGY_DIMS for d in v.dims)}
    coords["obs"] = xr.Variable("obs", np.array(names, dtype=object))
    order = [k for k in first.data_vars if k in data_vars] + [k for k in data_vars if k not in first.data_vars]
    attrs = dict(first.attrs)
    meta = concat_meta_tables([m[0].get("meta_table") for m in metas])
    if meta is not None:
        attrs["meta_table"] = meta
    out = xr.Dataset({k: data_vars[k] for k in order}, coords=coords, attrs=attrs)
    if chunks:
        out = out.chunk(chunks)
    return out


def _engine_of(path) -> str:
    from .netcdf import file_engine

    return file_engine(path)
