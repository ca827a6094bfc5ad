"""Honest fit results (`xspec_ds.fit.covariance`): labelled covariance and correlation, NaN errors
plus a warning after a failed covariance or optimisation (never stale numbers, also not in
YAML), and result messages that agree with ``success``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
import yaml

import xspec_ds as xs
from xspec_ds.fit.covariance import (
    MESSAGES,
    CovarianceWarning,
    check_covariance,
    correlation_dataarray,
    covariance_dataarray,
    parameter_labels,
)

from .._requirements import require
from ..conftest import build_arrays


def fitted_dataset(seed=3, index=2.0):
    arrays, _, _ = build_arrays(n=20, exposure_scale_m2s=5e10, edisp="smeared")
    pl = xs.PowerLawSpectralModel(index=2.3, amplitude="2e-11 cm-2 s-1 TeV-1", reference="1 TeV")
    ds = xs.SpectrumDataset(models=xs.SkyModel(pl, name="src"), name="cov", **arrays)
    ds.fake(random_state=seed)
    pl.parameters["index"].value = index
    return ds, pl


def test_result_covariance_and_correlation_are_labelled():
    ds, pl = fitted_dataset()
    result = xs.Fit().run(ds)
    assert result.success
    cov = result.covariance
    assert isinstance(cov, xr.DataArray) and cov.dims == ("parameter", "parameter_j")
    assert list(cov["parameter"].values) == ["index", "amplitude"] == list(cov["parameter_j"].values)
    c = cov.values
    np.testing.assert_array_equal(c, c.T)
    for name in ("index", "amplitude"):
        assert np.sqrt(float(cov.sel(parameter=name, parameter_j=name))) == pl.parameters[name].error
    corr = result.correlation
    assert corr.dims == ("parameter", "parameter_j")
    expected = c[0, 1] / np.sqrt(c[0, 0] * c[1, 1])
    np.testing.assert_allclose(corr.values, [[1.0, expected], [expected, 1.0]], rtol=1e-14, atol=0)
    assert -1 < expected < 0  # power-law index and amplitude anti-correlate at a 1 TeV reference below the peak


def test_model_covariance_is_labelled_over_all_its_parameters():
    ds, pl = fitted_dataset()
    result = xs.Fit().run(ds)
    mcov, mcorr = pl.covariance, pl.correlation
    assert list(mcov["parameter"].values) == ["index", "amplitude", "reference"]
    np.testing.assert_array_equal(mcov.sel(parameter="reference").values, 0.0)  # frozen: zero row
    xr.testing.assert_equal(
        mcov.sel(parameter=["index", "amplitude"], parameter_j=["index", "amplitude"]).drop_vars("unit"),
        result.covariance.drop_vars("unit"),
    )
    assert float(mcorr.sel(parameter="reference", parameter_j="reference")) == 1.0
    assert float(mcorr.sel(parameter="reference", parameter_j="index")) == 0.0
    assert mcov["unit"].values[2] == "TeV"


def test_failed_covariance_gives_nan_errors_warning_and_says_so():
    ds, pl = fitted_dataset()
    fit = xs.Fit()
    fit.run(ds)
    assert np.isfinite(pl.parameters["index"].error)  # errors of a good fit ...
    with pytest.warns(CovarianceWarning, match="Hessian not positive definite"):
        cov = fit.covariance(ds, _hessian=np.array([[1.0, 0.0], [0.0, -1.0]]))
    assert not cov.success and cov.message == f"{MESSAGES['covariance_failed']}: Hessian not positive definite"
    # ... are not left behind (stale), not even partly
    assert np.isnan(pl.parameters["index"].error) and np.isnan(pl.parameters["amplitude"].error)
    assert (
        np.isnan(cov.matrix).all()
        and np.isnan(pl.covariance.sel(parameter="index", parameter_j=["index", "amplitude"]).values).all()
    )
    params = yaml.safe_load(ds.models.to_yaml())["components"][0]["spectral"]["parameters"]
    errors = {p["name"]: p.get("error") for p in params}
    assert np.isnan(errors["index"]) and np.isnan(errors["amplitude"])


def test_failed_covariance_in_run_sets_success_false():
    ds, pl = fitted_dataset()
    fit = xs.Fit()
    orig = fit.covariance

    def broken(datasets, _hessian=None):
        n = len([p for p in xs.Datasets(datasets).parameters if not p.frozen])
        return orig(datasets, _hessian=-np.eye(n))

    fit.covariance = broken
    with pytest.warns(CovarianceWarning):
        result = fit.run(ds)
    assert result.optimize_result.success and not result.success
    assert result.message.startswith(MESSAGES["optimize_ok"]) and "covariance failed" in result.message
    assert np.isnan(result.covariance.values).all() and np.isnan(result.correlation.values).all()
    assert np.isnan(pl.parameters["index"].error)


def test_failed_optimisation_leaves_no_stale_errors():
    ds, pl = fitted_dataset()
    xs.Fit().run(ds)
    assert np.isfinite(pl.parameters["amplitude"].error)
    pl.parameters["index"].value = 3.5
    pl.parameters["amplitude"].value = 1e-13
    fit = xs.Fit(optimize_opts={"options": {"maxiter": 1}, "newton_steps": 0})
    with pytest.warns(CovarianceWarning, match="optimization failed"):
        result = fit.run(ds)
    assert not result.success and result.covariance is None
    assert result.message.startswith(MESSAGES["optimize_failed"] + ":")
    assert MESSAGES["covariance_skipped"] in result.message
    assert np.isnan(pl.parameters["index"].error) and np.isnan(pl.parameters["amplitude"].error)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("backend", ["scipy", "minuit"])
def test_messages_agree_with_success(seed, backend):
    if backend == "minuit":
        require("iminuit")
    ds, _ = fitted_dataset(seed=seed, index=1.6 + 0.3 * seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CovarianceWarning)
        result = xs.Fit(backend=backend).run(ds)
    msg = result.message
    assert "ABNORMAL" not in msg and "not accurate" not in msg.split(";")[0]
    if result.success:
        assert msg == f"{MESSAGES['optimize_ok']}; {result.covariance_result.message}"
        assert result.covariance_result.message.startswith(MESSAGES["covariance_ok"])
    else:
        assert "failed" in msg
    assert result.backend_message  # the backend's own words are kept


def test_parameter_labels_unique_for_shared_names():
    a = xs.SkyModel(xs.PowerLawSpectralModel(), name="a")
    b = xs.SkyModel(xs.PowerLawSpectralModel(), name="b")
    params = [a.parameters["index"], b.parameters["index"], a.parameters["amplitude"]]
    assert parameter_labels(params, [a, b]) == ["a.index", "b.index", "amplitude"]


@pytest.mark.parametrize(
    ("matrix", "ok", "words"),
    [
        ([[2.0, 0.5], [0.5, 1.0]], True, ""),
        ([[1.0, 2.0], [2.0, 1.0]], False, "not positive definite"),
        ([[1.0, 0.0], [0.0, 0.0]], False, "not positive definite"),
        ([[1.0, 0.1], [0.3, 1.0]], False, "not symmetric"),
        ([[np.nan, 0.0], [0.0, 1.0]], False, "non-finite"),
        ([[np.inf, 0.0], [0.0, 1.0]], False, "non-finite"),
    ],
)
def test_check_covariance(matrix, ok, words):
    got, reason = check_covariance(np.array(matrix))
    assert got is ok and words in reason


def test_correlation_of_frozen_and_nan():
    cov = covariance_dataarray(np.array([[4.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]), ["a", "b", "c"])
    corr = correlation_dataarray(cov)
    np.testing.assert_array_equal(corr.values, [[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])
    nan = correlation_dataarray(cov.copy(data=np.full((3, 3), np.nan)))
    assert np.isnan(nan.values).all()
