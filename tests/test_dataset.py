"""SpectrumDataset (seed API) on both paths: the class and the ``ds.spectrum`` accessor.

Every member named in issue 2 is resolved on both paths (parametrised ``path``) and checked
against independent numbers: analytic power-law integrals times the known exposure, a direct
Cash sum, reproducible Poisson draws.
"""

import math

import astropy.units as u
import numpy as np
import pytest
import xarray as xr
from astropy.table import Table

import xspec_ds as xs
from xspec_ds.dataset import SpectrumEvaluator

from ._asserts import assert_close, assert_gradient_is_central_difference
from ._requirements import require_gammapy
from .conftest import build_arrays, exposure_profile, gammapy_copy, pl_integral_ref, skew_kernel

CM2_PER_M2 = 1e4
INDEX, AMP = 2.3, 2e-11  # conftest's power law (cm-2 s-1 TeV-1, reference 1 TeV)

MEMBERS = [
    "counts",
    "exposure",
    "background",
    "edisp",
    "mask_safe",
    "mask_fit",
    "mask",
    "gti",
    "meta_table",
    "name",
    "models",
    "data_shape",
    "geoms",
    "energy_range",
    "excess",
    "stat_type",
    "tag",
    "evaluators",
    "background_model",
    "psf",
    "mask_safe_image",
    "mask_safe_edisp",
    "mask_safe_psf",
    "npred",
    "npred_signal",
    "npred_background",
    "stat_array",
    "stat_sum",
    "fake",
    "residuals",
    "info_dict",
    "copy",
    "apply_mask_safe",
    "reset_data_cache",
    "to_spectrum_dataset",
    "from_geoms",
    "create",
]

PATHS = ["class", "accessor"]


def make(path, n=10, model="pl", counts=None, **kwargs):
    """A dataset through the class constructor or as ``xr.Dataset(...).spectrum``."""
    arrays, er, et = build_arrays(n=n, counts=counts, **kwargs)
    if model == "pl":
        model = xs.SkyModel(
            xs.PowerLawSpectralModel(index=INDEX, amplitude=AMP * u.Unit("cm-2 s-1 TeV-1")), name="source"
        )
    if path == "class":
        ds = xs.SpectrumDataset(models=model, name="ds", **arrays)
    else:
        xr_ds = xr.Dataset(arrays, attrs={"name": "ds"})
        ds = xr_ds.spectrum
        ds.models = model
        assert xr_ds.spectrum is ds  # xarray caches the accessor: models stay on the Dataset
    return ds, er, et


def expected_signal(er, et, n_true_per_reco=2, exposure_scale=1e9):
    flux = pl_integral_ref(AMP, INDEX, 1.0, et[:-1], et[1:])  # cm-2 s-1
    mu_true = flux * exposure_profile(np.sqrt(et[:-1] * et[1:]), exposure_scale) * CM2_PER_M2
    return mu_true.reshape(-1, n_true_per_reco).sum(axis=1)


def direct_cash(n, mu):
    return np.array([2 * (m - k * math.log(m)) for k, m in zip(n, mu)])


@pytest.fixture(params=PATHS)
def path(request):
    return request.param


@pytest.mark.parametrize("member", MEMBERS)
def test_member_resolves(member, path):
    ds, _, _ = make(path)
    assert hasattr(type(ds), member) or hasattr(ds, member)
    getattr(ds, member)


def test_accessor_is_view(path):
    arrays, _, _ = build_arrays(n=6)
    xr_ds = xr.Dataset(arrays, attrs={"name": "v"})
    view = xr_ds.spectrum
    assert view.data is xr_ds
    assert np.shares_memory(view.counts.values, xr_ds["counts"].values)
    view.counts.values[:] = 3.0
    assert np.all(xr_ds["counts"].values == 3.0)
    xr_ds["counts"].values[0] = 7.0
    assert view.counts.values[0] == 7.0
    assert view.name == "v"


def test_arrays_dims_coords_units(path):
    ds, er, et = make(path)
    assert ds.counts.dims == ("energy",)
    assert ds.background.dims == ("energy",)
    assert ds.mask_safe.dims == ("energy",) and ds.mask_safe.dtype == bool
    assert ds.exposure.dims == ("energy_true",)
    assert u.Unit(ds.exposure.attrs["units"]) == u.Unit("m2 s")
    assert ds.edisp.dims == ("energy_true", "energy")
    assert np.array_equal(ds.counts["energy_min"].values, er[:-1])
    assert np.array_equal(ds.exposure["energy_true_max"].values, et[1:])
    np.testing.assert_allclose(ds.exposure.values, exposure_profile(np.sqrt(et[:-1] * et[1:]), 1e9), rtol=1e-15)
    assert set(xs.SpectrumDataset.__init__.__code__.co_varnames[:11]) >= {
        "models",
        "counts",
        "exposure",
        "background",
        "edisp",
        "mask_safe",
        "mask_fit",
        "name",
        "gti",
        "meta_table",
    }


