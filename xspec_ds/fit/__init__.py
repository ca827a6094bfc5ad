"""Fitting: `Fit` (scipy or MINUIT backends) and `Datasets` for joint fits."""

from .datasets import Datasets
from .fit import CovarianceResult, Fit, FitResult, OptimizeResult

__all__ = ["Fit", "FitResult", "OptimizeResult", "CovarianceResult", "Datasets"]
