"""OGIP spectra: type-I PHA, ARF and RMF files (the X-ray / IACT on-off exchange format).

Formats (cited, our own implementation):

- PHA: OGIP/92-007, "The OGIP Spectral File Format" (Arnaud, George & Tennant), with the
  OGIP/92-007a addendum. Extension ``SPECTRUM`` (``HDUCLAS1 = 'SPECTRUM'``), columns
  ``CHANNEL`` and ``COUNTS`` (or ``RATE``, counts/s, times ``EXPOSURE``); ``QUALITY``,
  ``GROUPING``, ``BACKSCAL`` and ``AREASCAL`` may each be a column or a header keyword;
  ``EXPOSURE`` is the livetime in s; ``ANCRFILE``, ``RESPFILE`` and ``BACKFILE`` name the
  ARF, RMF and background PHA ("none" or empty means absent).
- ARF and RMF: CAL/GEN/92-002, "The Calibration Requirements for Spectral Analysis" (George
  et al.) and its addendum 92-002a. ARF extension ``SPECRESP`` with ``ENERG_LO``,
  ``ENERG_HI``, ``SPECRESP`` (cm2 or m2); RMF extension ``MATRIX`` (or ``SPECRESP MATRIX``)
  with ``ENERG_LO``, ``ENERG_HI``, ``N_GRP``, ``F_CHAN``, ``N_CHAN``, ``MATRIX`` (rows
  compressed into groups of contiguous channels, fixed- or variable-length arrays) and
  ``EBOUNDS`` (``CHANNEL``, ``E_MIN``, ``E_MAX``).

Channels: the first legal channel is the ``TLMIN`` of the channel column (``CHANNEL`` in a
PHA, ``F_CHAN`` in an RMF, 1 by default per the standards, 0 in Gammapy-written files, which
omit ``TLMIN`` in the PHA: there the first channel present is used).

Mapping onto a dataset (as Gammapy's ``OGIPDatasetReader``): ``exposure = ARF x EXPOSURE``
(Fermi-LAT spectra set ``EXPOSURE = 1 s`` and fold the exposure into the ARF, which works the
same way), ``edisp`` = the RMF, ``acceptance`` = the source ``BACKSCAL``, ``acceptance_off`` =
the background ``BACKSCAL`` times the background-to-source ``EXPOSURE`` and ``AREASCAL`` ratios
(XSPEC's background scaling; the ratios are 1 in Gammapy files, so Gammapy's alpha is kept),
``mask_safe`` = ``QUALITY == 0`` and, when the PHA header has Gammapy's ``LO_THRES`` /
``HI_THRES`` keywords (TeV), the reco bins inside them.

Reading: every file is read once, with the lean binary-table reader
`xspec_ds.io.fitsbin.open_fits_fast` (astropy's `xspec_ds.io.fits.open_fits` for what it does
not decode); `xspec_ds.io.read_dataset` hands the PHA it opened to `read_pha` (``opened=``).

Integrity: ``CHECKSUM``/``DATASUM`` are verified and truncated files refused (the same rules in
both readers), and any failure while reading a file is an `OGIPError` naming the file. `write_ogip` writes the same ``WRITEID`` (a UUID) in the primary header of the PHA and of
each file it links; `read_pha` refuses a set whose linked files carry a different ``WRITEID``
than the PHA (parts of different writes: a write killed half-way, or a reader racing a writer).
Files without ``WRITEID`` (other software) are read as before.
"""

from __future__ import annotations

import uuid
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits

from ..axes import MapAxis, overlap_matrix
from ..containers import as_dataarray, build_dataset
from ..gti import GTI
from . import DatasetFileError
from .atomic import atomic_path, check_overwrite

__all__ = [
    "OGIPError",
    "read_pha",
    "read_pha_table",
    "read_arf",
    "read_rmf",
    "write_ogip",
    "write_rmf",
    "write_arf",
    "group_channels",
]

_NONE_NAMES = {"", "none", "none.fits"}
WRITE_ID_KEY = "WRITEID"  # primary-header keyword: one UUID shared by the files of one write
_THRES_UNIT = u.TeV  # Gammapy writes LO_THRES / HI_THRES in TeV


class OGIPError(DatasetFileError):
    """A malformed or inconsistent OGIP file (the message names the file); a `ValueError`."""


# ------------------------------------------------------------------------------------------
# low-level helpers
# ------------------------------------------------------------------------------------------
class _open:  # noqa: N801  (used as ``with _open(path) as hdul``)
    """Open a FITS file fully into memory (`xspec_ds.io.fitsbin.open_fits_fast`, astropy's
    `open_fits` for what it does not decode: checksums, truncation); inside the ``with`` block any
    error other than `OGIPError` becomes an `OGIPError` naming the file. ``opened``: the file
    already opened by the caller (`xspec_ds.io.read_dataset`), not opened again."""

    def __init__(self, path: Path, opened=None):
        from .fitsbin import open_fits_fast

        self.path = path
        self.hdul = opened if opened is not None else open_fits_fast(path, error=OGIPError)

    def __enter__(self) -> fits.HDUList:
        return self.hdul

    def __exit__(self, typ, exc, tb):
        self.hdul.close()
        if exc is None or isinstance(exc, OGIPError | FileNotFoundError) or not isinstance(exc, Exception):
            return False
        raise OGIPError(f"{self.path}: cannot read: {type(exc).__name__}: {exc}") from exc


def _find_hdu(hdul: fits.HDUList, path: Path, extnames: tuple[str, ...], hduclas: tuple[str, ...] = ()):
    for hdu in hdul[1:]:
        if hdu.name.upper() in extnames:
            return hdu
    for hdu in hdul[1:]:
        h = hdu.header
        if any(str(h.get(k, "")).strip().upper() in hduclas for k in ("HDUCLAS1", "HDUCLAS2")):
            return hdu
    names = [h.name for h in hdul]
    raise OGIPError(
        f"{path}: no {' / '.join(extnames)} extension (extensions: {names}); is this the right kind of OGIP file?"
    )


def _column_or_key(hdu, name: str, n: int, default=None, path: Path | None = None) -> np.ndarray | None:
    """A per-channel value from column ``name`` or header keyword ``name`` (OGIP/92-007 allows both)."""
    cols = [c.upper() for c in hdu.columns.names]
    if name in cols:
        return np.asarray(hdu.data[hdu.columns.names[cols.index(name)]]).reshape(n)
    if name in hdu.header:
        return np.full(n, hdu.header[name])
    if default is None:
        return None
    return np.full(n, default)


def _unit(hdu, column: str, default: str) -> u.UnitBase:
    col = hdu.columns[column]
    text = (col.unit or default).strip()
    try:
        return u.Unit(text, parse_strict="raise")
    except ValueError:
        return u.Unit(text.replace("**", ""), format="fits")


def _tlmin(hdu, column: str) -> int | None:
    idx = [c.upper() for c in hdu.columns.names].index(column) + 1
    val = hdu.header.get(f"TLMIN{idx}")
    return None if val is None else int(val)


def _linked(pha_path: Path, header, key: str) -> Path | None:
    """The file named by header ``key``, relative to the PHA's folder unless absolute."""
    value = header.get(key)
    if value is None:
        return None
    value = str(value).strip()
    if value.lower() in _NONE_NAMES:
        return None
    value = value.split("{")[0].split("[")[0]  # drop extension selectors, "file{1}", "file[2]"
    p = Path(value)
    return p if p.is_absolute() else pha_path.parent / p


