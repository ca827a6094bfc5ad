"""Source significance and profile-likelihood upper limits."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

import xspec_ds as xs
from xspec_ds.estimators import parameter_upper_limit, source_significance
from xspec_ds.estimators.significance import confidence_to_n_sigma


def test_ts_is_the_statistic_difference_to_no_source(dataset):
    res = source_significance(dataset, "source")
    stat_best = dataset.stat_sum()
    amp = dataset.models["source"].spectral_model.amplitude
    best = amp.value
    amp.value = 0.0
    stat_null = dataset.stat_sum()
    amp.value = best
    assert_allclose(res["ts"], stat_null - stat_best, rtol=1e-12, atol=0)
    assert_allclose(res["sqrt_ts"], np.sqrt(stat_null - stat_best), rtol=1e-12, atol=0)
    assert res["success"] and res["norm"][0] == "amplitude"
    # parameters left at the best fit, thawed as before
    assert not amp.frozen and not dataset.models["source"].spectral_model.index.frozen


def test_ts_refits_other_models_under_the_null(make_dataset):
    d = make_dataset(n=10, background_level=2.0)
    bkg = xs.FoVBackgroundModel(dataset_name=d.name)
    src = d.models["source"]
    d.models = [src, bkg]
    d.fake(random_state=3)
    with_refit = source_significance(d, "source", reoptimize=True)
    without = source_significance(d, "source", reoptimize=False, optimize=False)
    # refitting the background norm under the null can only lower the null statistic
    assert with_refit["stat_null"] <= without["stat_null"] + 1e-9


def test_unknown_source_and_no_norm(dataset):
    with pytest.raises(ValueError, match="not among the models"):
        source_significance(dataset, "nope")


def test_parameter_upper_limit_is_where_the_profile_rises(dataset):
    amp = dataset.models["source"].spectral_model.amplitude
    res = parameter_upper_limit(dataset, "amplitude", n_sigma=2, reoptimize=False)
    best_stat = dataset.stat_sum()
    best = amp.value
    amp.value = res["ul"]
    assert_allclose(dataset.stat_sum() - best_stat, 4.0, rtol=1e-4, atol=0)
    amp.value = best
    assert res["ul"] > res["value"] == best and res["success"]


def test_confidence_level_maps_to_sigma():
    assert_allclose(confidence_to_n_sigma(0.9544997), 2.0, rtol=1e-6, atol=0)
    assert_allclose(confidence_to_n_sigma(0.6826895), 1.0, rtol=1e-6, atol=0)
    with pytest.raises(ValueError):
        confidence_to_n_sigma(1.5)


def test_upper_limit_of_a_frozen_parameter_raises(dataset):
    with pytest.raises(ValueError, match="frozen"):
        parameter_upper_limit(dataset, "reference")
