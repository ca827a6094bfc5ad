"""Matplotlib plots of a spectrum dataset and of spectral models.

Every function here is pure: it takes a dataset (a `SpectrumDataset`, a `SpectrumDatasetOnOff`
or anything with the same attributes, e.g. ``xr_ds.spectrum``) or a model and draws on a
matplotlib ``Axes``. `SpectrumDataset.plot_counts`, ``.plot_excess``, ``.plot_fit``, ... are
thin wrappers around them, on the signatures of Gammapy's ``SpectrumDataset`` (the seed API).

Conventions, as an astronomer reading a spectrum expects:

- energy axes are logarithmic and labelled with their unit (``Energy [TeV]``, the unit of the
  dataset's ``energy`` coordinate);
- binned quantities (counts, background, predicted counts, exposure) are drawn as steps over the
  bin edges; measured points (excess, residuals) as error bars at the log bin centres with the
  bin extent as horizontal bar;
- bins outside the analysis mask (``mask_safe AND mask_fit``) are shaded grey
  (`plot_masks`) and their data points drawn with hollow markers, so they are visible but
  clearly not part of the fit.

The error bars are Poisson (Gaussian approximation): ``sigma(counts) = sqrt(counts)``; for an
on-off dataset the excess ``n_on - alpha n_off`` has ``sigma^2 = n_on + alpha^2 n_off``
(Li & Ma 1983, ApJ 272, 317, eq. 5). Residual error bars are ``sqrt(counts)`` divided by the
same normalisation as the residuals (as Gammapy's ``plot_residuals_spectral``).
"""

from __future__ import annotations

from collections.abc import Sequence

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec

from .axes import display_unit

__all__ = [
    "peek",
    "plot_counts",
    "plot_excess",
    "plot_fit",
    "plot_masks",
    "plot_residuals",
    "plot_residuals_spectral",
    "plot_residuals_spatial",
    "plot_exposure",
    "plot_edisp",
    "plot_spectral_model",
    "RESIDUAL_LABELS",
]

#: y-axis labels of the residual methods (see `SpectrumDataset.residuals`).
RESIDUAL_LABELS = {
    "diff": "Residuals\n(counts - npred) [counts]",
    "diff/model": "Residuals\n(counts - npred) / npred",
    "diff/sqrt(model)": "Residuals\n(counts - npred) / sqrt(npred) [sigma]",
}

MASK_COLOR = "0.85"
MASK_LABEL = "Masked bins"

#: Gammapy's default units for the model plots (``gammapy.estimators.map.core.DEFAULT_UNIT``).
SED_UNITS = {"dnde": u.Unit("cm-2 s-1 TeV-1"), "e2dnde": u.Unit("erg cm-2 s-1")}
SED_LABELS = {"dnde": "dN/dE", "e2dnde": "E$^2$ dN/dE"}


# helpers -----------------------------------------------------------------------------------------
def _grouped(dataset):
    """The dataset as fitted: per group for grouped X-ray spectra (`xspec_ds.xrayfit.grouped_view`)."""
    from .xrayfit import grouped_view

    return grouped_view(dataset) if hasattr(dataset, "_data") else dataset


def _get_ax(ax: Axes | None) -> Axes:
    return plt.gca() if ax is None else ax


def _unit_label(unit) -> str:
    """A unit for an axis label: astropy's ``latex_inline`` form (``TeV``, ``m^2 s``,
    ``erg cm^-2 s^-1`` in mathtext), ``''`` for dimensionless."""
    unit = u.Unit(unit)
    return "" if unit == u.dimensionless_unscaled else unit.to_string("latex_inline")


def _edges(dataset, dim: str = "energy") -> tuple[np.ndarray, np.ndarray, np.ndarray, u.UnitBase]:
    """(lower edges, upper edges, log centres, unit) of an energy dim of the dataset, in the
    display unit (`xspec_ds.axes.display_unit`)."""
    data = dataset.data
    unit = u.Unit(data[dim].attrs.get("units", "TeV"))
    lo = np.asarray(data[f"{dim}_min"].values, dtype=np.float64)
    hi = np.asarray(data[f"{dim}_max"].values, dtype=np.float64)
    shown = display_unit(lo, hi, unit)
    if shown != unit:
        scale = unit.to(shown)
        lo, hi = lo * scale, hi * scale
    return lo, hi, np.sqrt(lo * hi), shown


