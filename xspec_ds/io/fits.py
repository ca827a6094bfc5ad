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
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.time import Time

from .. import __version__
from ..axes import MapAxis, axis_from_dataset
from ..containers import VARIABLE_DIMS, build_dataset, table_from_text
from ..gti import GTI
from . import DatasetFileError

__all__ = ["to_hdulist", "from_hdulist", "is_gammapy_layout", "HDU_NAMES"]

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
    return fits.HDUList(hdus)


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
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
        unit = u.Unit(hdu.columns[lo_name].unit or "TeV", parse_strict="silent")
        if lo.size != hi.size or not np.array_equal(lo[1:], hi[:-1]):
            raise FitsLayoutError(f"{where}: axis {name!r} bins are not contiguous")
        axis = MapAxis(np.append(lo, hi[-1:]) * unit, name=name)
        axis.interp = header.get(f"INTERP{i}", "log")
        axes.append(axis)
    if not axes:
        raise FitsLayoutError(f"{where}: no AXCOLS1 keyword, cannot find the energy axis")
    return axes


def _read_map(hdulist: fits.HDUList, hdu_name: str, where: str):
    """(values with numpy dims, dim names, unit) of one region map."""
    axes = _axes_from_bands(hdulist[f"{hdu_name}_BANDS"], f"{where}, HDU {hdu_name}_BANDS")
    hdu = hdulist[hdu_name]
    if not isinstance(hdu, fits.BinTableHDU):
        raise FitsLayoutError(
            f"{where}: HDU {hdu_name} is an image, not a region-map table: "
            "this is a sky map (MapDataset), not a spectrum"
        )
    if "DATA" not in hdu.columns.names:
        raise FitsLayoutError(f"{where}: HDU {hdu_name} has no DATA column")
    raw = np.asarray(hdu.data["DATA"])
    shape = tuple(ax.nbin for ax in axes[::-1])
    if raw.size != int(np.prod(shape)):
        raise FitsLayoutError(
            f"{where}: HDU {hdu_name} holds {raw.size} values but its axes give {shape}: "
            "more than one spatial pixel, or a damaged file"
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
    hdulist : `astropy.io.fits.HDUList`
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
    arrays = {}
    for var, hdu_name in HDU_NAMES.items():
        if hdu_name not in hdulist or f"{hdu_name}_BANDS" not in hdulist:
            continue
        values, dims, unit, axes = _read_map(hdulist, hdu_name, where)
        if var == "exposure" and dims == ("energy",):  # files of old Gammapy versions
            dims = ("energy_true",)
            axes = {"energy_true": axes["energy"].copy(name="energy_true")}
        if set(dims) != set(VARIABLE_DIMS[var]):
            raise FitsLayoutError(f"{where}: HDU {hdu_name} has axes {dims}, expected {VARIABLE_DIMS[var]}")
        order = [dims.index(d) for d in VARIABLE_DIMS[var]]
        values = np.transpose(values, order)
        if var.startswith("mask"):
            values = values.astype(bool)
            arrays[var] = _as_da(var, values, axes)
        else:
            values = values.astype(np.float64)
            arrays[var] = _as_da(var, u.Quantity(values, u.Unit(unit, parse_strict="raise"), copy=False), axes)
    primary = hdulist[0].header
    if name is None:
        name = primary.get("NAME") or None
    livetime = primary.get("LIVETIME")
    if "LIVETIME" in hdulist:
        hdu = hdulist["LIVETIME"]
        livetime = float(hdu.data["LIVETIME"][0]) * u.Unit(hdu.columns["LIVETIME"].unit or "s").to(u.s)
    gti = _read_gti(hdulist["GTI"]) if "GTI" in hdulist else None
    meta_table = None
    if "META_TABLE" in hdulist:
        from astropy.table import Table

        meta_table = Table.read(hdulist["META_TABLE"])
        for key in ("EXTNAME", "CREATOR", "CREATED"):
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