def _edges(lo: np.ndarray, hi: np.ndarray, unit, path: Path, what: str, name: str) -> MapAxis:
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    if lo.size == 0:
        raise OGIPError(f"{path}: {what} is empty")
    gaps = np.abs(lo[1:] - hi[:-1]) > 1e-5 * np.maximum(np.abs(hi[:-1]), 1e-30)
    if np.any(gaps):
        raise OGIPError(f"{path}: {what} bins are not contiguous (first gap after bin {np.flatnonzero(gaps)[0]})")
    edges = np.append(lo, hi[-1])
    if edges[0] <= 0:
        # X-ray grids may start at 0; an energy axis needs positive edges (log centres)
        edges[0] = min(edges[1] * 1e-3, edges[1] / 2)
        warnings.warn(f"{path}: {what} starts at 0; using {edges[0]:.3g} {unit} as the first edge", stacklevel=3)
    if np.any(np.diff(edges) <= 0):
        raise OGIPError(f"{path}: {what} edges are not strictly increasing")
    return MapAxis(edges * unit, name=name)


# ------------------------------------------------------------------------------------------
# ARF / RMF
# ------------------------------------------------------------------------------------------
def _true_axis(hdu, path: Path, what: str):
    """The true-energy axis of an ARF or RMF table from its ENERG_LO/ENERG_HI columns
    (OGIP CAL/GEN/92-002), in the unit of ENERG_LO."""
    eunit = _unit(hdu, "ENERG_LO", "keV")
    hi = (np.asarray(hdu.data["ENERG_HI"]) * _unit(hdu, "ENERG_HI", "keV")).to_value(eunit)
    return _edges(hdu.data["ENERG_LO"], hi, eunit, path, f"{what} ENERG_LO/ENERG_HI", "energy_true")


def read_arf(filename) -> tuple[MapAxis, u.Quantity]:
    """Read an OGIP ARF (CAL/GEN/92-002 ``SPECRESP`` extension).

    Returns
    -------
    (energy_true axis, effective area Quantity in the file's unit, e.g. cm2 or m2)
    """
    path = Path(filename)
    with _open(path) as hdul:
        hdu = _find_hdu(hdul, path, ("SPECRESP",), ("SPECRESP",))
        for col in ("ENERG_LO", "ENERG_HI", "SPECRESP"):
            if col not in [c.upper() for c in hdu.columns.names]:
                raise OGIPError(f"{path}: ARF has no {col} column")
        axis = _true_axis(hdu, path, "ARF")
        aunit = _unit(hdu, "SPECRESP", "cm2")
        if not aunit.is_equivalent(u.cm**2):
            raise OGIPError(f"{path}: SPECRESP unit {aunit} is not an area")
        aeff = np.asarray(hdu.data["SPECRESP"], dtype=np.float64) * aunit
    if not np.all(np.isfinite(aeff.value)) or np.any(aeff.value < 0):
        raise OGIPError(f"{path}: SPECRESP has negative or non-finite values")
    return axis, aeff


def _ebounds(hdu, path: Path) -> tuple[np.ndarray, MapAxis]:
    names = [c.upper() for c in hdu.columns.names]
    for col in ("E_MIN", "E_MAX"):
        if col not in names:
            raise OGIPError(f"{path}: EBOUNDS extension has no {col} column")
    eunit = _unit(hdu, "E_MIN", "keV")
    lo = np.asarray(hdu.data["E_MIN"], dtype=np.float64)
    hi = (np.asarray(hdu.data["E_MAX"], dtype=np.float64) * _unit(hdu, "E_MAX", "keV")).to_value(eunit)
    chan = np.asarray(hdu.data["CHANNEL"]).astype(np.int64) if "CHANNEL" in hdu.columns.names else np.arange(lo.size)
    order = np.argsort(chan, kind="stable")
    chan = chan[order]
    if chan.size and not np.array_equal(chan, np.arange(chan[0], chan[0] + chan.size)):
        raise OGIPError(f"{path}: EBOUNDS CHANNEL values are not contiguous (gaps or duplicates)")
    return chan, _edges(lo[order], hi[order], eunit, path, "EBOUNDS", "energy")


def _rows(col, n_rows: int, lengths: np.ndarray) -> np.ndarray:
    """Flatten a fixed- or variable-length array column keeping the first ``lengths[i]`` of row i."""
    data = col
    if hasattr(data, "take") and not isinstance(data, np.ndarray):  # fitsbin.VarColumn: one gather
        return data.take(lengths)
    if isinstance(data, np.ndarray) and data.dtype != object:
        arr = np.asarray(data)
        if arr.ndim == 1:
            arr = arr[:, None]
        keep = np.arange(arr.shape[1])[None, :] < lengths[:, None]
        return arr[keep]
    parts = [np.atleast_1d(np.asarray(data[i]))[: lengths[i]] for i in range(n_rows)]
    return np.concatenate(parts) if parts else np.zeros(0)


