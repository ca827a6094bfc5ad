"""Spectral models, sky models and their parameters."""

from .absorption import EBLAbsorptionNormSpectralModel, WabsNormSpectralModel
from .core import FoVBackgroundModel, Models, SkyModel, make_name
from .parameter import Parameter, Parameters
from .spectral import (
    SPECTRAL_MODEL_REGISTRY,
    BrokenPowerLawSpectralModel,
    CompoundSpectralModel,
    ConstantSpectralModel,
    ExpCutoffPowerLawSpectralModel,
    LogParabolaSpectralModel,
    PowerLaw2SpectralModel,
    PowerLawNormSpectralModel,
    PowerLawSpectralModel,
    ScaleSpectralModel,
    SmoothBrokenPowerLawSpectralModel,
    SpectralModel,
    TemplateSpectralModel,
)

__all__ = [
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
    "SPECTRAL_MODEL_REGISTRY",
    "make_name",
]
