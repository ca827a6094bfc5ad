"""A minimal reader of netCDF-3 (classic and 64-bit offset) files, for bulk reads.

`xarray.open_dataset(...).load()` costs a few milliseconds per file, almost all of it per-call
overhead (backend dispatch, lazy-indexing wrappers, CF decoding machinery) that does not depend
on the data; a 100 x 200-bin dataset is 170 kB, which the operating system copies in tens of
microseconds. `xspec_ds.io.lazy.open_mfdataset` reads thousands of such files, so it parses the
header here (the layout is fixed by the netCDF Classic Format Specification, Unidata,
https://docs.unidata.ucar.edu/netcdf-c/current/file_format_specifications.html) and takes each
variable's values with one `numpy.frombuffer` at its ``begin`` offset.

Only what `xspec_ds.io.netcdf.write_netcdf` (and ``xarray.Dataset.to_netcdf`` with the ``scipy``
engine) writes is decoded here, with xarray's meaning: big-endian numbers made native, ``int8``
with attribute ``dtype = "bool"`` as bool, a ``_FillValue`` of NaN on floats ignored (it changes
nothing). Anything else -- record (unlimited) variables, CDF-5, character variables, scale/offset
or integer fill values -- raises `UnsupportedError`; the caller then reads the file with xarray.
"""

from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass

import numpy as np
import xarray as xr

__all__ = ["UnsupportedError", "NC3Variable", "NC3Header", "parse_header", "read_header", "variable_values"]

_TYPES = {
    1: np.dtype("i1"),
    2: np.dtype("S1"),
    3: np.dtype(">i2"),
    4: np.dtype(">i4"),
    5: np.dtype(">f4"),
    6: np.dtype(">f8"),
}
_DIMENSION, _VARIABLE, _ATTRIBUTE = 10, 11, 12
_UNSUPPORTED_ATTRS = ("scale_factor", "add_offset", "missing_value", "valid_min", "valid_max", "valid_range")


class UnsupportedError(ValueError):
    """A netCDF-3 feature this reader does not decode (read the file with xarray instead)."""


class _TruncatedError(Exception):
    """The buffer ends inside the header (read more of the file)."""


@dataclass(frozen=True)
class NC3Variable:
    """Where a non-record variable's values are and how to decode them."""

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    attrs: dict
    dtype: np.dtype  # on disk (big-endian)
    begin: int
    is_bool: bool

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def native_dtype(self) -> np.dtype:
        return _BOOL if self.is_bool else _native(self.dtype)


_BOOL = np.dtype(bool)


@functools.lru_cache(maxsize=32)
def _native(dtype: np.dtype) -> np.dtype:
    """Native-byte-order twin of ``dtype``, one object per dtype (arrays keep a reference to it)."""
    return dtype.newbyteorder("=")


@dataclass(frozen=True)
class NC3Header:
    dims: dict
    attrs: dict
    variables: dict
    size: int  # bytes of the header (the first variable's data starts at or after it)


_I4 = struct.Struct(">i")
_I8 = struct.Struct(">q")


def _list_header(buf: bytes, pos: int, tag: int, what: str) -> tuple[int, int]:
    """The (count, position after it) of a header list (dimensions, attributes or variables):
    its tag (or ABSENT: two zeros), then the number of elements (NetCDF classic format spec)."""
    i4 = _I4.unpack_from
    kind, n = i4(buf, pos)[0], i4(buf, pos + 4)[0]
    if kind != tag and not (kind == 0 and n == 0):
        raise ValueError(f"bad netCDF-3 header: tag {kind} where the {what} list was expected")
    return n, pos + 8


def _name(buf: bytes, pos: int) -> tuple[str, int]:
    """A name (length, UTF-8 bytes padded to 4) at ``pos``: (name, position after it)."""
    size = _I4.unpack_from(buf, pos)[0]
    return buf[pos + 4 : pos + 4 + size].decode("utf-8"), pos + 4 + size + (-size % 4)