def read_rmf(filename, index: int = 0) -> tuple[MapAxis, MapAxis, np.ndarray, np.ndarray | None]:
    """Read an OGIP RMF (CAL/GEN/92-002 ``MATRIX`` + ``EBOUNDS``) into a dense matrix.

    Rows are decompressed from the ``N_GRP``/``F_CHAN``/``N_CHAN`` groups in one vectorised
    scatter (no loop over groups). The first channel is ``TLMIN`` of ``F_CHAN`` if given,
    else the first ``EBOUNDS`` channel. ``index`` picks the matrix of a file holding several
    (an RSP2, e.g. Fermi GBM: one ``SPECRESP MATRIX`` per time interval); default the first.

    Returns
    -------
    energy_true : MapAxis
    energy : MapAxis
        From ``EBOUNDS``.
    matrix : numpy.ndarray, shape (n_true, n_channels)
        ``P(channel | true bin)``; rows of a ``SPECRESP MATRIX`` (an RSP that includes the
        effective area) are divided by their sums, returned as the 4th item.
    area : numpy.ndarray or None
        Row sums of an RSP (cm2), else None.
    """
    path = Path(filename)
    with _open(path) as hdul:
        hdu = _find_hdu(hdul, path, ("MATRIX", "SPECRESP MATRIX"), ("RSP_MATRIX",))
        if index:  # x-ray hook: the index-th matrix of an RSP2
            mats = [h for h in hdul[1:] if h.name.upper() in ("MATRIX", "SPECRESP MATRIX")]
            if not 0 <= index < len(mats):
                raise OGIPError(f"{path}: matrix index {index} requested but the file has {len(mats)} matrices")
            hdu = mats[index]
        names = [c.upper() for c in hdu.columns.names]
        for col in ("ENERG_LO", "ENERG_HI", "N_GRP", "F_CHAN", "N_CHAN", "MATRIX"):
            if col not in names:
                raise OGIPError(f"{path}: RMF MATRIX extension has no {col} column")
        eb = _find_hdu(hdul, path, ("EBOUNDS",), ("EBOUNDS",))
        chan, e_reco = _ebounds(eb, path)
        e_true = _true_axis(hdu, path, "RMF")
        first = _tlmin(hdu, "F_CHAN")
        no_tlmin = first is None
        if first is None:
            first = int(chan[0]) if chan.size else 1
        n_true = len(hdu.data)
        n_chan = e_reco.nbin
        detchans = hdu.header.get("DETCHANS")
        if detchans is not None and int(detchans) != n_chan:
            raise OGIPError(f"{path}: DETCHANS = {detchans} but EBOUNDS has {n_chan} channels")
        n_grp = np.asarray(hdu.data["N_GRP"], dtype=np.int64).reshape(n_true)
        f_chan = _rows(hdu.data["F_CHAN"], n_true, n_grp).astype(np.int64)
        n_ch = _rows(hdu.data["N_CHAN"], n_true, n_grp).astype(np.int64)
        row_of_group = np.repeat(np.arange(n_true), n_grp)
        row_len = np.bincount(row_of_group, weights=n_ch, minlength=n_true).astype(np.int64)
        values = _rows(hdu.data["MATRIX"], n_true, row_len).astype(np.float64)
        is_rsp = hdu.name.upper() == "SPECRESP MATRIX"
    if values.size != n_ch.sum():
        raise OGIPError(f"{path}: MATRIX has {values.size} elements but N_CHAN sums to {n_ch.sum()}")
    bad = ~np.isfinite(values) | (values < 0)
    if np.any(bad):
        row = int(np.repeat(row_of_group, n_ch)[np.flatnonzero(bad)[0]])
        raise OGIPError(f"{path}: RMF MATRIX column has negative or non-finite values (first in row {row})")
    if np.any(n_ch < 0) or np.any(n_grp < 0):
        raise OGIPError(f"{path}: RMF N_GRP/N_CHAN columns have negative values")
    start = f_chan - first
    if no_tlmin and first == 0 and (np.any(start + n_ch > n_chan)) and f_chan.size and f_chan.min() >= 1:
        # F_CHAN without TLMIN defaults to 1 (CAL/GEN/92-002), e.g. Fermi GBM RSP2 files whose
        # EBOUNDS count from 0 while F_CHAN counts from 1
        first = 1
        start = f_chan - first
    if np.any(start < 0) or np.any(start + n_ch > n_chan):
        raise OGIPError(
            f"{path}: F_CHAN/N_CHAN groups address channels outside 0..{n_chan - 1} (first channel {first})"
        )
    # element k of group g sits at channel start[g] + k
    offsets = np.arange(values.size) - np.repeat(np.cumsum(n_ch) - n_ch, n_ch)
    rows = np.repeat(row_of_group, n_ch)
    cols = np.repeat(start, n_ch) + offsets
    matrix = np.zeros((n_true, n_chan))
    np.add.at(matrix, (rows, cols), values)
    area = None
    sums = matrix.sum(axis=1)
    if is_rsp or np.any(sums > 1 + 1e-3):
        area = sums
        with np.errstate(divide="ignore", invalid="ignore"):
            matrix = np.where(sums[:, None] > 0, matrix / sums[:, None], 0.0)
    else:
        # float32 rows may sum to 1 + a few ulp (accepted); renormalise rows beyond 1 + 1e-6 only
        over = sums > 1 + 1e-6
        matrix[over] /= sums[over, None]
    return e_true, e_reco, matrix, area


def _compress_rows(matrix: np.ndarray, first_channel: int):
    """OGIP compression of a dense matrix: contiguous non-zero runs per row (vectorised)."""
    nz = matrix != 0
    padded = np.pad(nz, ((0, 0), (1, 1)))
    d = np.diff(padded.astype(np.int8), axis=1)
    r_start, c_start = np.nonzero(d == 1)
    _, c_stop = np.nonzero(d == -1)  # row-major order matches the starts
    n_grp = np.bincount(r_start, minlength=matrix.shape[0])
    n_chan = c_stop - c_start
    split = np.cumsum(n_grp)[:-1]
    f_rows = np.split((c_start + first_channel).astype(np.int32), split)
    n_rows = np.split(n_chan.astype(np.int32), split)
    v_rows = np.split(matrix[nz].astype(np.float32), np.cumsum(nz.sum(axis=1))[:-1])
    return n_grp, f_rows, n_rows, v_rows


# ------------------------------------------------------------------------------------------
# PHA
# ------------------------------------------------------------------------------------------
def read_pha_table(filename, opened=None) -> dict:
    """Read the ``SPECTRUM`` extension of a type-I PHA file into plain arrays.

    Returns a dict with ``path``, ``header``, ``channel`` (as in the file), ``counts``,
    ``quality``, ``grouping``, ``backscal``, ``areascal`` (arrays over channels), ``exposure``
    (s), ``ebounds`` (MapAxis or None) and ``gti`` (`GTI` or None). ``header`` is the
    ``SPECTRUM`` header: a `xspec_ds.io.fitsbin.Header` (a dict with case-insensitive keys), or an
    `astropy.io.fits.Header` for files read through astropy. ``opened``: the file, already opened
    with `xspec_ds.io.fitsbin.open_fits_fast` (it is then not read again).
    """
    path = Path(filename)
    with _open(path, opened) as hdul:
        hdu = _find_hdu(hdul, path, ("SPECTRUM",), ("SPECTRUM",))
        header = hdu.header.copy()
        write_id = hdul[0].header.get(WRITE_ID_KEY)
        clas = [
            str(header.get(k, "")).upper().replace(" ", "").replace("TYPE:2", "TYPE:II")
            for k in ("HDUCLAS3", "HDUCLAS4")
        ]
        if any(t in c for c in clas for t in ("TYPE:II", "TYPEII", "PHA:II")) or "SPEC_NUM" in [
            c.upper() for c in hdu.columns.names
        ]:
            return _type2_single_row(path)  # x-ray hook: a one-row type II reads as type I
        names = [c.upper() for c in hdu.columns.names]
        n = len(hdu.data)
        if "CHANNEL" not in names:
            raise OGIPError(f"{path}: SPECTRUM has no CHANNEL column")
        channel = np.asarray(hdu.data["CHANNEL"]).astype(np.int64).reshape(n)
        if "EXPOSURE" not in header:
            raise OGIPError(f"{path}: SPECTRUM has no EXPOSURE keyword (OGIP/92-007 requires it)")
        exposure = header["EXPOSURE"]
        if isinstance(exposure, bool) or not isinstance(exposure, int | float) or not 0 < exposure < np.inf:
            raise OGIPError(f"{path}: keyword EXPOSURE = {exposure!r} is not a finite positive time (s)")
        exposure = float(exposure)
        if "COUNTS" in names:
            counts = np.asarray(hdu.data["COUNTS"], dtype=np.float64).reshape(n)
        elif "RATE" in names:
            if exposure <= 0:
                raise OGIPError(f"{path}: RATE spectrum with EXPOSURE = {exposure}: cannot convert to counts")
            rate = np.asarray(hdu.data["RATE"])
            counts = rate.astype(np.float64).reshape(n) * exposure
            # integer counts stored as rates: round back within the column's precision (a float32 RATE
            # carries ~6e-8 relative rounding, i.e. > 1e-6 absolute above ~17 counts)
            eps = np.finfo(rate.dtype).eps if np.issubdtype(rate.dtype, np.floating) else np.finfo(np.float64).eps
            tol = 4 * eps * np.abs(counts) + 1e-6
            counts = np.where(np.abs(counts - np.round(counts)) <= tol, np.round(counts), counts)
        else:
            raise OGIPError(f"{path}: SPECTRUM has neither COUNTS nor RATE")
        quality = _column_or_key(hdu, "QUALITY", n, 0).astype(np.int64)
        grouping = _column_or_key(hdu, "GROUPING", n, 0).astype(np.int64)
        backscal = _column_or_key(hdu, "BACKSCAL", n, 1.0).astype(np.float64)
        areascal = _column_or_key(hdu, "AREASCAL", n, 1.0).astype(np.float64)
        stat_err = _column_or_key(hdu, "STAT_ERR", n)  # x-ray hook: errors of NET (non-Poisson) spectra
        if stat_err is not None:
            stat_err = stat_err.astype(np.float64) * (exposure if "COUNTS" not in names else 1.0)
        first = _tlmin(hdu, "CHANNEL")
        ebounds = None
        eb_hdu = next((h for h in hdul[1:] if h.name.upper() == "EBOUNDS"), None)
        if eb_hdu is not None:
            _, ebounds = _ebounds(eb_hdu, path)
        gti = None
        gti_hdu = next((h for h in hdul[1:] if h.name.upper() == "GTI"), None)
        if gti_hdu is not None and len(gti_hdu.data):
            gti = _read_gti(gti_hdu)
    if first is None:
        first = int(channel.min()) if n else 0
    index = channel - first
    if n and (np.any(index < 0) or not np.array_equal(np.sort(index), np.arange(n))):
        raise OGIPError(f"{path}: CHANNEL values are not the contiguous channels {first}..{first + n - 1}")
    order = np.argsort(index)
    good = quality[order] == 0
    for key, values in (("BACKSCAL", backscal[order]), ("AREASCAL", areascal[order])):
        bad = good & ~((values > 0) & np.isfinite(values))
        if np.any(bad):
            role = {"BACKSCAL": "acceptance, or acceptance_off in a background file", "AREASCAL": "area scaling"}
            raise OGIPError(
                f"{path}: {key} = {float(values[bad][0])} in channel {int(channel[order][bad][0])} "
                f"({role[key]}): must be finite and > 0 in good-quality channels"
            )
    return {
        "path": path,
        "header": header,
        "channel": channel[order],
        "first_channel": first,
        "counts": counts[order],
        "quality": quality[order],
        "grouping": grouping[order],
        "backscal": backscal[order],
        "areascal": areascal[order],
        "stat_err": None if stat_err is None else stat_err[order],
        "exposure": exposure,
        "ebounds": ebounds,
        "gti": gti,
        "write_id": write_id,
    }


