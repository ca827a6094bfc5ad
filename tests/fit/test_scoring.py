"""Fisher scoring in `Fit` (scipy backend): the same optimum and errors as L-BFGS-B, on every
kind of dataset that gives its information, in fewer evaluations; a clean fallback otherwise."""

import astropy.units as u
import numpy as np
import pytest

import xspec_ds as xs
from xspec_ds import grouping

from ..conftest import build_arrays
from ..test_grouping import synthetic_onoff
from .test_fit import TRUE_AMP, make_fit_dataset, start_off

LBFGSB = {"method": "lbfgsb"}


def _free(datasets):
    return [p for p in xs.Datasets(datasets).parameters if not p.frozen]


def _fit_both(make):
    """Fit the dataset(s) ``make()`` builds with scoring and with L-BFGS-B, from the same start."""
    out = []
    for opts in ({}, LBFGSB):
        datasets = make()
        result = xs.Fit(optimize_opts=opts).run(datasets)
        free = _free(datasets)
        out.append((result, np.array([p.value for p in free]), np.array([p.error for p in free])))
    return out


def _assert_same_fit(scoring, reference):
    (r1, v1, e1), (r2, v2, e2) = scoring, reference
    assert r1.success and r2.success
    assert r1.optimize_result.backend_message.startswith("Fisher scoring converged")
    assert "Fisher" not in r2.optimize_result.backend_message
    np.testing.assert_allclose(r1.total_stat, r2.total_stat, rtol=0, atol=1e-7)
    assert np.all(np.abs(v1 - v2) <= 1e-4 * e2), (v1, v2, e2)  # the same optimum, well inside the errors
    np.testing.assert_allclose(e1, e2, rtol=1e-4, atol=0)


def _model(kind):
    amp = TRUE_AMP * u.Unit("cm-2 s-1 TeV-1")
    if kind == "pl":
        return xs.PowerLawSpectralModel(index=2.0, amplitude=1.5 * amp)
    if kind == "lp":
        return xs.LogParabolaSpectralModel(alpha=2.0, beta=0.05, amplitude=1.5 * amp)
    return xs.ExpCutoffPowerLawSpectralModel(index=2.0, amplitude=1.5 * amp, lambda_="0.05 TeV-1", alpha=1.5)


@pytest.mark.parametrize("kind", ["pl", "lp", "ecpl"])
def test_scoring_equals_lbfgsb_cash(kind):
    def make():
        ds, pl = make_fit_dataset(exposure=2e11, seed=3)
        ds.fake(random_state=3)
        ds.models = xs.SkyModel(_model(kind), name="src")
        return ds

    _assert_same_fit(*_fit_both(make))


def test_scoring_equals_lbfgsb_onoff_wstat():
    def make():
        ds, pl = make_fit_dataset(exposure=5e10, seed=5)
        onoff = xs.SpectrumDatasetOnOff.from_spectrum_dataset(
            ds, acceptance=1, acceptance_off=5, counts_off=np.random.default_rng(5).poisson(2.5, ds.counts.shape)
        )
        onoff.models = xs.SkyModel(_model("pl"), name="src")
        return onoff

    _assert_same_fit(*_fit_both(make))


def test_scoring_equals_lbfgsb_joint_group_and_single():
    """Three same-binning datasets (a vectorised group in `JointLikelihood`) and one of its own
    binning share one model."""

    def make():
        model = _model("pl")
        datasets = []
        for seed in (11, 12, 13):
            ds, _ = make_fit_dataset(seed=seed, name=f"g{seed}")
            datasets.append(ds)
        other, _ = make_fit_dataset(n=15, seed=14, name="other")
        datasets.append(other)
        for ds in datasets:
            ds.models = xs.SkyModel(model, name="src")
        return xs.Datasets(datasets)

    scoring, reference = _fit_both(make)
    _assert_same_fit(scoring, reference)


