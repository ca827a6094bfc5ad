"""Fit: truth recovery, analytic MLEs, backends, covariance vs profile likelihood, joint fits, pulls."""

import math

import astropy.units as u
import numpy as np
import pytest

import xspec_ds as xs

from .._requirements import require, require_gammapy
from ..conftest import build_arrays, gammapy_copy

TRUE_INDEX, TRUE_AMP = 2.3, 2e-11


def make_fit_dataset(n=20, exposure=2e10, background=0.5, seed=1, name="fitds", model=None, fake=True):
    arrays, er, et = build_arrays(n=n, exposure_scale_m2s=exposure, background_level=background)
    pl = model or xs.PowerLawSpectralModel(index=TRUE_INDEX, amplitude=TRUE_AMP * u.Unit("cm-2 s-1 TeV-1"))
    ds = xs.SpectrumDataset(models=xs.SkyModel(pl, name="src"), name=name, **arrays)
    if fake:
        ds.fake(random_state=seed)
    return ds, pl


def start_off(pl):
    pl.parameters["index"].value = 2.0
    pl.parameters["amplitude"].value = 1.5e-11


@pytest.mark.parametrize("backend", ["scipy", "minuit"])
def test_fit_recovers_truth_high_statistics(backend):
    if backend == "minuit":
        require("iminuit")
    ds, pl = make_fit_dataset(exposure=2e11, seed=3)
    start_off(pl)
    result = xs.Fit(backend=backend).run(ds)
    assert result.success
    idx, amp = pl.parameters["index"], pl.parameters["amplitude"]
    assert 0 < idx.error < 0.01 and 0 < amp.error < 0.01 * TRUE_AMP
    assert abs(idx.value - TRUE_INDEX) < 4 * idx.error
    assert abs(amp.value - TRUE_AMP) < 4 * amp.error
    assert result.total_stat == pytest.approx(ds.stat_sum(), rel=1e-12, abs=0)
    assert result.parameters["index"] is idx


def test_fit_amplitude_only_analytic_mle():
    """Free amplitude, no background: Cash is minimised at A = A0 * sum(n) / sum(mu0), with
    covariance 2 / (d2C/dA2) = A^2 / sum(n)."""
    ds, pl = make_fit_dataset(background=0.0, seed=11)
    pl.parameters["index"].frozen = True
    n_tot = ds.counts.values.sum()
    mu0 = ds.npred().values.sum()
    expected = TRUE_AMP * n_tot / mu0
    pl.parameters["amplitude"].value = 3e-11
    result = xs.Fit().run(ds)
    assert result.success
    assert pl.parameters["amplitude"].value == pytest.approx(expected, rel=1e-7, abs=0)
    assert pl.parameters["amplitude"].error == pytest.approx(expected / math.sqrt(n_tot), rel=1e-4, abs=0)


def test_fov_background_norm_fit_analytic():
    """Background only, FoV norm free: the MLE is sum(n) / sum(b) and its error norm / sqrt(sum n)."""
    arrays, _, _ = build_arrays(n=15, background_level=20.0)
    ds = xs.SpectrumDataset(name="bkgonly", **arrays)
    bkg = xs.FoVBackgroundModel(dataset_name="bkgonly")
    bkg.spectral_model.parameters["norm"].value = 1.3
    ds.models = [bkg]
    ds.fake(random_state=5)
    bkg.spectral_model.parameters["norm"].value = 1.0
    result = xs.Fit().run(ds)
    assert result.success
    n_tot = ds.counts.values.sum()
    expected = n_tot / (20.0 * 15)
    norm = bkg.spectral_model.parameters["norm"]
    assert norm.value == pytest.approx(expected, rel=1e-7, abs=0)
    assert norm.error == pytest.approx(expected / math.sqrt(n_tot), rel=1e-4, abs=0)
    assert abs(norm.value - 1.3) < 4 * norm.error


def test_fov_background_norm_with_source():
    ds, pl = make_fit_dataset(background=30.0, exposure=5e10, seed=8)
    bkg = xs.FoVBackgroundModel(dataset_name=ds.name)
    bkg.spectral_model.parameters["norm"].value = 0.8
    ds.models = list(ds.models) + [bkg]
    ds.fake(random_state=8)
    bkg.spectral_model.parameters["norm"].value = 1.0
    start_off(pl)
    result = xs.Fit().run(ds)
    assert result.success
    norm = bkg.spectral_model.parameters["norm"]
    assert abs(norm.value - 0.8) < 4 * norm.error
    assert abs(pl.parameters["index"].value - TRUE_INDEX) < 4 * pl.parameters["index"].error
    # gradient at the optimum vanishes (analytic gradient incl. the background-model part)
    _, grad = xs.Datasets([ds])._stat_gradient([norm, pl.parameters["index"]])
    assert np.all(np.abs(grad * np.array([norm.value, 1.0])) < 1e-3)


