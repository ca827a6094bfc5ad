"""Estimators: flux points (SED), light curves, source significance and upper limits.

Every energy bin (and time bin) is one row of a batched 1-D norm problem
(`xspec_ds.estimators.profile`), solved for all rows in one vectorised computation.
"""

from .flux_points import FluxPointsEstimator
from .flux_points_data import FluxPoints
from .lightcurve import LightCurveEstimator
from .significance import parameter_upper_limit, source_significance

__all__ = [
    "FluxPointsEstimator",
    "FluxPoints",
    "LightCurveEstimator",
    "source_significance",
    "parameter_upper_limit",
]
