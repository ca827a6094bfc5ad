"""`xspec_ds.batch`: arrays of K spectra from an obs-dimensioned Dataset or a list of datasets."""

import re
import warnings

import astropy.units as u
import numpy as np
import pytest
import xarray as xr

from xspec_ds.batch import batch_from_datasets, batch_from_xarray

from .fit.test_batch import make_spectra


def test_shared_responses_stay_unbroadcast():
    dss = make_spectra(4, seed=1)
    batch = batch_from_datasets(dss)
    assert batch.edisp.shape == dss[0].edisp.shape  # one matrix for all spectra
    assert batch.exposure.ndim == 2  # exposures differ per spectrum here
    np.testing.assert_array_equal(batch.data["counts"], np.stack([d.counts.values for d in dss]))
    exp = dss[2].exposure
    expected = u.Quantity(exp.values, exp.attrs["units"]).to_value("cm2 s")
    np.testing.assert_allclose(batch.exposure[2], expected, rtol=1e-15, atol=0)  # canonical cm2 s
    assert list(batch.labels) == [d.name for d in dss]


def test_per_spectrum_edisp_and_masks_from_xarray():
    dss = make_spectra(3, seed=2, per_edisp=True, mask_prob=0.3)
    dss[1].mask_fit = np.arange(20) > 4
    data = xr.concat([d.data for d in dss], dim="obs")
    batch = batch_from_xarray(data, "obs")
    assert batch.edisp.shape == (3,) + dss[0].edisp.shape
    expected = np.stack([d.mask_safe.values & (d.mask_fit.values if d.mask_fit is not None else True) for d in dss])
    np.testing.assert_array_equal(batch.mask, expected)
    sub = batch.take([2, 0])
    np.testing.assert_array_equal(sub.edisp[0], batch.edisp[2])
    np.testing.assert_array_equal(sub.data["counts"][1], batch.data["counts"][0])


def test_onoff_alpha_and_statistic():
    dss = make_spectra(2, seed=3, onoff=True)
    dss[0].acceptance_off = np.where(np.arange(20) == 3, 0.0, 5.0)
    batch = batch_from_datasets(dss)
    assert batch.statistic == "wstat"
    np.testing.assert_array_equal(batch.data["alpha"][0], np.where(np.arange(20) == 3, 0.0, 0.2))
    assert "background" not in batch.data


def test_mixed_onoff_and_cash_raises():
    with pytest.raises(ValueError, match="mixes on-off"):
        batch_from_datasets(make_spectra(1) + make_spectra(1, onoff=True, seed=4))


@pytest.mark.parametrize(
    ("name", "edit", "words"),
    [
        (
            "counts",
            lambda v: v.__setitem__(7, -3.0),
            r"variable 'counts' of spectrum '.*2' must be finite and non-negative.*bin \(7,\)",
        ),
        (
            "exposure",
            lambda v: v.__setitem__(0, -1.0),
            r"variable 'exposure' of spectrum '.*2' must be finite and non-negative",
        ),
        ("edisp", lambda v: v.__imul__(3.0), r"variable 'edisp' of spectrum '.*2': rows .* must sum to at most 1"),
    ],
)
def test_batch_refuses_invalid_values_naming_the_spectrum(name, edit, words):
    """The value rules of `xspec_ds.validation` hold for fit_batch too (in-place edits included)."""
    dss = make_spectra(4, seed=5, per_edisp=True)
    edit(dss[2].data[name].values)
    with pytest.raises(ValueError, match=words):
        batch_from_datasets(dss)
    with pytest.raises(ValueError, match=words.replace("of spectrum '.*2'", "of spectrum .*")):
        batch_from_xarray(xr.concat([d.data for d in dss], dim="obs"), "obs")


def _same_exposure(dss):
    for d in dss[1:]:
        d.exposure = dss[0].exposure.values * u.Unit(dss[0].exposure.attrs["units"])
    return dss


def _in_gev(d: xr.Dataset) -> xr.Dataset:
    """The same dataset with its edge coordinates written in GeV."""
    out = d.copy()
    for dim in ("energy", "energy_true"):
        for c in (f"{dim}_min", f"{dim}_max"):
            attrs = dict(d[c].attrs, units="GeV")
            out = out.assign_coords({c: (dim, d[c].values * 1e3, attrs)})
    return out


