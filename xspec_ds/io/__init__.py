"""Reading and writing spectrum datasets: Gammapy FITS, OGIP PHA, netCDF, YAML and lazy collections.

`write_dataset` picks the format from the file suffix (``.nc``/``.nc4`` netCDF, anything else
Gammapy's FITS layout); `read_dataset` from the suffix or, failing that, the file's first bytes,
and for FITS from its HDUs (Gammapy's SpectrumDataset layout or an OGIP type-I PHA).
"""

from __future__ import annotations

from pathlib import Path

from .atomic import atomic_path

__all__ = ["write_dataset", "read_dataset", "detect_format", "DatasetFileError", "open_dataset", "open_mfdataset"]

_NETCDF_WRITE_SUFFIXES = (".nc", ".nc4")
_NETCDF_READ_SUFFIXES = (".nc", ".nc4", ".cdf", ".netcdf")


class DatasetFileError(ValueError):
    """A file that cannot be read as a spectrum dataset (corrupt, truncated or of another kind)."""


# The object layer (`xspec_ds.dataset`) registers its class picker here at import: readers build
# plain `xarray.Dataset`s and hand them over, so no module of `xspec_ds.io` imports the object layer
# (no import circle dataset -> io -> ogip -> onoff -> dataset; tests/test_layering.py checks it).
_OBJECT_FACTORY = None
_DEFAULT_CLASS = None


def register_object_factory(factory, default_class) -> None:
    """Set ``factory(data, cls=None, kind=None) -> dataset object`` and the default class
    (called by `xspec_ds.dataset` at import)."""
    global _OBJECT_FACTORY, _DEFAULT_CLASS
    _OBJECT_FACTORY, _DEFAULT_CLASS = factory, default_class


def as_dataset_object(data, cls=None, kind: str | None = None):
    """The dataset object for the `xarray.Dataset` ``data``: the object layer picks the class
    (``cls`` if given and compatible; ``kind="ogip"`` or ``"auto"`` picks on-off when ``data`` has
    ``counts_off``)."""
    if _OBJECT_FACTORY is None:  # pragma: no cover - the package import registers it
        raise RuntimeError("xspec_ds.dataset is not imported: no dataset class to build")
    return _OBJECT_FACTORY(data, cls=cls, kind=kind)


def _is_netcdf_name(filename, suffixes) -> bool:
    return Path(filename).suffix.lower() in suffixes


def detect_format(filename) -> str:
    """``"netcdf"`` or ``"fits"`` from the file's first bytes (raises `DatasetFileError` otherwise)."""
    path = Path(filename)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as f:
        magic = f.read(9)
    if magic[:3] == b"CDF" or magic[:4] == b"\x89HDF":
        return "netcdf"
    if magic == b"SIMPLE  =" or magic[:2] == b"\x1f\x8b":
        return "fits"
    if not magic:
        raise DatasetFileError(f"{path}: the file is empty")
    raise DatasetFileError(f"{path}: neither FITS nor netCDF (first bytes {magic!r})")


def write_dataset(dataset, filename, overwrite: bool = False, **kwargs) -> None:
    """Write ``dataset`` to ``filename`` atomically: netCDF for ``.nc``/``.nc4``, FITS otherwise.

    Parameters
    ----------
    dataset : `~xspec_ds.SpectrumDataset` or `xarray.Dataset`
    filename : str or Path
    overwrite : bool
        Replace an existing file; otherwise a `FileExistsError` is raised.
    **kwargs
        ``engine`` for netCDF; ``checksum`` for FITS (default True: ``CHECKSUM``/``DATASUM``
        in every HDU, verified on reading).
    """
    if _is_netcdf_name(filename, _NETCDF_WRITE_SUFFIXES):
        from .netcdf import write_netcdf

        write_netcdf(dataset, filename, overwrite=overwrite, **kwargs)
        return
    from .fits import to_hdulist

    checksum = kwargs.pop("checksum", True)
    if kwargs:
        raise TypeError(f"unexpected argument(s) for a FITS write: {sorted(kwargs)}")
    hdulist = to_hdulist(dataset)
    with atomic_path(filename, overwrite=overwrite, suffix=".fits") as tmp:
        hdulist.writeto(tmp, checksum=checksum)


def _fits_kind(hdulist) -> str:
    from .fits import is_gammapy_layout

    for hdu in hdulist[1:]:
        if hdu.name == "SPECTRUM" or str(hdu.header.get("HDUCLAS1", "")).upper() == "SPECTRUM":
            return "ogip"
    if is_gammapy_layout(hdulist):
        return "gammapy"
    return "other"


