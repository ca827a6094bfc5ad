"""Lazy (dask-backed) opening of one or many dataset files.

`open_mfdataset` opens many observations (netCDF or Gammapy FITS) as one `xarray.Dataset`
with a new leading dimension ``obs`` (coordinate: the dataset names), ready for
``xs.stack`` or a batched fit. Every file must have the same energy binning (edges equal
exactly); the GTI tables of different lengths are padded with NaN along ``gti``.
netCDF files are read lazily through xarray's backends; FITS files are read when opened and
wrapped in dask arrays (FITS tables are small and not chunk-addressable).
"""

from __future__ import annotations

import functools
import json
import math
import operator
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import xarray as xr

from ..ops.stack import concat_meta_tables
from . import DatasetFileError
from .netcdf import open_eager

__all__ = ["open_dataset", "open_mfdataset"]


def _is_netcdf(path) -> bool:
    from . import _NETCDF_READ_SUFFIXES, _is_netcdf_name, detect_format

    return _is_netcdf_name(path, _NETCDF_READ_SUFFIXES) or detect_format(path) == "netcdf"


def _open_one(path, chunks=None, engine: str | None = None) -> xr.Dataset:
    """One file as an `xarray.Dataset` with dask arrays (models, if any, in ``attrs``)."""
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
    paths,
    chunks=None,
    parallel: bool = True,
    engine: str | None = None,
    concat_dim: str = "obs",
    files_per_task: int | None = None,
) -> xr.Dataset:
    """Open many dataset files lazily, stacked along a new ``obs`` dimension.

    Parameters
    ----------
    paths : str, Path or iterable of those
        Files (a glob pattern string is expanded, sorted).
    chunks : dict or int, optional
        dask chunks (xarray's meaning), applied after opening. Default for netCDF: the energy
        variables in blocks of ``files_per_task`` files along ``obs``, one chunk along energy.
    parallel : bool
        Accepted for compatibility with `xarray.open_mfdataset`; headers are read in one thread
        (netCDF-3 headers are parsed in Python, fastest in one thread; HDF5 is not thread-safe).
    engine : str, optional
        netCDF engine; default from each file's first bytes.
    concat_dim : str
        Name of the new dimension (``"obs"``).
    files_per_task : int, optional
        netCDF: files read by one dask task (each file read once for all its energy variables,
        then validated). Default: as many as fit in `TASK_BYTES` (8 MiB) of energy arrays, so
        memory per task is bounded whatever the number of files.

    Returns
    -------
    `xarray.Dataset`
        Variables gain a leading ``obs`` dim (coordinate: the dataset names); the energy
        coordinates are shared; ``gti_start``/``gti_stop`` are NaN-padded to the longest GTI.
        Attributes are those of the first file, except ``name``, which becomes the ``obs`` coordinate,
        and ``meta_table``, whose rows are those of all files (`xspec_ds.ops.stack.concat_meta_tables`).

    Raises
    ------
    DatasetFileError
        Naming the file: when opening, a file whose energy variables are missing or have other
        dims, shape or dtype than the first file's, or that is truncated; when computing, a file
        with negative or non-finite counts, background, exposure or edisp, edisp rows summing
        to more than 1, or that changed after it was opened.
    ValueError
        A file whose binning differs from the first file's.

    Notes
    -----
    netCDF collections are read near the speed of the disk: each file's header is parsed once
    here (`xspec_ds.io.nc3` for netCDF-3), and each dask task reads ``files_per_task`` whole files
    into one block per energy variable, so ``xs.stack`` (and any reduction along ``obs``) sums
    each block inside its task and then aggregates the partial sums. The same graph runs on
    ``dask.distributed`` (the workers must see the files).
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
        combined = _mf_netcdf(
            paths, first, reference, chunks=chunks, parallel=parallel, engine=engine, files_per_task=files_per_task
        )
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
TASK_BYTES = 8 * 2**20
"""Default size of the energy arrays one dask task reads (files per task = this / bytes per file).