def _energy_xaxis(ax: Axes, unit: str, true: bool = False) -> None:
    ax.set_xscale("log")
    ax.set_xlabel(f"{'True energy' if true else 'Energy'} [{_unit_label(unit)}]")


def _values(da) -> np.ndarray:
    return np.asarray(da.values, dtype=np.float64)


def _mask_values(dataset) -> np.ndarray:
    mask = dataset.mask
    nbin = dataset.data.sizes["energy"]
    return np.ones(nbin, bool) if mask is None else np.asarray(mask.values, dtype=bool)


def _step(ax: Axes, lo: np.ndarray, hi: np.ndarray, values: np.ndarray, **kwargs):
    """A histogram line over contiguous bins: one `Line2D` whose x data are the edges
    ``[lo_0, ..., lo_n-1, hi_n-1]`` and y data ``[v_0, ..., v_n-1, v_n-1]`` (``where="post"``)."""
    x = np.append(lo, hi[-1])
    y = np.append(values, values[-1])
    (line,) = ax.step(x, y, where="post", **kwargs)
    return line


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """Start (inclusive) and stop (exclusive) indices of the runs of True in ``flags``."""
    d = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True))


def _errorbar_masked(ax: Axes, x, y, xerr, yerr, mask: np.ndarray, kwargs: dict):
    """Error bars of the bins in ``mask`` with ``kwargs``; bins outside it with hollow markers,
    the same colour, half transparent and no legend entry. Returns the in-mask container."""
    kwargs = dict(kwargs)
    kwargs.setdefault("fmt", "o")
    kwargs.setdefault("markersize", 4)
    container = ax.errorbar(x[mask], y[mask], xerr=xerr[:, mask], yerr=yerr[:, mask], **kwargs)
    if (~mask).any():
        color = container.lines[0].get_color()
        hollow = {k: v for k, v in kwargs.items() if k not in ("label", "color", "alpha")}
        hollow.update(color=color, markerfacecolor="none", alpha=0.5, label="_masked")
        ax.errorbar(x[~mask], y[~mask], xerr=xerr[:, ~mask], yerr=yerr[:, ~mask], **hollow)
    return container


def _xerr(lo, hi, x) -> np.ndarray:
    return np.vstack([x - lo, hi - x])


def _poisson_sigma_excess(dataset, counts: np.ndarray) -> np.ndarray:
    """``sqrt(n_on + alpha^2 n_off)`` (Li & Ma 1983 eq. 5); ``sqrt(n_on)`` without off counts."""
    var = np.clip(counts, 0.0, None)
    counts_off = getattr(dataset, "counts_off", None)
    alpha = getattr(dataset, "alpha", None)
    if counts_off is not None and alpha is not None:
        var = var + _values(alpha) ** 2 * np.clip(_values(counts_off), 0.0, None)
    return np.sqrt(var)


def _legend(ax: Axes) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(numpoints=1, fontsize="small")


# dataset plots ------------------------------------------------------------------------------------
def plot_masks(dataset, ax: Axes | None = None, **kwargs) -> Axes:
    """Shade the energy bins outside the dataset's mask (``mask_safe AND mask_fit``).

    One ``axvspan`` per contiguous run of masked bins, light grey behind the data, labelled
    ``"Masked bins"`` once for the legend. Does nothing when every bin is in the mask.

    Parameters
    ----------
    dataset : SpectrumDataset
    ax : `matplotlib.axes.Axes`, optional
    **kwargs : dict
        Passed to ``axvspan`` (e.g. ``color``, ``alpha``, ``hatch``).

    Returns
    -------
    ax : `matplotlib.axes.Axes`
    """
    ax = _get_ax(ax)
    lo, hi, _, unit = _edges(dataset)
    masked = ~_mask_values(dataset)
    opts = {"color": MASK_COLOR, "zorder": 0, "linewidth": 0, "label": MASK_LABEL}
    opts.update(kwargs)
    for start, stop in _runs(masked):
        ax.axvspan(lo[start], hi[stop - 1], **opts)
        opts["label"] = "_" + MASK_LABEL
    _energy_xaxis(ax, unit)
    return ax