def read_dataset(cls, filename, name: str | None = None, **kwargs):
    """Read a dataset of class ``cls`` (default `~xspec_ds.SpectrumDataset`) from a file.

    netCDF (by suffix or magic bytes), Gammapy's SpectrumDataset FITS layout, or an OGIP PHA
    (passed on to `xspec_ds.io.ogip.read_pha`, which follows the header to ARF/RMF/background).
    Every failure names the file and the problem.
    """
    path = Path(filename)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    kind = "netcdf" if _is_netcdf_name(path, _NETCDF_READ_SUFFIXES) else detect_format(path)
    if kind == "netcdf":
        from .netcdf import read_netcdf

        try:
            return read_netcdf(cls or _default_class(), path, name=name, **kwargs)
        except DatasetFileError as exc:
            if str(path) in str(exc):
                raise
            raise DatasetFileError(f"{path}: {exc}") from exc
        except Exception as exc:  # any failure of a backend on a damaged file
            raise DatasetFileError(
                f"{path}: cannot read as a netCDF spectrum dataset: {type(exc).__name__}: {exc}"
            ) from exc
    from .fitsbin import FitsFile, open_fits_fast

    hdulist = open_fits_fast(path)  # lean reader (astropy for what it does not decode)
    if isinstance(hdulist, FitsFile) and "META_TABLE" in hdulist and _fits_kind(hdulist) == "gammapy":
        from .fits import open_fits

        hdulist = open_fits(path)  # the meta table is read by astropy.table
    with hdulist:
        kind = _fits_kind(hdulist)
        if kind == "ogip":
            try:
                from .ogip import read_pha
            except ImportError as exc:
                raise NotImplementedError(
                    f"{path} is an OGIP PHA file, and OGIP reading is not available "
                    f"(xspec_ds.io.ogip.read_pha missing: {exc})"
                ) from exc
            hdulist.close()
            if isinstance(hdulist, FitsFile):  # read once: hand the bytes read to the OGIP reader
                kwargs.setdefault("opened", hdulist)
            try:
                return (
                    read_pha(path, name=name, cls=cls, **kwargs)
                    if _accepts_cls(read_pha)
                    else read_pha(path, name=name, **kwargs)
                )
            except (ValueError, KeyError, IndexError) as exc:  # e.g. dataset checks on the arrays read
                if isinstance(exc, DatasetFileError) or str(path) in str(exc):
                    raise
                raise DatasetFileError(f"{path}: OGIP set rejected: {type(exc).__name__}: {exc}") from exc
        if kind == "other":
            raise DatasetFileError(
                f"{path}: a FITS file of another kind: neither Gammapy's SpectrumDataset layout "
                f"(COUNTS + COUNTS_BANDS, ...) nor an OGIP PHA (SPECTRUM); HDUs: "
                f"{[h.name for h in hdulist]}"
            )
        from .fits import FitsLayoutError, from_hdulist

        try:
            return from_hdulist(cls or _default_class(), hdulist, name=name, source=str(path), **kwargs)
        except FitsLayoutError:
            raise
        except Exception as exc:  # any failure on a damaged file
            raise DatasetFileError(
                f"{path}: cannot read the Gammapy SpectrumDataset layout (truncated or corrupt?): "
                f"{type(exc).__name__}: {exc}"
            ) from exc


def _default_class():
    """The object layer's default dataset class (`~xspec_ds.SpectrumDataset`)."""
    if _DEFAULT_CLASS is None:  # pragma: no cover - the package import registers it
        raise RuntimeError("xspec_ds.dataset is not imported: no dataset class to build")
    return _DEFAULT_CLASS


def _accepts_cls(func) -> bool:
    import inspect

    try:
        return "cls" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def open_dataset(path, chunks=None, **kwargs):
    """Lazy (dask) `xarray.Dataset` of one file; see `xspec_ds.io.lazy.open_dataset`. An OGIP PHA type II
    file gives one ``obs`` per row (`xspec_ds.io.ogip2.open_pha2`, keywords ``bkg``, ``arf``, ``rmf``)."""
    from .ogip import is_pha2
    from .ogip2 import open_pha2

    if is_pha2(path):  # x-ray hook: OGIP PHA type II -> obs-dimensioned Dataset (kwargs: bkg, arf, rmf)
        return open_pha2(path, chunks=chunks, **kwargs)
    from .lazy import open_dataset as _open

    return _open(path, chunks=chunks, **kwargs)


def open_mfdataset(paths, chunks=None, parallel: bool = True, **kwargs):
    """Many files along ``obs``, lazily; see `xspec_ds.io.lazy.open_mfdataset`."""
    from .lazy import open_mfdataset as _open

    return _open(paths, chunks=chunks, parallel=parallel, **kwargs)