def test_take_selects_rows_of_per_spectrum_arrays():
    dss = make_spectra(3, seed=6, per_edisp=True)
    batch = batch_from_datasets(dss)
    assert batch.exposure.ndim == 2 and batch.edisp.ndim == 3
    sub = batch.take([2, 0])
    assert list(sub.labels) == ["run2", "run0"]
    assert sub.statistic == "cash"
    assert len(sub) == 2
    for name in ("counts", "background"):
        np.testing.assert_array_equal(sub.data[name], batch.data[name][[2, 0]])
    np.testing.assert_array_equal(sub.mask, batch.mask[[2, 0]])
    np.testing.assert_array_equal(sub.exposure, batch.exposure[[2, 0]])
    np.testing.assert_array_equal(sub.edisp, batch.edisp[[2, 0]])
    for name in ("e_lo", "e_hi", "reco_edges"):
        np.testing.assert_array_equal(getattr(sub, name), getattr(batch, name))


def test_take_keeps_shared_responses_shared():
    dss = _same_exposure(make_spectra(3, seed=7))
    batch = batch_from_datasets(dss)
    assert batch.exposure.shape == (40,) and batch.edisp.shape == (40, 20)  # one copy for all spectra
    sub = batch.take([1, 2])
    assert sub.exposure is batch.exposure and sub.edisp is batch.edisp
    np.testing.assert_array_equal(sub.data["counts"], batch.data["counts"][[1, 2]])


def test_identity_dispersion_take():
    dss = make_spectra(2, seed=8)
    for d in dss:
        d.edisp = None
    batch = batch_from_datasets(dss)
    assert batch.edisp is None and batch.take([1]).edisp is None


def test_shared_exposure_only_with_equal_values_and_units():
    dss = _same_exposure(make_spectra(2, seed=9))
    data = [d.data.copy() for d in dss]
    batch = batch_from_datasets(data)
    np.testing.assert_allclose(batch.exposure, dss[0].exposure.values, rtol=1e-15, atol=0)  # cm2 s
    data[1]["exposure"].attrs["units"] = "m2 s"  # same numbers, other unit: not shared
    batch = batch_from_datasets(data)
    assert batch.exposure.shape == (2, 40)
    np.testing.assert_allclose(batch.exposure[1], 1e4 * batch.exposure[0], rtol=1e-15, atol=0)
    for d in data:  # no unit at all: shared, read as the default m2 s
        del d["exposure"].attrs["units"]
    batch = batch_from_datasets(data)
    assert batch.exposure.shape == (40,)
    np.testing.assert_allclose(batch.exposure, 1e4 * dss[0].exposure.values, rtol=1e-15, atol=0)


def test_batch_of_xarray_datasets_without_names():
    dss = make_spectra(2, seed=10)
    data = [d.data.copy() for d in dss]
    for d in data:
        del d.attrs["name"]
    batch = batch_from_datasets(data)
    assert list(batch.labels) == ["0", "1"]  # their positions
    np.testing.assert_array_equal(batch.data["counts"], np.stack([d.counts.values for d in dss]))


def test_binning_compared_in_tev_whatever_the_unit():
    dss = make_spectra(3, seed=11)
    data = [_in_gev(dss[0].data), dss[1].data, _in_gev(dss[2].data)]
    batch = batch_from_datasets(data)
    np.testing.assert_allclose(batch.reco_edges, dss[1].data.energy_min.values.tolist() + [60.0], rtol=1e-15, atol=0)
    np.testing.assert_allclose(batch.e_lo, dss[1].data.energy_true_min.values, rtol=1e-15, atol=0)  # TeV
    np.testing.assert_allclose(batch.e_hi, dss[1].data.energy_true_max.values, rtol=1e-15, atol=0)


@pytest.mark.parametrize("dim", ["energy", "energy_true"])
def test_binning_differing_by_1e9_is_refused(dim):
    """Edges must agree to 1e-10 relative (no absolute slack: the lowest edge is 0.1-0.3 TeV)."""
    dss = make_spectra(2, seed=12)
    d1 = dss[1].data
    lo = d1[f"{dim}_min"].values.copy()
    lo[0] *= 1 + 1e-9
    d1 = d1.assign_coords({f"{dim}_min": (dim, lo, d1[f"{dim}_min"].attrs)})
    with pytest.raises(ValueError, match=f"spectrum 'run1' has a different '{dim}' binning"):
        batch_from_datasets([dss[0], d1])