def test_masks(path):
    ds, _, _ = make(path)
    assert ds.mask_fit is None
    xr.testing.assert_equal(
        ds.mask.drop_vars(["energy_min", "energy_max"]).rename(None),
        ds.mask_safe.drop_vars(["energy_min", "energy_max"]).rename(None),
    )
    fit = np.ones(10, bool)
    fit[:3] = False
    ds.mask_fit = fit
    safe = ds.mask_safe.values.copy()
    safe[-2:] = False
    ds.mask_safe = safe
    np.testing.assert_array_equal(ds.mask.values, fit & safe)
    assert ds.mask.dims == ("energy",)
    np.testing.assert_array_equal(ds.data["mask_fit"].values, fit)


def test_gti_meta_table_name(path):
    ds, _, _ = make(path)
    assert ds.gti is None
    gti = xs.GTI.create([0, 100] * u.s, [50, 300] * u.s, reference_time="2020-01-01")
    ds.gti = gti
    assert ds.gti == gti
    assert ds.gti.time_sum == 250 * u.s
    assert ds.meta_table is None
    table = Table({"OBS_ID": [23523, 23526], "ZEN": [20.5, 31.0] * u.deg})
    ds.meta_table = table
    back = ds.meta_table
    assert list(back["OBS_ID"]) == [23523, 23526]
    assert back["ZEN"].unit == u.deg
    assert ds.name == "ds"
    ds.name = "other"
    assert ds.data.attrs["name"] == "other"


def test_models_setter(path):
    ds, _, _ = make(path, model=None)
    assert isinstance(ds.models, xs.Models) and len(ds.models) == 0
    pl = xs.PowerLawSpectralModel()
    ds.models = pl
    assert ds.models[0].spectral_model is pl
    ds.models = [xs.SkyModel(pl, name="a"), xs.SkyModel(xs.ConstantSpectralModel(), name="b")]
    assert ds.models.names == ["a", "b"]
    assert set(ds.evaluators) == {"a", "b"}
    assert all(isinstance(e, SpectrumEvaluator) for e in ds.evaluators.values())
    assert ds.evaluators["a"].model is ds.models["a"]


def test_evaluators_respect_datasets_names(path):
    ds, _, _ = make(path, model=None)
    ds.models = [
        xs.SkyModel(xs.PowerLawSpectralModel(), name="mine", datasets_names=["ds"]),
        xs.SkyModel(xs.PowerLawSpectralModel(), name="theirs", datasets_names=["other"]),
    ]
    assert list(ds.evaluators) == ["mine"]


def test_shape_geoms_energy_range(path):
    ds, er, et = make(path, n=8)
    assert ds.data_shape == (8,)
    geoms = ds.geoms
    assert geoms["geom"].axes[0] == xs.MapAxis.from_energy_edges(er * u.TeV, name="energy")
    assert geoms["geom_exposure"].axes[0] == xs.MapAxis.from_energy_edges(et * u.TeV, name="energy_true")
    assert geoms["geom_edisp"].data_shape == (16, 8)
    emin, emax = ds.energy_range
    assert emin == er[0] * u.TeV and emax == er[-1] * u.TeV
    safe = np.zeros(8, bool)
    safe[2:5] = True
    ds.mask_safe = safe
    emin, emax = ds.energy_range
    assert emin.to_value("TeV") == er[2] and emax.to_value("TeV") == er[5]
    ds.mask_safe = np.zeros(8, bool)
    assert all(np.isnan(x.value) for x in ds.energy_range)


def test_constants_and_psf(path):
    ds, _, _ = make(path)
    assert ds.stat_type == "cash"
    assert ds.tag == "SpectrumDataset"
    assert ds.psf is None
    assert ds.mask_safe_psf is None


def test_mask_safe_image_and_edisp(path):
    ds, _, _ = make(path)
    assert bool(ds.mask_safe_image) is True
    assert ds.mask_safe_image.dims == ()
    ds.mask_safe = np.zeros(10, bool)
    assert bool(ds.mask_safe_image) is False
    np.testing.assert_array_equal(ds.mask_safe_edisp.values, ds.mask_safe.values)