def test_scoring_on_a_banded_kernel_uses_fewer_evaluations():
    """A 400 x 200 Gaussian kernel (folded as a `forward.BandedKernel`): same fit, fewer
    evaluations, each one fold of the value and Jacobian rows."""
    from xspec_ds import forward

    def make():
        arrays, _, _ = build_arrays(n=200, exposure_scale_m2s=1e11, background_level=0.2)
        et = np.arange(arrays["edisp"].shape[0])[:, None] * arrays["edisp"].shape[1] / arrays["edisp"].shape[0]
        j = np.arange(arrays["edisp"].shape[1])[None, :]
        kernel = np.exp(-0.5 * ((j - et) / 4.0) ** 2)
        arrays["edisp"] = 0.9 * kernel / kernel.sum(axis=1, keepdims=True)
        ds = xs.SpectrumDataset(models=xs.SkyModel(_model("lp"), name="src"), name="big", **arrays)
        ds.fake(random_state=8)
        ds.models = xs.SkyModel(_model("lp"), name="src")
        return ds

    assert isinstance(make()._hot().edisp, forward.BandedKernel)
    scoring, reference = _fit_both(make)
    _assert_same_fit(scoring, reference)
    assert scoring[0].nfev < reference[0].nfev


def test_scoring_on_grouped_xray_spectrum():
    """Grouped on-off data are fitted on the group sums (`xrayfit` hook) by scoring too."""

    def make():
        ds = synthetic_onoff()
        grouping.set_grouping(ds.data, np.array([1, -1, -1, 1, -1, 1, 1, -1, -1, -1] + [1, -1] * 7))
        ds.reset_data_cache()
        return ds

    _assert_same_fit(*_fit_both(make))


def test_free_background_model_falls_back_to_lbfgsb():
    """A free background norm acts on the prediction directly: no information from the fold, so
    the fit runs L-BFGS-B (and still finds the optimum)."""
    ds, pl = make_fit_dataset(exposure=2e11, seed=3)
    bkg = xs.FoVBackgroundModel(dataset_name=ds.name)
    ds.models = xs.Models([xs.SkyModel(pl, name="src"), bkg])
    start_off(pl)
    result = xs.Fit().run(ds)
    assert result.success
    assert "Fisher" not in result.optimize_result.backend_message
    g = xs.fit.fit._Objective(xs.Datasets([ds]), _free([ds])).grad(_free_x(ds))
    assert np.max(np.abs(g)) < 1e-3


def _free_x(ds):
    obj = xs.fit.fit._Objective(xs.Datasets([ds]), _free([ds]))
    return obj.x0()


def test_optimum_on_a_bound_falls_back_and_stops_there():
    ds, pl = make_fit_dataset(exposure=2e11, seed=3)
    pl.parameters["index"].max = 2.2  # the truth, 2.3, is outside
    start_off(pl)
    result = xs.Fit().run(ds)
    assert result.success
    assert "Fisher scoring converged" not in result.optimize_result.backend_message
    np.testing.assert_allclose(pl.parameters["index"].value, 2.2, rtol=0, atol=1e-8)


def test_unknown_method_is_refused():
    ds, _ = make_fit_dataset()
    with pytest.raises(ValueError, match="unknown scipy fit method 'newton'.*'auto' or 'lbfgsb'"):
        xs.Fit(optimize_opts={"method": "newton"}).run(ds)


def test_stat_value_equals_stat_sum():
    """The value-only path of the objective (line searches, MINUIT's function calls) is `stat_sum`."""
    ds, pl = make_fit_dataset(seed=21)
    start_off(pl)
    obj = xs.fit.fit._Objective(xs.Datasets([ds]), _free([ds]))
    x = obj.x0() * 1.01
    np.testing.assert_allclose(obj.fun(x), ds.stat_sum(), rtol=1e-13, atol=0)
    np.testing.assert_allclose(obj.fun_grad(x)[0], ds.stat_sum(), rtol=1e-13, atol=0)
