"""Plots of flux points and light curves (matplotlib), composable with the model plots.

Conventions as Gammapy's ``FluxPoints.plot``: points at the reference energy with the bin as
horizontal bar, asymmetric errors where estimated (else the symmetric ones), upper limits (where
``is_ul``) as downward arrows from the limit; log-log axes in Gammapy's default units.
"""

from __future__ import annotations

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np

from .flux_points_data import DEFAULT_UNIT

__all__ = ["plot_flux_points", "plot_ts_profiles"]

_LABELS = {
    "dnde": "dN/dE",
    "e2dnde": "E$^2$ dN/dE",
    "flux": "Flux",
    "eflux": "Energy flux",
    "norm": "Norm",
    "likelihood": "Norm",
}


def _errors(fp, sed_type):
    names = fp.available_quantities
    if "norm_errn" in names and "norm_errp" in names:
        return fp.get(f"{sed_type}_errn").values, fp.get(f"{sed_type}_errp").values
    if "norm_err" in names:
        err = fp.get(f"{sed_type}_err").values
        return err, err
    return None, None


def _values(fp, name, sed_type):
    if sed_type == "norm":
        return fp.data[name.replace("norm", "norm", 1)].values
    return fp.get(name).values


def plot_flux_points(fp, ax=None, sed_type: str = "dnde", energy_power: int = 0, **kwargs):
    """Plot flux points (see `xspec_ds.FluxPoints.plot`)."""
    if sed_type == "likelihood":
        sed_type = "norm"
    if sed_type not in DEFAULT_UNIT:
        raise ValueError(f"invalid sed_type {sed_type!r}; use one of {sorted(DEFAULT_UNIT)}")
    ax = plt.gca() if ax is None else ax
    prefix = "norm" if sed_type == "norm" else sed_type
    y = fp.data["norm"].values if sed_type == "norm" else fp.get(sed_type).values
    errn, errp = _errors(fp, prefix) if sed_type != "norm" else _errors(fp, "norm")
    ul = None
    if fp.has_ul:
        ul = fp.data["norm_ul"].values if sed_type == "norm" else fp.get(f"{sed_type}_ul").values
    is_ul = np.asarray(fp.is_ul.values, bool) if fp.has_ul else np.zeros(y.shape, bool)
    outer = [d for d in ("time", "obs") if d in fp.data.dims]
    emin, emax, eref = fp.energy_min.to_value(u.TeV), fp.energy_max.to_value(u.TeV), fp.energy_ref.to_value(u.TeV)
    kwargs.setdefault("marker", "o")
    kwargs.setdefault("linestyle", "none")
    if outer:
        dim = outer[0]
        if dim == "time":
            x = 0.5 * (fp.data["time_min"].values + fp.data["time_max"].values)
            xerr = 0.5 * (fp.data["time_max"].values - fp.data["time_min"].values)
            ax.set_xlabel("Time [MJD]")
        else:
            x = np.arange(fp.data.sizes["obs"], dtype=float)
            xerr = np.zeros_like(x)
            ax.set_xlabel("Observation")
            ax.set_xticks(x, fp.data["obs"].values.astype(str), rotation=45, ha="right")
        for k in range(eref.size):
            label = kwargs.pop("label", None) if k == 0 else None
            label = label or f"{emin[k]:.3g}-{emax[k]:.3g} TeV"
            _draw(ax, x, xerr, xerr, y[:, k], errn, errp, ul, is_ul[:, k], k, label, kwargs)
        ax.set_yscale("linear")
    else:
        factor = eref**energy_power
        xerr_lo, xerr_hi = eref - emin, emax - eref
        y = y * factor
        errn = None if errn is None else errn * factor
        errp = None if errp is None else errp * factor
        ul = None if ul is None else ul * factor
        _draw(ax, eref, xerr_lo, xerr_hi, y, errn, errp, ul, is_ul, None, kwargs.pop("label", None), kwargs)
        ax.set_xscale("log")
        ax.set_yscale("log" if sed_type != "norm" else "linear")
        ax.set_xlabel("Energy [TeV]")
    unit = DEFAULT_UNIT[sed_type]
    extra = f" x (E/TeV)^{energy_power}" if energy_power and not outer else ""
    ax.set_ylabel(f"{_LABELS[sed_type]}{extra}" + (f" [{unit.to_string('latex_inline')}]" if unit != u.one else ""))
    return ax


def _draw(ax, x, xlo, xhi, y, errn, errp, ul, is_ul, col, label, kwargs):
    def pick(a):
        if a is None:
            return None
        return a[:, col] if col is not None else a

    errn, errp, ul = pick(errn), pick(errp), pick(ul)
    pts = ~is_ul & np.isfinite(y)
    yerr = None
    if errn is not None:
        yerr = np.vstack([np.where(pts, errn, 0.0), np.where(pts, errp, 0.0)])[:, pts]
    container = ax.errorbar(x[pts], y[pts], xerr=np.vstack([xlo, xhi])[:, pts], yerr=yerr, label=label, **kwargs)
    color = container[0].get_color()
    if ul is not None:
        uls = is_ul & np.isfinite(ul)
        if uls.any():
            opts = {k: v for k, v in kwargs.items() if k not in ("marker",)}
            opts.update(color=color, marker="", uplims=True)
            ax.errorbar(
                x[uls], ul[uls], xerr=np.vstack([xlo, xhi])[:, uls], yerr=0.25 * np.abs(ul[uls]), label="_ul", **opts
            )


def plot_ts_profiles(fp, ax=None, sed_type: str = "dnde", add_cbar: bool = True, **kwargs):
    """TS profiles ``stat_scan - stat`` per energy bin as a colour map over (energy, flux)."""
    if not fp.has_stat_profiles:
        raise ValueError("these flux points have no likelihood scan: estimate them with selection_optional=['scan']")
    if any(d in fp.data.dims for d in ("time", "obs")):
        raise ValueError("plot_ts_profiles draws SEDs; select one time bin first (fp.data.isel(time=i))")
    if sed_type == "likelihood":
        sed_type = "norm"
    ax = plt.gca() if ax is None else ax
    emin, emax = fp.energy_min.to_value(u.TeV), fp.energy_max.to_value(u.TeV)
    scan = fp.data["norm_scan"].values
    ts = (fp.data["stat_scan"] - fp.data["stat"]).transpose("energy", "norm_scan").values
    kwargs.setdefault("cmap", "Blues")
    kwargs.setdefault("vmin", 0)
    kwargs.setdefault("vmax", 25)
    mesh = None
    for k in range(emin.size):
        if not np.isfinite(ts[k]).any():
            continue
        if sed_type == "norm":
            yvals = scan
        else:
            yvals = (
                scan
                * fp.get(f"ref_{sed_type}").values[k]
                * u.Unit(fp.data[f"ref_{sed_type}"].attrs["units"]).to(DEFAULT_UNIT[sed_type])
            )
        yedges = np.sqrt(yvals[1:] * yvals[:-1])
        yedges = np.concatenate([[yvals[0] ** 2 / yedges[0]], yedges, [yvals[-1] ** 2 / yedges[-1]]])
        mesh = ax.pcolormesh([emin[k], emax[k]], yedges, ts[k][:, None], shading="flat", **kwargs)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Energy [TeV]")
    unit = DEFAULT_UNIT[sed_type]
    ax.set_ylabel(_LABELS[sed_type] + (f" [{unit.to_string('latex_inline')}]" if unit != u.one else ""))
    if add_cbar and mesh is not None:
        ax.figure.colorbar(mesh, ax=ax, label="TS = stat - stat$_{min}$")
    return ax
