"""Joint fits: same-binning datasets evaluated in one vectorised pass equal the per-dataset sum."""

import numpy as np
import pytest

import xspec_ds as xs
from xspec_ds.fit import fit as fit_module
from xspec_ds.fit.joint import JointLikelihood

from .test_batch import make_spectra


def _mixed(shared):
    """Cash and on-off spectra on one binning, one on another binning, one with a background model."""
    cash = make_spectra(6, seed=21, mask_prob=0.2, per_edisp=True)
    onoff = make_spectra(5, seed=22, onoff=True, mask_prob=0.1)
    for i, d in enumerate(onoff):
        d.name = f"on{i}"
    other = make_spectra(2, seed=23, n_reco=12, n_true=24)
    for i, d in enumerate(other):
        d.name = f"other{i}"
    with_bkg = make_spectra(1, seed=24)[0]
    with_bkg.name = "bkgmodel"
    dss = cash + onoff + other + [with_bkg]
    for d in dss:
        d.models = [shared]
    bkg = xs.FoVBackgroundModel(dataset_name="bkgmodel")
    with_bkg.models = [shared, bkg]
    return xs.Datasets(dss)


@pytest.fixture
def shared():
    return xs.SkyModel(xs.PowerLawSpectralModel(index=2.1, amplitude="1.5e-11 cm-2 s-1 TeV-1"), name="src")


def test_groups_and_values_equal_per_dataset_sum(shared):
    datasets = _mixed(shared)
    joint = JointLikelihood(datasets)
    sizes = sorted(len(g.data["counts"]) for g in joint.groups)
    assert sizes == [2, 5, 6]  # other binning (2), on-off (5), Cash (6); the background-model one alone
    assert [d.name for d in joint.singles] == ["bkgmodel"]
    params = [p for p in datasets.parameters if not p.frozen]
    stat, grad = joint.stat_gradient(params)
    stat_ref, grad_ref = datasets._stat_gradient(params)
    np.testing.assert_allclose(stat, stat_ref, rtol=1e-13, atol=0)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-10, atol=1e-12 * np.abs(grad_ref).max())
    np.testing.assert_allclose(stat, datasets.stat_sum(), rtol=1e-12, atol=0)


def test_fit_equals_per_dataset_fit(shared, monkeypatch):
    datasets = _mixed(shared)
    result = xs.Fit().run(datasets)
    values = [p.value for p in datasets.parameters]
    errors = [p.error for p in datasets.parameters if not p.frozen]

    class PerDataset:
        def __init__(self, ds):
            self.ds = ds

        def stat_gradient(self, params):
            return self.ds._stat_gradient(params)

        def stat_value(self):
            return self.ds._stat_gradient([])[0]

        def stat_grad_fisher(self, params):
            return None  # the reference runs L-BFGS-B, dataset by dataset

    shared.spectral_model.index.value = 2.1
    shared.spectral_model.amplitude.value = 1.5e-11
    monkeypatch.setattr(fit_module, "JointLikelihood", PerDataset)
    ref = xs.Fit().run(datasets)
    assert result.success and ref.success
    np.testing.assert_allclose(result.total_stat, ref.total_stat, rtol=0, atol=1e-6)
    free = [p for p in datasets.parameters if not p.frozen]
    for p, v, e in zip(free, [v for v, p in zip(values, datasets.parameters) if not p.frozen], errors):
        np.testing.assert_allclose(v, p.value, rtol=0, atol=1e-3 * p.error, err_msg=p.name)
        np.testing.assert_allclose(e, p.error, rtol=1e-3, atol=0, err_msg=p.name)