# predictions ---------------------------------------------------------------------------------------
def test_npred_identity_edisp_equals_exposure_times_flux(path):
    ds, er, et = make(path, n=12, n_true=12, edisp="identity", background_level=0.0)
    flux = pl_integral_ref(AMP, INDEX, 1.0, et[:-1], et[1:])
    expected = flux * exposure_profile(np.sqrt(et[:-1] * et[1:]), 1e9) * CM2_PER_M2
    np.testing.assert_allclose(ds.npred_signal().values, expected, rtol=1e-12)
    np.testing.assert_allclose(ds.npred().values, expected, rtol=1e-12)
    assert ds.npred().dims == ("energy",)


def test_npred_diagonal_edisp(path):
    ds, er, et = make(path, n=10, background_level=0.5)
    sig = expected_signal(er, et)
    np.testing.assert_allclose(ds.npred_signal().values, sig, rtol=1e-12)
    np.testing.assert_allclose(ds.npred_background().values, 0.5, rtol=0)
    np.testing.assert_allclose(ds.npred().values, sig + 0.5, rtol=1e-12)


def test_npred_square_nonsymmetric_edisp(path):
    """A square kernel that is not symmetric (true bin i -> reco i, i+1, i+2): a transposed fold fails."""
    ds, er, et = make(path, n=8, n_true=8, edisp="skew", background_level=0.25)
    mu_true = pl_integral_ref(AMP, INDEX, 1.0, et[:-1], et[1:]) * exposure_profile(np.sqrt(et[:-1] * et[1:]), 1e9)
    mu_true = mu_true * CM2_PER_M2
    m = skew_kernel(8)
    expected = np.array([sum(mu_true[i] * m[i, j] for i in range(8)) for j in range(8)])
    assert_close(ds.npred_signal().values, expected, rtol=1e-12)
    assert_close(ds.npred().values, expected + 0.25, rtol=1e-12)
    assert_close(expected[0], 0.6 * mu_true[0], rtol=1e-15)  # reco bin 0 only sees true bin 0


def test_stat_gradient_square_nonsymmetric_edisp():
    """The analytic gradient (adjoint fold) with a square non-symmetric kernel vs central differences."""
    ds, _, _ = make("class", n=8, n_true=8, edisp="skew", background_level=0.25)
    ds.fake(random_state=3)
    pl = ds.models[0].spectral_model
    params = [pl.index, pl.amplitude]
    pl.index.value = 2.2  # away from the optimum
    assert_gradient_is_central_difference(ds, params, rtol=1e-6)


def test_npred_exposure_unit_conversion():
    arrays, er, et = build_arrays(n=5)
    ref = xs.SpectrumDataset(models=xs.PowerLawSpectralModel(), name="a", **arrays)
    exp = arrays["exposure"].copy()
    exp.values = exp.values * 1e4
    exp.attrs["units"] = "cm2 s"
    arrays["exposure"] = exp
    other = xs.SpectrumDataset(models=xs.PowerLawSpectralModel(), name="b", **arrays)
    np.testing.assert_allclose(other.npred().values, ref.npred().values, rtol=1e-13)


def test_npred_signal_of_one_model(path):
    ds, er, et = make(path)
    second = xs.SkyModel(xs.ConstantSpectralModel(const="1e-13 cm-2 s-1 TeV-1"), name="flat")
    ds.models = list(ds.models) + [second]
    flat_true = 1e-13 * np.diff(et) * exposure_profile(np.sqrt(et[:-1] * et[1:]), 1e9) * CM2_PER_M2
    flat = flat_true.reshape(-1, 2).sum(axis=1)
    np.testing.assert_allclose(ds.npred_signal(model=second).values, flat, rtol=1e-12)
    np.testing.assert_allclose(ds.npred_signal("flat").values, flat, rtol=1e-12)
    np.testing.assert_allclose(ds.npred_signal().values, flat + expected_signal(er, et), rtol=1e-12)


def test_npred_no_model_is_background(path):
    ds, _, _ = make(path, model=None)
    np.testing.assert_array_equal(ds.npred_signal().values, 0.0)
    np.testing.assert_array_equal(ds.npred().values, 0.5)


def test_background_model_scales_background(path):
    ds, er, _ = make(path)
    assert ds.background_model is None
    bkg = xs.FoVBackgroundModel(dataset_name="ds")
    bkg.spectral_model.parameters["norm"].value = 1.5
    bkg.spectral_model.parameters["tilt"].value = 0.4
    ds.models = list(ds.models) + [bkg]
    assert ds.background_model is bkg
    centres = np.sqrt(er[:-1] * er[1:])
    np.testing.assert_allclose(ds.npred_background().values, 0.5 * 1.5 * centres**-0.4, rtol=1e-12)
    # excess and info_dict "background" use the background array (Gammapy), npred_background the model
    np.testing.assert_allclose(ds.excess.values, ds.counts.values - 0.5, rtol=1e-12)
    info = ds.info_dict()
    assert info["background"] == pytest.approx(0.5 * 10, rel=1e-12, abs=0)
    assert info["npred_background"] == pytest.approx((0.5 * 1.5 * centres**-0.4).sum(), rel=1e-12, abs=0)
    assert info["excess"] == pytest.approx(ds.counts.values.sum() - 5.0, rel=1e-12, abs=0)


