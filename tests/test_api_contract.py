"""The public contract of ../shared/API.md, line by line (outside checks rely on these names)."""

from __future__ import annotations

import subprocess
import sys

import astropy.units as u
import numpy as np
import pytest
import xarray as xr

import xspec_ds as xs


@pytest.fixture
def dataset():
    e_reco = xs.MapAxis.from_energy_bounds(0.1, 100, 12, unit="TeV", name="energy")
    e_true = xs.MapAxis.from_energy_bounds(0.05, 200, 24, unit="TeV", name="energy_true")
    ds = xs.SpectrumDataset.create(e_reco, e_true, name="contract")
    ds.exposure = np.full(24, 1e12) * u.Unit("cm2 s")
    ds.background = np.full(12, 1.5)
    ds.mask_safe = np.ones(12, bool)
    ds.models = xs.PowerLawSpectralModel(index=2.4, amplitude="2e-11 cm-2 s-1 TeV-1")
    ds.fake(random_state=11)
    return ds


def test_axes_contract():
    ax = xs.MapAxis.from_energy_bounds(1, 10, 4, unit="TeV", name="energy")
    assert ax.nbin == 4 and ax.name == "energy"
    np.testing.assert_allclose(ax.edges.to_value("TeV"), np.geomspace(1, 10, 5), rtol=1e-15)
    np.testing.assert_allclose(ax.center.to_value("TeV"), np.sqrt(ax.edges[:-1] * ax.edges[1:]).to_value("TeV"))
    edges = [0.3, 1.0, 3.0, 30.0] * u.TeV
    ax2 = xs.MapAxis.from_energy_edges(edges, name="energy_true")
    assert ax2.name == "energy_true" and np.array_equal(ax2.edges.value, edges.value)


def test_dataset_variables_dims_units(dataset):
    data = dataset.data
    assert isinstance(data, xr.Dataset)
    for name in ("counts", "background", "mask_safe"):
        assert data[name].dims == ("energy",)
    assert data["exposure"].dims == ("energy_true",)
    assert data["edisp"].dims == ("energy_true", "energy")
    assert u.Unit(data["exposure"].attrs["units"]).is_equivalent("m2 s")
    for dim in ("energy", "energy_true"):
        for coord in (dim, f"{dim}_min", f"{dim}_max"):
            assert coord in data.coords and u.Unit(data[coord].attrs["units"]).is_equivalent("TeV")
    for method in ("npred", "npred_signal", "npred_background", "stat_array", "residuals"):
        da = getattr(dataset, method)()
        assert isinstance(da, xr.DataArray) and da.dims == ("energy",)
    assert dataset.stat_type == "cash" and dataset.tag == "SpectrumDataset"
    assert isinstance(dataset.stat_sum(), float)


def test_stat_sum_is_masked_sum(dataset):
    mask = np.ones(12, bool)
    mask[:3] = False
    dataset.mask_fit = mask
    expected = float(dataset.stat_array().values[dataset.mask.values].sum())
    assert dataset.stat_sum() == pytest.approx(expected, rel=1e-14, abs=0)


def test_values_assignment_changes_dataset(dataset):
    before = dataset.stat_sum()
    dataset.counts.values[0] += 5
    assert dataset.data["counts"].values[0] == dataset.counts.values[0]
    assert dataset.stat_sum() != before


def test_accessor_is_a_view(dataset):
    xr_ds = dataset.data
    view = xr_ds.spectrum
    assert view.data is xr_ds
    view.models = dataset.models
    assert view.stat_sum() == pytest.approx(dataset.stat_sum(), rel=1e-14, abs=0)


@pytest.mark.parametrize("state", [3, np.random.default_rng(3), np.random.RandomState(3), "random-seed"])
def test_fake_random_state(dataset, state):
    dataset.fake(random_state=state)
    assert np.all(dataset.counts.values >= 0)