def plot_counts(
    dataset, ax: Axes | None = None, kwargs_counts: dict | None = None, kwargs_background: dict | None = None, **kwargs
) -> Axes:
    """Plot counts and (predicted) background as histograms over the reco energy bins.

    Parameters
    ----------
    dataset : SpectrumDataset
    ax : `matplotlib.axes.Axes`, optional
        Axes to plot on (default: the current axes).
    kwargs_counts, kwargs_background : dict, optional
        Passed to ``Axes.step`` for the counts and the background lines.
    **kwargs : dict
        Passed to both.

    Returns
    -------
    ax : `matplotlib.axes.Axes`
    """
    dataset = _grouped(dataset)  # x-ray: grouped spectra are shown per group
    ax = _get_ax(ax)
    lo, hi, _, unit = _edges(dataset)
    plot_masks(dataset, ax=ax)
    opts = {"label": "Counts", **kwargs, **(kwargs_counts or {})}
    if dataset.counts is None:
        raise ValueError(f"dataset {dataset.name!r} has no counts to plot")
    _step(ax, lo, hi, _values(dataset.counts), **opts)
    opts = {"label": "Background", **kwargs, **(kwargs_background or {})}
    _step(ax, lo, hi, _values(dataset.npred_background()), **opts)
    _energy_xaxis(ax, unit)
    ax.set_yscale("log")
    ax.set_ylabel("Counts [per bin]")
    _legend(ax)
    return ax


def plot_excess(
    dataset,
    ax: Axes | None = None,
    kwargs_excess: dict | None = None,
    kwargs_npred_signal: dict | None = None,
    **kwargs,
) -> Axes:
    """Plot the excess (``counts - background``) with Poisson error bars and the predicted signal.

    The excess is drawn as error bars at the log bin centres (bins outside the mask hollow);
    the model's predicted signal counts as a histogram line. The y axis is logarithmic: bins
    with zero or negative excess fall below it (pass ``ax.set_yscale("linear")`` afterwards to
    see them).

    Parameters
    ----------
    dataset : SpectrumDataset
    ax : `matplotlib.axes.Axes`, optional
    kwargs_excess : dict, optional
        Passed to ``Axes.errorbar`` for the excess.
    kwargs_npred_signal : dict, optional
        Passed to ``Axes.step`` for the predicted signal.
    **kwargs : dict
        Passed to both.

    Returns
    -------
    ax : `matplotlib.axes.Axes`
    """
    dataset = _grouped(dataset)  # x-ray: grouped spectra are shown per group
    ax = _get_ax(ax)
    lo, hi, x, unit = _edges(dataset)
    mask = _mask_values(dataset)
    plot_masks(dataset, ax=ax)
    if dataset.counts is None:
        raise ValueError(f"dataset {dataset.name!r} has no counts: no excess to plot")
    counts = _values(dataset.counts)
    excess = _values(dataset.excess)
    sigma = _poisson_sigma_excess(dataset, counts)
    opts = {"label": "Excess counts", "color": "black", **kwargs, **(kwargs_excess or {})}
    _errorbar_masked(ax, x, excess, _xerr(lo, hi, x), np.vstack([sigma, sigma]), mask, opts)
    opts = {"label": "Predicted signal counts", "color": "tab:red", **kwargs, **(kwargs_npred_signal or {})}
    _step(ax, lo, hi, _values(dataset.npred_signal()), **opts)
    _energy_xaxis(ax, unit)
    ax.set_yscale("log")
    positive = excess[mask & (excess > 0)]
    if positive.size:
        ax.set_ylim(bottom=0.3 * positive.min())
    ax.set_ylabel("Excess counts [per bin]")
    _legend(ax)
    return ax


def plot_residuals(dataset, ax: Axes | None = None, method: str = "diff", **kwargs) -> Axes:
    """Plot the spectral residuals ``dataset.residuals(method)`` with error bars.

    Parameters
    ----------
    dataset : SpectrumDataset
    ax : `matplotlib.axes.Axes`, optional
    method : {"diff", "diff/model", "diff/sqrt(model)"}
        Normalisation of the residuals, see `SpectrumDataset.residuals`.
    **kwargs : dict
        Passed to ``Axes.errorbar``.

    Returns
    -------
    ax : `matplotlib.axes.Axes`
    """
    if method not in RESIDUAL_LABELS:
        raise ValueError(f"invalid residuals method {method!r}; use one of {sorted(RESIDUAL_LABELS)}")
    dataset = _grouped(dataset)  # x-ray: grouped spectra are shown per group
    ax = _get_ax(ax)
    lo, hi, x, unit = _edges(dataset)
    mask = _mask_values(dataset)
    plot_masks(dataset, ax=ax)
    residuals = _values(dataset.residuals(method=method))
    counts = np.clip(_values(dataset.counts), 0.0, None)
    npred = _values(dataset.npred())
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = {"diff": 1.0, "diff/model": npred, "diff/sqrt(model)": np.sqrt(npred)}[method]
        sigma = np.sqrt(counts) / norm
    opts = {"color": "black", **kwargs}
    _errorbar_masked(ax, x, residuals, _xerr(lo, hi, x), np.vstack([sigma, sigma]), mask, opts)
    ax.axhline(0.0, color="0.4", linestyle="--", linewidth=1, zorder=1)
    good = mask & np.isfinite(residuals) & np.isfinite(sigma)
    if good.any():
        ymax = 1.1 * np.max(np.abs(residuals[good]) + sigma[good])
        ax.set_ylim(-ymax, ymax)
    _energy_xaxis(ax, unit)
    ax.set_ylabel(RESIDUAL_LABELS[method])
    return ax


