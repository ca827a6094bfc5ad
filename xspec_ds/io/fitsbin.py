"""A lean reader of FITS files made of binary tables (OGIP spectra, ARFs, RMFs), for fast reads.

`astropy.io.fits` builds a `~astropy.io.fits.Card` per header line, a `~astropy.io.fits.Column`
per table column and a ``FITS_rec`` per table, with configuration look-ups on each: an OGIP set
(PHA, background, ARF, RMF: ~10 HDUs, ~400 cards, ~40 columns) costs it ~20 ms, while its bytes
(~60 kB) are read in microseconds. This module reads the file in one call, parses the headers
(FITS standard 4.0, Pence et al. 2010, A&A 524, A42, sections 3-4: 2880-byte blocks of 80-byte
cards; fixed-format values, ``''`` escapes in strings, the ``CONTINUE`` long-string convention
of section 4.2.1.2) and takes each binary-table column (section 7.3) with one strided
`numpy.ndarray` view of the raw bytes, made native-endian. Values are what astropy returns:

- ``L`` -> bool, ``B`` -> uint8, ``I``/``J``/``K`` -> int16/32/64, ``E``/``D`` -> float32/64,
  ``rA`` -> str (trailing blanks removed); repeat counts > 1 add an axis, ``TDIMn`` reshapes it
  (``(nrows,) + reversed(TDIM)``);
- ``TSCALn``/``TZEROn``: ``TZERO = 2**15, 2**31, 2**63`` with unit scale on ``I``/``J``/``K``
  gives uint16/32/64 (FITS 4.0, table 19), any other scaling float64 ``value * TSCAL + TZERO``;
- variable-length arrays (``1PB/I/J/K/E/D(max)``, section 7.3.5: a (count, heap offset) pair per
  row, the heap at ``THEAP``, default ``NAXIS1 * NAXIS2`` from the data start) as a
  `VarColumn`: row ``i`` is ``col[i]``, and `VarColumn.take` flattens the first ``n[i]`` values
  of every row in one vectorised gather (an RMF's ``F_CHAN``/``N_CHAN``/``MATRIX``).

`read_fits` refuses a damaged file with ``error(message)`` naming the file (and HDU): a header
without ``END``, data running past the end of the file, bytes after the last HDU, a primary
``NEXTEND`` that differs from the number of extensions, ``CHECKSUM``/``DATASUM`` mismatches
(checked by `xspec_ds.io.fits._verify_checksums`, the same rule as `xspec_ds.io.fits.open_fits`:
an error in files written by xspec_ds, a warning in others), variable-length descriptors outside
the heap. Anything valid it does not decode raises `UnsupportedError`, and `open_fits_fast` then
reads the file with `xspec_ds.io.fits.open_fits` (astropy): ASCII tables, random groups, tiled
compression, scaled images, ``X``/``C``/``M``/``Q`` columns, string or scaled variable-length
columns, ``HIERARCH`` and non-standard cards (lower-case keywords, free-format values, complex
numbers, cards astropy would fix or warn about), logical cells holding NUL. ``.gz`` files are
decompressed first (as astropy does).

One known difference: a string value in which an escaped quote is followed by ``/`` (after
blanks or not: ``'a''/b'``, ``'it'' / x'``) is read here as the standard defines it (``a'/b``,
``it' / x``); astropy 7 ends the string at the escape and reads the rest as a comment (``a'``,
``it'``).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np

from . import DatasetFileError

__all__ = [
    "UnsupportedError",
    "FitsDamageError",
    "Header",
    "Column",
    "Columns",
    "VarColumn",
    "TableData",
    "HDU",
    "FitsFile",
    "read_fits",
    "read_primary_header",
    "open_fits_fast",
]

BLOCK = 2880
CARD = 80

_COMMENTARY = ("COMMENT", "HISTORY", "")
_KEYWORD = re.compile(r"[A-Z0-9_-]{1,8}\Z")
_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(?:\.\d+|\d+(?:\.\d*)?)(?:[DE][+-]?\d+)?\Z")
_PRINTABLE = re.compile(r"[ -~]*\Z")
_TFORM = re.compile(r"(\d*)([LBIJKAED])\Z")
_TFORM_P = re.compile(r"(1?)P([LBIJKED])(?:\((\d*)\))?\Z")
_TDIM = re.compile(r"\(\s*\d+\s*(?:,\s*\d+\s*)*\)\Z")
_TYPES = {"L": "u1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
_UNSIGNED = {"I": (2**15, ">u2"), "J": (2**31, ">u4"), "K": (2**63, ">u8")}
_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


class UnsupportedError(Exception):
    """A valid FITS feature this reader does not decode: read the file with astropy instead."""


class FitsDamageError(DatasetFileError):
    """A truncated or corrupt FITS file (default error class of `read_fits`)."""


# --------------------------------------------------------------------------------------------
# headers
# --------------------------------------------------------------------------------------------
class Header(dict):
    """Header keywords -> values, looked up case-insensitively (as `astropy.io.fits.Header`).

    Values are Python ``bool``, ``int``, ``float``, ``str`` (trailing blanks removed, ``CONTINUE``
    cards joined) or None for a card without a value. A repeated keyword keeps
    its first value (as ``header[key]`` in astropy). ``COMMENT`` and ``HISTORY`` map to the list of
    their texts.
    """

    def __getitem__(self, key):
        return dict.__getitem__(self, key.upper() if isinstance(key, str) else key)

    def __setitem__(self, key, value):
        dict.__setitem__(self, key.upper() if isinstance(key, str) else key, value)

    def get(self, key, default=None):
        return dict.get(self, key.upper() if isinstance(key, str) else key, default)

    def __contains__(self, key):
        return dict.__contains__(self, key.upper() if isinstance(key, str) else key)

    def copy(self) -> Header:
        return Header(self)

    def to_astropy(self):
        """The same keywords as an `astropy.io.fits.Header` (values only, no comments)."""
        from astropy.io import fits

        h = fits.Header()
        for key, value in self.items():
            if key in ("COMMENT", "HISTORY"):
                add = h.add_comment if key == "COMMENT" else h.add_history
                for text in value:
                    add(text)
            else:
                h[key] = value
        return h


def _string_value(text: str):
    """(value, rest) of a card field starting with a quote; None if the closing quote is missing."""
    i = 1
    while True:
        j = text.find("'", i)
        if j < 0:
            return None
        if text[j + 1 : j + 2] == "'":
            i = j + 2
            continue
        return text[1:j], text[j + 1 :]


def _parse_value(field: str):
    """Value of the text after ``"= "``: (value, is_string). Raises `UnsupportedError`."""
    s = field.lstrip(" ")
    if s[:1] == "'":
        parsed = _string_value(s)
        if parsed is None:
            raise UnsupportedError("string value without its closing quote")
        raw, rest = parsed
        rest = rest.lstrip(" ")
        if (rest and rest[0] != "/") or not _PRINTABLE.match(raw):
            raise UnsupportedError("non-standard string value")
        return raw, True
    tok = s.split("/", 1)[0].strip(" ")
    if tok == "T":
        return True, False
    if tok == "F":
        return False, False
    if tok == "":
        return None, False  # a card without a value: None, as ``astropy.io.fits.Header[key]``
    if _INT.match(tok):
        return int(tok), False
    if _FLOAT.match(tok):
        return float(tok.replace("D", "E")), False
    raise UnsupportedError(f"value {tok!r} is not a fixed-format FITS value")


def parse_header(text: str) -> tuple[Header, int]:
    """Parse the cards of one header from ``text`` (starting at its first card).

    Returns
    -------
    header : Header
    n_cards : int
        Number of cards up to and including ``END``.

    Raises
    ------
    UnsupportedError
        On cards this reader does not decode (astropy then reads the file).
    EOFError
        If ``text`` ends before the ``END`` card.
    """
    header = Header()
    continued = None  # keyword of a string value that CONTINUE cards may extend
    parts: list[str] = []
    commentary = False  # the last card was COMMENT, HISTORY or blank
    n = len(text) // CARD
    for k in range(n):
        card = text[k * CARD : (k + 1) * CARD]
        key = card[:8].rstrip(" ")
        if key == "CONTINUE" and card[8:10] != "= ":
            if commentary:  # a long COMMENT / HISTORY text: commentary, not a value
                continue
            if continued is None:
                raise UnsupportedError("CONTINUE card after a non-string value")
            value, _ = _parse_value(card[8:])
            if not isinstance(value, str) or card[8:].lstrip(" ")[:1] != "'":
                raise UnsupportedError("CONTINUE card without a string")
            parts.append(value)
            continue
        if continued is not None:
            if len(parts) > 1:
                joined = "".join(p.rstrip(" ")[:-1] if p.rstrip(" ").endswith("&") else p.rstrip(" ") for p in parts)
            else:
                joined = parts[0]
            if not dict.__contains__(header, continued):  # keys are upper case here
                header[continued] = joined.replace("''", "'").rstrip(" ")
            continued, parts = None, []
        if key == "END":
            if card.strip(" ") != "END":
                raise UnsupportedError("END card with trailing text")
            return header, k + 1
        commentary = key in _COMMENTARY
        if commentary:
            if key:
                dict.setdefault(header, key, []).append(card[8:].rstrip(" "))
            continue
        if card[8:10] != "= " or not _KEYWORD.match(key):
            raise UnsupportedError(f"non-standard card {card.rstrip()!r}")
        value, is_string = _parse_value(card[10:])
        if is_string:
            continued, parts = key, [value]
        elif not dict.__contains__(header, key):
            header[key] = value
    raise EOFError


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------
class Column:
    """One binary-table column: ``name`` (``TTYPEn``), ``format`` (``TFORMn``), ``unit``
    (``TUNITn`` or None), ``index`` (1-based)."""

    __slots__ = ("name", "format", "unit", "index")

    def __init__(self, name: str, format: str, unit: str | None, index: int):  # noqa: A002
        self.name, self.format, self.unit, self.index = name, format, unit, index

    def __repr__(self) -> str:
        return f"Column(name={self.name!r}, format={self.format!r}, unit={self.unit!r})"


def _find(names: list[str], key: str) -> int:
    """Index of ``key`` in ``names``: exact, else case-insensitive (astropy's rule)."""
    try:
        return names.index(key)
    except ValueError:
        upper = [n.upper() for n in names]
        if upper.count(key.upper()) == 1:
            return upper.index(key.upper())
        raise KeyError(f"Key '{key}' does not exist.") from None


class Columns:
    """The column definitions of a table: ``names`` (list) and ``columns[name]`` -> `Column`."""

    def __init__(self, columns: list[Column]):
        self._columns = columns
        self.names = [c.name for c in columns]

    def __getitem__(self, key):
        if isinstance(key, str):
            return self._columns[_find(self.names, key)]
        return self._columns[key]

    def __len__(self) -> int:
        return len(self._columns)

    def __iter__(self):
        return iter(self._columns)


class VarColumn:
    """A variable-length array column: ``col[i]`` is row ``i`` (native-endian ndarray).

    ``counts`` and ``offsets`` are the descriptors (elements per row, byte offset of each row in
    the heap); `take` flattens leading parts of all rows at once.
    """

    def __init__(self, heap: np.ndarray, counts: np.ndarray, offsets: np.ndarray, dtype: np.dtype, is_bool: bool):
        self._heap = heap  # uint8 view of the heap
        self.counts = counts
        self.offsets = offsets
        self._dtype = dtype  # on disk
        self._bool = is_bool
        self.dtype = np.dtype(bool) if is_bool else dtype.newbyteorder("=")

    def __len__(self) -> int:
        return self.counts.size

    def _decode(self, raw: np.ndarray) -> np.ndarray:
        if self._bool:
            return raw == ord("T")
        return raw.astype(self.dtype)

    def __getitem__(self, i):
        if not isinstance(i, int | np.integer):
            raise TypeError("a variable-length column is indexed by row number")
        n, off = int(self.counts[i]), int(self.offsets[i])
        size = self._dtype.itemsize
        return self._decode(self._heap[off : off + n * size].view(self._dtype))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def take(self, lengths: np.ndarray) -> np.ndarray:
        """The first ``min(lengths[i], counts[i])`` values of every row ``i``, concatenated."""
        return self._decode(self._gather(lengths))

    def _gather(self, lengths: np.ndarray) -> np.ndarray:
        """`take` before decoding: the values as stored (big-endian, logical as bytes)."""
        n = np.minimum(np.asarray(lengths, dtype=np.int64), self.counts)
        n = np.maximum(n, 0)
        size = self._dtype.itemsize
        total = int(n.sum())
        if total == 0:
            return np.zeros(0, self._dtype)
        first = np.cumsum(n) - n  # index of each row's first value in the output
        element = np.arange(total) - np.repeat(first, n)
        start = np.repeat(self.offsets, n) + element * size
        if size == 1:
            raw = self._heap[start]
        else:
            raw = self._heap[start[:, None] + np.arange(size)].reshape(total * size)
        return raw.view(self._dtype)


class TableData:
    """The rows of a binary table: ``len(data)`` rows, ``data[name]`` -> the column's values."""

    def __init__(self, names: list[str], values: list, nrows: int):
        self._names = names
        self._values = values
        self._nrows = nrows

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def __len__(self) -> int:
        return self._nrows

    def __getitem__(self, key):
        if isinstance(key, str):
            return self._values[_find(self._names, key)]
        raise TypeError("columns are selected by name")


def _decode_column(buf, start: int, nrows: int, rowlen: int, offset: int, code: str, repeat: int, h: Header, i: int):
    """Values of one fixed-width column (FITS 4.0, section 7.3.3), as astropy gives them."""
    if nrows == 0:  # numpy refuses a zero-size view at the end of the buffer
        buf, start, offset, rowlen = bytes(rowlen or 1), 0, 0, rowlen or 1
    if code == "A":
        if f"TDIM{i}" in h:
            raise UnsupportedError("TDIM on a string column")
        raw = np.ndarray((nrows,), dtype=f"S{repeat}", buffer=buf, offset=start + offset, strides=(rowlen,))
        try:
            return np.char.rstrip(np.char.decode(raw, "ascii"), " ").astype(f"U{repeat}")
        except UnicodeDecodeError:
            raise UnsupportedError("non-ASCII string column") from None
    dtype = np.dtype(_TYPES[code])
    raw = np.ndarray((nrows, repeat), dtype=dtype, buffer=buf, offset=start + offset, strides=(rowlen, dtype.itemsize))
    scale, zero = h.get(f"TSCAL{i}"), h.get(f"TZERO{i}")
    scaled = scale not in ("", None, 1)
    shifted = zero not in ("", None, 0)
    if code == "L":
        if scaled or shifted:
            raise UnsupportedError("scaled logical column")
        if np.any(raw == 0):
            raise UnsupportedError("logical column with NUL (undefined) cells")
        values = raw == ord("T")
    elif scaled or shifted:
        for v in (scale, zero):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise UnsupportedError("non-numeric TSCAL/TZERO")
        if scaled and code in _UNSIGNED and zero == _UNSIGNED[code][0]:
            raise UnsupportedError("scaled offset-binary integers")
        if not scaled and code in _UNSIGNED and zero == _UNSIGNED[code][0]:
            # offset-binary unsigned integers: flipping the sign bit adds 2**(bits-1) exactly
            udt = np.dtype(_UNSIGNED[code][1])
            values = (raw.view(udt) ^ udt.type(zero)).astype(udt.newbyteorder("="))
        else:
            values = np.array(raw, dtype=np.float64)  # astropy's order of operations, bit for bit
            if scaled:
                np.multiply(values, scale, values)
            if shifted:
                values += zero
    else:
        values = raw.astype(dtype.newbyteorder("="))
    tdim = h.get(f"TDIM{i}")
    if tdim is not None:
        if not isinstance(tdim, str) or not _TDIM.match(tdim.strip()):
            raise UnsupportedError(f"TDIM{i} = {tdim!r}")
        dims = tuple(int(d) for d in tdim.strip()[1:-1].split(","))[::-1]
        if int(np.prod(dims)) != repeat:
            raise UnsupportedError(f"TDIM{i} = {tdim!r} does not match the repeat count {repeat}")
        return values.reshape((nrows,) + dims)
    return values[:, 0] if repeat == 1 else values


def _read_table(buf, h: Header, start: int, where: str, error):
    """(Columns, TableData) of a BINTABLE HDU whose data start at byte ``start`` of ``buf``."""
    rowlen, nrows, pcount = h["NAXIS1"], h["NAXIS2"], h.get("PCOUNT", 0)
    tfields = h.get("TFIELDS")
    if not isinstance(tfields, int) or tfields < 0:
        raise UnsupportedError(f"TFIELDS = {tfields!r}")
    theap = h.get("THEAP", rowlen * nrows)
    if not isinstance(theap, int) or not rowlen * nrows <= theap <= rowlen * nrows + pcount:
        raise UnsupportedError(f"THEAP = {theap!r}")
    heap_size = rowlen * nrows + pcount - theap
    columns, values = [], []
    offset = 0
    for i in range(1, tfields + 1):
        name, tform = h.get(f"TTYPE{i}"), h.get(f"TFORM{i}")
        if not isinstance(name, str) or not name or not isinstance(tform, str):
            raise UnsupportedError(f"column {i} without TTYPE/TFORM")
        unit = h.get(f"TUNIT{i}")
        if unit is not None and not isinstance(unit, str):
            raise UnsupportedError(f"TUNIT{i} = {unit!r}")
        form = tform.strip()
        m = _TFORM.match(form)
        if m:
            repeat = int(m.group(1)) if m.group(1) else 1
            code = m.group(2)
            if repeat == 0:
                raise UnsupportedError("zero-width column")
            width = repeat * (1 if code == "A" else np.dtype(_TYPES[code]).itemsize)
            if offset + width > rowlen:
                raise UnsupportedError("columns wider than NAXIS1")
            values.append(_decode_column(buf, start, nrows, rowlen, offset, code, repeat, h, i))
        else:
            m = _TFORM_P.match(form)
            if m is None:
                raise UnsupportedError(f"TFORM{i} = {tform!r}")
            if f"TSCAL{i}" in h or f"TZERO{i}" in h:
                raise UnsupportedError("scaled variable-length column")
            width = 8
            if offset + width > rowlen:
                raise UnsupportedError("columns wider than NAXIS1")
            if nrows:
                desc = np.ndarray((nrows, 2), dtype=">i4", buffer=buf, offset=start + offset, strides=(rowlen, 4))
                desc = desc.astype(np.int64)
            else:
                desc = np.zeros((0, 2), np.int64)
            counts, offsets = desc[:, 0], desc[:, 1]
            code = m.group(2)
            dtype = np.dtype(_TYPES[code])
            ends = offsets + counts * dtype.itemsize
            if nrows and (np.any(counts < 0) or np.any(offsets < 0) or np.any(ends > heap_size)):
                bad = int(np.flatnonzero((counts < 0) | (offsets < 0) | (ends > heap_size))[0])
                raise error(
                    f"{where}, column {name}: variable-length array of row {bad} lies outside the heap "
                    "(truncated or corrupt)"
                )
            heap = np.zeros(0, np.uint8)
            if heap_size:
                heap = np.frombuffer(buf, dtype=np.uint8, count=heap_size, offset=start + theap)
            col = VarColumn(heap, counts, offsets, dtype, code == "L")
            if code == "L" and nrows and int(counts.sum()) and np.any(col._gather(counts) == 0):
                raise UnsupportedError("logical column with NUL cells")
            values.append(col)
        columns.append(Column(name, tform, unit, i))
        offset += width
    if offset != rowlen:
        raise UnsupportedError(f"columns take {offset} bytes of a {rowlen}-byte row")
    return Columns(columns), TableData([c.name for c in columns], values, nrows)


# --------------------------------------------------------------------------------------------
# HDUs and files
# --------------------------------------------------------------------------------------------
class HDU:
    """One header-data unit: ``name`` (``EXTNAME``, ``PRIMARY`` for the first), ``header``,
    ``columns`` and ``data`` (a `TableData` for binary tables, an ndarray or None for images)."""

    def __init__(self, header: Header, name: str, kind: str, columns, data, header_offset: int, data_offset: int):
        self.header = header
        self.name = name
        self.kind = kind  # "primary", "image" or "bintable"
        self.columns = columns
        self.data = data
        self._header_offset = header_offset
        self._data_offset = data_offset

    @property
    def ver(self) -> int:
        return self.header.get("EXTVER", 1)

    @property
    def is_image(self) -> bool:
        return self.kind != "bintable"

    def __repr__(self) -> str:
        return f"<fitsbin.HDU {self.name!r} ({self.kind})>"


class FitsFile:
    """The HDUs of one file, indexed like `astropy.io.fits.HDUList` (number, slice or name)."""

    def __init__(self, path: Path, hdus: list[HDU]):
        self.path = path
        self._hdus = hdus

    def filename(self) -> str:
        return str(self.path)

    def __len__(self) -> int:
        return len(self._hdus)

    def __iter__(self):
        return iter(self._hdus)

    def index_of(self, key) -> int:
        if isinstance(key, int | np.integer):
            return int(key)
        if isinstance(key, tuple):
            name, ver = key
        else:
            name, ver = key, None
        name = str(name).strip().upper()
        for i, hdu in enumerate(self._hdus):
            if hdu.name.strip().upper() == name and (ver is None or hdu.ver == ver):
                return i
        raise KeyError(f"Extension {key!r} not found.")

    def __getitem__(self, key):
        if isinstance(key, slice):
            return self._hdus[key]
        return self._hdus[self.index_of(key)]

    def __contains__(self, key) -> bool:
        try:
            self.index_of(key)
        except KeyError:
            return False
        return True

    def close(self) -> None:
        """Nothing to release (the bytes are in memory); for ``with`` blocks and astropy's API."""

    def __enter__(self) -> FitsFile:
        return self

    def __exit__(self, *exc) -> bool:
        return False


def _data_size(h: Header, kind: str) -> int:
    naxis = h.get("NAXIS")
    bitpix = h.get("BITPIX")
    if not isinstance(naxis, int) or not 0 <= naxis <= 999 or bitpix not in _BITPIX:
        raise UnsupportedError(f"BITPIX = {bitpix!r}, NAXIS = {naxis!r}")
    axes = [h.get(f"NAXIS{k}") for k in range(1, naxis + 1)]
    if not all(isinstance(a, int) and a >= 0 for a in axes):
        raise UnsupportedError(f"NAXISn = {axes!r}")
    if kind == "primary" and h.get("GROUPS") is True:
        raise UnsupportedError("random groups")
    pcount, gcount = h.get("PCOUNT", 0), h.get("GCOUNT", 1)
    if not isinstance(pcount, int) or pcount < 0 or gcount != 1:
        raise UnsupportedError(f"PCOUNT = {pcount!r}, GCOUNT = {gcount!r}")
    if naxis == 0:
        return 0
    return abs(bitpix) // 8 * (pcount + int(np.prod(axes, dtype=np.int64)))


def _raw(path: Path) -> bytes:
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise UnsupportedError(f"gzip stream: {exc}") from None
    return raw


def read_fits(path, error=FitsDamageError, raw: bytes | None = None) -> FitsFile:
    """Read every HDU of a FITS file of binary tables (and plain images) into memory.

    Parameters
    ----------
    path : str or Path
    error : type
        Exception class raised for a damaged file (message names the file and HDU).
    raw : bytes, optional
        The file's bytes, if already read.

    Returns
    -------
    FitsFile

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    UnsupportedError
        For valid FITS this reader does not decode (see the module docstring): read with astropy.
    error
        For a damaged file; checksum mismatches in files of other software only warn.
    """
    path = Path(path)
    if raw is None:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file")
        raw = _raw(path)
    size = len(raw)
    if size == 0:
        raise error(f"{path}: the file is empty")
    hdus: list[HDU] = []
    pos = 0
    while pos < size:
        first = raw[pos : pos + 9]
        kind = "primary" if not hdus else None
        if not hdus and first != b"SIMPLE  =":
            raise error(f"{path}: not a FITS file (no SIMPLE card)")
        if hdus and first != b"XTENSION=":
            raise error(
                f"{path}: {size - pos} bytes after HDU {len(hdus) - 1} are not an extension (truncated or corrupt)"
            )
        header, n_cards, hpos = None, 0, pos
        while header is None:  # read blocks until END
            end = hpos + BLOCK
            if end > size:
                raise error(f"{path}: HDU {len(hdus)} header is truncated (no END card before the end of the file)")
            try:
                text = raw[pos:end].decode("ascii")
            except UnicodeDecodeError:
                raise UnsupportedError("non-ASCII header bytes") from None
            try:
                header, n_cards = parse_header(text)
            except EOFError:
                hpos = end
        data_start = pos + -(-(n_cards * CARD) // BLOCK) * BLOCK
        if kind is None:
            xt = header.get("XTENSION")
            kind = {"BINTABLE": "bintable", "IMAGE": "image"}.get(str(xt).strip() if isinstance(xt, str) else None)
            if kind is None:
                raise UnsupportedError(f"XTENSION = {xt!r}")
        elif header.get("SIMPLE") is not True:
            raise UnsupportedError("SIMPLE is not T")
        if kind == "bintable" and (header.get("ZIMAGE") is True or header.get("ZTABLE") is True):
            raise UnsupportedError("tile-compressed HDU")
        nbytes = _data_size(header, kind)
        name = header.get("EXTNAME", "PRIMARY" if kind == "primary" else "")
        hdu_name = str(name)
        where = f"{path}: HDU {len(hdus)} ({hdu_name})"
        if data_start + nbytes > size:
            raise error(f"{where}: data run past the end of the file (truncated)")
        columns = data = None
        if kind == "bintable":
            if header.get("BITPIX") != 8 or header.get("NAXIS") != 2:
                raise UnsupportedError("BINTABLE without BITPIX = 8, NAXIS = 2")
            columns, data = _read_table(raw, header, data_start, where, error)
        elif nbytes:
            if "BSCALE" in header or "BZERO" in header or "BLANK" in header:
                raise UnsupportedError("scaled image")
            dtype = np.dtype(_BITPIX[header["BITPIX"]])
            shape = tuple(header[f"NAXIS{k}"] for k in range(header["NAXIS"], 0, -1))
            data = np.ndarray(shape, dtype=dtype, buffer=raw, offset=data_start).astype(dtype.newbyteorder("="))
        hdus.append(HDU(header, hdu_name, kind, columns, data, pos, data_start))
        pos = data_start + -(-nbytes // BLOCK) * BLOCK
    if pos != size:
        raise error(f"{path}: file size {size} differs from the {pos} bytes its HDUs occupy (truncated or corrupt)")
    f = FitsFile(path, hdus)
    from .fits import _verify_checksums

    _verify_checksums(f, path, raw, error)
    nextend = hdus[0].header.get("NEXTEND")
    if nextend is not None and (not isinstance(nextend, int) or nextend != len(hdus) - 1):
        raise error(f"{path}: primary NEXTEND = {nextend!r} but the file has {len(hdus) - 1} extensions (truncated?)")
    return f


def read_primary_header(path) -> Header:
    """The primary header only (reads its blocks, not the rest of the file); astropy's
    `~astropy.io.fits.getheader` for what `parse_header` does not decode (and ``.gz`` files)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            text = ""
            while True:
                block = f.read(BLOCK)
                if len(block) < BLOCK or (not text and block[:9] != b"SIMPLE  ="):
                    raise UnsupportedError("not a plain FITS file, or a truncated header")
                text += block.decode("ascii")
                try:
                    return parse_header(text)[0]
                except EOFError:
                    continue
    except (UnsupportedError, UnicodeDecodeError):
        from astropy.io import fits

        return fits.getheader(path, 0)


def open_fits_fast(path, error=DatasetFileError):
    """Open a FITS file with `read_fits`, else (`UnsupportedError`) with astropy's `open_fits`.

    Any other failure of `read_fits` (a layout it does not expect) also goes to astropy. A file
    `read_fits` finds damaged is opened with `xspec_ds.io.fits.open_fits` too, whose
    error (the established message for that damage) is raised; if astropy reads it, the
    damage found here is raised as ``error``. Either way a damaged file is refused.

    Returns
    -------
    `FitsFile` or `astropy.io.fits.HDUList`
        The caller closes it (``with`` block).
    """
    from .fits import open_fits

    try:
        return read_fits(path, error=FitsDamageError)
    except FitsDamageError as exc:
        message = str(exc)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception:  # UnsupportedError, or anything odd enough to trip this reader: astropy decides
        return open_fits(path, error=error)
    open_fits(path, error=error).close()  # raises for the damage astropy sees
    raise error(message)
