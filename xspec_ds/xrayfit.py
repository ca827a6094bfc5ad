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
  fitted through the one likelihood path (`xspec_ds.likelihood`) with the records
  ``stats.STATISTICS[stat_type]``; `chi2_data` adds what they need (``stat_err``) and checks the
  variance.

The covariance of a chi-square fit is ``2 H^-1`` as for the likelihood statistics (chi2 is
``-2 ln L`` of a Gaussian up to a constant), i.e. the errors of Sherpa's ``covar`` (delta chi2 = 1).
"""

from __future__ import annotations

import numpy as np

from . import stats
from .grouping import GROUP, group_reduce

__all__ = ["StatType", "CHI2_TYPES", "active", "grouped_view", "n_fit_bins", "chi2_data"]

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
    """True when the dataset is grouped (cheap: one lookup). Chi-square statistics need no hook:
    `stats.get_statistic` picks their records from ``stat_type`` in the likelihood path."""
    return GROUP in dataset._data._coord_names


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


def chi2_data(view, data: dict, mask) -> dict:
    """Complete the likelihood ``data`` mapping of a chi-square dataset and check its variance.

    ``stat_type == "chi2"`` needs the ``stat_err`` variable (the file's STAT_ERR, Sherpa's
    ``use_errors=True``); every chi-square statistic needs a positive variance in the fitted
    bins (empty bins have none with ``chi2datavar``: group the spectrum or ignore them).
    """
    if view.stat_type == "chi2":
        if "stat_err" not in view._data.variables:
            raise ValueError(f"dataset {view.name!r}: stat_type 'chi2' needs a stat_err variable (STAT_ERR)")
        data["stat_err"] = np.asarray(view._data["stat_err"].values, dtype=np.float64)
        var = data["stat_err"] ** 2
    else:
        kind = "datavar" if view.stat_type == "chi2datavar" else "gehrels"
        _, var = stats.chi2_data_variance(
            data["counts"], data.get("counts_off"), data.get("alpha"), data.get("background"), kind=kind
        )
    bad = ~(var > 0) if mask is None else (~(var > 0) & mask)
    if np.any(bad):
        raise ValueError(
            f"dataset {view.name!r}: {view.stat_type} has zero variance in bin(s) {np.flatnonzero(bad)[:10].tolist()} "
            "(no counts): group the spectrum (group_counts) or ignore these bins"
        )
    return data


# the hooked methods: each returns what the dataset method would, computed on the grouped view -----
def stat_array(dataset) -> np.ndarray:
    return grouped_view(dataset)._stat_array_values()


def stat_sum(dataset) -> float:
    return grouped_view(dataset).stat_sum()
