"""Simple instrument responses for simulations and examples."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import xarray as xr
from scipy.special import ndtr

from .axes import MapAxis
from .containers import as_dataarray

__all__ = ["edisp_from_gauss", "exposure_from_aeff"]


def edisp_from_gauss(
    energy_axis_true: MapAxis, energy_axis: MapAxis, sigma: float = 0.1, bias: float = 0.0
) -> xr.DataArray:
    """Energy dispersion with ``ln(E_reco / E_true) ~ Normal(bias, sigma)``.

    Row ``i`` is the probability that a photon at the log centre of true bin ``i`` is
    reconstructed in each reco bin (CDF differences, so rows sum to the probability of landing
    inside the reco axis, at most 1).

    Parameters
    ----------
    energy_axis_true, energy_axis : MapAxis
        True ("energy_true") and reconstructed ("energy") axes.
    sigma, bias : float
        Resolution and bias in natural-log energy (0.1 is about 10 % resolution).

    Returns
    -------
    xarray.DataArray
        dims ``("energy_true", "energy")``.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    e_true = energy_axis_true.center.to_value(u.TeV)
    edges = energy_axis.edges.to_value(u.TeV)
    z = (np.log(edges)[None, :] - np.log(e_true)[:, None] - bias) / sigma
    matrix = np.diff(ndtr(z), axis=1)
    return as_dataarray("edisp", matrix, {"energy_true": energy_axis_true, "energy": energy_axis})


def exposure_from_aeff(energy_axis_true: MapAxis, aeff, livetime) -> xr.DataArray:
    """Exposure ``aeff(E_true) * livetime`` on the true-energy axis.

    ``aeff`` is a Quantity array (one value per true bin) or a callable of energy returning an
    area Quantity; ``livetime`` a time Quantity.
    """
    area = aeff(energy_axis_true.center) if callable(aeff) else u.Quantity(aeff)
    exposure = (area * u.Quantity(livetime)).to("m2 s")
    return as_dataarray("exposure", exposure, {"energy_true": energy_axis_true})
