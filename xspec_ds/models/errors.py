"""Errors of derived quantities of a spectral model, propagated from the parameter covariance.

Linear (first-order, "delta method") propagation: for a quantity ``f(theta)``,
``sigma_f^2 = J C J^T`` with ``J = df/dtheta`` and ``C`` the covariance of the parameters
(Gammapy 1.x ``SpectralModel.evaluate_error``/``integral_error``/``energy_flux_error``; Gammapy
2.1 samples the parameters from the same Gaussian and quotes percentiles, which agrees to
first order). ``J`` is computed by central differences with a step of 1e-3 standard deviation of
each parameter on a *copy* of the model, so the user's parameters are never modified; the
truncation error is ~1e-7 relative.

``C`` is the block of the fit covariance that `xspec_ds.Fit` stores on the model as
``model.covariance`` (ordered as ``model.parameters``); without it, the parameters' ``error``
values are used as independent errors (ignoring correlations).
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import xarray as xr

__all__ = [
    "covariance_dataarray",
    "correlation_dataarray",
    "model_covariance",
    "propagate_error",
    "evaluate_error",
    "integral_error",
    "energy_flux_error",
    "plot_error",
]


def covariance_dataarray(matrix: np.ndarray, labels: list[str], units: list[str] | None = None) -> xr.DataArray:
    """The covariance as ``DataArray(("parameter", "parameter_j"))`` labelled by parameter."""
    matrix = np.asarray(matrix, dtype=np.float64)
    coords = {"parameter": list(labels), "parameter_j": list(labels)}
    if units is not None:
        coords["unit"] = ("parameter", list(units))
    return xr.DataArray(matrix, dims=("parameter", "parameter_j"), coords=coords, name="covariance")


def correlation_dataarray(cov: xr.DataArray) -> xr.DataArray:
    """``C_ij / sqrt(C_ii C_jj)``; 0 off the diagonal for parameters without variance (frozen),
    1 on their diagonal; NaN where the covariance is NaN."""
    c = np.asarray(cov.values, dtype=np.float64)
    sigma = np.sqrt(np.clip(np.diag(c), 0.0, None))
    outer = np.outer(sigma, sigma)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(outer > 0, c / np.where(outer > 0, outer, 1.0), 0.0)
    corr[np.isnan(c)] = np.nan
    idx = np.arange(corr.shape[0])
    corr[idx, idx] = np.where(np.isnan(np.diag(c)), np.nan, 1.0)
    return cov.copy(data=corr).rename("correlation")


def model_covariance(model) -> np.ndarray:
    """Covariance over ``model.parameters`` (zeros for frozen parameters)."""
    params = list(model.parameters)
    cov = getattr(model, "covariance", None)
    if cov is not None:
        cov = np.asarray(cov, dtype=np.float64)
        if cov.shape == (len(params), len(params)) and np.isfinite(cov).all():
            return cov
    err = np.array([0.0 if p.frozen or not np.isfinite(p.error) else p.error for p in params], dtype=np.float64)
    return np.diag(err**2)


def propagate_error(model, fn) -> tuple:
    """Value and 1-sigma error of ``fn(model)`` (a Quantity or array), by ``J C J^T``.

    ``fn`` is evaluated on copies of ``model`` with one parameter shifted by ``+-h``; the
    model itself is not modified.
    """
    model = getattr(model, "spectral_model", model)
    cov = model_covariance(model)
    value = fn(model)
    unit = value.unit if isinstance(value, u.Quantity) else None
    base = np.asarray(value.value if unit is not None else value, dtype=np.float64)
    active = np.flatnonzero(np.diag(cov) > 0)
    if active.size == 0:
        return value, np.zeros(base.shape) * (unit if unit is not None else 1)
    work = model.copy()
    wparams = list(work.parameters)
    jac = np.empty((active.size,) + base.shape)
    for row, k in enumerate(active):  # loop over the (few) parameters, vectorised over energies
        par = wparams[k]
        v0 = par.value
        h = 1e-3 * np.sqrt(cov[k, k])
        par.value = v0 + h
        fp = fn(work)
        par.value = v0 - h
        fm = fn(work)
        par.value = v0
        fp = fp.to_value(unit) if unit is not None else np.asarray(fp)
        fm = fm.to_value(unit) if unit is not None else np.asarray(fm)
        jac[row] = (fp - fm) / (2 * h)
    sub = cov[np.ix_(active, active)]
    var = np.einsum("i...,ij,j...->...", jac, sub, jac)
    err = np.sqrt(np.clip(var, 0.0, None))
    return value, (err * unit if unit is not None else err)


def _stack(value, err):
    """``(value, errn, errp)`` stacked along a new first axis (Gammapy 2.1's layout)."""
    return u.Quantity([value, err, err]) if isinstance(value, u.Quantity) else np.stack([value, err, err])


def evaluate_error(model, energy) -> u.Quantity:
    """``dN/dE`` and its error at ``energy``: a Quantity of shape ``(3,) + energy.shape``,
    ``[dnde, dnde_errn, dnde_errp]`` (symmetric errors: ``errn == errp``)."""
    energy = u.Quantity(energy)
    return _stack(*propagate_error(model, lambda m: m(energy)))


def integral_error(model, energy_min, energy_max) -> u.Quantity:
    """Integral flux between the bounds and its error, ``[flux, flux_errn, flux_errp]``."""
    energy_min, energy_max = u.Quantity(energy_min), u.Quantity(energy_max)
    return _stack(*propagate_error(model, lambda m: m.integral(energy_min, energy_max)))


def energy_flux_error(model, energy_min, energy_max) -> u.Quantity:
    """Energy flux between the bounds and its error, ``[eflux, eflux_errn, eflux_errp]``."""
    energy_min, energy_max = u.Quantity(energy_min), u.Quantity(energy_max)
    return _stack(*propagate_error(model, lambda m: m.energy_flux(energy_min, energy_max)))


def plot_error(
    model, energy_bounds, ax=None, sed_type: str = "dnde", energy_power: int = 0, n_points: int = 100, **kwargs
):
    """The 1-sigma band ("butterfly") of ``dN/dE`` or ``E^2 dN/dE`` between ``energy_bounds``.

    Same axes conventions as `SpectralModel.plot` (TeV; Gammapy's default flux units), so
    ``model.plot_error(ax=ax)``, ``model.plot(ax=ax)`` and ``flux_points.plot(ax=ax)`` compose.
    """
    import matplotlib.pyplot as plt

    from ..plotting import SED_UNITS, _energy_bounds

    if sed_type not in SED_UNITS:
        raise ValueError(f"invalid sed_type {sed_type!r}; use one of {sorted(SED_UNITS)}")
    ax = plt.gca() if ax is None else ax
    emin, emax = _energy_bounds(energy_bounds, None)
    energy = np.geomspace(emin.value, emax.value, int(n_points)) * emin.unit
    dnde, err, _ = evaluate_error(model, energy)
    factor = energy**2 if sed_type == "e2dnde" else 1.0
    if energy_power:
        factor = factor * energy.value**energy_power
    y = (dnde * factor).to_value(SED_UNITS[sed_type])
    dy = (err * factor).to_value(SED_UNITS[sed_type])
    opts = {"alpha": 0.3, "linewidth": 0, "facecolor": kwargs.pop("color", "C0")}
    opts.update(kwargs)
    ax.fill_between(energy.value, np.clip(y - dy, 0.0, None), y + dy, **opts)
    ax.set_xscale("log")
    ax.set_yscale("log")
    return ax
