"""`xspec_ds.batch`: arrays of K spectra from an obs-dimensioned Dataset or a list of datasets."""

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