def plot_residuals_spectral(dataset, ax: Axes | None = None, method: str = "diff", region=None, **kwargs) -> Axes:
    """Plot the spectral residuals (`plot_residuals`).

    A spectrum dataset is already integrated over its on region, so ``region`` must be None.
    """
    if region is not None:
        raise ValueError(
            "a SpectrumDataset is already integrated over its on region: "
            "plot_residuals_spectral takes no region (pass region=None)"
        )
    return plot_residuals(dataset, ax=ax, method=method, **kwargs)


def plot_residuals_spatial(dataset, *args, **kwargs):
    """Not available: a 1-D spectrum has no spatial axes. Always raises `ValueError`."""
    raise ValueError(
        f"{type(dataset).__name__} {getattr(dataset, 'name', '')!r} is a 1-D spectrum with no spatial "
        "axes: there are no spatial residuals to plot; use plot_residuals_spectral() instead"
    )


def plot_fit(
    dataset,
    ax_spectrum: Axes | None = None,
    ax_residuals: Axes | None = None,
    kwargs_spectrum: dict | None = None,
    kwargs_residuals: dict | None = None,
) -> tuple[Axes, Axes]:
    """Plot excess and predicted signal (`plot_excess`) above the residuals (`plot_residuals`).

    Without axes, a new figure gets a tall spectrum panel and a short residuals panel that
    share the energy axis (no gap, tick labels only under the residuals).

    Parameters
    ----------
    dataset : SpectrumDataset
    ax_spectrum, ax_residuals : `matplotlib.axes.Axes`, optional
        Axes for the two panels (both or neither).
    kwargs_spectrum : dict, optional
        Passed to `plot_excess` (e.g. ``{"kwargs_excess": {...}}``).
    kwargs_residuals : dict, optional
        Passed to `plot_residuals` (e.g. ``{"method": "diff/sqrt(model)"}``).

    Returns
    -------
    ax_spectrum, ax_residuals : `matplotlib.axes.Axes`
    """
    if (ax_spectrum is None) != (ax_residuals is None):
        raise ValueError("plot_fit needs both ax_spectrum and ax_residuals, or neither")
    if ax_spectrum is None:
        fig = plt.figure(figsize=(8, 7))
        gs = GridSpec(2, 1, figure=fig, height_ratios=[3, 1.3], hspace=0.0)
        ax_spectrum = fig.add_subplot(gs[0])
        ax_residuals = fig.add_subplot(gs[1], sharex=ax_spectrum)
    plot_excess(dataset, ax=ax_spectrum, **(kwargs_spectrum or {}))
    plot_residuals(dataset, ax=ax_residuals, **(kwargs_residuals or {}))
    ax_spectrum.set_xlabel("")
    ax_spectrum.tick_params(labelbottom=False)
    return ax_spectrum, ax_residuals


def plot_exposure(dataset, ax: Axes | None = None, **kwargs) -> Axes:
    """Plot the exposure (effective area x livetime) against true energy as a histogram line."""
    ax = _get_ax(ax)
    if dataset.exposure is None:
        raise ValueError(f"dataset {dataset.name!r} has no exposure to plot")
    lo, hi, _, unit = _edges(dataset, "energy_true")
    exposure = _values(dataset.exposure)
    _step(ax, lo, hi, exposure, **{"color": "tab:blue", **kwargs})
    _energy_xaxis(ax, unit, true=True)
    if (exposure > 0).any():
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.5 * exposure[exposure > 0].min(), top=2 * exposure.max())
    ax.set_ylabel(f"Exposure [{_unit_label(dataset.exposure.attrs.get('units', ''))}]")
    return ax


