"""Fit-side hooks for X-ray spectra: grouped fitting and the chi-square statistics.

Two things change how a dataset's statistic is computed, and both are handled here so that the
dataset classes only carry a one-line hook (``if xrayfit.active(self): ...``):

- **Grouping** (`xspec_ds.grouping`): a Dataset with a ``group`` coordinate is fitted on its
  group reduction (`grouping.group_reduce`). `grouped_view` builds that reduction once per
  change of the Dataset's variables and wraps it in a dataset object of the same class that
  shares the models, so Cash/WSTAT, their gradients, ``npred``, residuals and plots all run
  unchanged on the groups.
- **Chi-square statistics** (``dataset.stat_type = "chi2datavar"`` or ``"chi2gehrels"``, Sherpa's
  ``Chi2DataVar`` / ``Chi2Gehrels`` with the background subtracted, `xspec_ds.stats`): the type is
  stored in the Dataset's ``attrs["stat_type"]`` (so it follows the Dataset through netCDF) and
  dispatched here. MERGE NOTE: this dispatch is the temporary one the x-ray brief asks for; the
  engine's statistic registry can take ``stats.CHI2_STATISTICS`` records unchanged and replace
  `chi2_stat_gradient`.

The covariance of a chi-square fit is ``2 H^-1`` as for the likelihood statistics (chi2 is
``-2 ln L`` of a Gaussian up to a constant), i.e. the errors of Sherpa's ``covar`` (delta chi2 = 1).
"""

from __future__ import annotations

import numpy as np

from . import forward, stats
from .grouping import GROUP, group_reduce

__all__ = ["StatType", "CHI2_TYPES", "active", "grouped_view", "n_fit_bins", "chi2_stat_array", "chi2_stat_gradient"]

CHI2_TYPES = ("chi2datavar", "chi2gehrels", "chi2")
"""``chi2`` uses the ``stat_err`` variable (the file's STAT_ERR, Sherpa's ``use_errors=True``)."""


class StatType:
    """``dataset.stat_type``: the class default (``"cash"``/``"wstat"``) unless set to a chi2 type.

    Read on the class it gives the default (``SpectrumDatasetOnOff.stat_type == "wstat"``).
    """

    def __init__(self, default: str):
        self.default = default

    def __get__(self, obj, cls=None):
        if obj is None:
            return self.default
        return obj._data.attrs.get("stat_type", self.default)

    def __set__(self, obj, value):
        value = str(value)
        allowed = (self.default, *CHI2_TYPES)
        if value not in allowed:
            raise ValueError(f"dataset {obj.name!r}: unknown stat_type {value!r}; use one of {list(allowed)}")
        if value == self.default:
            obj._data.attrs.pop("stat_type", None)
        else:
            obj._data.attrs["stat_type"] = value
        obj._xray_view = None


def active(dataset) -> bool:
    """True when the dataset is grouped or uses a chi-square statistic (cheap: two lookups)."""
    data = dataset._data
    return GROUP in data._coord_names or "stat_type" in data.attrs


def _view_key(data):
    return tuple((k, id(v), id(v._data)) for k, v in data._variables.items()), data.attrs.get("stat_type")


def grouped_view(dataset):
    """The dataset object the statistic is computed on: ``dataset`` itself when ungrouped, else
    a cached dataset (same class, same models object) on `grouping.group_reduce` of its Dataset.

    The cache is rebuilt when a variable or coordinate of the Dataset is replaced; after editing
    ``.values`` in place call ``dataset.reset_data_cache()``.
    """
    data = dataset._data
    if GROUP not in data._coord_names:
        return dataset
    key = _view_key(data)
    cached = getattr(dataset, "_xray_view", None)
    if cached is not None and cached[0] == key:
        view = cached[1]
    else:
        view = type(dataset).from_xarray(group_reduce(data), validate=False)
        dataset._xray_view = (key, view)
    view._models = dataset._models  # share the container: model changes are seen at once
    return view


def n_fit_bins(dataset) -> int:
    """Number of bins (groups when grouped) the statistic sums over."""
    view = grouped_view(dataset)
    mask = view._hot().mask
    return int(view._energy_axis.nbin if mask is None else np.count_nonzero(mask))