def _type2_single_row(path: Path) -> dict:
    """A type II PHA with one row as `read_pha_table`'s dict (several rows: use ``xs.open_dataset``)."""
    t = read_pha2_table(path)
    if t["counts"].shape[0] != 1:
        raise OGIPError(
            f"{path}: a type-II PHA file with {t['counts'].shape[0]} spectra; open it with "
            "xs.open_dataset(path, rmf=..., bkg=...) (one obs per row)"
        )
    n = t["counts"].shape[1]
    first = t["first_channel"] if t["first_channel"] is not None else 1
    header = t["header"].copy()
    for key, value in t["linked"].items():
        header[key] = value
    return {
        "path": path,
        "header": header,
        "channel": np.arange(n) + first,
        "first_channel": first,
        "counts": t["counts"][0],
        "quality": t["quality"][0],
        "grouping": t["grouping"][0],
        "backscal": t["backscal"][0],
        "areascal": t["areascal"][0],
        "exposure": float(t["exposure"][0]),
        "ebounds": t["ebounds"],
        "gti": None,
    }


def _read_gti(hdu) -> GTI:
    h = hdu.header
    mjdref = h.get("MJDREFI", None)
    if mjdref is not None:
        mjd = float(mjdref) + float(h.get("MJDREFF", 0.0))
    else:
        mjd = float(h.get("MJDREF", 51544.0))
    from astropy.time import Time

    ref = Time(
        mjd,
        format="mjd",
        scale=str(h.get("TIMESYS", "tt")).lower()
        if str(h.get("TIMESYS", "TT")).upper() in ("TT", "UTC", "TAI", "TDB")
        else "tt",
    )
    unit = u.Unit(hdu.columns["START"].unit or "s")
    return GTI(
        np.asarray(hdu.data["START"], dtype=np.float64) * unit,
        np.asarray(hdu.data["STOP"], dtype=np.float64) * unit,
        reference_time=ref.tt,
    )


def _thres_mask(header, axis: MapAxis) -> np.ndarray | None:
    lo, hi = header.get("LO_THRES"), header.get("HI_THRES")
    if lo is None and hi is None:
        return None
    e_lo = axis.edges_min.to_value(_THRES_UNIT)
    e_hi = axis.edges_max.to_value(_THRES_UNIT)
    mask = np.ones(axis.nbin, bool)
    if lo is not None:
        mask &= e_lo >= float(lo) * (1 - 1e-6)
    if hi is not None:
        mask &= e_hi <= float(hi) * (1 + 1e-6)
    return mask


def group_channels(grouping: np.ndarray) -> np.ndarray:
    """Start index of each channel group from an OGIP ``GROUPING`` column.

    OGIP/92-007: ``+1`` starts a group, ``-1`` continues it, ``0`` means no grouping
    information (the channel is its own group).
    """
    grouping = np.asarray(grouping)
    starts = grouping != -1
    starts[0] = True
    return np.flatnonzero(starts)