def test_scipy_and_minuit_agree():
    require("iminuit")
    out = {}
    for backend in ("scipy", "minuit"):
        ds, pl = make_fit_dataset(seed=21)
        start_off(pl)
        result = xs.Fit(backend=backend).run(ds)
        assert result.success, result
        out[backend] = {n: (pl.parameters[n].value, pl.parameters[n].error) for n in ("index", "amplitude")}
    for n in ("index", "amplitude"):
        assert out["minuit"][n][0] == pytest.approx(out["scipy"][n][0], rel=1e-4, abs=0)
        assert out["minuit"][n][1] == pytest.approx(out["scipy"][n][1], rel=1e-3, abs=0)  # HESSE strategy 2


def test_covariance_matches_profile_likelihood():
    ds, pl = make_fit_dataset(exposure=1e11, seed=4)
    fit = xs.Fit()
    fit.run(ds)
    for name in ("index", "amplitude"):
        par = pl.parameters[name]
        best, err = par.value, par.error
        conf = fit.confidence(ds, name, sigma=1.0)
        assert conf["success"]
        assert par.value == best  # restored
        # high statistics: the profile is parabolic to ~1e-3, so the mean of the two profile errors equals
        # the covariance error to 1e-6 (root found to 1e-6 err); 1e-4 leaves room for the optimiser
        assert 0.5 * (conf["errp"] + conf["errn"]) == pytest.approx(err, rel=1e-4, abs=0)
        assert conf["errp"] == pytest.approx(conf["errn"], rel=0.01, abs=0)  # nearly symmetric (0.1-0.3 %)


def test_stat_profile_shape_and_minimum():
    ds, pl = make_fit_dataset(seed=6)
    fit = xs.Fit()
    result = fit.run(ds)
    idx = pl.parameters["index"]
    best = idx.value
    idx.scan_n_values = 21
    prof = fit.stat_profile(ds, "index")
    scan, stat = prof["index_scan"], prof["stat_scan"]
    assert scan.shape == stat.shape == (21,)
    np.testing.assert_allclose(scan[[0, -1]], [best - 2 * idx.error, best + 2 * idx.error], rtol=1e-12)
    assert np.argmin(stat) == 10
    assert stat[10] == pytest.approx(result.total_stat, rel=1e-12, abs=0)
    assert idx.value == best and not idx.frozen  # restored
    # re-optimised profile: a parabola with curvature 1 / sigma^2 near the minimum
    prof2 = fit.stat_profile(ds, "index", reoptimize=True, values=[best - idx.error, best, best + idx.error])
    assert len(prof2["fit_results"]) == 3
    rise = prof2["stat_scan"] - prof2["stat_scan"][1]
    np.testing.assert_allclose(rise[[0, 2]], 1.0, rtol=0.1)
    # fixed (not re-optimised) profile rises faster: the amplitude correlates with the index
    assert stat[0] > prof2["stat_scan"][0]


def test_joint_fit_shared_model():
    pl = xs.PowerLawSpectralModel(index=TRUE_INDEX, amplitude=TRUE_AMP * u.Unit("cm-2 s-1 TeV-1"))
    d1, _ = make_fit_dataset(name="d1", model=pl, exposure=1e10, seed=31, fake=False)
    d2, _ = make_fit_dataset(name="d2", model=pl, exposure=4e10, n=12, seed=32, fake=False)
    sky = xs.SkyModel(pl, name="src")
    d1.models = sky
    d2.models = sky
    d1.fake(31)
    d2.fake(32)
    datasets = xs.Datasets([d1, d2])
    assert datasets.parameters.names.count("index") == 1
    # individual fits for comparison
    single_errors = []
    for d in (d1, d2):
        start_off(pl)
        xs.Fit().run(d)
        single_errors.append(pl.parameters["index"].error)
    start_off(pl)
    result = xs.Fit().run(datasets)
    assert result.success
    assert result.total_stat == pytest.approx(d1.stat_sum() + d2.stat_sum(), rel=1e-12, abs=0)
    # joint optimum: moving any free parameter increases the summed statistic
    for p in (pl.parameters["index"], pl.parameters["amplitude"]):
        v = p.value
        for step in (-0.3 * p.error, 0.3 * p.error):
            p.value = v + step
            assert d1.stat_sum() + d2.stat_sum() > result.total_stat
        p.value = v
    err = pl.parameters["index"].error
    assert err < min(single_errors)
    # independent errors combine roughly like 1/sigma^2 = sum 1/sigma_k^2
    assert err == pytest.approx(1 / math.sqrt(sum(1 / e**2 for e in single_errors)), rel=0.15, abs=0)


def test_fit_errors_bad_input():
    ds, pl = make_fit_dataset()
    for p in pl.parameters:
        p.frozen = True
    with pytest.raises(ValueError, match="no free parameters"):
        xs.Fit().run(ds)
    with pytest.raises(ValueError, match="unknown fit backend 'nelder'"):
        xs.Fit(backend="nelder")
    with pytest.raises(ValueError, match="unique.*'a'"):
        xs.Datasets([make_fit_dataset(name="a")[0], make_fit_dataset(name="a")[0]])


N_PULL_SEEDS = 200