def test_excess(path):
    ds, _, _ = make(path, counts=np.arange(10.0))
    np.testing.assert_allclose(ds.excess.values, np.arange(10.0) - 0.5)
    assert ds.excess.dims == ("energy",)


# statistic -----------------------------------------------------------------------------------------
def test_stat_array_and_sum_vs_direct(path):
    counts = np.array([0, 3, 12, 40, 7, 1, 0, 2, 5, 9], float)
    ds, er, et = make(path, counts=counts)
    mu = expected_signal(er, et) + 0.5
    direct = direct_cash(counts, mu)
    np.testing.assert_allclose(ds.stat_array().values, direct, rtol=1e-12)
    assert ds.stat_array().dims == ("energy",)
    total = ds.stat_sum()
    assert isinstance(total, float)
    assert total == pytest.approx(direct.sum(), rel=1e-12, abs=0)
    safe = np.ones(10, bool)
    safe[[0, 4]] = False
    fit = np.ones(10, bool)
    fit[7:] = False
    ds.mask_safe = safe
    ds.mask_fit = fit
    assert ds.stat_sum() == pytest.approx(direct[safe & fit].sum(), rel=1e-12, abs=0)


def test_stat_sum_zero_prediction_truncated(path):
    ds, _, _ = make(path, model=None, background_level=0.0, counts=np.full(10, 2.0))
    expected = 10 * 2 * (1e-25 - 2 * math.log(1e-25))
    assert ds.stat_sum() == pytest.approx(expected, rel=1e-12, abs=0)


def test_values_assignment_changes_dataset_and_stat(path):
    ds, er, et = make(path, counts=np.full(10, 4.0))
    mu = expected_signal(er, et) + 0.5
    before = ds.stat_sum()
    assert before == pytest.approx(direct_cash(np.full(10, 4.0), mu).sum(), rel=1e-12, abs=0)
    # in place, through the DataArray returned by the attribute
    ds.counts.values[3] = 50.0
    assert ds.data["counts"].values[3] == 50.0
    n = np.full(10, 4.0)
    n[3] = 50.0
    assert ds.stat_sum() == pytest.approx(direct_cash(n, mu).sum(), rel=1e-12, abs=0)
    # whole-array assignment to .values
    ds.counts.values = np.full(10, 1.0)
    assert ds.stat_sum() == pytest.approx(direct_cash(np.ones(10), mu).sum(), rel=1e-12, abs=0)


def test_exposure_values_change_seen_by_npred(path):
    ds, er, et = make(path)
    before = ds.npred_signal().values.copy()
    ds.exposure.values *= 2.0  # in place
    np.testing.assert_allclose(ds.npred_signal().values, 2 * before, rtol=1e-12)
    ds.exposure.values = ds.exposure.values / 4.0  # assignment
    np.testing.assert_allclose(ds.npred_signal().values, 0.5 * before, rtol=1e-12)


def test_mask_values_change_seen_by_stat_sum(path):
    ds, _, _ = make(path, counts=np.arange(10.0))
    full = ds.stat_array().values
    ds.mask_fit = np.ones(10, bool)  # two masks: the combination must not be a stale copy
    ds.mask_safe.values[:5] = False  # in place
    assert ds.stat_sum() == pytest.approx(full[5:].sum(), rel=1e-12, abs=0)
    ds.mask_fit.values[-1] = False
    assert ds.stat_sum() == pytest.approx(full[5:-1].sum(), rel=1e-12, abs=0)


def test_parameter_change_seen_by_stat_sum(path):
    ds, er, et = make(path, counts=np.full(10, 4.0))
    ds.models[0].spectral_model.parameters["amplitude"].value = 2 * AMP
    mu = 2 * expected_signal(er, et) + 0.5
    assert ds.stat_sum() == pytest.approx(direct_cash(np.full(10, 4.0), mu).sum(), rel=1e-12, abs=0)


def test_reset_data_cache(path):
    ds, er, et = make(path, counts=np.full(10, 4.0))
    ds.stat_sum()
    # replace the buffer behind the variable's back (no xarray API): only a reset can see it
    ds.data["background"].variable._data = np.full(10, 2.0)
    ds.reset_data_cache()
    mu = expected_signal(er, et) + 2.0
    assert ds.stat_sum() == pytest.approx(direct_cash(np.full(10, 4.0), mu).sum(), rel=1e-12, abs=0)