def read_pha(
    filename, name: str | None = None, group: bool = True, cls=None, bkg=None, arf=None, rmf=None, opened=None
):
    """Read a type-I OGIP PHA and the ARF, RMF and background PHA its header names.

    Parameters
    ----------
    filename : str or Path
        The source PHA. ``ANCRFILE``, ``RESPFILE`` and ``BACKFILE`` are resolved relative to
        its folder (unless absolute).
    name : str, optional
        Dataset name; default the ``DSNAME`` keyword, else ``OBS_ID``, else the file stem.
    group : bool
        Honour the ``GROUPING`` column (default True, as Sherpa and XSPEC): the dataset keeps
        its channels and gets a ``group`` coordinate (and ``quality``), and is fitted on its
        groups (`xspec_ds.grouping`); channels with ``QUALITY != 0`` are unsafe and drop out of
        their groups. False ignores ``GROUPING``.
    bkg, arf, rmf : str or Path, optional
        Background PHA, ARF and RMF (or RSP: a ``SPECRESP MATRIX`` that includes the
        effective area) given explicitly; they replace ``BACKFILE``, ``ANCRFILE`` and
        ``RESPFILE`` of the header (needed where the header names no file or a missing one).
    cls : type, optional
        Class to build (``SpectrumDatasetOnOff`` by default when there is a background file,
        ``SpectrumDataset`` otherwise).
    opened : optional
        The PHA file already opened with `xspec_ds.io.fitsbin.open_fits_fast` (as
        `xspec_ds.io.read_dataset` does to find the format): it is not read a second time.

    Returns
    -------
    SpectrumDatasetOnOff
        With ``counts``, ``counts_off``, ``acceptance``, ``acceptance_off``, ``exposure``,
        ``edisp``, ``mask_safe``, ``livetime`` and ``gti``; or a `SpectrumDataset` (no
        background) when the PHA names no ``BACKFILE``: OGIP spectra without a background
        file have no background estimate, and a Cash fit of them is the right default.

    Raises
    ------
    FileNotFoundError
        If the PHA or a file it links to is missing (the message names both).
    OGIPError
        For corrupt files, channel mismatches between PHA, RMF and background, or a zero
        background ``BACKSCAL`` in a safe bin.
    """
    path = Path(filename)
    pha = read_pha_table(path, opened=opened)
    header = pha["header"]
    n = pha["counts"].size

    def linked(key):
        p = _linked(path, header, key)
        if p is not None and not p.exists():
            arg = {"ANCRFILE": "arf", "RESPFILE": "rmf", "BACKFILE": "bkg"}[key]
            raise FileNotFoundError(
                f"{path}: {key} = {header[key]!r} names a missing file ({p}); give the file as {arg}=..."
            )
        return p

    def given_or_linked(value, key):
        if value is None:
            return linked(key)
        p = Path(value)
        if not p.exists():
            raise FileNotFoundError(f"{path}: {key} given as {value!r}, which does not exist")
        return p

    arf_path = given_or_linked(arf, "ANCRFILE")
    rmf_path = given_or_linked(rmf, "RESPFILE")
    bkg_path = given_or_linked(bkg, "BACKFILE")

    # response
    if rmf_path is not None:
        e_true, e_reco, matrix, rsp_area = read_rmf(rmf_path)
        if e_reco.nbin != n:
            raise OGIPError(f"{rmf_path}: RMF has {e_reco.nbin} channels but the PHA {path} has {n}")
        if pha["ebounds"] is not None and not pha["ebounds"].is_allclose(e_reco, rtol=1e-5):
            # XSPEC and Sherpa take the channel energies of the response; real files disagree
            # slightly (Fermi GBM PHA vs RSP calibrations, up to ~2 %): warn, use the RMF's
            warnings.warn(
                f"{path}: EBOUNDS differ from those of its RMF {rmf_path} (by up to "
                f"{np.max(np.abs(pha['ebounds'].edges.value / e_reco.edges.to_value(pha['ebounds'].unit) - 1)):.2g} "
                "relative); using the RMF's channel energies",
                stacklevel=2,
            )
    else:
        if pha["ebounds"] is None:
            raise OGIPError(f"{path}: no RESPFILE and no EBOUNDS extension: channel energies unknown")
        e_reco, matrix, rsp_area, e_true = pha["ebounds"], None, None, None
    if arf_path is not None:
        arf_axis, aeff = read_arf(arf_path)
        if e_true is not None and not arf_axis.is_allclose(e_true.copy(name="energy_true"), rtol=1e-5):
            raise OGIPError(
                f"{arf_path}: ARF energy grid ({arf_axis.nbin} bins) differs from the RMF's "
                f"{rmf_path} ({e_true.nbin} bins)"
            )
        e_true = arf_axis  # float64 edges of the ARF
        aeff = aeff.to(u.cm**2)
        if rsp_area is not None:
            aeff = aeff * rsp_area
    elif rsp_area is not None:
        aeff = rsp_area * u.cm**2
    else:
        raise OGIPError(f"{path}: no ANCRFILE and the response is not a SPECRESP MATRIX: no effective area")
    if matrix is None:
        matrix = overlap_matrix(e_true.edges, e_reco.edges)

    areascal = pha["areascal"]
    if not np.allclose(areascal, areascal[0], rtol=1e-12):
        raise OGIPError(f"{path}: channel-dependent AREASCAL is not supported (true-energy exposure)")
    livetime = pha["exposure"]
    exposure = aeff * (livetime * areascal[0]) * u.s

    mask_safe = pha["quality"] == 0
    thres = _thres_mask(header, e_reco)
    if thres is not None:
        mask_safe &= thres

    axes = {"energy": e_reco, "energy_true": e_true}
    arrays = {"counts": pha["counts"], "exposure": exposure, "edisp": matrix, "mask_safe": mask_safe}
    if bkg_path is not None:
        bkg = read_pha_table(bkg_path)
        if bkg["counts"].size != n:
            raise OGIPError(f"{bkg_path}: background has {bkg['counts'].size} channels but the PHA {path} has {n}")
        t_ratio = bkg["exposure"] / livetime if livetime > 0 else 1.0
        acc_off = bkg["backscal"] * t_ratio * bkg["areascal"] / areascal
        bad = (acc_off <= 0) | ~np.isfinite(acc_off)
        if np.any(bad & mask_safe):
            raise OGIPError(
                f"{bkg_path}: background BACKSCAL (acceptance_off) is zero or invalid in "
                f"{int(np.sum(bad & mask_safe))} safe channel(s): alpha = acceptance/acceptance_off is undefined"
            )
        arrays["counts_off"] = bkg["counts"]
        arrays["acceptance"] = pha["backscal"]
        arrays["acceptance_off"] = np.where(bad, 0.0, acc_off)

    _check_write_ids(
        path,
        pha.get("write_id"),
        {"ANCRFILE": arf_path, "RESPFILE": rmf_path, "BACKFILE": bkg_path},
        {"BACKFILE": bkg.get("write_id")} if bkg_path is not None else None,
    )

    if name is None:
        name = header.get("DSNAME") or (str(header["OBS_ID"]) if "OBS_ID" in header else path.stem)
    net = np.any(arrays["counts"] < 0)  # x-ray hook: a background-subtracted (NET) spectrum, chi2 only
    if net:
        arrays["counts"] = np.clip(arrays["counts"], 0, None)
    das = {k: as_dataarray(k, v, axes) for k, v in arrays.items()}
    data = build_dataset(das, name=str(name), gti=pha["gti"], livetime=livetime * u.s)
    if net:
        _attach_net(data, pha, path)
    if group and np.any(pha["grouping"] == -1):
        _attach_grouping(data, pha, path)
    # the object layer picks the class: on-off data give a SpectrumDatasetOnOff, else a SpectrumDataset
    from . import as_dataset_object

    return as_dataset_object(data, cls=cls, kind="ogip")


def _attach_net(data, pha: dict, path: Path) -> None:
    """A NET spectrum (negative values, e.g. Swift BAT ``HDUCLAS2 = 'NET'``): the counts as in the
    file, the file's ``STAT_ERR`` as ``stat_err`` and ``stat_type = "chi2"`` (x-ray hook)."""
    import xarray as xr

    if pha.get("stat_err") is None:
        raise OGIPError(f"{path}: spectrum has negative counts (background subtracted) but no STAT_ERR column")
    data["counts"] = data["counts"].copy(data=np.asarray(pha["counts"], dtype=np.float64))
    data["stat_err"] = xr.Variable(("energy",), pha["stat_err"], {"units": "", "long_name": "statistical error"})
    data.attrs["stat_type"] = "chi2"


def _attach_grouping(data, pha: dict, path: Path) -> None:
    """The file's GROUPING and QUALITY as the ``group`` / ``quality`` coordinates (x-ray hook)."""
    from ..grouping import set_grouping

    try:
        set_grouping(data, pha["grouping"], quality=pha["quality"])
    except ValueError as exc:
        raise OGIPError(f"{path}: {exc}") from exc


