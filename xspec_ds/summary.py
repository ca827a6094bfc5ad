"""Summary numbers (``info_dict``) and text/HTML representations of a dataset."""

from __future__ import annotations

import html

import astropy.units as u
import numpy as np

from . import stats
from .axes import display_unit

__all__ = ["info_dict", "collection_summary", "text_summary", "str_summary", "html_summary"]


def info_dict(dataset, in_safe_data_range: bool = True) -> dict:
    """Gammapy's ``SpectrumDataset.info_dict`` keys, summed over (safe) energy bins.

    ``sqrt_ts`` is the Cash-based significance of the counts over the predicted background
    (`stats.cash_sqrt_ts`), or Li & Ma (1983) eq. 17 for on-off datasets.
    """
    nbin = dataset.data.sizes["energy"]
    mask = np.ones(nbin, bool)
    if in_safe_data_range and dataset.mask_safe is not None:
        mask = np.asarray(dataset.mask_safe.values, bool)
    info = {"name": dataset.name}
    counts = np.asarray(dataset.counts.values)[mask] if dataset.counts is not None else np.zeros(mask.sum())
    # "background" and "excess" use the background array, "npred_background" the background model
    # prediction (Gammapy's MapDataset.info_dict; they differ when a FoVBackgroundModel rescales it)
    npred_bkg = np.asarray(dataset.npred_background().values)[mask]
    bkg = np.asarray(dataset.background.values)[mask] if dataset.background is not None else np.zeros(mask.sum())
    info["counts"] = float(counts.sum())
    info["excess"] = float(counts.sum() - bkg.sum())
    if getattr(dataset, "stat_type", "cash") == "wstat":
        n_off = float(np.asarray(dataset.counts_off.values)[mask].sum())
        alpha_all = np.asarray(dataset.alpha.values)[mask]
        alpha = float(bkg.sum() / n_off) if n_off > 0 else (float(alpha_all.mean()) if alpha_all.size else np.nan)
        info["sqrt_ts"] = float(stats.li_ma_significance(counts.sum(), n_off, alpha)) if n_off > 0 else np.nan
        info["counts_off"] = n_off
        info["alpha"] = alpha
    else:
        info["sqrt_ts"] = float(stats.cash_sqrt_ts(counts.sum(), bkg.sum()))
    info["background"] = float(bkg.sum())
    npred = np.asarray(dataset.npred().values)[mask]
    info["npred"] = float(npred.sum())
    info["npred_background"] = float(npred_bkg.sum())
    info["npred_signal"] = float(np.asarray(dataset.npred_signal().values)[mask].sum())
    if dataset.exposure is not None:
        unit = u.Unit(dataset.exposure.attrs.get("units", "m2 s"))
        exp = np.asarray(dataset.exposure.values)
        info["exposure_min"] = float(exp.min()) * unit
        info["exposure_max"] = float(exp.max()) * unit
    else:
        info["exposure_min"] = info["exposure_max"] = np.nan
    livetime = dataset.livetime
    gti = dataset.gti
    info["livetime"] = (
        livetime if livetime is not None else (gti.time_sum if gti is not None and len(gti) else np.nan * u.s)
    )
    info["ontime"] = gti.time_sum if gti is not None and len(gti) else np.nan * u.s
    lt = info["livetime"].to_value(u.s)
    with np.errstate(divide="ignore", invalid="ignore"):
        info["counts_rate"] = info["counts"] / lt / u.s
        info["background_rate"] = info["background"] / lt / u.s
        info["excess_rate"] = info["excess"] / lt / u.s
    info["n_bins"] = int(nbin)  # all bins, as Gammapy (n_fit_bins counts the masked ones)
    fit_mask = dataset.mask
    info["n_fit_bins"] = int(np.asarray(fit_mask.values).sum()) if fit_mask is not None else nbin
    info["stat_type"] = dataset.stat_type
    try:
        info["stat_sum"] = dataset.stat_sum() if dataset.counts is not None else np.nan
    except ValueError:
        info["stat_sum"] = np.nan
    return info


def _fmt(v) -> str:
    if isinstance(v, u.Quantity):
        return f"{v.value:.4g} {v.unit}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _energy_range(ax) -> str:
    """``"lo - hi unit (n bins)"`` in a readable unit (`xspec_ds.axes.display_unit`)."""
    edges = ax.edges
    unit = display_unit(edges.value[:-1], edges.value[1:], edges.unit)
    lo, hi = edges[0].to_value(unit), edges[-1].to_value(unit)
    stored = "" if unit == edges.unit else f"; coordinates stored in {edges.unit}"
    return f"{lo:.4g} - {hi:.4g} {unit} ({ax.nbin} bins{stored})"