# simulation ------------------------------------------------------------------------------------
def test_fake_reproducible_int_seed(path):
    ds, er, et = make(path)
    ds.fake(random_state=123)
    first = ds.counts.values.copy()
    ds.fake(random_state=123)
    np.testing.assert_array_equal(ds.counts.values, first)
    # numpy's legacy RandomState with the int seed (as Gammapy) on npred
    np.testing.assert_array_equal(first, np.random.RandomState(123).poisson(ds.npred().values))
    ds.fake(random_state=124)
    assert not np.array_equal(ds.counts.values, first)


@pytest.mark.parametrize("kind", ["generator", "randomstate", "random-seed", "global-rng"])
def test_fake_random_state_kinds(path, kind):
    ds, _, _ = make(path, exposure_scale_m2s=1e11)
    rs = {
        "generator": np.random.default_rng(7),
        "randomstate": np.random.RandomState(7),
        "random-seed": "random-seed",
        "global-rng": "global-rng",
    }[kind]
    ds.fake(random_state=rs)
    c = ds.counts.values
    assert c.dtype == np.float64 and np.all(c >= 0) and np.all(c == np.round(c))
    if kind == "generator":
        np.testing.assert_array_equal(c, np.random.default_rng(7).poisson(ds.npred().values))
    # the mean follows npred: total counts within 5 sigma of the total prediction
    tot = ds.npred().values.sum()
    assert abs(c.sum() - tot) < 5 * math.sqrt(tot)


def test_fake_bad_random_state(path):
    ds, _, _ = make(path)
    with pytest.raises(ValueError, match="random_state"):
        ds.fake(random_state="seed-me")


def test_fake_writes_into_dataset(path):
    ds, _, _ = make(path)
    data = ds.data
    ds.fake(1)
    np.testing.assert_array_equal(data["counts"].values, ds.counts.values)
    assert ds.stat_sum() == pytest.approx(direct_cash(ds.counts.values, ds.npred().values).sum(), rel=1e-12, abs=0)


@pytest.mark.parametrize("method", ["diff", "diff/model", "diff/sqrt(model)"])
def test_residuals(path, method):
    counts = np.arange(1.0, 11.0)
    ds, er, et = make(path, counts=counts)
    mu = expected_signal(er, et) + 0.5
    expected = {"diff": counts - mu, "diff/model": (counts - mu) / mu, "diff/sqrt(model)": (counts - mu) / np.sqrt(mu)}
    np.testing.assert_allclose(ds.residuals(method).values, expected[method], rtol=1e-12)
    assert ds.residuals(method).dims == ("energy",)


def test_residuals_nan_outside_mask(path):
    counts = np.arange(1.0, 11.0)
    ds, er, et = make(path, counts=counts)
    fit = np.ones(10, bool)
    fit[[2, 5]] = False
    ds.mask_fit = fit
    res = ds.residuals("diff").values
    assert np.all(np.isnan(res[[2, 5]]))
    mu = expected_signal(er, et) + 0.5
    np.testing.assert_allclose(res[fit], (counts - mu)[fit], rtol=1e-12)


def test_residuals_bad_method(path):
    ds, _, _ = make(path)
    with pytest.raises(ValueError, match="residuals method"):
        ds.residuals("ratio")


def test_info_dict(path):
    counts = np.arange(10.0)
    ds, er, et = make(path, counts=counts)
    safe = np.ones(10, bool)
    safe[:2] = False
    ds.mask_safe = safe
    ds.gti = xs.GTI.create([0] * u.s, [1800] * u.s)
    info = ds.info_dict()
    assert info["name"] == "ds"
    assert info["counts"] == counts[2:].sum()
    assert info["background"] == pytest.approx(0.5 * 8, rel=1e-12, abs=0)
    assert info["excess"] == pytest.approx(counts[2:].sum() - 4.0, rel=1e-12, abs=0)
    assert info["npred_signal"] == pytest.approx(expected_signal(er, et)[2:].sum(), rel=1e-12, abs=0)
    assert info["n_bins"] == 10  # Gammapy: all bins
    assert info["n_fit_bins"] == 8
    assert info["stat_type"] == "cash"
    assert info["ontime"] == 1800 * u.s
    assert info["counts_rate"].to_value("s-1") == pytest.approx(counts[2:].sum() / 1800, rel=1e-12, abs=0)
    assert info["exposure_max"].unit == u.Unit("m2 s")
    n, b = counts[2:].sum(), 4.0
    assert info["sqrt_ts"] == pytest.approx(math.sqrt(2 * (n * math.log(n / b) - (n - b))), rel=1e-10, abs=0)
    assert ds.info_dict(in_safe_data_range=False)["counts"] == counts.sum()