def test_different_binning_message_gives_both_binnings():
    import xspec_ds as xs

    dss = make_spectra(1, seed=13)
    e_reco = xs.MapAxis.from_energy_bounds("0.5 TeV", "50 TeV", 10)
    e_true = xs.MapAxis.from_energy_bounds("0.1 TeV", "150 TeV", 40, name="energy_true")
    other = xs.SpectrumDataset.create(e_reco, e_true, name="other")
    message = (
        "spectrum 'other' has a different 'energy' binning (10 bins, [0.5, 50] TeV) from spectrum 'run0' "
        "(20 bins, [0.3, 60] TeV): a batch needs one binning"
    )
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        batch_from_datasets([dss[0], other])


def test_empty_and_mixed_messages():
    with pytest.raises(ValueError, match="^no datasets to fit$"):
        batch_from_datasets([])
    message = "a batch mixes on-off (counts_off) and Cash datasets: fit them separately"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        batch_from_datasets(make_spectra(1) + make_spectra(1, onoff=True, seed=4))


@pytest.mark.parametrize("name", ["edisp", "exposure"])
@pytest.mark.parametrize("missing", [0, 1])
def test_response_missing_from_some_datasets_is_refused(missing, name):
    """Not a silent identity kernel for some spectra (nor a KeyError)."""
    data = [d.data for d in make_spectra(2, seed=14)]
    data[missing] = data[missing].drop_vars(name)
    with pytest.raises(ValueError, match=f"^spectrum 'run{missing}' has no '{name}' variable \\(others have it\\)$"):
        batch_from_datasets(data)


@pytest.mark.parametrize("name", ["counts", "mask_safe"])
def test_variable_missing_from_some_datasets_is_refused(name):
    dss = make_spectra(2, seed=15)
    data = [d.data.copy() for d in dss]
    data = [data[0], data[1].drop_vars(name)]
    with pytest.raises(ValueError, match=f"^spectrum 'run1' has no '{name}' variable \\(others have it\\)$"):
        batch_from_datasets(data)


def test_bad_value_of_a_shared_variable_names_all_spectra_and_the_first_bin():
    dss = make_spectra(3, seed=16)
    data = xr.concat([d.data for d in dss], dim="obs")
    exposure = dss[0].data["exposure"].copy()
    exposure.values[[9, 3]] = -1.0
    data["exposure"] = exposure  # no obs dimension: shared by all spectra
    message = (
        "variable 'exposure' of all spectra (shared variable) must be finite and non-negative: "
        "2 bad value(s), first at bin (3,)"
    )
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        batch_from_xarray(data, "obs")


@pytest.mark.parametrize("labelled", [True, False])
def test_non_finite_value_names_the_first_bad_spectrum_and_bin(labelled):
    dss = make_spectra(3, seed=17)
    data = xr.concat([d.data for d in dss], dim="obs")
    if labelled:
        data = data.assign_coords(obs=[d.name for d in dss])  # a numpy str coordinate
    data["counts"].values[1, [12, 4]] = np.nan
    data["counts"].values[2, 0] = np.inf
    label = "'run1'" if labelled else "1"  # the coordinate value, or the position
    message = f"non-finite values in variable 'counts' of spectrum {label}: 3 value(s), first at bin (4,)"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        batch_from_xarray(data, "obs")


def test_batch_from_xarray_messages():
    data = xr.concat([d.data for d in make_spectra(2, seed=18)], dim="obs")
    message = "dimension 'run' is not in the data (its dimensions are ['energy', 'energy_true', 'gti', 'obs'])"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        batch_from_xarray(data, "run")
    with pytest.raises(ValueError, match="^the data have no 'counts' variable: nothing to fit$"):
        batch_from_xarray(data.drop_vars("counts"), "obs")
    with pytest.raises(ValueError, match="^the data have no 'exposure' variable: cannot predict counts$"):
        batch_from_xarray(data.drop_vars("exposure"), "obs")