def _attributes(buf: bytes, pos: int) -> tuple[dict, int]:
    """An attribute list at ``pos``: (attrs, position after it)."""
    i4 = _I4.unpack_from
    n, pos = _list_header(buf, pos, _ATTRIBUTE, "attribute")
    out = {}
    for _ in range(n):
        name, pos = _name(buf, pos)
        nc_type, count = i4(buf, pos)[0], i4(buf, pos + 4)[0]
        pos += 8
        dtype = _TYPES.get(nc_type)
        if dtype is None:
            raise UnsupportedError(f"attribute {name!r} has netCDF type {nc_type} (not netCDF-3 classic)")
        size = count * dtype.itemsize
        if pos + size > len(buf):
            raise _TruncatedError
        if nc_type == 2:
            out[name] = buf[pos : pos + size].rstrip(b"\x00").decode("utf-8")  # as scipy: "" is stored as one NUL
        else:
            value = np.frombuffer(buf, dtype=dtype, count=count, offset=pos).astype(dtype.newbyteorder("="))
            out[name] = value[0] if count == 1 else value
        pos += size + (-size % 4)
    return out, pos


def parse_header(buf: bytes, known: dict | None = None) -> NC3Header:
    """Parse the header at the start of ``buf`` (raises `_TruncatedError` if ``buf`` ends inside it).

    ``known``: a dict the caller keeps for one collection of files (e.g. one `open_mfdataset`
    call), holding recently parsed variable lists by (format version, dimension list). The files
    of a collection usually differ only in their global attributes (name, time reference, meta
    table), so the variable list (which holds every variable's offset) is compared byte for byte
    with the known ones first; only a new one is parsed.
    """
    if len(buf) < 8:
        raise _TruncatedError
    if buf[:3] != b"CDF":
        raise ValueError(f"not a netCDF-3 file (first bytes {bytes(buf[:4])!r})")
    version = buf[3]
    if version not in (1, 2):
        raise UnsupportedError(f"netCDF-3 format version {version} (only classic and 64-bit offset are read directly)")
    i4 = _I4.unpack_from
    offset = (_I4 if version == 1 else _I8).unpack_from
    offset_size = 4 if version == 1 else 8
    try:
        pos = 8  # magic (4) + numrecs (4)
        n, pos = _list_header(buf, pos, _DIMENSION, "dimension")
        dims = {}
        dim_names = []
        for _ in range(n):
            name, pos = _name(buf, pos)
            dims[name] = i4(buf, pos)[0]
            dim_names.append(name)
            pos += 4
        dims_end = pos
        attrs, pos = _attributes(buf, pos)
        key = (version, bytes(buf[8:dims_end]))
        for var_bytes, seen in (known or {}).get(key, ()):
            if buf[pos : pos + len(var_bytes)] == var_bytes:  # same variables, attributes and offsets
                return NC3Header(dims, attrs, dict(seen), pos + len(var_bytes))
        var_start = pos
        n, pos = _list_header(buf, pos, _VARIABLE, "variable")
        variables = {}
        for _ in range(n):
            name, pos = _name(buf, pos)
            ndim = i4(buf, pos)[0]
            ids = struct.unpack_from(f">{ndim}i", buf, pos + 4)
            pos += 4 + 4 * ndim
            vattrs, pos = _attributes(buf, pos)
            nc_type = i4(buf, pos)[0]
            begin = offset(buf, pos + 8)[0]  # after nc_type and vsize
            pos += 8 + offset_size
            dtype = _TYPES.get(nc_type)
            if dtype is None:
                raise UnsupportedError(f"variable {name!r} has netCDF type {nc_type}")
            vdims = tuple(dim_names[i] for i in ids)
            shape = tuple(dims[d] for d in vdims)
            if 0 in shape:
                raise UnsupportedError(f"variable {name!r} is a record (unlimited-dimension) variable")
            if nc_type == 2:
                raise UnsupportedError(f"variable {name!r} is a character variable")
            if vattrs:
                unsupported = [a for a in _UNSUPPORTED_ATTRS if a in vattrs]
                fill = vattrs.get("_FillValue")
                if fill is not None and not (dtype.kind == "f" and np.all(np.isnan(fill))):
                    unsupported.append("_FillValue")
                if unsupported:
                    raise UnsupportedError(f"variable {name!r} has {unsupported} (decoded by xarray only)")
            is_bool = nc_type == 1 and vattrs.get("dtype") == "bool"
            variables[name] = NC3Variable(vdims, shape, vattrs, dtype, begin, is_bool)
    except struct.error:
        raise _TruncatedError from None
    if pos > len(buf):
        raise _TruncatedError
    if known is not None:
        if len(known) > 64:
            known.clear()
        entries = known.setdefault(key, [])
        entries.insert(0, (bytes(buf[var_start:pos]), dict(variables)))
        del entries[8:]
    return NC3Header(dims, attrs, variables, pos)


