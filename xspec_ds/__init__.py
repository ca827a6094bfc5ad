"""xspec_ds: xarray-native 1-D spectral likelihood analysis for gamma-ray and X-ray astronomy.

A spectrum dataset is an `xarray.Dataset`; `SpectrumDataset` (Gammapy's seed API) and the
``ds.spectrum`` accessor are two thin views on it.
"""

from . import (
    accessor,  # noqa: F401  (registers ds.spectrum)
    objects,  # noqa: F401  (registers the readers' class choice with xspec_ds.io)
)
from .axes import MapAxis, SpectrumGeom
from .dataset import SpectrumDataset
from .estimators import FluxPoints, FluxPointsEstimator, LightCurveEstimator
from .fit import Datasets, Fit, FitResult
from .fit.batch import fit_batch
from .gti import GTI
from .io import open_dataset, open_mfdataset
from .models import (
    BrokenPowerLawSpectralModel,
    CompoundSpectralModel,
    ConstantSpectralModel,
    EBLAbsorptionNormSpectralModel,
    ExpCutoffPowerLawSpectralModel,
    FoVBackgroundModel,
    LogParabolaSpectralModel,
    Models,
    Parameter,
    Parameters,
    PowerLaw2SpectralModel,
    PowerLawNormSpectralModel,
    PowerLawSpectralModel,
    ScaleSpectralModel,
    SkyModel,
    SmoothBrokenPowerLawSpectralModel,
    SpectralModel,
    TemplateSpectralModel,
    WabsNormSpectralModel,
)
from .onoff import SpectrumDatasetOnOff
from .ops.stack import stack  # xs.stack: many datasets in one vectorised reduction

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "MapAxis",
    "SpectrumGeom",
    "SpectrumDataset",
    "SpectrumDatasetOnOff",
    "GTI",
    "open_dataset",
    "open_mfdataset",
    "Fit",
    "FitResult",
    "fit_batch",
    "Datasets",
    "stack",
    "FluxPointsEstimator",
    "FluxPoints",
    "LightCurveEstimator",
    "Parameter",
    "Parameters",
    "SpectralModel",
    "PowerLawSpectralModel",
    "PowerLaw2SpectralModel",
    "LogParabolaSpectralModel",
    "ExpCutoffPowerLawSpectralModel",
    "BrokenPowerLawSpectralModel",
    "SmoothBrokenPowerLawSpectralModel",
    "ConstantSpectralModel",
    "TemplateSpectralModel",
    "ScaleSpectralModel",
    "CompoundSpectralModel",
    "PowerLawNormSpectralModel",
    "WabsNormSpectralModel",
    "EBLAbsorptionNormSpectralModel",
    "SkyModel",
    "FoVBackgroundModel",
    "Models",
]