def plot_edisp(dataset, ax: Axes | None = None, add_cbar: bool = True, **kwargs) -> Axes:
    """Plot the energy dispersion matrix as an image: true energy (x) against reco energy (y).

    Drawn with ``pcolormesh`` over the true and reco bin edges on log axes (an ``imshow`` image
    would misplace log-spaced bins); the colour is the probability that a photon of true bin ``i``
    is reconstructed in reco bin ``j`` (as Gammapy's ``EDispKernel.plot_matrix``).
    """
    ax = _get_ax(ax)
    if dataset.edisp is None:
        raise ValueError(f"dataset {dataset.name!r} has no energy dispersion to plot")
    tlo, thi, _, tunit = _edges(dataset, "energy_true")
    rlo, rhi, _, runit = _edges(dataset, "energy")
    matrix = _values(dataset.edisp.transpose("energy_true", "energy"))
    # square-root colour scale as Gammapy's plot_matrix; negligible tails shown as background
    opts = {
        "cmap": "GnBu",
        "norm": PowerNorm(gamma=0.5, vmin=0.0, vmax=max(matrix.max(), 1e-12)),
        "shading": "flat",
        **kwargs,
    }
    image = np.ma.masked_less_equal(matrix.T, 1e-6 * matrix.max())
    mesh = ax.pcolormesh(np.append(tlo, thi[-1]), np.append(rlo, rhi[-1]), image, **opts)
    _energy_xaxis(ax, tunit, true=True)
    ax.set_yscale("log")
    ax.set_ylabel(f"Reconstructed energy [{_unit_label(runit)}]")
    if add_cbar:
        ax.figure.colorbar(mesh, ax=ax, label="Probability")
    return ax


def peek(dataset, fig: Figure | None = None) -> tuple[Axes, Axes, Axes]:
    """Quick-look summary: counts, background and excess; exposure; energy dispersion.

    Parameters
    ----------
    dataset : SpectrumDataset
    fig : `matplotlib.figure.Figure`, optional
        Figure to add the three axes to (default: a new 16 x 4.5 inch figure).

    Returns
    -------
    ax1, ax2, ax3 : `matplotlib.axes.Axes`
        Counts, exposure and energy dispersion panels.
    """
    if fig is None:
        fig = plt.figure(figsize=(16, 4.5))
        fig.subplots_adjust(left=0.05, right=0.97, bottom=0.13, top=0.92)
    ax1, ax2, ax3 = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.15], "wspace": 0.28})
    ax1.set_title("Counts")
    plot_counts(dataset, ax=ax1)
    lo, hi, x, _ = _edges(dataset)
    if dataset.counts is not None:
        counts = _values(dataset.counts)
        excess = _values(dataset.excess)
        sigma = _poisson_sigma_excess(dataset, counts)
        _errorbar_masked(
            ax1,
            x,
            excess,
            _xerr(lo, hi, x),
            np.vstack([sigma, sigma]),
            _mask_values(dataset),
            {"label": "Excess", "color": "black", "markersize": 3, "elinewidth": 0.8},
        )
        _legend(ax1)
    ax2.set_title("Exposure")
    if dataset.exposure is not None:
        plot_exposure(dataset, ax=ax2)
    ax3.set_title("Energy dispersion")
    if dataset.edisp is not None:
        plot_edisp(dataset, ax=ax3)
    return ax1, ax2, ax3


# models -------------------------------------------------------------------------------------------
def _energy_bounds(energy_bounds, energy_unit) -> tuple[u.Quantity, u.Quantity]:
    if isinstance(energy_bounds, u.Quantity):
        if energy_bounds.size != 2:
            raise ValueError(f"energy_bounds must hold two energies, got {energy_bounds.size}")
        emin, emax = energy_bounds[0], energy_bounds[1]
    elif isinstance(energy_bounds, Sequence) and len(energy_bounds) == 2:
        emin, emax = (u.Quantity(e) for e in energy_bounds)
    else:
        raise ValueError(f"energy_bounds must be two energies (e.g. [0.1, 100] * u.TeV), got {energy_bounds!r}")
    unit = u.Unit(energy_unit) if energy_unit is not None else emin.unit
    if not unit.is_equivalent(u.TeV):
        raise u.UnitsError(f"energy_bounds must be energies, got unit {unit!r}")
    emin, emax = emin.to(unit), emax.to(unit)
    if not 0 < emin.value < emax.value:
        raise ValueError(f"energy_bounds must satisfy 0 < emin < emax, got {emin}, {emax}")
    return emin, emax


