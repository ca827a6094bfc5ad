"""OGIP PHA type II files (many spectra in one ``SPECTRUM`` table) as one ``obs``-dimensioned Dataset.

Format (OGIP/92-007 and its 92-007a addendum, "type II" PHA files; our own implementation): every
row of the ``SPECTRUM`` extension is one spectrum; ``COUNTS`` (or ``RATE``, counts/s) and
optionally ``CHANNEL``, ``QUALITY``, ``GROUPING``, ``STAT_ERR`` are vector columns (one value per
channel), while ``EXPOSURE``, ``BACKSCAL``, ``AREASCAL``, ``BACKFILE``, ``RESPFILE``, ``ANCRFILE``,
``SPEC_NUM``, times (``TIME``/``ENDTIME`` or ``TSTART``/``TELAPSE``) and a per-row ``QUALITY``
may be scalar columns or header keywords. Fermi GBM CSPEC files (1859 spectra) store
``EXPOSURE`` as a column, which Sherpa 4.19 cannot read.

Responses: an RSP (``SPECRESP MATRIX``, the effective area folded in) or RMF + ARF; an RSP2 file
holds several matrices (Fermi GBM: one per time interval, ``TSTART``/``TSTOP`` in each header):
``rmf_index`` picks one (default: the first), and it is shared by all rows (one kernel, seen
along ``obs`` as a zero-copy broadcast view).

The result has ``counts``, ``mask_safe`` (``QUALITY == 0``), ``exposure`` (response area x the
row's ``EXPOSURE``) and ``livetime`` per ``obs``; with a background file also ``counts_off``,
``acceptance`` and ``acceptance_off`` per ``obs`` (the background scaling as in
`xspec_ds.io.ogip.read_pha`); ``edisp`` is shared (a broadcast view along ``obs``). ``obs`` is labelled by ``SPEC_NUM`` (or the
row number), with ``time_start``/``time_stop`` (s, mission elapsed time) where the file has
times.
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import xarray as xr

from ..axes import overlap_matrix
from ..containers import as_dataarray, build_dataset
from .ogip import OGIPError, _linked, is_pha2, read_arf, read_pha2_table, read_rmf

__all__ = ["open_pha2"]


def _resolve(path: Path, linked: dict, key: str, given) -> Path | None:
    if given is not None:
        p = Path(given)
        if not p.exists():
            raise FileNotFoundError(f"{path}: {key} given as {given!r}, which does not exist")
        return p
    p = _linked(path, linked, key)
    if p is not None and not p.exists():
        arg = {"ANCRFILE": "arf", "RESPFILE": "rmf", "BACKFILE": "bkg"}[key]
        raise FileNotFoundError(f"{path}: {key} = {linked[key]!r} names a missing file ({p}); give it as {arg}=...")
    return p


def _background(bkg_path: Path, n_rows: int, n_chan: int):
    from .ogip import read_pha_table

    if is_pha2(bkg_path):
        b = read_pha2_table(bkg_path)
        if b["counts"].shape[1] != n_chan:
            raise OGIPError(f"{bkg_path}: background has {b['counts'].shape[1]} channels, the spectra {n_chan}")
        if b["counts"].shape[0] not in (1, n_rows):
            raise OGIPError(f"{bkg_path}: background has {b['counts'].shape[0]} rows, the spectra {n_rows}")
        rep = n_rows if b["counts"].shape[0] == 1 else 1
        return (np.repeat(b[k], rep, axis=0) for k in ("counts", "backscal", "areascal")), np.repeat(b["exposure"], rep)
    b = read_pha_table(bkg_path)
    if b["counts"].size != n_chan:
        raise OGIPError(f"{bkg_path}: background has {b['counts'].size} channels, the spectra {n_chan}")
    arrays = (np.repeat(b[k][None, :], n_rows, axis=0) for k in ("counts", "backscal", "areascal"))
    return arrays, np.full(n_rows, b["exposure"])


def open_pha2(filename, bkg=None, arf=None, rmf=None, rmf_index: int = 0, chunks=None) -> xr.Dataset:
    """Open a type II PHA file as an `xarray.Dataset` with an ``obs`` dimension (one per row).

    Parameters
    ----------
    filename : str or Path
    bkg, arf, rmf : str or Path, optional
        Background PHA (type I or II), ARF and RMF/RSP/RSP2, replacing the names in the file.
    rmf_index : int
        Which matrix of an RSP2 file to use for all rows (0: the first).
    chunks : dict, optional
        If given, the per-``obs`` variables are chunked with dask (``Dataset.chunk``).

    Raises
    ------
    OGIPError
        Rows with differing channel counts, channel mismatches with the response or background.
    ValueError
        No response at all (the file names none and none is given).
    """
    path = Path(filename)
    t = read_pha2_table(path)
    n_rows, n_chan = t["counts"].shape
    rmf_path = _resolve(path, t["linked"], "RESPFILE", rmf)
    arf_path = _resolve(path, t["linked"], "ANCRFILE", arf)
    bkg_path = _resolve(path, t["linked"], "BACKFILE", bkg)
    if rmf_path is None:
        raise ValueError(f"{path}: no response: the file names no RESPFILE; give rmf=... (an RMF, RSP or RSP2)")
    e_true, e_reco, matrix, rsp_area = read_rmf(rmf_path, index=rmf_index)
    if e_reco.nbin != n_chan:
        raise OGIPError(f"{rmf_path}: response has {e_reco.nbin} channels but the spectra of {path} have {n_chan}")
    if arf_path is not None:
        e_true, aeff = read_arf(arf_path)
        aeff = aeff.to_value(u.cm**2) * (1.0 if rsp_area is None else rsp_area)
    elif rsp_area is not None:
        aeff = rsp_area
    else:
        raise ValueError(f"{path}: the response {rmf_path} has no effective area (not an RSP) and no ARF was given")
    if matrix is None:
        matrix = overlap_matrix(e_true.edges, e_reco.edges)
    areascal = t["areascal"][:, 0]
    livetime = t["exposure"]
    axes = {"energy": e_reco, "energy_true": e_true}
    first_row = {
        "counts": t["counts"][0],
        "exposure": aeff * u.cm**2 * u.s,
        "edisp": matrix,
        "mask_safe": t["quality"][0] == 0,
    }
    template = build_dataset(
        {k: as_dataarray(k, v, axes) for k, v in first_row.items()}, name=t["header"].get("DSNAME") or path.stem
    )
    obs = t["spec_num"] if t["spec_num"] is not None and np.unique(t["spec_num"]).size == n_rows else np.arange(n_rows)
    ds = template.drop_vars(["counts", "exposure", "mask_safe"])
    ds = ds.assign_coords(obs=("obs", obs))
    ds["counts"] = (("obs", "energy"), t["counts"], dict(template["counts"].attrs))
    ds["mask_safe"] = (("obs", "energy"), t["quality"] == 0, dict(template["mask_safe"].attrs))
    expo_attrs = dict(template["exposure"].attrs)
    ds["exposure"] = (("obs", "energy_true"), aeff[None, :] * (livetime * areascal)[:, None], expo_attrs)
    ds["livetime"] = (("obs",), livetime, {"units": "s"})
    if t["time_start"] is not None and t["time_stop"] is not None:
        ds = ds.assign_coords(
            time_start=("obs", t["time_start"], {"units": "s"}), time_stop=("obs", t["time_stop"], {"units": "s"})
        )
    if bkg_path is not None:
        (n_off, b_backscal, b_areascal), b_expo = _background(bkg_path, n_rows, n_chan)
        ratio = np.divide(b_expo, livetime, out=np.ones_like(livetime), where=livetime > 0)
        acc_off = b_backscal * ratio[:, None] * b_areascal / t["areascal"]
        ds["counts_off"] = (("obs", "energy"), n_off, {"units": "", "long_name": "off counts"})
        ds["acceptance"] = (("obs", "energy"), t["backscal"], {"units": "", "long_name": "on-region acceptance"})
        ds["acceptance_off"] = (("obs", "energy"), acc_off, {"units": "", "long_name": "off-region acceptance"})
    # the shared kernel as a zero-copy broadcast view along obs (xs.stack wants obs on every variable)
    ds["edisp"] = ds["edisp"].expand_dims(obs=ds.sizes["obs"]).assign_coords(obs=ds["obs"])
    ds.attrs["source_file"] = str(path)
    if chunks is not None:
        ds = ds.chunk(chunks)
    return ds
