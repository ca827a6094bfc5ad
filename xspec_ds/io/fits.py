"""Gammapy's FITS layout for a `SpectrumDataset` (read and write).

Gammapy 2.1 serialises a ``SpectrumDataset`` as a GADF "region map" file (see the Gamma
Astro Data Formats, "Sky maps", HEALPix/region variants, and Gammapy's ``RegionNDMap`` I/O):

- ``PRIMARY``: empty, header keyword ``NAME`` (dataset name);
- for each array ``X`` in COUNTS, EXPOSURE, BACKGROUND, EDISP, MASK_SAFE, MASK_FIT (and for
  on-off data COUNTS_OFF, ACCEPTANCE, ACCEPTANCE_OFF): a binary table ``X`` with columns
  ``CHANNEL`` and ``DATA`` (one row per bin of the *last* non-spatial axis, each cell an array
  over the other axes and the 1x1 spatial pixel, ``TDIM`` e.g. ``(1,1)`` or ``(1,1,n_reco)``),
  ``TUNIT`` on ``DATA``; and a table ``X_BANDS`` that lists the axes: keywords ``AXCOLSi``
  (``E_MIN,E_MAX`` for reco energy, ``ENERGY_TRUE_MIN,ENERGY_TRUE_MAX`` for true energy) and
  ``INTERPi``, one row per bin (the product of the axes for EDISP, first axis fastest);
- ``GTI``: ``START``/``STOP`` in seconds since ``MJDREFI + MJDREFF`` (``TIMESYS``);
- ``META_TABLE``: the meta table, when present.

Gammapy also writes ``X_REGION`` tables (the sky region) and ``EDISP_EXPOSURE``; both are
optional when reading, and xspec_ds (which has no sky region) neither needs nor writes them.
Data are written as float64 (``D``) so nothing is lost; Gammapy writes float32 and reads any
float type. Two facts Gammapy's files do not keep are stored where Gammapy does not look: the
livetime in a one-row table HDU ``LIVETIME`` (column ``LIVETIME``, s; also the primary keyword
``LIVETIME`` for people, rounded to 16 digits), and ``TREFISOT`` (the exact ISO reference time)
in the GTI header.

Integrity (xspec_ds-written files): every HDU carries the FITS ``CHECKSUM``/``DATASUM``
keywords (FITS standard 4.0, appendix J), and the primary header ``NEXTEND`` (number of
extensions) and ``DSVARS`` (the dataset variables written). `open_fits` verifies checksums,
refuses truncated or trailing-garbage files and turns astropy's "truncated / unparsable card"
warnings into errors; `from_hdulist` requires every HDU that ``DSVARS`` declares. In files
without ``DSVARS`` (Gammapy's), the layout makes each array optional, so only ``COUNTS`` is
required and every array HDU must come with its ``_BANDS`` table (and vice versa). Table rows
are placed by their ``CHANNEL`` column (gaps or duplicates are errors). ``LIVETIME`` must be
finite and non-negative; its primary keyword and its HDU must agree.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.time import Time

from .. import __version__
from ..axes import MapAxis, axis_from_dataset
from ..containers import VARIABLE_DIMS, build_dataset, table_from_text
from ..gti import GTI
from . import DatasetFileError

__all__ = ["to_hdulist", "from_hdulist", "is_gammapy_layout", "open_fits", "HDU_NAMES"]

#: Dataset variable -> HDU name, in the order Gammapy writes them.
HDU_NAMES = {
    "counts": "COUNTS",
    "exposure": "EXPOSURE",
    "background": "BACKGROUND",
    "edisp": "EDISP",
    "mask_safe": "MASK_SAFE",
    "mask_fit": "MASK_FIT",
    "counts_off": "COUNTS_OFF",
    "acceptance": "ACCEPTANCE",
    "acceptance_off": "ACCEPTANCE_OFF",
}
_AXIS_COLUMNS = {
    "energy": ("ENERGY", "E_MIN", "E_MAX"),
    "energy_true": ("ENERGY_TRUE", "ENERGY_TRUE_MIN", "ENERGY_TRUE_MAX"),
}
_CREATOR = f"xspec_ds {__version__}"


class FitsLayoutError(DatasetFileError):
    """A FITS file (or HDU list) that is not in the expected layout."""


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------
def _bands_hdu(name: str, axes: list[MapAxis]) -> fits.BinTableHDU:
    """The ``<NAME>_BANDS`` table: one row per bin of the product of ``axes`` (first fastest)."""
    sizes = [ax.nbin for ax in axes]
    nrow = int(np.prod(sizes))
    cols = [fits.Column("CHANNEL", "K", array=np.arange(nrow, dtype=np.int64))]
    header = fits.Header()
    for i, ax in enumerate(axes):
        # index of this axis in each row of the flattened product (axis 0 varies fastest)
        stride = int(np.prod(sizes[:i]))
        idx = (np.arange(nrow) // stride) % ax.nbin
        unit = ax.unit.to_string("fits")
        centre, lo, hi = (ax.center.value[idx], ax.edges_min.value[idx], ax.edges_max.value[idx])
        c_name, lo_name, hi_name = _AXIS_COLUMNS[ax.name]
        cols += [
            fits.Column(c_name, "D", unit=unit, array=centre),
            fits.Column(lo_name, "D", unit=unit, array=lo),
            fits.Column(hi_name, "D", unit=unit, array=hi),
        ]
        header[f"AXCOLS{i + 1}"] = f"{lo_name},{hi_name}"
        header[f"INTERP{i + 1}"] = ax.interp
    hdu = fits.BinTableHDU.from_columns(cols, header=header, name=f"{name}_BANDS")
    return hdu


def _map_hdus(name: str, values: np.ndarray, axes: list[MapAxis], unit: str) -> list[fits.BinTableHDU]:
    """Data and bands HDUs of one region map. ``values`` has numpy shape ``reversed(axes)``."""
    nrow = axes[-1].nbin
    inner = tuple(ax.nbin for ax in axes[:-1][::-1])  # per-row numpy shape without the 1x1 pixel
    cell = inner + (1, 1)
    is_bool = values.dtype == bool
    fmt = ("L" if is_bool else "D") if not inner else f"{int(np.prod(inner))}{'L' if is_bool else 'D'}"
    data = values.reshape((nrow,) + cell)
    if not is_bool:
        data = data.astype(np.float64, copy=False)
    dim = "(" + ",".join(str(n) for n in cell[::-1]) + ")"
    col = fits.Column("DATA", fmt, unit=None if is_bool else unit, dim=dim, array=data)
    header = fits.Header()
    for i, ax in enumerate(axes):
        c_name, lo_name, hi_name = _AXIS_COLUMNS[ax.name]
        header[f"AXCOLS{i + 1}"] = f"{lo_name},{hi_name}"
        header[f"INTERP{i + 1}"] = ax.interp
    channel = fits.Column("CHANNEL", "J", array=np.arange(nrow, dtype=np.int32))
    hdu = fits.BinTableHDU.from_columns([channel, col], header=header, name=name)
    if not is_bool and unit == "":
        hdu.header["TUNIT2"] = ""
    return [hdu, _bands_hdu(name, axes)]


def _gti_hdu(gti: GTI) -> fits.BinTableHDU:
    ref = gti.time_ref.tt
    # exact split of the reference MJD into integer and fractional parts
    mjd = ref.mjd
    mjd_int = int(np.floor(mjd))
    mjd_frac = float((ref - Time(mjd_int, format="mjd", scale="tt")).to_value(u.day))
    header = fits.Header()
    header["MJDREFI"] = mjd_int
    header["MJDREFF"] = mjd_frac
    header["TIMESYS"] = "tt"
    header["TIMEUNIT"] = "s"
    header["TIMEREF"] = "local"
    header["TREFISOT"] = (ref.isot, "xspec_ds: exact reference time (ISO, TT)")
    cols = [
        fits.Column("START", "D", unit="s", array=gti.met_start.to_value(u.s)),
        fits.Column("STOP", "D", unit="s", array=gti.met_stop.to_value(u.s)),
    ]
    return fits.BinTableHDU.from_columns(cols, header=header, name="GTI")


def to_hdulist(dataset) -> fits.HDUList:
    """A `SpectrumDataset` (or its `xarray.Dataset`) as an HDU list in Gammapy's layout.

    Parameters
    ----------
    dataset : `~xspec_ds.SpectrumDataset` or `xarray.Dataset`

    Returns
    -------
    `astropy.io.fits.HDUList`
    """
    ds = getattr(dataset, "data", dataset)
    if any(d not in ("energy", "energy_true", "gti") for d in ds.dims):
        extra = sorted(d for d in ds.dims if d not in ("energy", "energy_true", "gti"))
        raise ValueError(
            f"Gammapy's FITS layout holds one spectrum; this dataset has extra dims {extra} "
            "(write it to netCDF, or select one observation)"
        )
    primary = fits.PrimaryHDU()
    primary.header["NAME"] = str(ds.attrs.get("name", ""))
    primary.header["CREATOR"] = _CREATOR
    if "livetime" in ds.variables:
        lt = float(ds["livetime"].values) * u.Unit(ds["livetime"].attrs.get("units", "s"))
        primary.header["LIVETIME"] = (lt.to_value(u.s), "[s] exact value in HDU LIVETIME")
    hdus = [primary]
    axes = {d: axis_from_dataset(ds, d) for d in ("energy", "energy_true") if d in ds.dims}
    for var, hdu_name in HDU_NAMES.items():
        if var not in ds.variables:
            continue
        dims = VARIABLE_DIMS[var]
        da = ds[var].transpose(*dims)
        unit = "" if da.dtype == bool else u.Unit(da.attrs.get("units", "")).to_string("fits")
        # Gammapy's map axes are listed fastest-first: reversed numpy dims
        map_axes = [axes[d] for d in dims[::-1]]
        hdus += _map_hdus(hdu_name, np.asarray(da.values), map_axes, unit)
    gti = GTI.from_xarray(ds)
    if gti is not None:
        hdus.append(_gti_hdu(gti))
    if "livetime" in ds.variables:
        # a header float keeps only 16 digits: the exact float64 goes in a one-row table
        col = fits.Column("LIVETIME", "D", unit="s", array=np.array([lt.to_value(u.s)]))
        hdus.append(fits.BinTableHDU.from_columns([col], name="LIVETIME"))
    text = ds.attrs.get("meta_table")
    if text:
        hdus.append(fits.BinTableHDU(table_from_text(text), name="META_TABLE"))
    from ..grouping import grouping_hdu  # x-ray hook: GROUPING/QUALITY/STAT_ERR and stat_type

    extra = grouping_hdu(ds)
    if extra is not None:
        hdus.append(extra)
    for hdu in hdus[1:]:
        hdu.header["CREATOR"] = _CREATOR  # marks the file as ours: checksums are then required
    written = [var for var in HDU_NAMES if var in ds.variables]
    primary.header["DSVARS"] = ",".join(written)  # the variables written (read back as required)
    primary.header["NEXTEND"] = (len(hdus) - 1, "number of extensions")
    return fits.HDUList(hdus)


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
_DAMAGE_WORDS = (
    "truncated",
    "extra bytes",
    "corrupted",
    "checksum verification failed",
    "datasum verification failed",
    "unparsable card",
    "error validating header",
)


def open_fits(path, error=DatasetFileError) -> fits.HDUList:
    """Open a FITS file fully into memory, refusing damaged files with ``error(message)``.

    Refused, with the file (and HDU) named: files astropy cannot parse; truncated files and
    files with bytes after the last HDU (astropy only warns about these, or silently stops at
    a damaged header); HDUs whose ``CHECKSUM``/``DATASUM`` keywords do not match their bytes;
    a primary ``NEXTEND`` that differs from the number of extensions read.

    Parameters
    ----------
    path : str or Path
    error : type
        Exception class to raise (`DatasetFileError`; the OGIP reader passes its ``OGIPError``).

    Returns
    -------
    `astropy.io.fits.HDUList`
        With every data block loaded; the caller closes it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
            for hdu in hdul:  # force reading every data block: truncation shows up here
                _ = hdu.data
        except Exception as exc:  # astropy raises OSError, ValueError, TypeError, ... on corrupt files
            raise error(f"{path}: not a readable FITS file (truncated or corrupt?): {exc}") from exc
    damage = [str(w.message) for w in caught if any(k in str(w.message).lower() for k in _DAMAGE_WORDS)]
    for w in caught:
        if str(w.message) not in damage and not issubclass(w.category, ResourceWarning):
            warnings.warn(w.message, w.category, stacklevel=2)
    try:
        if damage:
            raise error(f"{path}: damaged FITS file (truncated or corrupt): {damage[0].splitlines()[0]}")
        raw = _raw_bytes(path)
        size = len(raw)
        last = hdul[-1]
        end = last._data_offset + last._data_size  # noqa: SLF001
        end = -(-end // 2880) * 2880
        if end != size:
            raise error(f"{path}: file size {size} differs from the {end} bytes its HDUs occupy (truncated or corrupt)")
        _verify_checksums(hdul, path, raw, error)
        nextend = hdul[0].header.get("NEXTEND")
        if nextend is not None and (not isinstance(nextend, int) or nextend != len(hdul) - 1):
            raise error(
                f"{path}: primary NEXTEND = {nextend!r} but the file has {len(hdul) - 1} extensions (truncated?)"
            )
    except error:
        hdul.close()
        raise
    except Exception as exc:  # astropy VerifyError on an unparsable card, ...
        hdul.close()
        raise error(f"{path}: damaged FITS header: {type(exc).__name__}: {exc}") from exc
    except BaseException:
        hdul.close()
        raise
    return hdul


def _ones_complement_sum(data: bytes) -> int:
    """32-bit ones' complement sum of big-endian words (FITS standard 4.0, appendix J)."""
    words = np.frombuffer(data[: len(data) // 4 * 4], dtype=">u4")
    total = int(words.sum(dtype=np.uint64))
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


def written_by_xspec_ds(hdul: fits.HDUList) -> bool:
    """True if any header says ``CREATOR = 'xspec_ds ...'`` (every HDU we write carries it)."""
    return any(str(h.header.get("CREATOR", "")).startswith("xspec_ds") for h in hdul)


def _raw_bytes(path: Path) -> bytes:
    """The file's FITS bytes (decompressed for ``.gz`` files, as astropy reads them)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        import gzip

        raw = gzip.decompress(raw)
    return raw


def _verify_checksums(hdul: fits.HDUList, path: Path, raw: bytes, error) -> None:
    """Check ``DATASUM``/``CHECKSUM`` on the file's raw bytes.

    Computed on the bytes as stored (astropy's own check re-serialises headers and tables and
    rejects blank keywords). A mismatch is an error in files written by xspec_ds; in files of
    other software (where headers edited after the checksum are common) it is a warning.
    """
    strict = written_by_xspec_ds(hdul)
    if strict and any("CHECKSUM" in h.header for h in hdul):
        for i, hdu in enumerate(hdul):
            if "CHECKSUM" not in hdu.header or "DATASUM" not in hdu.header:
                raise error(f"{path}: HDU {i} ({hdu.name}) has lost its CHECKSUM/DATASUM keywords (damaged header)")
    starts = [h._header_offset for h in hdul] + [len(raw)]  # noqa: SLF001
    for i, hdu in enumerate(hdul):
        h = hdu.header
        datasum = str(h.get("DATASUM", "")).strip()
        checksum = str(h.get("CHECKSUM", "")).strip()
        problem = None
        if datasum.isdigit():
            data = raw[hdu._data_offset : starts[i + 1]]  # noqa: SLF001
            if _ones_complement_sum(data) != int(datasum) % 2**32:
                problem = "fails its DATASUM: the data are damaged"
        if problem is None and len(checksum) == 16:
            if _ones_complement_sum(raw[starts[i] : starts[i + 1]]) != 0xFFFFFFFF:
                problem = "fails its CHECKSUM: the header or data are damaged"
        if problem is not None:
            message = f"{path}: HDU {i} ({hdu.name}) {problem}"
            if strict:
                raise error(message)
            warnings.warn(message + " (file of other software: read anyway)", stacklevel=3)


def is_gammapy_layout(hdulist: fits.HDUList) -> bool:
    """True if ``hdulist`` holds at least one Gammapy region-map array with its ``_BANDS`` table."""
    names = {h.name for h in hdulist}
    return any(n in names and f"{n}_BANDS" in names for n in HDU_NAMES.values())


def _axes_from_bands(hdu, where: str) -> list[MapAxis]:
    header = hdu.header
    data = hdu.data
    axes = []
    for i in range(1, 6):
        axcols = header.get(f"AXCOLS{i}")
        if axcols is None:
            break
        cols = [c.strip() for c in axcols.split(",")]
        if len(cols) != 2:
            raise FitsLayoutError(f"{where}: axis {i} ({axcols}) is not an edges axis (need MIN,MAX columns)")
        lo_name, hi_name = cols
        name = "energy" if lo_name == "E_MIN" else lo_name.replace("_MIN", "").lower()
        if name not in ("energy", "energy_true"):
            raise FitsLayoutError(
                f"{where}: axis {name!r} is not an energy axis; a spectrum dataset has only "
                "'energy' and 'energy_true' (is this a MapDataset with spatial/other axes?)"
            )
        try:
            lo = np.unique(np.asarray(data[lo_name], dtype=np.float64))
            hi = np.unique(np.asarray(data[hi_name], dtype=np.float64))
        except KeyError as exc:
            raise FitsLayoutError(f"{where}: missing axis column {exc}") from None
        unit = _parse_unit(hdu.columns[lo_name].unit or "TeV", f"{where}, column {lo_name}")
        if lo.size != hi.size or not np.array_equal(lo[1:], hi[:-1]):
            raise FitsLayoutError(f"{where}: axis {name!r} bins are not contiguous")
        axis = MapAxis(np.append(lo, hi[-1:]) * unit, name=name)
        axis.interp = header.get(f"INTERP{i}", "log")
        axes.append(axis)
    if not axes:
        raise FitsLayoutError(f"{where}: no AXCOLS1 keyword, cannot find the energy axis")
    return axes


def _parse_unit(text: str, where: str) -> u.UnitBase:
    try:
        return u.Unit(text, parse_strict="raise")
    except (ValueError, TypeError) as exc:
        raise FitsLayoutError(f"{where}: unit {text!r} is not a valid unit ({exc})") from None


def _row_order(hdu, where: str) -> np.ndarray | None:
    """Row order that sorts a table by its ``CHANNEL`` column (None: rows already in order)."""
    if "CHANNEL" not in hdu.columns.names:
        return None
    chan = np.asarray(hdu.data["CHANNEL"]).astype(np.int64).ravel()
    n = chan.size
    order = np.argsort(chan, kind="stable")
    if not np.array_equal(chan[order], np.arange(n)):
        dup = np.flatnonzero(np.diff(chan[order]) == 0)
        what = f"duplicate channel {chan[order][dup[0]]}" if dup.size else "channels are not 0..n-1"
        raise FitsLayoutError(f"{where}: CHANNEL column is not a permutation of 0..{n - 1} ({what})")
    return None if np.array_equal(order, np.arange(n)) else order


def _read_map(hdulist: fits.HDUList, hdu_name: str, where: str):
    """(values with numpy dims, dim names, unit) of one region map."""
    axes = _axes_from_bands(hdulist[f"{hdu_name}_BANDS"], f"{where}, HDU {hdu_name}_BANDS")
    hdu = hdulist[hdu_name]
    if not (isinstance(hdu, fits.BinTableHDU) or getattr(hdu, "kind", None) == "bintable"):  # or fitsbin's
        raise FitsLayoutError(
            f"{where}: HDU {hdu_name} is an image, not a region-map table: "
            "this is a sky map (MapDataset), not a spectrum"
        )
    if "DATA" not in hdu.columns.names:
        raise FitsLayoutError(f"{where}: HDU {hdu_name} has no DATA column")
    raw = np.asarray(hdu.data["DATA"])
    order = _row_order(hdu, f"{where}, HDU {hdu_name}")
    if order is not None:
        raw = raw[order]
    shape = tuple(ax.nbin for ax in axes[::-1])
    if raw.size != int(np.prod(shape)):
        raise FitsLayoutError(
            f"{where}: HDU {hdu_name} holds {raw.size} values but its axes give {shape}: "
            "more than one spatial pixel, or a damaged file"
        )
    if raw.shape[0] != axes[-1].nbin:
        raise FitsLayoutError(
            f"{where}: HDU {hdu_name} has {raw.shape[0]} rows but its last axis {axes[-1].name!r} has {axes[-1].nbin} bins"
        )
    values = raw.reshape(shape)
    unit = hdu.columns["DATA"].unit or ""
    dims = tuple(ax.name for ax in axes[::-1])
    return values, dims, unit, {ax.name: ax for ax in axes}


def _read_gti(hdu) -> GTI:
    h = hdu.header
    if "TREFISOT" in h:
        ref = Time(h["TREFISOT"], scale="tt")
    else:
        scale = str(h.get("TIMESYS", "tt")).lower()
        if "MJDREFI" in h:
            ref = Time(h["MJDREFI"], h.get("MJDREFF", 0.0), format="mjd", scale=scale)
        else:
            ref = Time(h.get("MJDREF", 51544.0), format="mjd", scale=scale)
        ref = ref.tt
    unit = u.Unit(h.get("TIMEUNIT", "s"))
    start = np.asarray(hdu.data["START"], dtype=np.float64) * unit
    stop = np.asarray(hdu.data["STOP"], dtype=np.float64) * unit
    return GTI(start, stop, reference_time=ref)


def from_hdulist(cls, hdulist: fits.HDUList, name: str | None = None, source: str | None = None, **kwargs):
    """Build a dataset of class ``cls`` from an HDU list in Gammapy's SpectrumDataset layout.

    Parameters
    ----------
    cls : type
        `~xspec_ds.SpectrumDataset` or a subclass.
    hdulist : `astropy.io.fits.HDUList` or `xspec_ds.io.fitsbin.FitsFile`
        (a ``META_TABLE`` HDU needs astropy's).
    name : str, optional
        Dataset name; default the primary header's ``NAME``.
    source : str, optional
        Where the HDUs came from (a file name), used in error messages.
    """
    where = source or (hdulist.filename() if hasattr(hdulist, "filename") else None) or "<HDUList>"
    if not is_gammapy_layout(hdulist):
        raise FitsLayoutError(
            f"{where}: not a Gammapy SpectrumDataset file: none of the HDUs "
            f"{sorted(HDU_NAMES.values())} with its _BANDS table; HDUs are {[h.name for h in hdulist]}"
        )
    names = [h.name for h in hdulist]
    for hdu_name in set(names):
        if names.count(hdu_name) > 1:
            raise FitsLayoutError(f"{where}: HDU {hdu_name} appears {names.count(hdu_name)} times")
    if written_by_xspec_ds(hdulist):
        known = set(HDU_NAMES.values()) | {f"{n}_BANDS" for n in HDU_NAMES.values()}
        known |= {"PRIMARY", "GTI", "LIVETIME", "META_TABLE"}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise FitsLayoutError(f"{where}: unexpected HDU name(s) {unknown} in a file written by xspec_ds")
    declared = hdulist[0].header.get("DSVARS")
    if declared is not None:
        declared = [v.strip() for v in str(declared).split(",") if v.strip()]
        unknown = [v for v in declared if v not in HDU_NAMES]
        if unknown:
            raise FitsLayoutError(f"{where}: primary DSVARS names unknown variables {unknown}")
        required = declared
    else:
        # Gammapy's layout: every array optional except COUNTS (Gammapy always writes it)
        required = ["counts"]
    for var in required:
        for hdu_name in (HDU_NAMES[var], f"{HDU_NAMES[var]}_BANDS"):
            if hdu_name not in hdulist:
                src = "declared by the primary DSVARS keyword" if declared is not None else "always present"
                raise FitsLayoutError(f"{where}: HDU {hdu_name} is missing ({var} is {src}); HDUs: {names}")
    for var, hdu_name in HDU_NAMES.items():
        if (hdu_name in hdulist) != (f"{hdu_name}_BANDS" in hdulist):
            one, other = (hdu_name, f"{hdu_name}_BANDS") if hdu_name in hdulist else (f"{hdu_name}_BANDS", hdu_name)
            raise FitsLayoutError(f"{where}: HDU {one} without its {other} HDU (renamed or lost HDU?)")
        if declared is not None and hdu_name in hdulist and var not in declared:
            raise FitsLayoutError(f"{where}: HDU {hdu_name} is not among the variables the primary DSVARS declares")
    arrays = {}
    for var, hdu_name in HDU_NAMES.items():
        if hdu_name not in hdulist or f"{hdu_name}_BANDS" not in hdulist:
            continue
        try:
            values, dims, unit, axes = _read_map(hdulist, hdu_name, where)
        except FitsLayoutError:
            raise
        except Exception as exc:  # KeyError, ValueError, ... of a damaged table
            raise FitsLayoutError(f"{where}: HDU {hdu_name} cannot be read: {type(exc).__name__}: {exc}") from exc
        if var == "exposure" and dims == ("energy",):  # files of old Gammapy versions
            dims = ("energy_true",)
            axes = {"energy_true": axes["energy"].copy(name="energy_true")}
        if set(dims) != set(VARIABLE_DIMS[var]):
            raise FitsLayoutError(f"{where}: HDU {hdu_name} has axes {dims}, expected {VARIABLE_DIMS[var]}")
        order = [dims.index(d) for d in VARIABLE_DIMS[var]]
        values = np.transpose(values, order)
        if var.startswith("mask"):
            if values.dtype != bool:
                raise FitsLayoutError(
                    f"{where}: HDU {hdu_name} column DATA is {values.dtype.name}, expected logical (L)"
                )
            arrays[var] = _as_da(var, values, axes)
        else:
            if values.dtype.kind not in "fiu":
                raise FitsLayoutError(f"{where}: HDU {hdu_name} column DATA is {values.dtype.name}, expected numbers")
            values = values.astype(np.float64)
            quantity = u.Quantity(values, _parse_unit(unit, f"{where}, HDU {hdu_name} column DATA"), copy=False)
            try:
                arrays[var] = _as_da(var, quantity, axes)
            except (ValueError, TypeError, u.UnitsError) as exc:
                raise FitsLayoutError(f"{where}: HDU {hdu_name}: {exc}") from exc
    primary = hdulist[0].header
    if name is None:
        name = primary.get("NAME") or None
    livetime = primary.get("LIVETIME")
    if livetime is not None:
        if isinstance(livetime, bool) or not isinstance(livetime, int | float) or not 0 <= livetime < np.inf:
            raise FitsLayoutError(f"{where}: primary keyword LIVETIME = {livetime!r} is not a finite value >= 0 s")
    if "LIVETIME" in hdulist:
        hdu = hdulist["LIVETIME"]
        try:
            value = float(hdu.data["LIVETIME"][0]) * _parse_unit(hdu.columns["LIVETIME"].unit or "s", where).to(u.s)
        except (KeyError, IndexError, TypeError, ValueError, u.UnitsError) as exc:
            raise FitsLayoutError(f"{where}: HDU LIVETIME, column LIVETIME cannot be read: {exc}") from exc
        if not 0 <= value < np.inf:
            raise FitsLayoutError(f"{where}: HDU LIVETIME, column LIVETIME = {value} s is not finite and >= 0")
        if livetime is not None and not np.isclose(value, livetime, rtol=1e-12, atol=0):
            raise FitsLayoutError(
                f"{where}: primary keyword LIVETIME = {livetime} disagrees with HDU LIVETIME ({value})"
            )
        livetime = value
    try:
        gti = _read_gti(hdulist["GTI"]) if "GTI" in hdulist else None
    except Exception as exc:  # missing columns, bad keywords
        raise FitsLayoutError(f"{where}: HDU GTI cannot be read: {type(exc).__name__}: {exc}") from exc
    meta_table = None
    if "META_TABLE" in hdulist:
        from astropy.table import Table

        meta_table = Table.read(hdulist["META_TABLE"])
        for key in ("EXTNAME", "CREATOR", "CREATED", "CHECKSUM", "DATASUM"):
            meta_table.meta.pop(key, None)
    data = build_dataset(
        arrays, name=name, gti=gti, meta_table=meta_table, livetime=None if livetime is None else livetime * u.s
    )
    if "name" not in data.attrs:
        from ..models import make_name

        data.attrs["name"] = make_name()
    if "GROUPING" in hdulist:  # x-ray hook
        from ..grouping import apply_grouping_hdu

        apply_grouping_hdu(data, hdulist["GROUPING"], where)
    return cls.from_xarray(data, validate=False)


def _as_da(var, values, axes):
    from ..containers import as_dataarray

    return as_dataarray(var, values, dict(axes))