def test_batch_from_xarray_labels_masks_and_shared_variables():
    dss = make_spectra(3, seed=19, mask_prob=0.2)
    mask_fit = [np.ones(20, bool), np.arange(20) > 2, np.arange(20) < 15]
    for d, m in zip(dss, mask_fit, strict=True):
        d.mask_fit = m
    data = xr.concat([d.data for d in dss], dim="obs")
    data["edisp"] = dss[0].data["edisp"]  # shared: no obs dimension
    data["exposure"] = dss[0].data["exposure"]
    batch = batch_from_xarray(data, "obs")
    np.testing.assert_array_equal(batch.labels, [0, 1, 2])  # no obs coordinate: positions
    assert batch.edisp.shape == (40, 20) and batch.exposure.shape == (40,)
    np.testing.assert_allclose(batch.exposure, dss[0].exposure.values, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(batch.edisp, dss[0].edisp.values)
    expected = np.stack([d.mask_safe.values & m for d, m in zip(dss, mask_fit, strict=True)])
    assert not expected.all()
    np.testing.assert_array_equal(batch.mask, expected)
    np.testing.assert_array_equal(batch.data["counts"], np.stack([d.counts.values for d in dss]))
    np.testing.assert_array_equal(batch.data["background"], np.stack([d.background.values for d in dss]))
    assert batch.data["counts"].dtype == np.float64
    e_true = np.append(dss[0].data.energy_true_min.values, 150.0)
    np.testing.assert_allclose(batch.e_lo, e_true[:-1], rtol=1e-15, atol=0)
    np.testing.assert_allclose(batch.e_hi, e_true[1:], rtol=1e-15, atol=0)
    # a shared counts array is broadcast to every spectrum
    data["counts"] = dss[1].data["counts"]
    np.testing.assert_array_equal(batch_from_xarray(data, "obs").data["counts"], np.stack([dss[1].counts.values] * 3))


def test_onoff_alpha_defaults_and_empty_acceptances():
    dss = make_spectra(2, seed=20, onoff=True)
    acc = np.ones(20)
    acc[[4, 6]] = 0.0
    acc_off = np.full(20, 4.0)
    acc_off[[5, 6]] = 0.0
    dss[1].acceptance, dss[1].acceptance_off = acc, acc_off
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 1/0 and 0/0 are expected: no numpy warnings
        batch = batch_from_datasets(dss)
    expected = np.full(20, 0.25)
    expected[[4, 5, 6]] = 0.0  # 0/4, 1/0 and 0/0: no background in the on region
    np.testing.assert_array_equal(batch.data["alpha"][1], expected)
    np.testing.assert_array_equal(batch.data["alpha"][0], np.full(20, 0.2))
    np.testing.assert_array_equal(batch.data["counts_off"], np.stack([d.counts_off.values for d in dss]))
    data = [d.data.drop_vars(["acceptance", "acceptance_off"]) for d in dss]
    np.testing.assert_array_equal(batch_from_datasets(data).data["alpha"], np.ones((2, 20)))  # no acceptances: 1
    data = [d.data.drop_vars(["acceptance_off"]) for d in dss]
    np.testing.assert_array_equal(batch_from_datasets(data).data["alpha"], np.ones((2, 20)))


def test_statistic_given_explicitly():
    dss = make_spectra(2, seed=21)
    assert batch_from_datasets(dss).statistic == "cash"
    assert batch_from_datasets(dss, statistic="chi2datavar").statistic == "chi2datavar"
    data = xr.concat([d.data for d in dss], dim="obs")
    assert batch_from_xarray(data, "obs", statistic="chi2gehrels").statistic == "chi2gehrels"


def test_shared_edisp_rows_above_one_name_all_spectra():
    dss = make_spectra(2, seed=22)
    data = xr.concat([d.data for d in dss], dim="obs")
    edisp = dss[0].data["edisp"].copy()
    edisp.values[[7, 30]] *= 1.0 / edisp.values[[7, 30]].sum(axis=1, keepdims=True)
    edisp.values[[7, 30], 3] += [2e-6, 1e-3]  # rows 7 and 30 sum to 1 + 2e-6 and 1 + 1e-3
    data["edisp"] = edisp
    message = (
        "variable 'edisp' of all spectra (shared variable): rows (true-energy bins) must sum to at most 1 "
        "(probabilities), first above 1 at true-energy bin (7,); datasets summed with xarray add their kernels: "
        "use xs.stack"
    )
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        batch_from_xarray(data, "obs")
    edisp.values[7, 3] -= 1.5e-6  # 1 + 5e-7: within the rounding allowed (EDISP_ROW_SUM_TOL = 1e-6)
    with pytest.raises(ValueError, match=re.escape("first above 1 at true-energy bin (30,)")):
        batch_from_xarray(data, "obs")


def test_per_spectrum_responses_in_the_first_spectrum_unit():
    """Per-spectrum exposures are stacked in the first spectrum's unit (``m2 s`` when a dataset
    gives none) and returned in ``cm2 s``; kernels without a unit are probabilities."""
    dss = make_spectra(2, seed=23, per_edisp=True)
    exp = [d.exposure.values for d in dss]  # cm2 s
    data = [d.data.copy() for d in dss]
    del data[1]["exposure"].attrs["units"]  # read as m2 s
    batch = batch_from_datasets(data)
    np.testing.assert_allclose(batch.exposure, [exp[0], 1e4 * exp[1]], rtol=1e-15, atol=0)
    data[1]["exposure"] = data[1]["exposure"].astype(np.float32)  # float32 (OGIP): scaled in float64
    exp32 = data[1]["exposure"].values.astype(np.float64)
    batch = batch_from_datasets(data)
    np.testing.assert_allclose(batch.exposure[1], 1e4 * exp32, rtol=1e-15, atol=0)
    data = [d.data.copy() for d in dss]
    del data[0]["exposure"].attrs["units"]
    batch = batch_from_datasets(data)
    np.testing.assert_allclose(batch.exposure, [1e4 * exp[0], exp[1]], rtol=1e-15, atol=0)
    for d in data:
        del d["edisp"].attrs["units"]
    batch = batch_from_datasets(data)
    np.testing.assert_array_equal(batch.edisp, np.stack([d.edisp.values for d in dss]))


def test_integer_counts_and_masks_from_datasets():
    dss = make_spectra(3, seed=24, mask_prob=0.2)
    mask_fit = [np.arange(20) > i for i in range(3)]
    data = []
    for d, m in zip(dss, mask_fit, strict=True):
        x = d.data.copy()
        x["counts"] = x["counts"].astype(np.int32)
        x["mask_fit"] = ("energy", m)
        data.append(x)
    batch = batch_from_datasets(data)
    assert batch.data["counts"].dtype == np.float64
    np.testing.assert_array_equal(batch.data["counts"], np.stack([d.counts.values for d in dss]))
    expected = np.stack([d.mask_safe.values & m for d, m in zip(dss, mask_fit, strict=True)])
    np.testing.assert_array_equal(batch.mask, expected)
    # shared integer counts (no obs dimension) are converted too
    xdata = xr.concat(data, dim="obs")
    xdata["counts"] = data[0]["counts"]
    batch = batch_from_xarray(xdata, "obs")
    assert batch.data["counts"].dtype == np.float64
    np.testing.assert_array_equal(batch.data["counts"], np.stack([dss[0].counts.values] * 3))


def test_default_dimension_and_shared_mask():
    dss = make_spectra(2, seed=25, mask_prob=0.3)
    data = xr.concat([d.data for d in dss], dim="obs")
    data["mask_safe"] = dss[1].data["mask_safe"]  # shared by both spectra (no obs dimension)
    batch = batch_from_xarray(data)  # dim="obs" by default
    assert len(batch) == 2
    assert not batch.mask.all()
    np.testing.assert_array_equal(batch.mask, np.stack([dss[1].mask_safe.values] * 2))


def test_edisp_rows_summing_to_exactly_one_plus_the_tolerance_are_accepted():
    from xspec_ds.validation import EDISP_ROW_SUM_TOL

    dss = make_spectra(2, seed=26)
    data = xr.concat([d.data for d in dss], dim="obs")
    edisp = dss[0].data["edisp"].copy()
    edisp.values[7] = 0.0
    edisp.values[7, :2] = [0.5, (1.0 + EDISP_ROW_SUM_TOL) - 0.5]  # both sums exact in floating point
    assert edisp.values[7].sum() == 1.0 + EDISP_ROW_SUM_TOL
    data["edisp"] = edisp
    np.testing.assert_array_equal(batch_from_xarray(data, "obs").edisp, edisp.values)