def read_header(f, prefix: int = 65536, buf: bytes | None = None, known: dict | None = None) -> tuple[NC3Header, bytes]:
    """Header of the open binary file ``f`` and the bytes read from its start (at least the header).

    ``buf``: the first bytes of ``f``, already read (``f`` positioned after them).
    """
    buf = f.read(prefix) if buf is None else buf
    while True:
        try:
            return parse_header(buf, known), buf
        except _TruncatedError:
            more = f.read(max(len(buf), prefix))
            if not more:
                raise ValueError("truncated netCDF-3 file: it ends inside its header") from None
            buf += more


def variable_values(var: NC3Variable, buf: bytes, f=None) -> np.ndarray:
    """The decoded (native byte order, bool masks) values of ``var`` from ``buf`` (or file ``f``)."""
    end = var.begin + var.nbytes
    if end > len(buf):
        if f is None:
            raise ValueError(f"truncated netCDF-3 file: a variable ends at byte {end}, the file has {len(buf)}")
        f.seek(var.begin)
        chunk = f.read(var.nbytes)
        if len(chunk) != var.nbytes:
            raise ValueError(f"truncated netCDF-3 file: a variable ends at byte {end}")
        raw = np.frombuffer(chunk, dtype=var.dtype)
    else:
        raw = np.frombuffer(buf, dtype=var.dtype, count=math.prod(var.shape), offset=var.begin)
    return raw.astype(var.native_dtype).reshape(var.shape)


def read_xarray(path) -> xr.Dataset:
    """A netCDF-3 file as the in-memory `xarray.Dataset` that
    ``xarray.open_dataset(path, engine="scipy", decode_times=False, decode_timedelta=False).load()``
    gives (same variables, coordinates, attributes and dtypes; encodings are not kept), read with
    one ``read()`` and assembled directly (`xspec_ds.containers._make_dataset`).

    Raises `UnsupportedError` for what this module does not decode (use xarray then).
    """
    from ..containers import _make_dataset

    with open(path, "rb") as f:
        buf = f.read()
    header = parse_header(buf)
    attrs = dict(header.attrs)
    coord_names = {k for k in header.variables if k in header.dims}
    coord_names.update(str(attrs.pop("coordinates", "")).split())
    variables = {}
    for name, var in header.variables.items():
        vattrs = dict(var.attrs)
        coord_names.update(str(vattrs.pop("coordinates", "")).split())
        vattrs.pop("_FillValue", None)  # only NaN on floats gets here: decoding it changes nothing
        if var.is_bool:
            vattrs.pop("dtype")
        variables[name] = xr.Variable(var.dims, variable_values(var, buf), vattrs)
    data_vars = {k: v for k, v in variables.items() if k not in coord_names}
    coords = {k: v for k, v in variables.items() if k in coord_names}
    return _make_dataset(data_vars, coords, attrs)