def test_fake_same_int_same_counts(dataset):
    dataset.fake(random_state=5)
    first = dataset.counts.values.copy()
    dataset.fake(random_state=5)
    np.testing.assert_array_equal(first, dataset.counts.values)


def test_models_accept_all_forms(dataset):
    pl = xs.PowerLawSpectralModel()
    for models in (
        pl,
        xs.SkyModel(spectral_model=pl, name="a"),
        [xs.SkyModel(spectral_model=pl, name="a")],
        xs.Models([xs.SkyModel(spectral_model=pl, name="a")]),
    ):
        dataset.models = models
        assert len(dataset.models) == 1
    par = pl.parameters["index"]
    for attr in ("value", "unit", "error", "min", "max", "frozen"):
        assert hasattr(par, attr)
    assert pl.integral(1 * u.TeV, 10 * u.TeV).unit.is_equivalent("cm-2 s-1")
    assert pl(1 * u.TeV).unit.is_equivalent("cm-2 s-1 TeV-1")
    lp = xs.LogParabolaSpectralModel.from_log10(
        amplitude="1e-11 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.5, beta=0.2
    )
    assert lp.beta.value == pytest.approx(0.2 / np.log(10), rel=1e-12, abs=0)
    xs.ExpCutoffPowerLawSpectralModel(
        amplitude="1e-11 cm-2 s-1 TeV-1", index=2, lambda_="0.1 TeV-1", reference="1 TeV", alpha=1
    )


def test_fit_contract(dataset):
    result = xs.Fit().run(dataset)
    assert result.success and isinstance(result.total_stat, float)
    index = result.parameters["index"]
    assert index.error > 0 and abs(index.value - 2.4) < 5 * index.error
    result2 = xs.Fit().run(xs.Datasets([dataset]))
    assert result2.total_stat == pytest.approx(result.total_stat, rel=1e-9, abs=0)


def test_stack_and_label_ops_return_new(dataset):
    other = dataset.copy(name="other")
    stacked = xs.Datasets([dataset, other]).stack_reduce()
    np.testing.assert_allclose(stacked.counts.values, 2 * dataset.counts.values)
    for new in (
        dataset.slice_by_idx({"energy": slice(2, 8)}),
        dataset.downsample(2, axis_name="energy"),
        dataset.to_image(),
        dataset.copy(),
    ):
        assert new is not dataset
    before = dataset.counts.values.copy()
    dataset.stack(other)
    np.testing.assert_allclose(dataset.counts.values, 2 * before)


@pytest.mark.parametrize("suffix", [".fits", ".nc"])
def test_write_read_and_open(dataset, tmp_path, suffix):
    path = tmp_path / f"d{suffix}"
    dataset.write(path)
    with pytest.raises(FileExistsError):
        dataset.write(path)
    back = xs.SpectrumDataset.read(path)
    np.testing.assert_array_equal(back.counts.values, dataset.counts.values)
    lazy = xs.open_dataset(path)
    assert isinstance(lazy, xr.Dataset)
    np.testing.assert_array_equal(lazy.spectrum.counts.values, dataset.counts.values)
    obs = xs.open_mfdataset([path])
    assert "obs" in obs.dims


def test_hdulist_and_dict(dataset):
    hdulist = dataset.to_hdulist()
    back = xs.SpectrumDataset.from_hdulist(hdulist)
    np.testing.assert_array_equal(back.counts.values, dataset.counts.values)
    assert isinstance(dataset.to_dict(), dict)


def test_onoff_contract():
    assert xs.SpectrumDatasetOnOff.stat_type == "wstat"
    for name in ("counts_off", "acceptance", "acceptance_off", "alpha"):
        assert hasattr(xs.SpectrumDatasetOnOff, name)


def test_command_line():
    out = subprocess.run([sys.executable, "-m", "xspec_ds.cli", "--help"], capture_output=True, text=True, check=True)
    assert "demo" in out.stdout