# ------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------
def _file_names(pha_path: Path) -> dict[str, Path]:
    stem, parent = pha_path.name, pha_path.parent
    if stem.startswith("pha_"):
        rest = stem[4:]
        return {"arf": parent / f"arf_{rest}", "rmf": parent / f"rmf_{rest}", "bkg": parent / f"bkg_{rest}"}
    base = pha_path.stem
    return {k: parent / f"{base}_{k}{pha_path.suffix or '.fits'}" for k in ("arf", "rmf", "bkg")}


def _ebounds_hdu(axis: MapAxis, first: int = 0) -> fits.BinTableHDU:
    unit = axis.unit.to_string("fits")
    cols = [
        fits.Column("CHANNEL", "J", array=np.arange(axis.nbin) + first),
        fits.Column("E_MIN", "D", unit=unit, array=axis.edges_min.value),
        fits.Column("E_MAX", "D", unit=unit, array=axis.edges_max.value),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="EBOUNDS")
    hdu.header.update(
        {
            "TLMIN1": first,
            "TLMAX1": first + axis.nbin - 1,
            "DETCHANS": axis.nbin,
            "CHANTYPE": "PHA",
            "HDUCLASS": "OGIP",
            "HDUCLAS1": "RESPONSE",
            "HDUCLAS2": "EBOUNDS",
            "HDUVERS": "1.2.0",
        }
    )
    return hdu


def _primary(write_id: str | None) -> fits.PrimaryHDU:
    primary = fits.PrimaryHDU()
    if write_id is not None:
        primary.header[WRITE_ID_KEY] = (write_id, "xspec_ds write id")
        primary.header["CREATOR"] = _creator()
    return primary


def _with_nextend(hdus: list) -> fits.HDUList:
    """HDU list whose primary header gives the number of extensions (a truncated file is refused)."""
    hdus[0].header["NEXTEND"] = (len(hdus) - 1, "number of extensions")
    return fits.HDUList(hdus)


def _creator() -> str:
    from .. import __version__

    return f"xspec_ds {__version__}"


def _check_write_ids(pha_path: Path, pha_id: str | None, linked: dict, known: dict | None = None) -> None:
    """Refuse linked files written by another `write_ogip` call than the PHA (see module doc).

    ``pha_id`` was read with the PHA's data; linked files' ids (``known``, else read now, after
    their data: files are only ever replaced by later writes, so an id equal to the PHA's means
    the data read before were of the same write).
    """
    if pha_id is None:
        return
    known = known or {}
    for key, path in linked.items():
        if path is None:
            continue
        if key in known:
            other = known[key]
        else:
            try:
                from .fitsbin import read_primary_header

                other = read_primary_header(path).get(WRITE_ID_KEY)
            except Exception as exc:  # the file was read a moment ago: replaced or damaged since
                raise OGIPError(f"{path}: cannot read its primary header: {exc}") from exc
        if other is not None and other != pha_id:
            raise OGIPError(
                f"{path}: {WRITE_ID_KEY} = {other!r} differs from {pha_id!r} in the PHA {pha_path} "
                f"that names it ({key}): the files come from different writes (an interrupted or "
                "concurrent write?); write the set again"
            )


