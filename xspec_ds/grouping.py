"""Channel grouping, quality and energy filters of X-ray spectra (OGIP GROUPING/QUALITY).

A grouped spectrum stays a channel-level `xarray.Dataset`; the grouping is a *label*: an integer
coordinate ``group`` along ``energy`` (the group index of each channel, contiguous runs of equal
labels) next to a coordinate ``quality`` (OGIP QUALITY: 0 good, 1 bad as flagged by the
pipeline, 2 dubious as flagged by grouping tools, 5 set bad by the user). The fit runs on the
reduction of the Dataset over its groups (`group_reduce`): on and off counts and the columns of
the energy dispersion are summed per group and the masks ORed per group, with the same rules as
`xspec_ds.ops.resample` (channels outside ``mask_safe``, i.e. ``QUALITY != 0`` from the file,
drop out of their group's sums, as XSPEC and Sherpa's ``ignore_bad`` do).

Conventions (cited, our own code):

- OGIP/92-007 (Arnaud, George & Tennant), "The OGIP Spectral File Format", section on
  GROUPING: ``+1`` starts a group, ``-1`` continues it, ``0`` means no grouping information
  (the channel is a group of its own).
- `group_counts`: HEASoft/CIAO grplib ``grp_by_counts`` as Sherpa's ``group_counts`` uses it:
  channels are accumulated from low to high until a group holds at least ``n`` counts; the
  remaining channels at the end form an incomplete group flagged ``QUALITY = 2``; since
  Sherpa 4.16 (sherpa/sherpa PR #1855) channels outside the current filter are tab stops
  (never grouped), so only the noticed range is grouped. Sherpa keeps the incomplete last group
  in the fit unless ``ignore_bad`` is called; so do we (see `ignore_bad`).
- `notice` / `ignore` (Sherpa's ``DataPHA.notice``): a channel is selected when its energy
  range overlaps ``(lo, hi)`` (``e_max > lo`` and ``e_min < hi``); on grouped data a whole group
  is selected when any of its channels is. The first `notice` on an unfiltered spectrum
  replaces "everything" by the selection (Sherpa's ``Filter.notice``: mask ``True`` -> the
  selection), later calls add to it; `ignore` removes. The filter is kept in ``mask_fit``
  (channel level), so it survives regrouping and `ungroup`.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import xarray as xr

from .axes import MapAxis, edges_from_coords

__all__ = [
    "GROUP",
    "QUALITY",
    "grouping_to_labels",
    "labels_to_grouping",
    "is_grouped",
    "set_grouping",
    "remove_grouping",
    "group_reduce",
    "group_counts_flags",
    "group_counts",
    "group_min",
    "group_snr",
    "ungroup",
    "overlap_mask",
    "notice",
    "ignore",
    "ignore_bad",
]

GROUP = "group"
"""Name of the group-label coordinate along ``energy``."""
QUALITY = "quality"
"""Name of the OGIP quality coordinate along ``energy``."""


def grouping_to_labels(grouping, n: int | None = None, where: str = "GROUPING") -> np.ndarray:
    """Group label of each channel from an OGIP ``GROUPING`` array (``+1``/``-1``/``0``).

    Parameters
    ----------
    grouping : array_like of int
        OGIP flags.
    n : int, optional
        Expected number of channels.
    where : str
        Names the source (file, variable) in error messages.

    Raises
    ------
    ValueError
        Wrong length, values other than -1, 0, 1, or a first channel flagged -1 (a continuation
        of nothing).
    """
    flags = np.asarray(grouping)
    if flags.ndim != 1:
        raise ValueError(f"{where}: GROUPING must be 1-D, got shape {flags.shape}")
    if n is not None and flags.size != n:
        raise ValueError(f"{where}: GROUPING has {flags.size} values but the spectrum has {n} channels")
    if flags.size == 0:
        return np.zeros(0, np.int64)
    if not np.all(np.isin(flags, (-1, 0, 1))):
        bad = np.flatnonzero(~np.isin(flags, (-1, 0, 1)))[0]
        raise ValueError(
            f"{where}: invalid GROUPING value {int(flags[bad])} at channel index {bad}; OGIP allows +1 (start), "
            "-1 (continue) and 0 (no grouping)"
        )
    if flags[0] == -1:
        raise ValueError(f"{where}: GROUPING starts with -1 (continues a group that never started)")
    return np.cumsum(flags != -1).astype(np.int64) - 1


def labels_to_grouping(labels) -> np.ndarray:
    """OGIP ``GROUPING`` flags (``+1`` at each group start, ``-1`` elsewhere) from group labels."""
    labels = np.asarray(labels)
    flags = np.full(labels.size, -1, np.int16)
    if labels.size:
        flags[0] = 1
        flags[1:][np.diff(labels) != 0] = 1
    return flags


def is_grouped(ds: xr.Dataset) -> bool:
    """True if ``ds`` carries a ``group`` coordinate along ``energy``."""
    return GROUP in ds.coords


def set_grouping(ds: xr.Dataset, grouping=None, labels=None, quality=None) -> xr.Dataset:
    """Attach grouping (OGIP flags or labels) and quality coordinates to ``ds`` (in place).

    Returns ``ds``. A grouping where every channel is its own group still sets the coordinate
    (the spectrum is then "grouped" one channel per group, as Sherpa's ``group`` of such a file).
    """
    n = ds.sizes["energy"]
    where = ds.attrs.get("name", "dataset")
    if labels is None:
        labels = grouping_to_labels(grouping, n, where=f"{where}: GROUPING")
    labels = np.asarray(labels, np.int64)
    if labels.shape != (n,):
        raise ValueError(f"{where}: group labels have shape {labels.shape}, expected ({n},)")
    if n and np.any(np.diff(labels) < 0):
        raise ValueError(f"{where}: group labels must be non-decreasing (groups are contiguous channels)")
    ds.coords[GROUP] = ("energy", labels)
    if quality is not None:
        q = np.asarray(quality, np.int64).reshape(-1)
        if q.shape != (n,):
            raise ValueError(f"{where}: QUALITY has {q.size} values but the spectrum has {n} channels")
        ds.coords[QUALITY] = ("energy", q)
    return ds


def remove_grouping(ds: xr.Dataset) -> xr.Dataset:
    """Drop the ``group`` coordinate (in place); returns ``ds``."""
    if GROUP in ds.coords:
        del ds.coords[GROUP]
    return ds


def _group_edges(ds: xr.Dataset) -> MapAxis:
    labels = np.asarray(ds.coords[GROUP].values)
    edges = edges_from_coords(ds, "energy")
    starts = np.flatnonzero(np.r_[True, np.diff(labels) != 0])
    return MapAxis(np.append(edges.value[starts], edges.value[-1]) * edges.unit, name="energy")


def group_reduce(ds: xr.Dataset) -> xr.Dataset:
    """The Dataset reduced over its groups (what a grouped spectrum is fitted on).

    Counts, off counts, background and the energy-dispersion columns are summed over the safe
    channels of each group, masks are ORed per group and the on-off acceptances keep the group's
    background (``xspec_ds.ops.resample`` rules). Group edges are the channel edges at the
    group boundaries. A Dataset without a ``group`` coordinate is returned unchanged.
    """
    if GROUP not in ds.coords:
        return ds
    from .ops.resample import resample_energy_axis

    axis = _group_edges(ds)
    plain = ds.drop_vars([c for c in (GROUP, QUALITY) if c in ds.coords])
    out = resample_energy_axis(plain, axis)
    out.attrs["grouped_from_channels"] = int(ds.sizes["energy"])
    return out


def group_counts_flags(counts, n: float, tab_stops=None) -> tuple[np.ndarray, np.ndarray]:
    """Sherpa's ``group_counts`` rule: OGIP grouping flags and quality for at least ``n`` counts.

    Channels are scanned from low to high; a group is closed as soon as its counts reach ``n``.
    Channels flagged in ``tab_stops`` are never grouped (flag ``+1``, quality 0) and interrupt a
    group in progress. An incomplete group (the channels left at the end of a run, below ``n``
    counts) gets quality 2, as grplib's ``grp_by_counts``.

    The scan is a cumulative sum per run with ``floor(cumsum / n)`` as the group index inside
    the run, which is exactly the sequential rule for non-negative integer counts.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if not np.isfinite(n) or n <= 0:
        raise ValueError(f"group_counts: the minimum number of counts must be positive, got {n}")
    if np.any(counts < 0):
        raise ValueError("group_counts: counts must be non-negative")
    size = counts.size
    stops = np.zeros(size, bool) if tab_stops is None else np.asarray(tab_stops, bool)
    if stops.shape != (size,):
        raise ValueError(f"group_counts: tab_stops has shape {stops.shape}, expected ({size},)")
    # runs of grouped channels between tab stops; each tab stop is a run of its own
    run_start = np.flatnonzero(np.r_[True, stops[1:] | stops[:-1]])
    run_end = np.r_[run_start[1:], size]
    cs = np.r_[0.0, np.cumsum(np.where(stops, 0.0, counts))]
    flags = np.full(size, -1, np.int16)
    quality = np.zeros(size, np.int16)
    # one step per *group* (each closes at the first channel where its sum reaches n: a
    # searchsorted on the cumulative sum), never per channel
    for r0, r1 in zip(run_start, run_end, strict=True):
        s = r0
        while s < r1:
            flags[s] = 1
            if stops[s]:
                break
            e = s + int(np.searchsorted(cs[s + 1 : r1 + 1] - cs[s], n, side="left"))
            if e >= r1:  # incomplete group at the end of the run
                quality[s:r1] = 2
                break
            s = e + 1
    return flags, quality


def group_counts(ds: xr.Dataset, n: float, tab_stops=None) -> xr.Dataset:
    """Group ``ds`` (in place) so that every group has at least ``n`` counts (`group_counts_flags`).

    ``tab_stops`` defaults to the channels outside ``mask_fit`` (Sherpa >= 4.16); pass an array
    of False to group the whole spectrum. Returns ``ds``.
    """
    if "counts" not in ds.variables:
        raise ValueError(f"{ds.attrs.get('name', 'dataset')}: no counts to group")
    counts = np.asarray(ds["counts"].values, dtype=np.float64)
    if tab_stops is None:
        tab_stops = ~np.asarray(ds["mask_fit"].values, bool) if "mask_fit" in ds.variables else None
    flags, quality = group_counts_flags(counts, n, tab_stops)
    old_q = np.asarray(ds.coords[QUALITY].values) if QUALITY in ds.coords else np.zeros(counts.size, np.int64)
    # keep the file's bad flags (1, 5); replace the grouping tool's flag 2
    q = np.where((old_q != 0) & (old_q != 2), old_q, quality)
    return set_grouping(ds, flags, quality=q)


def group_snr(ds: xr.Dataset, snr: float, tab_stops=None) -> xr.Dataset:
    """Group to a signal-to-noise ratio of at least ``snr`` per group (in place).

    Sherpa's ``group_snr`` without an error column uses grplib's Poisson errors, so a group's
    ratio is ``sum(N) / sqrt(sum(N)) = sqrt(sum(N))``: the rule is `group_counts` with ``snr**2``.
    """
    if not np.isfinite(snr) or snr <= 0:
        raise ValueError(f"group_snr: the signal-to-noise ratio must be positive, got {snr}")
    return group_counts(ds, float(snr) ** 2, tab_stops=tab_stops)


def group_min(ds: xr.Dataset, n: float) -> xr.Dataset:
    """Alias of `group_counts` (XSPEC/grppha ``group min n``)."""
    return group_counts(ds, n)


def ungroup(ds: xr.Dataset) -> xr.Dataset:
    """Remove the grouping (in place): fit channel by channel. The filter (``mask_fit``) and the
    quality stay. Returns ``ds``."""
    return remove_grouping(ds)


def _energy_bound(value, unit) -> float:
    if value is None:
        return np.nan
    q = u.Quantity(value) if not isinstance(value, (int, float, np.floating, np.integer)) else value * u.keV
    if q.unit == u.dimensionless_unscaled:
        q = q.value * u.keV
    return q.to_value(unit, equivalencies=u.spectral())


def overlap_mask(ds: xr.Dataset, lo=None, hi=None) -> np.ndarray:
    """Channels whose energy range overlaps ``(lo, hi)`` (None: open end); numbers are keV.

    Raises a ValueError if the range is empty, reversed, or does not overlap the data.
    """
    edges = edges_from_coords(ds, "energy")
    unit = edges.unit
    e = edges.value
    lo_v, hi_v = _energy_bound(lo, unit), _energy_bound(hi, unit)
    name = ds.attrs.get("name", "dataset")
    if not np.isnan(lo_v) and not np.isnan(hi_v) and lo_v >= hi_v:
        raise ValueError(f"{name}: energy range ({lo}, {hi}) is empty or reversed")
    sel = np.ones(e.size - 1, bool)
    if not np.isnan(lo_v):
        sel &= e[1:] > lo_v
    if not np.isnan(hi_v):
        sel &= e[:-1] < hi_v
    if not sel.any():
        raise ValueError(f"{name}: energy range ({lo}, {hi}) lies outside the data ({e[0]:.6g} - {e[-1]:.6g} {unit})")
    return sel


def _expand_to_groups(ds: xr.Dataset, sel: np.ndarray) -> np.ndarray:
    if GROUP not in ds.coords:
        return sel
    labels = np.asarray(ds.coords[GROUP].values)
    hit = np.zeros(labels.max() + 1 if labels.size else 0, bool)
    hit[labels[sel]] = True
    return hit[labels]


def _current_fit_mask(ds: xr.Dataset) -> np.ndarray | None:
    return np.asarray(ds["mask_fit"].values, bool) if "mask_fit" in ds.variables else None


def notice(ds: xr.Dataset, lo=None, hi=None) -> np.ndarray:
    """The channel ``mask_fit`` after Sherpa's ``notice(lo, hi)`` (see the module notes)."""
    sel = _expand_to_groups(ds, overlap_mask(ds, lo, hi)) if lo is not None or hi is not None else None
    current = _current_fit_mask(ds)
    if sel is None:
        return np.ones(ds.sizes["energy"], bool)
    return sel if current is None else current | sel


def ignore(ds: xr.Dataset, lo=None, hi=None) -> np.ndarray:
    """The channel ``mask_fit`` after Sherpa's ``ignore(lo, hi)`` (see the module notes)."""
    if lo is None and hi is None:
        return np.zeros(ds.sizes["energy"], bool)
    sel = _expand_to_groups(ds, overlap_mask(ds, lo, hi))
    current = _current_fit_mask(ds)
    return ~sel if current is None else current & ~sel


def ignore_bad(ds: xr.Dataset) -> np.ndarray:
    """``mask_safe`` without the channels of ``QUALITY != 0`` (Sherpa's ``ignore_bad``)."""
    safe = (
        np.asarray(ds["mask_safe"].values, bool) if "mask_safe" in ds.variables else np.ones(ds.sizes["energy"], bool)
    )
    if QUALITY in ds.coords:
        safe = safe & (np.asarray(ds.coords[QUALITY].values) == 0)
    return safe


def _resample_stat_err(da: xr.DataArray, safe, group: xr.DataArray) -> xr.DataArray:
    """Errors of merged bins add in quadrature (Sherpa's ``_sum_sq`` for grouped STAT_ERR)."""
    from .ops.resample import _sum_safe

    return np.sqrt(_sum_safe(da**2, safe, group))


def _register_rules() -> None:
    from .ops.resample import RESAMPLE_RULES

    RESAMPLE_RULES.setdefault("stat_err", _resample_stat_err)


_register_rules()


# ------------------------------------------------------------------------------------------
# file round trips: a GROUPING table next to Gammapy's layout, OGIP GROUPING/QUALITY columns
# ------------------------------------------------------------------------------------------
def grouping_hdu(ds: xr.Dataset):
    """A ``GROUPING`` binary table (OGIP flags, QUALITY, STAT_ERR per channel; header
    ``STATTYPE``) for Gammapy's FITS layout, or None when the Dataset has none of these."""
    from astropy.io import fits

    cols = []
    if GROUP in ds.coords:
        cols.append(fits.Column("GROUPING", "I", array=labels_to_grouping(ds.coords[GROUP].values)))
    if QUALITY in ds.coords:
        cols.append(fits.Column("QUALITY", "I", array=np.asarray(ds.coords[QUALITY].values, np.int16)))
    if "stat_err" in ds.variables:
        cols.append(fits.Column("STAT_ERR", "D", array=np.asarray(ds["stat_err"].values, np.float64)))
    stat_type = ds.attrs.get("stat_type")
    if not cols and stat_type is None:
        return None
    if not cols:
        cols.append(fits.Column("QUALITY", "I", array=np.zeros(ds.sizes["energy"], np.int16)))
    hdu = fits.BinTableHDU.from_columns(cols, name="GROUPING")
    if stat_type is not None:
        hdu.header["STATTYPE"] = str(stat_type)
    hdu.header["GROUPED"] = GROUP in ds.coords
    return hdu


def apply_grouping_hdu(ds: xr.Dataset, hdu, where: str = "") -> None:
    """Inverse of `grouping_hdu` (in place)."""
    names = [c.upper() for c in hdu.columns.names]
    n = ds.sizes["energy"]
    if len(hdu.data) != n:
        raise ValueError(f"{where}: GROUPING table has {len(hdu.data)} rows but the spectrum has {n} channels")
    quality = np.asarray(hdu.data["QUALITY"]) if "QUALITY" in names else None
    if "GROUPING" in names and hdu.header.get("GROUPED", True):
        set_grouping(ds, np.asarray(hdu.data["GROUPING"]), quality=quality)
    elif quality is not None and "GROUPING" in names:
        ds.coords[QUALITY] = ("energy", quality.astype(np.int64))
    if "STAT_ERR" in names:
        ds["stat_err"] = xr.Variable(
            ("energy",), np.asarray(hdu.data["STAT_ERR"], np.float64), {"units": "", "long_name": "statistical error"}
        )
    if "STATTYPE" in hdu.header:
        ds.attrs["stat_type"] = str(hdu.header["STATTYPE"])
