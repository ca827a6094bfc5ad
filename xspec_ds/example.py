"""The bundled example: a simulated IACT-like spectrum of a Crab-like source.

The file ``xspec_ds/data/example_spectrum.nc`` is made by ``scripts/make_example_data.py`` with
`simulate_example` (fixed seed); it is simulated, so it carries no third-party data terms.
"""

from __future__ import annotations

from importlib import resources

import astropy.units as u
import numpy as np
import xarray as xr

from .axes import MapAxis
from .dataset import SpectrumDataset
from .gti import GTI
from .irf import edisp_from_gauss, exposure_from_aeff
from .models import PowerLawSpectralModel, SkyModel

__all__ = ["EXAMPLE_TRUTH", "simulate_example", "example_path", "load_example"]

EXAMPLE_TRUTH = {"index": 2.6, "amplitude": 3.8e-11, "reference": 1.0}
"""True power law of the example (amplitude in cm-2 s-1 TeV-1 at ``reference`` TeV)."""


def _aeff(energy):
    """A smooth IACT-like effective area: rises from threshold and saturates at ~1e5 m2."""
    e = energy.to_value(u.TeV)
    return 1.2e5 * (1 - np.exp(-((e / 0.15) ** 1.5))) / (1 + (e / 80.0)) * u.m**2


def simulate_example(random_state: int = 20261125, livetime="2 h") -> SpectrumDataset:
    """Simulate the example dataset (24 reco bins 0.2-50 TeV, 48 true bins 0.1-100 TeV).

    Safe range 0.4-40 TeV, Gaussian log-energy dispersion of 12 %, a background falling as
    E^-2.7 and counts drawn from the `EXAMPLE_TRUTH` power law.
    """
    e_reco = MapAxis.from_energy_bounds(0.2, 50, 24, unit="TeV", name="energy")
    e_true = MapAxis.from_energy_bounds(0.1, 100, 48, unit="TeV", name="energy_true")
    livetime = u.Quantity(livetime).to(u.s)
    ds = SpectrumDataset.create(e_reco, e_true, name="example")
    ds.exposure = exposure_from_aeff(e_true, _aeff, livetime)
    ds.edisp = edisp_from_gauss(e_true, e_reco, sigma=0.12)
    centers = e_reco.center.to_value(u.TeV)
    ds.background = (
        30.0
        * (centers / 0.5) ** -1.7
        * np.diff(e_reco.edges.to_value(u.TeV))
        / np.diff(e_reco.edges.to_value(u.TeV))[0]
    )
    lo, hi = e_reco.edges_min.to_value(u.TeV), e_reco.edges_max.to_value(u.TeV)
    ds.mask_safe = (lo >= 0.4 * (1 - 1e-9)) & (hi <= 40 * (1 + 1e-9))
    truth = PowerLawSpectralModel(
        index=EXAMPLE_TRUTH["index"],
        amplitude=f"{EXAMPLE_TRUTH['amplitude']} cm-2 s-1 TeV-1",
        reference=f"{EXAMPLE_TRUTH['reference']} TeV",
    )
    ds.models = SkyModel(truth, name="crab-like")
    ds.fake(random_state)
    ds.gti = GTI([0.0] * u.s, [livetime.value * 1.05] * u.s, reference_time="2026-01-15T21:00:00")
    ds.data["livetime"] = xr.Variable((), livetime.value, {"units": "s", "long_name": "livetime"})
    ds.models = None
    return ds


def example_path():
    """Path of the bundled example netCDF file."""
    return resources.files("xspec_ds") / "data" / "example_spectrum.nc"


def load_example() -> SpectrumDataset:
    """Load the bundled example (into memory) as a `SpectrumDataset`."""
    with resources.as_file(example_path()) as path:
        data = xr.load_dataset(path)
    return SpectrumDataset.from_xarray(data)