def write_rmf(
    filename,
    e_true: MapAxis,
    e_reco: MapAxis,
    matrix: np.ndarray,
    overwrite: bool = False,
    first_channel: int = 0,
    write_id: str | None = None,
) -> None:
    """Write an OGIP RMF with compressed rows (variable-length ``F_CHAN``/``N_CHAN``/``MATRIX``).

    ``write_id`` (a UUID string, from `write_ogip`) goes in the primary header as ``WRITEID``.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (e_true.nbin, e_reco.nbin):
        raise ValueError(f"matrix shape {matrix.shape} does not match the axes ({e_true.nbin}, {e_reco.nbin})")
    n_grp, f_rows, n_rows, v_rows = _compress_rows(matrix, first_channel)
    unit = e_true.unit.to_string("fits")
    cols = [
        fits.Column("ENERG_LO", "D", unit=unit, array=e_true.edges_min.value),
        fits.Column("ENERG_HI", "D", unit=unit, array=e_true.edges_max.value),
        fits.Column("N_GRP", "J", array=n_grp.astype(np.int32)),
        fits.Column("F_CHAN", "PJ()", array=np.array(f_rows, dtype=object)),
        fits.Column("N_CHAN", "PJ()", array=np.array(n_rows, dtype=object)),
        fits.Column("MATRIX", "PE()", array=np.array(v_rows, dtype=object)),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="MATRIX")
    hdu.header.update(
        {
            "TLMIN4": first_channel,
            "TLMAX4": first_channel + e_reco.nbin - 1,
            "DETCHANS": e_reco.nbin,
            "CHANTYPE": "PHA",
            "HDUCLASS": "OGIP",
            "HDUCLAS1": "RESPONSE",
            "HDUCLAS2": "RSP_MATRIX",
            "HDUCLAS3": "REDIST",
            "HDUVERS": "1.3.0",
            "NUMGRP": int(n_grp.sum()),
            "NUMELT": int(np.count_nonzero(matrix)),
            "LO_THRES": 0.0,
        }
    )
    hdul = _with_nextend([_primary(write_id), hdu, _ebounds_hdu(e_reco, first_channel)])
    with atomic_path(filename, overwrite=overwrite, suffix=".fits") as tmp:
        hdul.writeto(tmp, checksum=True)


def write_arf(
    filename, e_true: MapAxis, aeff: u.Quantity, overwrite: bool = False, write_id: str | None = None
) -> None:
    """Write an OGIP ARF (``SPECRESP`` in cm2); ``write_id`` as in `write_rmf`."""
    unit = e_true.unit.to_string("fits")
    cols = [
        fits.Column("ENERG_LO", "D", unit=unit, array=e_true.edges_min.value),
        fits.Column("ENERG_HI", "D", unit=unit, array=e_true.edges_max.value),
        fits.Column("SPECRESP", "D", unit="cm2", array=u.Quantity(aeff).to_value(u.cm**2)),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="SPECRESP")
    hdu.header.update({"HDUCLASS": "OGIP", "HDUCLAS1": "RESPONSE", "HDUCLAS2": "SPECRESP", "HDUVERS": "1.1.0"})
    with atomic_path(filename, overwrite=overwrite, suffix=".fits") as tmp:
        _with_nextend([_primary(write_id), hdu]).writeto(tmp, checksum=True)


def _pha_hdul(
    counts,
    quality,
    backscal,
    livetime,
    axis: MapAxis,
    extra: dict,
    gti: GTI | None,
    hduclas2: str,
    write_id: str | None = None,
):
    n = counts.size
    is_int = np.all(counts == np.round(counts))
    cols = [
        fits.Column("CHANNEL", "J", array=np.arange(n, dtype=np.int32)),
        fits.Column(
            "COUNTS", "J" if is_int else "D", unit="count", array=counts.astype(np.int64) if is_int else counts
        ),
        fits.Column("QUALITY", "I", array=quality.astype(np.int16)),
        fits.Column("BACKSCAL", "D", array=np.asarray(backscal, dtype=np.float64)),
        fits.Column("AREASCAL", "D", array=np.ones(n)),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    h = hdu.header
    h.update(
        {
            "TLMIN1": 0,
            "TLMAX1": n - 1,
            "HDUCLASS": "OGIP",
            "HDUCLAS1": "SPECTRUM",
            "HDUCLAS2": hduclas2,
            "HDUCLAS3": "COUNT",
            "HDUCLAS4": "TYPE:I",
            "HDUVERS": "1.2.1",
            "DETCHANS": n,
            "CHANTYPE": "PHA",
            "POISSERR": bool(is_int),
            "EXPOSURE": float(livetime),
            "CORRFILE": "none",
            "CORRSCAL": 1.0,
        }
    )
    h.update(extra)
    hdus = [_primary(write_id), hdu, _ebounds_hdu(axis)]
    if gti is not None and len(gti):
        g = fits.BinTableHDU.from_columns(
            [
                fits.Column("START", "D", unit="s", array=gti.met_start.to_value(u.s)),
                fits.Column("STOP", "D", unit="s", array=gti.met_stop.to_value(u.s)),
            ],
            name="GTI",
        )
        mjd = gti.time_ref.tt.mjd
        g.header.update(
            {
                "MJDREFI": int(np.floor(mjd)),
                "MJDREFF": float(mjd - np.floor(mjd)),
                "TIMESYS": "TT",
                "TIMEUNIT": "s",
                "HDUCLASS": "OGIP",
                "HDUCLAS1": "GTI",
                "HDUCLAS2": "STANDARD",
            }
        )
        hdus.append(g)
    return _with_nextend(hdus)


def write_ogip(dataset, pha_filename, overwrite: bool = False) -> dict[str, Path]:
    """Write a dataset as OGIP PHA + ARF + RMF (+ background PHA for on-off datasets).

    File names follow Gammapy: ``pha_X.fits`` -> ``arf_X.fits``, ``rmf_X.fits``,
    ``bkg_X.fits``; any other name ``S.ext`` -> ``S_arf.ext`` etc. The PHA header links them by
    base name (relative to its folder). Channels are written 0-based with ``TLMIN = 0``.
    ``EXPOSURE`` is the dataset's livetime (1 s if it has none, the exposure is then folded
    into the ARF, as Fermi-LAT spectra do); ``QUALITY`` is 0 in safe bins and 1 elsewhere, and
    ``LO_THRES``/``HI_THRES`` (TeV) give the safe range. A `SpectrumDataset`'s background
    array is not written (OGIP has no place for a model background). Each file is written
    atomically (ARF, RMF, background, then the PHA), with ``CHECKSUM``/``DATASUM`` and one
    ``WRITEID`` shared by the set, which `read_pha` checks; with ``overwrite=False`` nothing is
    written if any target exists.

    Returns
    -------
    dict
        Paths written, keys ``pha``, ``arf``, ``rmf`` and ``bkg`` (on-off only).
    """
    pha_path = Path(pha_filename)
    names = _file_names(pha_path)
    onoff = getattr(dataset, "counts_off", None) is not None
    targets = {"pha": pha_path, "arf": names["arf"], "rmf": names["rmf"]}
    if onoff:
        targets["bkg"] = names["bkg"]
    for p in targets.values():
        check_overwrite(p, overwrite)
    ds = dataset.data
    if "counts" not in ds.variables or "exposure" not in ds.variables:
        raise ValueError(f"dataset {dataset.name!r} needs counts and exposure to be written as OGIP")
    e_reco = dataset._energy_axis
    e_true = dataset._energy_axis_true
    livetime = dataset.livetime
    lt = float(livetime.to_value(u.s)) if livetime is not None and livetime.value > 0 else 1.0
    expo = np.asarray(ds["exposure"].values, dtype=np.float64) * u.Unit(ds["exposure"].attrs.get("units", "m2 s"))
    aeff = (expo / (lt * u.s)).to(u.cm**2)
    edisp = np.asarray(ds["edisp"].values) if "edisp" in ds.variables else overlap_matrix(e_true.edges, e_reco.edges)
    mask = np.asarray(ds["mask_safe"].values, bool) if "mask_safe" in ds.variables else np.ones(e_reco.nbin, bool)
    quality = np.where(mask, 0, 1)
    extra = {"ANCRFILE": targets["arf"].name, "RESPFILE": targets["rmf"].name, "DSNAME": dataset.name}
    if str(dataset.name).isdigit():
        extra["OBS_ID"] = int(dataset.name)
    if mask.any():
        idx = np.flatnonzero(mask)
        extra["LO_THRES"] = float(e_reco.edges[idx[0]].to_value(_THRES_UNIT))
        extra["HI_THRES"] = float(e_reco.edges[idx[-1] + 1].to_value(_THRES_UNIT))
    if onoff:
        extra["BACKFILE"] = targets["bkg"].name
        acc = np.asarray(ds["acceptance"].values, dtype=np.float64)
        acc_off = np.asarray(ds["acceptance_off"].values, dtype=np.float64)
    else:
        acc = np.ones(e_reco.nbin)
    counts = np.asarray(ds["counts"].values, dtype=np.float64)
    gti = dataset.gti
    write_id = uuid.uuid4().hex
    pha = _pha_hdul(counts, quality, acc, lt, e_reco, extra, gti, "TOTAL", write_id)
    _write_grouping(pha[1], ds, mask)  # x-ray hook: GROUPING and QUALITY of grouped data
    # linked files first, the PHA (which names them) last; each replaced atomically
    write_arf(targets["arf"], e_true, aeff, overwrite=overwrite, write_id=write_id)
    write_rmf(targets["rmf"], e_true, e_reco, edisp, overwrite=overwrite, write_id=write_id)
    if onoff:
        bkg_extra = {k: v for k, v in extra.items() if k not in ("ANCRFILE", "RESPFILE", "BACKFILE")}
        bkg = _pha_hdul(
            np.asarray(ds["counts_off"].values, dtype=np.float64),
            quality,
            acc_off,
            lt,
            e_reco,
            bkg_extra,
            gti,
            "BKG",
            write_id,
        )
        with atomic_path(targets["bkg"], overwrite=overwrite, suffix=".fits") as tmp:
            bkg.writeto(tmp, checksum=True)
    with atomic_path(pha_path, overwrite=overwrite, suffix=".fits") as tmp:
        pha.writeto(tmp, checksum=True)
    return targets


def _write_grouping(hdu, ds, mask: np.ndarray) -> None:
    """Write the ``group``/``quality`` coordinates as OGIP GROUPING/QUALITY columns (in place)."""
    from ..grouping import GROUP, QUALITY, labels_to_grouping

    if GROUP not in ds.coords and QUALITY not in ds.coords:
        return
    if QUALITY in ds.coords:
        q = np.asarray(ds.coords[QUALITY].values, np.int64)
        hdu.data["QUALITY"][:] = np.where(mask, q, np.maximum(q, 1)).astype(np.int16)
    if GROUP in ds.coords:
        col = fits.Column("GROUPING", "I", array=labels_to_grouping(ds.coords[GROUP].values))
        new = fits.BinTableHDU.from_columns(hdu.columns + fits.ColDefs([col]), header=hdu.header, name="SPECTRUM")
        hdu.data = new.data
        hdu.header.update(new.header)


def is_ogip_pha(filename) -> bool:
    """True if ``filename`` is a FITS file whose first extension is an OGIP SPECTRUM."""
    try:
        with fits.open(filename, memmap=False) as hdul:
            return any(
                h.name.upper() == "SPECTRUM" or str(h.header.get("HDUCLAS1", "")).upper() == "SPECTRUM"
                for h in hdul[1:]
            )
    except (OSError, ValueError):
        return False


# PHA type II tables (many spectra in one SPECTRUM table; `xspec_ds.io.ogip2` builds the Dataset) --------
def _is_type2(hdu) -> bool:
    h = hdu.header
    clas = " ".join(str(h.get(k, "")) for k in ("HDUCLAS3", "HDUCLAS4")).upper().replace(" ", "")
    if "TYPE:II" in clas or "PHA:II" in clas or "TYPEII" in clas:
        return True
    names = [c.upper() for c in hdu.columns.names]
    for col in ("COUNTS", "RATE"):
        if col in names:
            return (
                np.asarray(hdu.data[hdu.columns.names[names.index(col)]]).ndim == 2
                or hdu.data.dtype[hdu.columns.names[names.index(col)]].kind == "O"
            )
    return False


def is_pha2(filename) -> bool:
    """True if ``filename`` is a FITS file whose ``SPECTRUM`` extension is a type II PHA."""
    try:
        with fits.open(filename, memmap=False) as hdul:
            for h in hdul[1:]:
                if h.name.upper() == "SPECTRUM" or str(h.header.get("HDUCLAS1", "")).upper() == "SPECTRUM":
                    return _is_type2(h)
    except (OSError, ValueError, TypeError):
        return False
    return False


def _vector(hdu, name, n_rows, n_chan, path, default=None, dtype=np.float64):
    """A per-channel quantity: vector column (rows x channels), scalar column, or keyword."""
    names = [c.upper() for c in hdu.columns.names]
    if name in names:
        col = hdu.data[hdu.columns.names[names.index(name)]]
        if isinstance(col, np.ndarray) and col.dtype != object:
            arr = np.asarray(col, dtype=dtype)
            if arr.ndim == 1:
                return np.repeat(arr[:, None], n_chan, axis=1)
            return arr.reshape(n_rows, -1)
        rows = [np.atleast_1d(np.asarray(r, dtype=dtype)) for r in col]
        return np.stack(rows)
    if name in hdu.header:
        return np.full((n_rows, n_chan), hdu.header[name], dtype=dtype)
    return None if default is None else np.full((n_rows, n_chan), default, dtype=dtype)


def _scalar(hdu, name, n_rows, default=None):
    names = [c.upper() for c in hdu.columns.names]
    if name in names:
        return np.asarray(hdu.data[hdu.columns.names[names.index(name)]], dtype=np.float64).reshape(n_rows)
    if name in hdu.header:
        return np.full(n_rows, float(hdu.header[name]))
    return None if default is None else np.full(n_rows, float(default))


def _row_lengths(hdu, name) -> np.ndarray:
    col = hdu.data[name]
    if isinstance(col, np.ndarray) and col.dtype != object:
        arr = np.asarray(col)
        return np.full(len(arr), arr.shape[1] if arr.ndim == 2 else 1)
    return np.array([np.size(r) for r in col])


def read_pha2_table(filename) -> dict:
    """The ``SPECTRUM`` table of a type II PHA as arrays of shape (rows, channels).

    Returns a dict with ``path``, ``header``, ``counts``, ``quality``, ``grouping``,
    ``backscal``, ``areascal`` (rows x channels), ``exposure`` (rows), ``spec_num``,
    ``time_start``/``time_stop`` (rows, or None), ``ebounds`` (MapAxis or None), ``linked``
    (file names from the first row or the header) and ``first_channel``.

    Raises
    ------
    OGIPError
        Rows with different numbers of channels, no COUNTS/RATE, a RATE spectrum without
        EXPOSURE.
    """
    from .ogip import _ebounds

    path = Path(filename)
    with _open(path) as hdul:
        hdu = _find_hdu(hdul, path, ("SPECTRUM",), ("SPECTRUM",))
        header = hdu.header.copy()
        names = [c.upper() for c in hdu.columns.names]
        n_rows = len(hdu.data)
        if n_rows == 0:
            raise OGIPError(f"{path}: type II SPECTRUM table has no rows")
        col = "COUNTS" if "COUNTS" in names else "RATE" if "RATE" in names else None
        if col is None:
            raise OGIPError(f"{path}: SPECTRUM has neither COUNTS nor RATE")
        lengths = _row_lengths(hdu, hdu.columns.names[names.index(col)])
        if np.any(lengths != lengths[0]):
            bad = int(np.flatnonzero(lengths != lengths[0])[0])
            raise OGIPError(
                f"{path}: type II rows differ in channel count ({col} of row 0 has {lengths[0]} channels, "
                f"row {bad} has {lengths[bad]}); all spectra of one file must share the channels"
            )
        n_chan = int(lengths[0])
        values = _vector(hdu, col, n_rows, n_chan, path)
        exposure = _scalar(hdu, "EXPOSURE", n_rows)
        if exposure is None:
            raise OGIPError(f"{path}: no EXPOSURE column or keyword")
        if col == "RATE":
            counts = values * exposure[:, None]
            counts = np.where(np.isclose(counts, np.round(counts), rtol=0, atol=1e-6), np.round(counts), counts)
        else:
            counts = values
        quality = _vector(hdu, "QUALITY", n_rows, n_chan, path, default=0, dtype=np.int64)
        grouping = _vector(hdu, "GROUPING", n_rows, n_chan, path, default=0, dtype=np.int64)
        backscal = _vector(hdu, "BACKSCAL", n_rows, n_chan, path, default=1.0)
        areascal = _vector(hdu, "AREASCAL", n_rows, n_chan, path, default=1.0)
        spec_num = _scalar(hdu, "SPEC_NUM", n_rows)
        t0, t1 = _scalar(hdu, "TIME", n_rows), _scalar(hdu, "ENDTIME", n_rows)
        if t0 is None:
            t0, tel = _scalar(hdu, "TSTART", n_rows), _scalar(hdu, "TELAPSE", n_rows)
            t1 = None if t0 is None or tel is None else t0 + tel
        linked = {}
        for key in ("BACKFILE", "RESPFILE", "ANCRFILE"):
            if key in names:
                linked[key] = str(hdu.data[hdu.columns.names[names.index(key)]][0]).strip()
            elif key in header:
                linked[key] = str(header[key]).strip()
        first = _tlmin(hdu, "CHANNEL") if "CHANNEL" in names else None
        eb_hdu = next((h for h in hdul[1:] if h.name.upper() == "EBOUNDS"), None)
        ebounds = _ebounds(eb_hdu, path)[1] if eb_hdu is not None else None
    if ebounds is not None and ebounds.nbin != n_chan:
        raise OGIPError(f"{path}: EBOUNDS has {ebounds.nbin} channels but the spectra have {n_chan}")
    return {
        "path": path,
        "header": header,
        "counts": np.asarray(counts, dtype=np.float64),
        "quality": quality,
        "grouping": grouping,
        "backscal": backscal,
        "areascal": areascal,
        "exposure": exposure,
        "spec_num": None if spec_num is None else spec_num.astype(np.int64),
        "time_start": t0,
        "time_stop": t1,
        "ebounds": ebounds,
        "linked": linked,
        "first_channel": first,
    }