# copies, masks, conversions ------------------------------------------------------------------------
def test_copy_is_deep(path):
    ds, _, _ = make(path, counts=np.ones(10))
    c = ds.copy(name="copied")
    assert c.name == "copied" and ds.name == "ds"
    assert isinstance(c, xs.SpectrumDataset)
    xr.testing.assert_identical(c.data.drop_attrs(), ds.data.drop_attrs())
    c.counts.values[:] = 5.0
    assert np.all(ds.counts.values == 1.0)
    c.models[0].spectral_model.parameters["index"].value = 3.0
    assert ds.models[0].spectral_model.parameters["index"].value == INDEX
    assert len(ds.copy().name) == 8  # random name


def test_copy_moves_background_model(path):
    ds, _, _ = make(path)
    ds.models = list(ds.models) + [xs.FoVBackgroundModel(dataset_name="ds")]
    c = ds.copy(name="c2")
    assert c.background_model is not None
    assert c.background_model.datasets_names == ["c2"]
    assert ds.background_model.datasets_names == ["ds"]


def test_apply_mask_safe(path):
    ds, _, _ = make(path, counts=np.arange(1.0, 11.0))
    safe = np.ones(10, bool)
    safe[[1, 8]] = False
    ds.mask_safe = safe
    ds.apply_mask_safe()
    expected = np.arange(1.0, 11.0)
    expected[[1, 8]] = 0.0
    np.testing.assert_array_equal(ds.counts.values, expected)
    np.testing.assert_array_equal(ds.background.values, np.where(safe, 0.5, 0.0))
    np.testing.assert_array_equal(ds.npred_background().values, np.where(safe, 0.5, 0.0))


def test_to_spectrum_dataset(path):
    ds, _, _ = make(path)
    assert ds.to_spectrum_dataset() is ds


def test_create():
    e = xs.MapAxis.from_energy_bounds("0.1 TeV", "100 TeV", 6)
    et = xs.MapAxis.from_energy_bounds("0.05 TeV", "200 TeV", 15, name="energy_true")
    meta = Table({"OBS_ID": [1]})
    ds = xs.SpectrumDataset.create(e, et, reference_time="2010-01-01", name="empty", meta_table=meta)
    assert ds.name == "empty"
    assert np.all(ds.counts.values == 0) and np.all(ds.background.values == 0) and np.all(ds.exposure.values == 0)
    assert ds.mask_safe.dtype == bool and not ds.mask_safe.values.any()
    assert ds.edisp.shape == (15, 6)
    from xspec_ds.axes import overlap_matrix

    np.testing.assert_allclose(ds.edisp.values, overlap_matrix(et.edges, e.edges), rtol=1e-15)
    assert len(ds.gti) == 0
    assert ds.gti.time_ref.isot.startswith("2010-01-01")
    assert list(ds.meta_table["OBS_ID"]) == [1]
    assert ds.data.spectrum.name == "empty"


def test_create_default_true_axis_identity():
    e = xs.MapAxis.from_energy_bounds(1, 10, 4, unit="TeV")
    ds = xs.SpectrumDataset.create(e)
    np.testing.assert_array_equal(ds.edisp.values, np.eye(4))
    assert ds.geoms["geom_exposure"].axes[0].name == "energy_true"


def test_create_bad_axes():
    e = xs.MapAxis.from_energy_bounds(1, 10, 4, unit="TeV")
    with pytest.raises(ValueError, match="e_reco must be named 'energy'"):
        xs.SpectrumDataset.create(e.copy(name="energy_true"))
    with pytest.raises(ValueError, match="e_true must be named 'energy_true'"):
        xs.SpectrumDataset.create(e, e)
    with pytest.raises(TypeError, match="MapAxis"):
        xs.SpectrumDataset.create([1, 2, 3])


def test_from_geoms():
    ref = xs.SpectrumDataset.create(
        xs.MapAxis.from_energy_bounds(1, 10, 3, unit="TeV"),
        xs.MapAxis.from_energy_bounds(1, 10, 6, unit="TeV", name="energy_true"),
    )
    geoms = ref.geoms
    ds = xs.SpectrumDataset.from_geoms(geoms["geom"], geoms["geom_exposure"], None, geoms["geom_edisp"], name="g")
    assert ds.name == "g"
    assert ds.geoms["geom"].axes[0] == geoms["geom"].axes[0]
    assert ds.geoms["geom_exposure"].axes[0] == geoms["geom_exposure"].axes[0]
    np.testing.assert_array_equal(ds.edisp.values, ref.edisp.values)
    with pytest.raises(ValueError, match="PSF"):
        xs.SpectrumDataset.from_geoms(geoms["geom"], geoms["geom_exposure"], geoms["geom"], geoms["geom_edisp"])