def _energy_lines_axes(dataset) -> dict:
    out = {"energy range": _energy_range(dataset._energy_axis)}
    if "energy_true" in dataset.data.dims:
        out["energy_true range"] = _energy_range(dataset._energy_axis_true)
    return out


def _energy_lines(dataset) -> dict:
    """``energy range``, ``energy_true range`` and ``safe energy range`` with units."""
    out = _energy_lines_axes(dataset)
    if dataset.mask_safe is not None:
        lo, hi = dataset.energy_range
        n = int(np.asarray(dataset.mask_safe.values).sum())
        edges = dataset._energy_axis.edges
        unit = display_unit(edges.value[:-1], edges.value[1:], edges.unit)
        out["safe energy range"] = (
            f"{lo.to_value(unit):.4g} - {hi.to_value(unit):.4g} {unit} ({n} bins)" if n else "none (0 bins)"
        )
    return out


def _collection_dims(dataset) -> list[str]:
    """Dimensions beyond the energy axes and GTI (e.g. ``obs``): the view holds several spectra."""
    return [d for d in dataset.data.dims if d not in ("energy", "energy_true", "gti")]


def collection_summary(dataset) -> dict:
    """Summary of a view over several spectra (an ``obs`` dimension): sizes, energy ranges with
    units and, per spectrum, the safe counts (vectorised over the extra dimensions; lazy
    (dask) values are not computed and shown as such)."""
    data = dataset.data
    dims = _collection_dims(dataset)
    out = {"name": data.attrs.get("name", "none"), "spectra": ", ".join(f"{d}: {data.sizes[d]}" for d in dims)}
    out.update(_energy_lines_axes(dataset))
    for var in ("counts", "counts_off", "background"):
        if var not in data.variables:
            continue
        da = data[var]
        if "mask_safe" in data.variables:
            da = da.where(data["mask_safe"], 0.0)
        total = da.sum("energy")
        if not isinstance(total.variable._data, np.ndarray):
            out[f"{var} (safe)"] = "lazy (dask): not computed"
            continue
        values = np.atleast_1d(np.asarray(total.values)).ravel()
        shown = ", ".join(f"{v:.6g}" for v in values[:8]) + (", ..." if values.size > 8 else "")
        out[f"{var} (safe)"] = f"[{shown}] per spectrum"
    out["models"] = ", ".join(dataset.models.names) or "none"
    return out


def text_summary(dataset) -> str:
    if _collection_dims(dataset):
        title = f"{type(dataset).__name__} (view over several spectra)"
        lines = [title, "-" * len(title)]
        lines += [f"  {k:<18}: {v}" for k, v in collection_summary(dataset).items()]
        lines.append("  select one with xr_ds.isel(obs=k).spectrum, or stack them with xs.stack(xr_ds)")
        return "\n".join(lines)
    info = info_dict(dataset)
    lines = [f"{type(dataset).__name__}", "-" * len(type(dataset).__name__)]
    for k, v in info.items():
        lines.append(f"  {k:<18}: {_fmt(v)}")
    for k, v in _energy_lines(dataset).items():
        lines.append(f"  {k:<18}: {v}")
    lines.append(f"  {'models':<18}: {', '.join(dataset.models.names) or 'none'}")
    return "\n".join(lines)


def str_summary(dataset) -> str:
    """`text_summary` (the `info_dict` numbers) above the xarray repr of ``dataset.data``."""
    return f"{text_summary(dataset)}\n\n{dataset.data!r}"


def html_summary(dataset) -> str:
    """HTML for notebooks: the `info_dict` table (plus energy range and models) above the
    xarray HTML repr of ``dataset.data``."""
    title = type(dataset).__name__
    if _collection_dims(dataset):
        info = collection_summary(dataset)
        title += " (view over several spectra)"
    else:
        info = info_dict(dataset)
        info.update(_energy_lines(dataset))
        info["models"] = ", ".join(dataset.models.names) or "none"
    rows = "".join(
        f"<tr><td style='text-align:left'>{html.escape(k)}</td>"
        f"<td style='text-align:left'>{html.escape(_fmt(v))}</td></tr>"
        for k, v in info.items()
    )
    return f"<div><strong>{html.escape(title)}</strong><table>{rows}</table>{dataset.data._repr_html_()}</div>"