8 MiB: measured in ``benchmarks/bench_files.py`` (10,000 files of 160 kB), larger blocks are not
faster and raise the peak memory of the threaded scheduler (about 2-3 blocks per thread in flight)."""
_NONNEGATIVE = ("counts", "counts_off", "background", "exposure", "edisp")


def _decode_meta_attrs(attrs: dict, out: dict) -> dict:
    """Undo `xspec_ds.io.netcdf.encode_dataset` on global attrs (JSON attrs; empty variables into ``out``)."""
    from .netcdf import EMPTY_ATTR, JSON_ATTR

    extra = attrs.pop(JSON_ATTR, None)
    if extra:
        attrs.update(json.loads(extra))
    empty = attrs.pop(EMPTY_ATTR, None)
    if empty:
        for k, v in json.loads(empty).items():
            out.setdefault(k, np.empty(tuple(v["shape"]), dtype=np.dtype(v["dtype"])))
    return attrs


_DTYPE_TUPLES: dict = {}
"""On-disk dtype tuples shared between the layouts of many files."""


def _check_big(path, name, dims, shape, dtype, spec) -> None:
    """One file's energy variable against the first file's (name, dims, shape, dtype kind)."""
    want_dims, want_shape, want_dtype = spec
    if dims is None:
        raise DatasetFileError(f"{path}: variable {name!r} is missing (the first file has it)")
    if tuple(dims) != want_dims or tuple(shape) != want_shape:
        raise DatasetFileError(
            f"{path}: variable {name!r} has dims {tuple(dims)} and shape {tuple(shape)}, "
            f"the first file's has {want_dims} and {want_shape}"
        )
    if np.dtype(dtype).kind != want_dtype.kind:
        raise DatasetFileError(f"{path}: variable {name!r} has dtype {np.dtype(dtype)}, expected {want_dtype}")


def _edges_raw(path) -> dict:
    """``{edge coordinate: (on-disk dtype, raw bytes, values)}`` of a netCDF-3 file ({} otherwise)."""
    from . import nc3

    try:
        with open(path, "rb") as f:
            header, buf = nc3.read_header(f)
            out = {}
            for k in _EDGE_COORDS:
                var = header.variables.get(k)
                if var is not None and var.begin + var.nbytes <= len(buf):
                    raw = bytes(buf[var.begin : var.begin + var.nbytes])
                    out[k] = (var.dtype.str, raw, nc3.variable_values(var, buf))
            return out
    except (ValueError, OSError):
        return {}


def _file_meta(path, small_vars, big_spec, engine, edges_raw=None, known_headers=None):
    """Eager part of opening one netCDF file of a collection.

    Returns ``(attrs, values, layout)``: decoded global attrs, the edges and small (non-energy)
    variables, and where the energy variables are (or the xarray engine to read the file with).
    The energy variables are checked here (present, same dims, shape and dtype kind as the first
    file's). netCDF-3 headers are parsed by `xspec_ds.io.nc3` (one ``open``, one ``read`` of the
    first 64 kB); edges whose bytes equal the first file's (``edges_raw``, from `_edges_raw`) are
    not decoded again. Anything nc3 does not decode, and netCDF-4, goes through xarray.
    """
    from . import nc3

    out = {}
    try:
        with open(path, "rb") as f:
            buf = f.read(65536)
            if buf[:3] == b"CDF":
                eng = engine or "scipy"
            elif buf[:4] == b"\x89HDF":
                eng = engine or "netcdf4"
            else:
                raise DatasetFileError(f"{path}: not a netCDF file (first bytes {buf[:8]!r})")
            if eng == "scipy":
                try:
                    header, buf = nc3.read_header(f, buf=buf, known=known_headers)
                except nc3.UnsupportedError:
                    header = None  # read by xarray below
                    if engine is None and buf[3:4] == b"\x05":
                        eng = "netcdf4"  # CDF-5: the netCDF-C library reads it, scipy does not
                if header is not None:
                    for k in _EDGE_COORDS + tuple(small_vars):
                        var = header.variables.get(k)
                        if var is None:
                            continue
                        ref = (edges_raw or {}).get(k)
                        end = var.begin + var.nbytes
                        if ref is not None and ref[0] == var.dtype.str and buf[var.begin : end] == ref[1]:
                            out[k] = ref[2]
                        else:
                            out[k] = nc3.variable_values(var, buf, f)
                    size = f.seek(0, 2)
    except DatasetFileError:
        raise
    except (ValueError, OSError) as exc:  # damaged header or truncated small variable
        raise DatasetFileError(f"{path}: cannot read as netCDF-3: {exc}") from exc
    if eng == "scipy" and header is not None:
        begins, dtypes, checks = [], [], []
        for k, spec in big_spec.items():
            var = header.variables.get(k)
            dims, shape, dtype = (None, None, None) if var is None else (var.dims, var.shape, var.native_dtype)
            _check_big(path, k, dims, shape, dtype, spec)
            begins.append(var.begin)
            dtypes.append(var.dtype.str)
            checks.append(_checksum_spec(path, k, var, header))
            if var.begin + var.nbytes > size:
                raise DatasetFileError(f"{path}: truncated file (variable {k!r} ends after the end of the file)")
        # compact (kept for every file until the graph is computed): offsets in `big_spec` order
        # and one shared tuple of on-disk dtypes
        dtypes = _DTYPE_TUPLES.setdefault(tuple(dtypes), tuple(dtypes))
        checks = None if all(c is None for c in checks) else tuple(checks)
        layout = (size, header.size, zlib.crc32(buf[: header.size]), tuple(begins), dtypes, checks)
        return _decode_meta_attrs(dict(header.attrs), out), out, layout
    with open_eager(path, eng) as ds:
        attrs = dict(ds.attrs)
        for k in _EDGE_COORDS + tuple(small_vars):
            if k in ds.variables:
                out[k] = np.asarray(ds[k].values)
        for k, spec in big_spec.items():
            var = ds.variables.get(k)
            _check_big(path, k, *((None,) * 3 if var is None else (var.dims, var.shape, var.dtype)), spec)
    return _decode_meta_attrs(attrs, out), out, eng


#: attributes that xarray moves to ``encoding`` on reading: not part of a variable's checksum
_ENCODING_ATTRS = ("coordinates", "_FillValue", "dtype", "missing_value", "scale_factor", "add_offset", "_Unsigned")


def _checksum_spec(path, name, var, header):
    """``(stored CRC-32, CRC-32 of the variable's description)`` of an nc3 variable, or None for
    files without checksums (other software); a file with checksums must have one per variable."""
    from .netcdf import CHECKSUM_ATTR, numeric_checksum_head

    stored = var.attrs.get(CHECKSUM_ATTR)
    if stored is None:
        if CHECKSUM_ATTR in header.attrs:
            raise DatasetFileError(f"{path}: variable {name!r} has no {CHECKSUM_ATTR} attribute (damaged header)")
        return None
    attrs = {a: v for a, v in var.attrs.items() if a not in _ENCODING_ATTRS and a != CHECKSUM_ATTR}
    return str(stored), numeric_checksum_head(name, var.dims, var.shape, var.native_dtype, attrs)


def _verify_checksum(path, name, check, values) -> None:
    from .netcdf import checksum_of_values

    stored, head = check
    actual = checksum_of_values(head, values)
    if actual != stored:
        raise DatasetFileError(
            f"{path}: variable {name!r} fails its checksum (stored {stored}, computed {actual}): "
            "the file is corrupt (damaged bytes)"
        )


def _read_xarray(path, engine, names):
    with open_eager(path, engine) as ds:
        return {k: np.asarray(ds[k].values) for k in names}


def _load_files(paths, layouts, spec):
    """Energy variables of many files as blocks with a leading ``obs`` axis (one dask task).

    ``layouts[i]`` is where file ``i``'s variables are (from `_file_meta`) or the xarray engine
    to read it with. Each netCDF-3 file is read with one ``read()`` and its values taken with
    `numpy.frombuffer`; its header is checked against the one seen when the collection was opened.
    Then every file is validated (`_check_blocks`).
    """
    n = len(paths)
    blocks = {k: np.empty((n,) + shape, dtype=dtype) for k, (_dims, shape, dtype) in spec.items()}
    for i, (path, layout) in enumerate(zip(paths, layouts, strict=True)):
        if isinstance(layout, str):
            for k, v in _read_xarray(path, layout, list(spec)).items():
                blocks[k][i] = v
            continue
        size, header_size, crc, begins, dtypes, checks = layout
        with open(path, "rb") as f:
            buf = f.read()
        if len(buf) != size or zlib.crc32(buf[:header_size]) != crc:
            raise DatasetFileError(f"{path}: the file changed after open_mfdataset read its header")
        for j, (k, begin, disk_dtype) in enumerate(zip(spec, begins, dtypes, strict=True)):
            shape = spec[k][1]
            raw = np.frombuffer(buf, dtype=disk_dtype, count=math.prod(shape), offset=begin)
            blocks[k][i] = raw.reshape(shape)  # byte swap (and int8 -> bool) in the copy
            if checks is not None:  # the file's own CRC-32 of the variable (xspec_ds.io.netcdf)
                _verify_checksum(path, k, checks[j], blocks[k][i])
    _check_blocks(blocks, paths)
    return blocks


def _check_blocks(blocks: dict, paths) -> None:
    """Per-file value checks, vectorised over the files of a block; the error names the file.

    Counts, background, exposure and edisp must be finite and >= 0, edisp rows (true-energy bins)
    must sum to at most 1 (+1e-6), as `xspec_ds.containers.validate_dataset` requires in memory.
    """
    n = len(paths)
    for k in _NONNEGATIVE:
        b = blocks.get(k)
        if b is None:
            continue
        ok = ((b >= 0) & (b < np.inf)).reshape(n, -1)  # False for NaN, -inf, +inf and negatives
        bad = np.flatnonzero(~ok.all(axis=1))
        if bad.size:
            i = bad[0]
            j = int(np.flatnonzero(~ok[i])[0])
            index = np.unravel_index(j, b.shape[1:])
            raise DatasetFileError(
                f"{paths[i]}: {k} has a negative or non-finite value ({b[i][index]!r}) at index {tuple(map(int, index))}"
            )
    edisp = blocks.get("edisp")
    if edisp is not None and edisp.ndim == 3:
        over = edisp.sum(axis=-1) > 1 + 1e-6
        bad = np.flatnonzero(over.any(axis=1))
        if bad.size:
            i = bad[0]
            row = int(np.flatnonzero(over[i])[0])
            raise DatasetFileError(
                f"{paths[i]}: edisp row (true-energy bin) {row} sums to {edisp[i, row].sum()!r} > 1: "
                "not a probability kernel"
            )


def _files_per_task(n: int, bytes_per_file: int, files_per_task: int | None) -> int:
    if files_per_task is not None:
        if int(files_per_task) < 1:
            raise ValueError(f"files_per_task must be >= 1, got {files_per_task}")
        return int(files_per_task)
    return max(1, min(n, TASK_BYTES // max(bytes_per_file, 1)))


def _mf_netcdf(paths, first, reference, chunks, parallel, engine, files_per_task=None):
    """Fast `open_mfdataset` for netCDF: headers and small variables read eagerly, the energy
    variables as dask blocks of many files per task (one read of each file for all of them)."""
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    big = [k for k, v in first.data_vars.items() if any(d in _ENERGY_DIMS for d in v.dims)]
    small = [k for k in first.data_vars if k not in big]
    # gti variables may be described (not stored) when empty: always look for them
    small += [k for k in ("gti_start", "gti_stop") if k not in small]
    spec = {k: (tuple(first[k].dims), tuple(first[k].shape), first[k].dtype) for k in big}

    edges_raw = _edges_raw(paths[0])
    known_headers: dict = {}  # nc3 variable lists seen in this collection (one per call, not global)
    ref_time = reference.get("time_reference")

    def same_edges(d, lo, hi) -> bool:
        rlo, rhi, _unit = reference[d]
        raw_lo, raw_hi = edges_raw.get(f"{d}_min"), edges_raw.get(f"{d}_max")
        if raw_lo is not None and raw_hi is not None and lo is raw_lo[2] and hi is raw_hi[2]:
            return same_edges_raw[d]  # the first file's bytes: compared once
        return lo is not None and lo.shape == rlo.shape and np.array_equal(lo, rlo) and np.array_equal(hi, rhi)

    same_edges_raw = {}
    for d in _ENERGY_DIMS:
        if d in reference:
            raw_lo, raw_hi = edges_raw.get(f"{d}_min"), edges_raw.get(f"{d}_max")
            rlo, rhi, _unit = reference[d]
            same_edges_raw[d] = (
                raw_lo is not None
                and raw_hi is not None
                and np.array_equal(raw_lo[2], rlo)
                and np.array_equal(raw_hi[2], rhi)
            )

    def meta(p):
        """What is kept of one file: name, meta table, small variables (GTI shifted), layout."""
        attrs, values, layout = _file_meta(p, small, spec, engine, edges_raw, known_headers)
        for d in _ENERGY_DIMS:
            if d in reference and not same_edges(d, values.get(f"{d}_min"), values.get(f"{d}_max")):
                raise ValueError(
                    f"{p}: the {d!r} binning differs from the first file's; "
                    "open_mfdataset needs the same edges in every file (resample first)"
                )
        for k in _EDGE_COORDS:
            values.pop(k, None)
        t_ref = attrs.get("time_reference", ref_time)
        if ref_time is not None and t_ref != ref_time and "gti_start" in values:
            from astropy.time import Time

            shift = (Time(t_ref, scale="tt") - Time(ref_time, scale="tt")).to_value("s")
            values["gti_start"] = values["gti_start"] + shift
            values["gti_stop"] = values["gti_stop"] + shift
        return str(attrs.get("name", Path(p).stem)), attrs.get("meta_table"), values, layout

    first_meta = meta(paths[0])
    # One thread: netCDF-3 headers are parsed in Python (GIL-bound; threads were measured
    # 1.3-2x slower), and the HDF5 library under netCDF-4 is not thread-safe (a pool of threads
    # reading headers crashed the interpreter with a bus error in our test suite).
    metas = [first_meta] + [meta(p) for p in paths[1:]]
    names = [m[0] for m in metas]

    n = len(paths)
    step = _files_per_task(n, sum(math.prod(s) * t.itemsize for _d, s, t in spec.values()), files_per_task)
    starts = range(0, n, step)
    obs_chunks = tuple(min(step, n - s) for s in starts)
    str_paths = [str(p) for p in paths]
    layouts = [m[3] for m in metas]
    token = tokenize("\n".join(str_paths), np.array([m[3][2] if isinstance(m[3], tuple) else 0 for m in metas]), step)
    load = f"open_mfdataset-load-{token}"
    # the file lists are bound in a partial so that dask does not walk them looking for keys
    load_layer = {
        (load, g): (functools.partial(_load_files, str_paths[s : s + step], layouts[s : s + step], spec),)
        for g, s in enumerate(starts)
    }
    data_vars = {}
    for k in big:
        dims, shape, dtype = spec[k]
        name = f"open_mfdataset-{k}-{token}"
        layer = {(name, g) + (0,) * len(shape): (operator.getitem, (load, g), k) for g in range(len(starts))}
        graph = HighLevelGraph({load: load_layer, name: layer}, {load: set(), name: {load}})
        arr = da.Array(
            graph,
            name,
            chunks=(obs_chunks,) + tuple((s,) for s in shape),
            dtype=dtype,
            meta=np.empty((0,) * (len(shape) + 1), dtype=dtype),
        )
        data_vars[k] = xr.Variable(("obs",) + dims, arr, dict(first[k].attrs))
    for k in small:
        items = [m[2].get(k) for m in metas]
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
        data_vars[k] = xr.Variable(dims, da.from_array(stacked, chunks=(obs_chunks,) + stacked.shape[1:]), attrs)
    coords = {k: v.variable for k, v in first.coords.items() if all(d in _ENERGY_DIMS for d in v.dims)}
    coords["obs"] = xr.Variable("obs", np.array(names, dtype=object))
    order = [k for k in first.data_vars if k in data_vars] + [k for k in data_vars if k not in first.data_vars]
    attrs = dict(first.attrs)
    meta = concat_meta_tables([m[1] for m in metas])
    if meta is not None:
        attrs["meta_table"] = meta
    out = xr.Dataset({k: data_vars[k] for k in order}, coords=coords, attrs=attrs)
    if chunks:
        out = out.chunk(chunks)
    return out