# bad input -------------------------------------------------------------------------------------
def _other_axis_array(name, n, dim="energy", unit="TeV"):
    from .conftest import edge_coords, edges_geom

    return xr.DataArray(np.ones(n), dims=dim, coords=edge_coords(dim, edges_geom(0.2, 50, n), unit))


def test_mismatched_energy_axes_counts_background(path):
    arrays, _, _ = build_arrays(n=10)
    arrays["background"] = _other_axis_array("background", 10)
    with pytest.raises(ValueError, match="mismatched 'energy' axes for background|mismatched 'energy' axes for counts"):
        xs.SpectrumDataset(name="bad", **arrays)
    arrays["background"] = _other_axis_array("background", 7)
    with pytest.raises(ValueError, match="mismatched 'energy' axes"):
        xs.SpectrumDataset(name="bad", **arrays)


def test_mismatched_axes_on_assignment(path):
    ds, _, _ = make(path)
    with pytest.raises(ValueError, match="mismatched 'energy' axes for background"):
        ds.background = _other_axis_array("background", 10)
    with pytest.raises(ValueError, match="shape"):
        ds.counts = np.ones(4)
    np.testing.assert_array_equal(ds.background.values, 0.5)  # unchanged


def test_edisp_axes_mismatch():
    arrays, er, et = build_arrays(n=10)
    from .conftest import edge_coords, edges_geom

    bad_true = edges_geom(0.1, 100, 15)
    arrays["edisp"] = xr.DataArray(
        np.full((15, 10), 0.05),
        dims=("energy_true", "energy"),
        coords={**edge_coords("energy_true", bad_true), **edge_coords("energy", er)},
    )
    with pytest.raises(ValueError, match="mismatched 'energy_true' axes"):
        xs.SpectrumDataset(name="bad", **arrays)
    arrays, er, et = build_arrays(n=10)
    arrays["edisp"] = xr.DataArray(
        np.full((20, 10), 0.05),
        dims=("energy_true", "energy"),
        coords={**edge_coords("energy_true", et), **edge_coords("energy", edges_geom(0.1, 90, 10))},
    )
    with pytest.raises(ValueError, match="mismatched 'energy' axes"):
        xs.SpectrumDataset(name="bad", **arrays)
    arrays, er, et = build_arrays(n=10)
    arrays["edisp"] = arrays["edisp"].rename({"energy_true": "e_t"})
    with pytest.raises(ValueError, match="edisp: dims must be"):
        xs.SpectrumDataset(name="bad", **arrays)


def test_edisp_rows_over_one():
    arrays, _, _ = build_arrays(n=4)
    arrays["edisp"] = arrays["edisp"] * 1.5
    with pytest.raises(ValueError, match="edisp rows"):
        xs.SpectrumDataset(name="bad", **arrays)


@pytest.mark.parametrize(
    "bad, match",
    [(-1.0, "counts has negative values"), (np.nan, "counts has non-finite"), (np.inf, "counts has non-finite")],
)
def test_bad_counts(path, bad, match):
    counts = np.ones(10)
    counts[4] = bad
    arrays, _, _ = build_arrays(n=10, counts=counts)
    with pytest.raises(ValueError, match=match):
        xs.SpectrumDataset(name="bad", **arrays)
    with pytest.raises(ValueError, match=match):
        xr.Dataset(arrays).spectrum  # noqa: B018
    ds, _, _ = make(path)
    with pytest.raises(ValueError, match=match):
        ds.counts = counts
    assert np.all(ds.counts.values == 0)


@pytest.mark.parametrize("unit", ["m2", "s", "TeV", "cm2 s-1"])
def test_exposure_unit_not_area_time(path, unit):
    arrays, _, _ = build_arrays(n=10)
    arrays["exposure"].attrs["units"] = unit
    with pytest.raises(u.UnitsError, match="exposure unit .* not area x time"):
        xs.SpectrumDataset(name="bad", **arrays)
    with pytest.raises(u.UnitsError, match="not area x time"):
        xr.Dataset(arrays).spectrum  # noqa: B018
    ds, _, _ = make(path)
    with pytest.raises(u.UnitsError, match="not area x time"):
        ds.exposure = np.ones(20) * u.Unit(unit)


def test_unknown_parameter_name(path):
    ds, _, _ = make(path)
    with pytest.raises(KeyError, match="'gamma'"):
        ds.models.parameters["gamma"]
    with pytest.raises(TypeError, match="'gamma'"):
        xs.PowerLawSpectralModel(gamma=2)