@pytest.mark.slow
def test_pulls_power_law(record_property):
    """N=30 reco bins (60 true), 200 fixed seeds: pulls (fit - truth) / error of index and amplitude
    have mean within 0.2 of 0 and standard deviation within 0.2 of 1 (issue 2 acceptance)."""
    ds, pl = make_fit_dataset(n=30, exposure=2e9, background=0.5, fake=False)
    idx, amp = pl.parameters["index"], pl.parameters["amplitude"]
    fit = xs.Fit()
    pulls = {"index": [], "amplitude": []}
    for seed in range(N_PULL_SEEDS):
        idx.value, amp.value = TRUE_INDEX, TRUE_AMP
        ds.fake(random_state=seed)
        idx.value, amp.value = 2.4, 2.4e-11  # start away from the truth
        result = fit.run(ds)
        assert result.success, (seed, result)
        pulls["index"].append((idx.value - TRUE_INDEX) / idx.error)
        pulls["amplitude"].append((amp.value - TRUE_AMP) / amp.error)
    summary = {}
    for name, values in pulls.items():
        values = np.asarray(values)
        summary[name] = (float(values.mean()), float(values.std(ddof=1)))
        record_property(f"pull_{name}_mean", round(summary[name][0], 4))
        record_property(f"pull_{name}_std", round(summary[name][1], 4))
        print(f"pull {name}: mean {summary[name][0]:+.4f} std {summary[name][1]:.4f} (n={values.size})")
    for name, (mean, std) in summary.items():
        assert abs(mean) < 0.2, (name, mean)
        assert abs(std - 1) < 0.2, (name, std)


@pytest.mark.gammapy
def test_fit_matches_gammapy():
    """Same data, same smeared edisp, in Gammapy (an independent implementation): same npred,
    statistic, best fit (1e-4 relative) and errors (2%)."""
    require_gammapy("gammapy")
    from gammapy.modeling import Fit as GFit
    from gammapy.modeling.models import PowerLawSpectralModel as GPL
    from gammapy.modeling.models import SkyModel as GSky

    n = 12
    arrays, er, et = build_arrays(n=n, exposure_scale_m2s=3e10, background_level=2.0, edisp="smeared")
    ours = xs.PowerLawSpectralModel(index=TRUE_INDEX, amplitude=TRUE_AMP * u.Unit("cm-2 s-1 TeV-1"))
    ds = xs.SpectrumDataset(models=xs.SkyModel(ours, name="src"), name="x", **arrays)
    ds.fake(random_state=17)
    g = gammapy_copy(ds, er, et)
    theirs = GPL(index=TRUE_INDEX, amplitude=TRUE_AMP * u.Unit("cm-2 s-1 TeV-1"))
    g.models = GSky(spectral_model=theirs, name="src")

    np.testing.assert_allclose(ds.npred().values, g.npred().data.ravel(), rtol=1e-9)
    assert ds.stat_sum() == pytest.approx(g.stat_sum(), rel=1e-10, abs=0)

    for model in (ours, theirs):
        model.index.value, model.amplitude.value = 2.0, 1.5e-11
    assert xs.Fit().run(ds).success
    assert GFit().run([g]).success
    for name in ("index", "amplitude"):
        p, q = ours.parameters[name], theirs.parameters[name]
        assert p.value == pytest.approx(q.value, rel=1e-4, abs=0), name
        assert p.error == pytest.approx(q.error, rel=0.02, abs=0), name


@pytest.mark.parametrize("backend", ["scipy", "minuit"])
def test_fit_respects_bounds(backend):
    if backend == "minuit":
        require("iminuit")
    ds, pl = make_fit_dataset(exposure=2e11, seed=3)
    idx, amp = pl.parameters["index"], pl.parameters["amplitude"]
    idx.max = 2.2  # truth 2.3 is outside: the fit stops at the bound
    start_off(pl)
    assert xs.Fit(backend=backend).run(ds).success
    assert idx.value == pytest.approx(2.2, abs=1e-8)
    # amplitude is then the conditional MLE at index = 2.2 (independent 1-parameter fit)
    fitted_amp = amp.value
    idx.frozen = True
    amp.value = 1e-11
    xs.Fit().run(ds)
    assert fitted_amp == pytest.approx(amp.value, rel=1e-5, abs=0)


def test_datasets_models_same_name_sharing_one_spectral_model():
    """A SkyModel made per dataset around one spectral model is one model of the joint fit;
    two different models with one name are refused with the dataset names in the message."""
    ds1, pl = make_fit_dataset(seed=31)
    ds2, _ = make_fit_dataset(seed=32)
    ds2.name = "second"
    ds1.models = xs.SkyModel(pl, name="src")
    ds2.models = xs.SkyModel(pl, name="src")
    datasets = xs.Datasets([ds1, ds2])
    assert len(datasets.models) == 1
    assert len([p for p in datasets.parameters if not p.frozen]) == 2
    ds2.models = xs.SkyModel(xs.PowerLawSpectralModel(), name="src")
    with pytest.raises(ValueError, match="two different models are named 'src'.*second"):
        datasets.models
