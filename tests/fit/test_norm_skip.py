"""The fold is skipped when only the norm changes (`SpectrumDataset._signal_from_fold_cache`):
the same statistic and gradient as a fresh fold (1e-12), on dense, banded and sparse kernels,
within one fit; in-place edits between fits are seen."""

import astropy.units as u
import numpy as np
import pytest

import xspec_ds as xs
from xspec_ds import forward, likelihood
from xspec_ds.fit.joint import JointLikelihood
from xspec_ds.models.spectral import linear_norm_parameter

from .._requirements import require
from ..conftest import build_arrays


def _dataset(kernel: str, seed: int = 4):
    arrays, _, _ = build_arrays(n=150, exposure_scale_m2s=5e10, background_level=0.3)
    nt, nr = arrays["edisp"].shape
    rng = np.random.default_rng(seed)
    if kernel == "banded":
        i = np.arange(nt)[:, None] * nr / nt
        m = np.exp(-0.5 * ((np.arange(nr)[None, :] - i) / 3.0) ** 2)
    elif kernel == "sparse":
        m = rng.uniform(size=(nt, nr)) * (rng.uniform(size=(nt, nr)) < 0.05)
        m[np.arange(nt), (np.arange(nt) * nr) // nt] += 1.0  # no empty row
    else:
        m = rng.uniform(size=(nt, nr))
    arrays["edisp"] = 0.9 * m / m.sum(axis=1, keepdims=True)
    model = xs.LogParabolaSpectralModel(alpha=2.3, beta=0.1, amplitude=2e-11 * u.Unit("cm-2 s-1 TeV-1"))
    ds = xs.SpectrumDataset(models=xs.SkyModel(model, name="src"), name=f"d_{kernel}", **arrays)
    ds.fake(random_state=seed)
    expected = {"banded": forward.BandedKernel, "sparse": forward.SparseKernel, "dense": np.ndarray}[kernel]
    assert isinstance(ds._hot().edisp, expected)
    return ds, model


class _CountFolds:
    def __init__(self, monkeypatch):
        self.n = 0
        original = likelihood.predict

        def counting(*args, **kwargs):
            self.n += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(likelihood, "predict", counting)


@pytest.mark.parametrize("kernel", ["dense", "banded", "sparse"])
def test_norm_only_change_skips_the_fold_with_the_same_numbers(kernel, monkeypatch):
    ds, model = _dataset(kernel)
    params = [p for p in model.parameters if not p.frozen]
    joint = JointLikelihood(xs.Datasets([ds]))
    folds = _CountFolds(monkeypatch)
    joint.stat_value()
    assert folds.n == 1
    for factor in (1.3, 0.7, 2.0):
        model.amplitude.value *= factor
        before = folds.n
        value = joint.stat_value()
        stat, grad = joint.stat_gradient(params)
        assert folds.n == before  # no fold: the last one rescaled by the ratio of the norms
        fresh = JointLikelihood(xs.Datasets([ds]))  # a new fit: folds from scratch
        np.testing.assert_allclose(value, fresh.stat_value(), rtol=1e-12, atol=0)
        s0, g0 = fresh.stat_gradient(params)
        np.testing.assert_allclose(stat, s0, rtol=1e-12, atol=0)
        np.testing.assert_allclose(grad, g0, rtol=1e-10, atol=0)
        np.testing.assert_allclose(value, ds.stat_sum(), rtol=1e-12, atol=0)
    model.alpha.value += 0.01  # a shape parameter: folded again
    before = folds.n
    np.testing.assert_allclose(joint.stat_value(), ds.stat_sum(), rtol=1e-12, atol=0)
    assert folds.n == before + 1


def test_minuit_fit_skips_folds_and_equals_the_fit_without_skipping(monkeypatch):
    require("iminuit")
    results = []
    for skip in (True, False):
        ds, model = _dataset("banded")
        if not skip:
            monkeypatch.setattr(xs.SpectrumDataset, "_norm_split", lambda self: None)
        folds = _CountFolds(monkeypatch)
        result = xs.Fit(backend="minuit").run(ds)
        assert result.success
        free = [p for p in model.parameters if not p.frozen]
        results.append((folds.n, np.array([p.value for p in free]), np.array([p.error for p in free])))
        monkeypatch.undo()
    (n_skip, v1, e1), (n_full, v2, e2) = results
    assert n_skip < n_full  # HESSE varies the norm alone
    assert np.all(np.abs(v1 - v2) <= 1e-3 * e2), (v1, v2, e2)
    np.testing.assert_allclose(e1, e2, rtol=1e-3, atol=0)


@pytest.mark.parametrize("backend", ["scipy", "minuit"])
def test_in_place_edits_between_fits_are_seen(backend):
    if backend == "minuit":
        require("iminuit")
    ds, model = _dataset("banded")
    xs.Fit(backend=backend).run(ds)
    ds.exposure.values *= 2.0  # in place: no reset_data_cache
    ds.edisp.values[:] *= 0.95
    xs.Fit(backend=backend).run(ds)
    fitted = {p.name: (p.value, p.error) for p in model.parameters if not p.frozen}
    fresh = xs.SpectrumDataset.from_xarray(ds.data.copy(deep=True), models=None)
    ref_model = model.copy()
    fresh.models = xs.SkyModel(ref_model, name="src")
    xs.Fit(backend=backend).run(fresh)
    for p in ref_model.parameters:
        if not p.frozen:
            value, error = fitted[p.name]
            assert abs(value - p.value) <= 1e-3 * p.error, p.name
            np.testing.assert_allclose(error, p.error, rtol=1e-3, atol=0, err_msg=p.name)
    # the amplitude follows the exposure: about half of the first fit's (checked loosely: noise)
    assert 0.4 < model.amplitude.value / 2e-11 < 0.65


def test_linear_norm_parameter_rules():
    pl = xs.PowerLawSpectralModel()
    assert linear_norm_parameter(pl) is pl.amplitude
    absorbed = pl * xs.PowerLawNormSpectralModel(tilt=0.1)  # two norms: no single one
    assert linear_norm_parameter(absorbed) is None
    scaled = xs.ScaleSpectralModel(
        xs.TemplateSpectralModel(energy=[1, 10] * u.TeV, values=[1e-11, 1e-13] * u.Unit("cm-2 s-1 TeV-1")), norm=2.0
    )
    assert linear_norm_parameter(scaled) is scaled.norm
    template = xs.TemplateSpectralModel(energy=[1, 10] * u.TeV, values=[1e-11, 1e-13] * u.Unit("cm-2 s-1 TeV-1"))
    assert linear_norm_parameter(pl + template) is None  # a sum: not proportional to the amplitude


@pytest.mark.parametrize("kernel", ["banded", "sparse"])
@pytest.mark.parametrize("edit", ["inside", "outside"])
def test_fit_after_in_place_kernel_edit_equals_dense(kernel, edit):
    """After an in-place edit of ``ds.edisp`` (where the sparse copy or the bands have mass, or
    outside: far out in a band's tail, an element of the sparse matrix that was zero), the next
    fit uses the edited matrix: its statistic equals the dense computation by hand (1e-9)."""
    ds, model = _dataset(kernel)
    xs.Fit().run(ds)
    m = ds.edisp.values  # a view: edited in place, no reset_data_cache
    if edit == "inside":
        m[10] *= 0.5
    else:
        j = m.shape[1] - 1 if kernel == "banded" else int(np.flatnonzero(m[10] == 0)[-1])
        assert m[10, j] < 1e-12 * m[10].sum()  # nothing there yet
        m[10] *= 0.95
        m[10, j] = 0.04
    result = xs.Fit().run(ds)
    assert result.success
    # the statistic at the new best fit, by hand with the dense, edited matrix
    e_true = np.append(ds.data["energy_true_min"].values, ds.data["energy_true_max"].values[-1]) * u.TeV
    flux = model.integral(e_true[:-1], e_true[1:]).to_value("cm-2 s-1")
    exposure = (ds.exposure.values * u.Unit(ds.exposure.attrs["units"])).to_value("cm2 s")
    mu = (flux * exposure) @ m + ds.background.values
    n = ds.counts.values
    by_hand = np.sum(2 * (mu - n * np.log(mu)))
    np.testing.assert_allclose(ds.stat_sum(), by_hand, rtol=1e-9, atol=0)
    np.testing.assert_allclose(result.total_stat, by_hand, rtol=1e-9, atol=0)