def test_unknown_constructor_argument():
    with pytest.raises(TypeError, match="psf"):
        xs.SpectrumDataset(psf=None, name="x")


def test_accessor_rejects_non_dataset():
    with pytest.raises(TypeError, match="xarray.Dataset"):
        xs.SpectrumDataset.from_xarray(np.zeros(3))


@pytest.mark.gammapy
def test_same_numbers_as_gammapy():
    """Every array-valued member and info_dict against Gammapy 2.1 on the same data and model."""
    require_gammapy("gammapy")
    from gammapy.modeling.models import PowerLawSpectralModel as GPL
    from gammapy.modeling.models import SkyModel as GSky

    ds, er, et = make("class", n=10, edisp="smeared", background_level=1.5)
    ds.fake(random_state=2)
    safe = np.ones(10, bool)
    safe[[0, 9]] = False
    ds.mask_safe = safe
    g = gammapy_copy(ds, er, et)
    g.models = GSky(GPL(index=INDEX, amplitude=AMP * u.Unit("cm-2 s-1 TeV-1")), name="source")
    for name in ("npred", "npred_signal", "npred_background", "stat_array"):
        theirs = getattr(g, name)()
        theirs = np.asarray(theirs.data if hasattr(theirs, "geom") else theirs).ravel()
        np.testing.assert_allclose(getattr(ds, name)().values, theirs, rtol=1e-9, err_msg=name)
    np.testing.assert_allclose(ds.excess.values, g.excess.data.ravel(), rtol=1e-12)
    for method in ("diff", "diff/model", "diff/sqrt(model)"):
        np.testing.assert_allclose(ds.residuals(method).values, g.residuals(method).data.ravel(), rtol=1e-9)
    assert ds.stat_sum() == pytest.approx(g.stat_sum(), rel=1e-10, abs=0)
    ours, theirs = ds.info_dict(), g.info_dict()
    assert set(ours) == set(theirs)
    for key in (
        "counts",
        "background",
        "excess",
        "sqrt_ts",
        "npred",
        "npred_background",
        "npred_signal",
        "n_bins",
        "n_fit_bins",
        "stat_sum",
    ):
        assert ours[key] == pytest.approx(float(theirs[key]), rel=1e-9, abs=0), key
    for ours_e, theirs_e in zip(ds.energy_range, g.energy_range):
        assert ours_e.to_value("TeV") == pytest.approx(
            float(theirs_e.quantity.to_value("TeV").ravel()[0]), rel=1e-12, abs=0
        )


# --- analytic gradient ----------------------------------------------------------------------
@pytest.mark.parametrize("n_reco", [12, 150])  # 150 x 300 gives a sparse (banded) kernel
def test_stat_gradient_matches_finite_differences(n_reco):
    from xspec_ds import forward
    from xspec_ds.irf import edisp_from_gauss

    e_reco = xs.MapAxis.from_energy_bounds(0.1, 100, n_reco, unit="TeV", name="energy")
    e_true = xs.MapAxis.from_energy_bounds(0.05, 200, 2 * n_reco, unit="TeV", name="energy_true")
    ds = xs.SpectrumDataset.create(e_reco, e_true, name="grad")
    ds.exposure = np.geomspace(1e11, 5e12, 2 * n_reco) * u.Unit("cm2 s")
    ds.edisp = edisp_from_gauss(e_true, e_reco, sigma=0.02)
    ds.background = np.linspace(3.0, 0.5, n_reco)
    mask = np.ones(n_reco, bool)
    mask[: n_reco // 6] = False
    ds.mask_safe = mask
    pl = xs.PowerLawSpectralModel(index=2.4, amplitude="3e-11 cm-2 s-1 TeV-1")
    lp = xs.LogParabolaSpectralModel(amplitude="1e-12 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.0, beta=0.1)
    bkg = xs.FoVBackgroundModel(dataset_name="grad")
    ds.models = [xs.SkyModel(pl, name="pl"), xs.SkyModel(lp, name="lp"), bkg]
    ds.fake(random_state=4)
    if n_reco == 150:
        ds.edisp.values[ds.edisp.values < 1e-12] = 0.0  # make the kernel exactly banded
        ds.reset_data_cache()
        assert isinstance(ds._hot().edisp, forward.SparseKernel)
    params = [pl.index, pl.amplitude, lp.alpha, lp.beta, lp.amplitude, bkg.spectral_model.norm]
    pl.index.value, lp.beta.value = 2.3, 0.15  # away from the optimum: a non-trivial gradient
    stat = ds._stat_gradient(params)[0]
    assert stat == pytest.approx(ds.stat_sum(), rel=1e-13, abs=0)
    assert_gradient_is_central_difference(ds, params, rtol=2e-5, atol_stat=1e-7)