def _chi2_inputs(view):
    hot = view._hot()
    if hot.counts is None:
        raise ValueError(f"dataset {view.name!r} has no counts: cannot compute the statistic")
    data = {"counts": hot.counts}
    onoff = getattr(view, "_onoff", None)
    if onoff is not None:
        h = view._require(view.stat_type)
        data["counts_off"], data["alpha"] = h.n_off, h.alpha
    else:
        bkg = view._npred_background_values()
        if bkg is not None:
            data["background"] = bkg
    return data


def _data_variance(view, data):
    if view.stat_type == "chi2":
        if "stat_err" not in view._data.variables:
            raise ValueError(f"dataset {view.name!r}: stat_type 'chi2' needs a stat_err variable (STAT_ERR)")
        err = np.asarray(view._data["stat_err"].values, dtype=np.float64)
        d = data["counts"] - data.get("background", 0.0)
        return d, err**2
    kind = "datavar" if view.stat_type == "chi2datavar" else "gehrels"
    return stats.chi2_data_variance(
        data["counts"], data.get("counts_off"), data.get("alpha"), data.get("background"), kind=kind
    )


def _check_variance(view, data, mask):
    _, var = _data_variance(view, data)
    bad = ~(var > 0) if mask is None else (~(var > 0) & mask)
    if np.any(bad):
        raise ValueError(
            f"dataset {view.name!r}: {view.stat_type} has zero variance in bin(s) {np.flatnonzero(bad)[:10].tolist()} "
            "(no counts): group the spectrum (group_counts) or ignore these bins"
        )


def chi2_stat_array(view) -> np.ndarray:
    """Chi-square per bin of an (already grouped) dataset view."""
    mu_sig = view._npred_signal_values()
    data = _chi2_inputs(view)
    if mu_sig is None:
        mu_sig = np.zeros_like(data["counts"])
    d, var = _data_variance(view, data)
    return stats.chi2(d, var, mu_sig)


def chi2_stat_gradient(view, params) -> tuple[float, np.ndarray]:
    """Chi-square summed over the mask and its gradient with respect to ``params``.

    ``d chi2 / d p = sum_j w_j d mu_j / d p`` with ``w = -2 (d - mu) / sigma^2``
    (`stats.chi2_gradient_weights`), back-projected once through the dispersion kernel
    (`forward.backproject`, the adjoint fold) and dotted with each parameter's ``d flux / d p``.
    """
    data = _chi2_inputs(view)
    mask = view._hot().mask
    _check_variance(view, data, mask)
    mu_sig = view._npred_signal_values()
    if mu_sig is None:
        mu_sig = np.zeros_like(data["counts"])
    d, var = _data_variance(view, data)
    stat = stats.chi2(d, var, mu_sig)
    w = stats.chi2_gradient_weights(d, var, mu_sig)
    if mask is not None:
        total = float(np.sum(stat, where=mask))
        w = np.where(mask, w, 0.0)
    else:
        total = float(np.sum(stat))
    index = {id(p): k for k, p in enumerate(params)}
    grad = np.zeros(len(params))
    hot, v = view._hot(), None
    for ev in view.evaluators.values():
        mine = [p for p in ev.model.parameters if id(p) in index]
        if mine:
            if v is None:  # adjoint: d chi2 / d mu_true once, then one dot product per parameter
                v = forward.backproject(w, hot.edisp) * hot.exposure
            dflux = ev.model.spectral_model._integral_deriv(hot.e_lo, hot.e_hi, mine, ev._nodes(hot))
            grad[[index[id(p)] for p in mine]] += dflux @ v
    return total, grad


# the hooked methods: each returns what the dataset method would, computed on the view -------------
def stat_array(dataset) -> np.ndarray:
    view = grouped_view(dataset)
    if view.stat_type in CHI2_TYPES:
        return chi2_stat_array(view)
    return view._stat_array_values()


def stat_sum(dataset) -> float:
    view = grouped_view(dataset)
    if view.stat_type in CHI2_TYPES:
        return chi2_stat_gradient(view, [])[0]
    return view.stat_sum()


def stat_gradient(dataset, params) -> tuple[float, np.ndarray]:
    view = grouped_view(dataset)
    if view.stat_type in CHI2_TYPES:
        return chi2_stat_gradient(view, params)
    return view._stat_gradient(params)
