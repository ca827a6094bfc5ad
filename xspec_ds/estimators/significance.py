"""Source significance (TS, signed sqrt(TS)) and profile-likelihood upper limits of any parameter.

TS is the likelihood-ratio test statistic of a nested model (Wilks 1938; Mattox et al. 1996,
ApJ 461, 396): ``TS = S(null) - S(best)`` with the statistic ``S = -2 ln L`` (Cash or WSTAT).
The null hypothesis here, as Gammapy's ``ParameterEstimator``/``FluxEstimator``, is the
source's norm-like parameter at 0 (the source absent); with ``reoptimize=True`` the free
parameters of the other models are refitted under the null. ``sqrt_ts`` carries the sign of
the fitted norm.

The upper limit of a parameter at ``n_sigma`` is where the profile statistic (other free
parameters refitted when ``reoptimize``) rises by ``n_sigma**2`` above its minimum (Rolke et al.
2005, NIM A 551, 493; Gammapy's ``ParameterEstimator.estimate_ul``); ``n_sigma = 2`` is Gammapy's
default (``UL_CONF = 0.9545``), and a two-sided confidence level ``cl`` maps to
``n_sigma = Phi^-1(1 - (1 - cl)/2)`` as in Gammapy's flux-point files.
"""

from __future__ import annotations

import contextlib

import numpy as np
import scipy.stats

from ..fit import Datasets, Fit
from ..models import Parameter
from .flux_points import find_source

__all__ = ["source_significance", "parameter_upper_limit", "confidence_to_n_sigma"]


def confidence_to_n_sigma(confidence_level: float) -> float:
    """Two-sided Gaussian confidence level -> number of sigma (0.9545 -> 2.0)."""
    cl = float(confidence_level)
    if not 0 < cl < 1:
        raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level}")
    return float(scipy.stats.norm.isf(0.5 * (1 - cl)))


@contextlib.contextmanager
def _restore(parameters):
    saved = [(p, p.value, p.frozen, p.error) for p in parameters]
    try:
        yield
    finally:
        for p, v, fr, err in saved:
            p.value, p.frozen, p.error = v, fr, err


def _norm_parameter(model):
    spec = getattr(model, "spectral_model", model)
    for p in spec.parameters:
        if getattr(p, "is_norm", False):
            return p
    raise ValueError(
        f"the model of source {getattr(model, 'name', '?')!r} ({type(spec).__name__}) has no norm-like parameter "
        "(amplitude, norm, ...) to set to zero for the null hypothesis"
    )


def source_significance(
    datasets, source, fit: Fit | None = None, reoptimize: bool = True, optimize: bool = True
) -> dict:
    """TS and signed ``sqrt(TS)`` of a named source (null hypothesis: its norm at 0).

    Parameters
    ----------
    datasets : dataset, list or `xspec_ds.Datasets`
        With models; the source is ``datasets.models[source]``.
    source : str or int
        Name (or index) of the source.
    fit : `xspec_ds.Fit`, optional
    reoptimize : bool
        Refit the other models' free parameters under the null hypothesis (default True).
    optimize : bool
        Fit the full model first (default True); False takes the current parameters as best fit.

    Returns
    -------
    dict
        ``ts``, ``sqrt_ts``, ``stat`` (best fit), ``stat_null``, ``norm`` (name and best value of the
        source's norm-like parameter), ``success``. The models' parameters are left as found
        (the best fit when ``optimize``).
    """
    datasets = datasets if isinstance(datasets, Datasets) else Datasets(datasets)
    model = find_source(datasets.models, source)
    norm = _norm_parameter(model)
    fit = fit or Fit()
    success = True
    if optimize:
        result = fit.run(datasets)
        success = bool(result.success)
    stat = datasets.stat_sum()
    best = norm.value
    with _restore(datasets.parameters):
        for p in model.parameters:
            p.frozen = True
        norm.value = 0.0
        if reoptimize and any(not p.frozen for p in datasets.parameters):
            res0 = fit.optimize(datasets)
            success = success and bool(res0.success)
        stat_null = datasets.stat_sum()
    ts = stat_null - stat
    sqrt_ts = float(np.sign(best) * np.sqrt(max(ts, 0.0)))
    return {
        "ts": float(ts),
        "sqrt_ts": sqrt_ts,
        "stat": float(stat),
        "stat_null": float(stat_null),
        "norm": (norm.name, float(best)),
        "success": success,
    }


def parameter_upper_limit(
    datasets,
    parameter,
    n_sigma: float = 2.0,
    confidence_level: float | None = None,
    fit: Fit | None = None,
    reoptimize: bool = True,
    optimize: bool = True,
) -> dict:
    """Profile-likelihood upper limit of any model parameter.

    Parameters
    ----------
    datasets : dataset, list or `xspec_ds.Datasets`
    parameter : str or `xspec_ds.Parameter`
        The parameter (a name is looked up in ``datasets.models.parameters``; give the object
        when names repeat across models).
    n_sigma : float
        Statistic rise ``n_sigma**2`` (default 2, Gammapy's ``n_sigma_ul``).
    confidence_level : float, optional
        Two-sided confidence level instead of ``n_sigma`` (e.g. 0.95 -> 1.96 sigma).
    fit : `xspec_ds.Fit`, optional
    reoptimize : bool
        Refit the other free parameters along the profile (default True).
    optimize : bool
        Fit first (default True).

    Returns
    -------
    dict
        ``ul`` (in the parameter's unit), ``value`` (best fit), ``errp``, ``n_sigma``, ``unit``,
        ``success``.
    """
    datasets = datasets if isinstance(datasets, Datasets) else Datasets(datasets)
    if confidence_level is not None:
        n_sigma = confidence_to_n_sigma(confidence_level)
    if n_sigma <= 0:
        raise ValueError(f"n_sigma must be positive, got {n_sigma}")
    if not isinstance(parameter, Parameter):
        parameter = datasets.parameters[parameter]
    if parameter.frozen:
        raise ValueError(f"parameter {parameter.name!r} is frozen: thaw it to compute its upper limit")
    fit = fit or Fit()
    success = True
    if optimize:
        success = bool(fit.run(datasets).success)
    res = fit.confidence(datasets, parameter, sigma=n_sigma, reoptimize=reoptimize)
    value = parameter.value
    return {
        "ul": float(value + res["errp"]),
        "value": float(value),
        "errp": float(res["errp"]),
        "n_sigma": float(n_sigma),
        "unit": parameter.unit.to_string(),
        "success": success and bool(res["success"]),
    }