def _dnde_sigma(model, energy) -> u.Quantity | None:
    """1-sigma error band of ``dN/dE`` from the parameters' covariance (`xspec_ds.models.errors`:
    linear propagation on a copy of the model, never by changing its parameters), or None when
    no parameter has an error."""
    from .models.errors import evaluate_error, model_covariance

    if not (np.diag(model_covariance(model)) > 0).any():
        return None
    return evaluate_error(model, energy)[1]


def plot_spectral_model(
    model,
    energy_bounds,
    ax: Axes | None = None,
    sed_type: str = "dnde",
    n_points: int = 100,
    energy_unit=None,
    flux_unit=None,
    show_error: bool = True,
    energy_power: int = 0,
    kwargs_error: dict | None = None,
    **kwargs,
) -> Axes:
    """Plot a spectral model between ``energy_bounds``, with a 1-sigma band from the fit.

    The band is the linear propagation ``sigma^2(E) = J(E) C J(E)^T`` of the parameter
    covariance ``C`` through the derivatives ``J`` of ``dN/dE`` (as Gammapy's
    ``SpectralModel.evaluate_error``). ``C`` is the covariance block that `Fit` stores on the
    model as ``model.covariance`` (ordered as ``model.parameters``). Without it (a model that was
    not fitted by `Fit`, or whose parameters were edited), the parameters' ``error`` values are used
    assuming the parameters are independent, which ignores their correlation (e.g. index and
    amplitude away from the reference energy) and so misestimates the band. No band is drawn
    when no free parameter has an error.

    Parameters
    ----------
    model : `SpectralModel` or `SkyModel`
    energy_bounds : Quantity or pair of Quantities/strings
        Lowest and highest energy, e.g. ``[0.1, 100] * u.TeV`` or ``("0.1 TeV", "100 TeV")``.
    ax : `matplotlib.axes.Axes`, optional
    sed_type : {"dnde", "e2dnde"}
        Differential flux ``dN/dE`` or spectral energy distribution ``E^2 dN/dE``.
    n_points : int
        Number of log-spaced energies.
    energy_unit, flux_unit : str or Unit, optional
        Plot units (default: the unit of ``energy_bounds``; ``cm-2 s-1 TeV-1`` for dnde and
        ``erg cm-2 s-1`` for e2dnde, as Gammapy).
    show_error : bool
        Draw the error band (when errors are available).
    energy_power : int
        Multiply the plotted quantity by ``E^energy_power`` (in ``energy_unit``).
    kwargs_error : dict, optional
        Passed to ``Axes.fill_between`` for the band.
    **kwargs : dict
        Passed to ``Axes.plot`` for the model line.

    Returns
    -------
    ax : `matplotlib.axes.Axes`
    """
    if sed_type not in SED_UNITS:
        raise ValueError(f"invalid sed_type {sed_type!r}; use one of {sorted(SED_UNITS)}")
    if int(n_points) < 2:
        raise ValueError(f"n_points must be at least 2, got {n_points}")
    model = getattr(model, "spectral_model", model)
    ax = _get_ax(ax)
    emin, emax = _energy_bounds(energy_bounds, energy_unit)
    energy = np.geomspace(emin.value, emax.value, int(n_points)) * emin.unit
    energy_tev = energy.to_value(u.TeV)
    dnde = model._dnde(energy_tev) * u.Unit("cm-2 s-1 TeV-1")
    sigma = _dnde_sigma(model, energy) if show_error else None
    factor = energy**2 if sed_type == "e2dnde" else 1.0
    funit = u.Unit(flux_unit) if flux_unit is not None else SED_UNITS[sed_type]
    if energy_power:
        factor = factor * energy.value**energy_power
    y = (dnde * factor).to_value(funit)
    (line,) = ax.plot(energy.value, y, **kwargs)
    if sigma is not None:
        dy = (sigma * factor).to_value(funit)
        opts = {"color": line.get_color(), "alpha": 0.25, "linewidth": 0, "label": "_error band"}
        opts.update(kwargs_error or {})
        ax.fill_between(energy.value, np.clip(y - dy, 0.0, None), y + dy, **opts)
    _energy_xaxis(ax, emin.unit)
    ax.set_yscale("log")
    extra = f" x (E/{_unit_label(emin.unit)})^{energy_power}" if energy_power else ""
    ax.set_ylabel(f"{SED_LABELS[sed_type]}{extra} [{_unit_label(funit)}]")
    return ax
