"""Gammapy 2.1 interoperability: files written by one library are read by the other, arrays compared exactly."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import xarray as xr

import xspec_ds as xs

from .._requirements import require_gammapy, shared_data
from ._datasets import random_dataset

gammapy = require_gammapy(allow_module_level=True)
pytestmark = pytest.mark.gammapy

from astropy.time import Time  # noqa: E402
from gammapy.data import GTI as GGTI  # noqa: E402
from gammapy.datasets import Datasets as GDatasets  # noqa: E402
from gammapy.datasets import SpectrumDataset as GSpectrumDataset  # noqa: E402
from gammapy.maps import MapAxis as GMapAxis  # noqa: E402
from gammapy.maps import RegionGeom  # noqa: E402
from gammapy.modeling.models import Models as GModels  # noqa: E402


def gammapy_values(m):
    """A Gammapy RegionNDMap's data without the 1x1 spatial pixel."""
    return m.data.reshape(m.data.shape[:-2])


@pytest.mark.parametrize("seed,n,n_true,reco_unit", [(0, 7, 9, "TeV"), (1, 30, 12, "GeV"), (2, 1, 1, "TeV")])
def test_gammapy_reads_xspec_ds_fits(tmp_path, seed, n, n_true, reco_unit):
    ds = random_dataset(seed, n=n, n_true=n_true, reco_unit=reco_unit, exposure_unit="cm2 s", n_gti=3, meta=True)
    path = tmp_path / "ours.fits"
    ds.write(path)
    g = GSpectrumDataset.read(path, name=ds.name)
    np.testing.assert_array_equal(gammapy_values(g.counts), ds.counts.values)
    np.testing.assert_array_equal(gammapy_values(g.background), ds.background.values)
    assert g.exposure.unit == u.Unit("cm2 s")
    np.testing.assert_array_equal(gammapy_values(g.exposure), ds.exposure.values)
    np.testing.assert_array_equal(gammapy_values(g.edisp.edisp_map), ds.edisp.values)
    np.testing.assert_array_equal(gammapy_values(g.mask_safe), ds.mask_safe.values)
    np.testing.assert_array_equal(gammapy_values(g.mask_fit), ds.mask_fit.values)
    assert g.mask_safe.data.dtype == bool
    e_reco = g.counts.geom.axes["energy"].edges
    assert e_reco.unit == u.Unit(reco_unit)
    np.testing.assert_array_equal(e_reco.value, xs.MapAxis.from_energy_edges(ds._energy_axis.edges).edges.value)
    np.testing.assert_array_equal(g.exposure.geom.axes["energy_true"].edges.value, ds._energy_axis_true.edges.value)
    np.testing.assert_array_equal(
        g.edisp.edisp_map.geom.axes["energy_true"].edges.value, ds._energy_axis_true.edges.value
    )
    # GTI: Gammapy rebuilds times through astropy Time arithmetic, so compare to 1 microsecond
    ours = ds.gti
    assert abs((g.gti.time_ref - ours.time_ref).to_value(u.s)) < 1e-6
    np.testing.assert_allclose(g.gti.met_start.to_value(u.s), ours.met_start.value, rtol=0, atol=1e-6)
    np.testing.assert_allclose(g.gti.met_stop.to_value(u.s), ours.met_stop.value, rtol=0, atol=1e-6)
    assert g.meta_table["OBS_ID"][0] == ds.meta_table["OBS_ID"][0]


def make_gammapy_dataset(seed=3, n=8, n_true=11):
    rng = np.random.default_rng(seed)
    e = GMapAxis.from_energy_bounds(0.1, 50, n, unit="TeV")
    et = GMapAxis.from_energy_bounds(0.05, 100, n_true, unit="TeV", name="energy_true")
    geom = RegionGeom.create("icrs;circle(83.63,22.01,0.1)", axes=[e])
    g = GSpectrumDataset.create(geom=geom, energy_axis_true=et, name="gp-obs")
    g.counts.data = rng.poisson(10, g.counts.data.shape).astype(float)
    g.background.data = rng.uniform(0, 2, g.background.data.shape)
    g.exposure.data = rng.uniform(1e8, 1e9, g.exposure.data.shape)
    g.edisp.edisp_map.data = rng.uniform(0, 1.0 / n, g.edisp.edisp_map.data.shape)
    g.mask_safe.data = rng.uniform(size=g.mask_safe.data.shape) < 0.7
    g.mask_fit = g.counts.copy(data=rng.uniform(size=g.counts.data.shape) < 0.8)
    g.gti = GGTI.create([0, 500] * u.s, [300, 900] * u.s, reference_time=Time("2012-05-06T07:08:09", scale="tt"))
    return g


def test_xspec_ds_reads_gammapy_fits(tmp_path):
    g = make_gammapy_dataset()
    path = tmp_path / "gammapy.fits"
    g.write(path)
    ds = xs.SpectrumDataset.read(path)
    assert ds.name == "gp-obs"
    # Gammapy stores float32: our float64 values are those float32 values exactly
    np.testing.assert_array_equal(ds.counts.values, gammapy_values(g.counts).astype(np.float64))
    np.testing.assert_array_equal(ds.background.values, gammapy_values(g.background).astype(np.float64))
    np.testing.assert_array_equal(ds.exposure.values, gammapy_values(g.exposure).astype(np.float64))
    assert u.Unit(ds.exposure.attrs["units"]) == g.exposure.unit
    np.testing.assert_array_equal(ds.edisp.values, gammapy_values(g.edisp.edisp_map).astype(np.float64))
    np.testing.assert_array_equal(ds.mask_safe.values, gammapy_values(g.mask_safe))
    np.testing.assert_array_equal(ds.mask_fit.values, gammapy_values(g.mask_fit))
    np.testing.assert_array_equal(
        ds._energy_axis.edges.to_value("TeV"), g.counts.geom.axes["energy"].edges.to_value("TeV")
    )
    np.testing.assert_array_equal(
        ds._energy_axis_true.edges.to_value("TeV"), g.exposure.geom.axes["energy_true"].edges.to_value("TeV")
    )
    np.testing.assert_allclose(ds.gti.met_start.value, g.gti.met_start.to_value(u.s), rtol=0, atol=1e-6)
    np.testing.assert_allclose(ds.gti.met_stop.value, g.gti.met_stop.to_value(u.s), rtol=0, atol=1e-6)
    assert abs((ds.gti.time_ref - g.gti.time_ref).to_value(u.s)) < 1e-6
    assert ds.livetime is None  # Gammapy's files do not keep it


def test_same_statistic_after_crossing_libraries(tmp_path):
    """Fit statistic of the same data and model agrees between the two libraries after a file hop."""
    from gammapy.modeling.models import PowerLawSpectralModel as GPL
    from gammapy.modeling.models import SkyModel as GSky

    g = make_gammapy_dataset(seed=8)
    g.edisp.edisp_map.data = np.eye(11, 8)[:, :, None, None] * 0.9
    g.models = GSky(spectral_model=GPL(index=2.2, amplitude="3e-12 cm-2 s-1 TeV-1"), name="s")
    path = tmp_path / "g.fits"
    g.write(path)
    ds = xs.SpectrumDataset.read(path)
    ds.models = xs.SkyModel(
        spectral_model=xs.PowerLawSpectralModel(index=2.2, amplitude="3e-12 cm-2 s-1 TeV-1"), name="s"
    )
    np.testing.assert_allclose(ds.npred().values, gammapy_values(g.npred()), rtol=1e-6)
    assert ds.stat_sum() == pytest.approx(g.stat_sum(), rel=1e-6, abs=0)


def test_round_trip_through_gammapy(tmp_path):
    """xspec_ds -> Gammapy read/write -> xspec_ds keeps arrays exactly when they are float32 values."""
    ds = random_dataset(21, n=6, n_true=6, livetime=False)
    for k in ("counts", "background", "exposure", "edisp"):
        ds.data[k].values[...] = ds.data[k].values.astype(np.float32)
    p1, p2 = tmp_path / "a.fits", tmp_path / "b.fits"
    ds.write(p1)
    GSpectrumDataset.read(p1, name=ds.name).write(p2)
    back = xs.SpectrumDataset.read(p2)
    gti = ["gti_start", "gti_stop"]
    xr.testing.assert_equal(back.data.drop_vars(gti), ds.data.drop_vars(gti))
    # Gammapy recomputes GTI bounds through astropy Time arithmetic: equal to well below 1 microsecond
    np.testing.assert_allclose(back.gti.met_start.value, ds.gti.met_start.value, rtol=0, atol=1e-6)
    assert back.gti == ds.gti


def test_datasets_yaml_interop(tmp_path):
    """Our datasets/models YAML files are read by Gammapy's ``Datasets.read``, and Gammapy's by ours."""
    from xspec_ds.io.yaml import read_datasets, write_datasets

    d1 = random_dataset(30, name="a", models=True)
    d2 = random_dataset(31, name="b")
    d2.models = d1.models
    write_datasets(xs.Datasets([d1, d2]), tmp_path / "datasets.yaml", tmp_path / "models.yaml")
    gds = GDatasets.read(tmp_path / "datasets.yaml", filename_models=tmp_path / "models.yaml")
    assert gds.names == ["a", "b"]
    np.testing.assert_array_equal(gammapy_values(gds["b"].counts), d2.counts.values)
    assert gds.models["src"].spectral_model.index.value == d1.models["src"].spectral_model.index.value

    gdir = tmp_path / "gp"
    gdir.mkdir()
    g = make_gammapy_dataset()
    g.models = GModels.read(tmp_path / "models.yaml")
    GDatasets([g]).write(gdir / "datasets.yaml", filename_models=gdir / "models.yaml")
    ours = read_datasets(gdir / "datasets.yaml", gdir / "models.yaml")
    assert ours.names == ["gp-obs"]
    np.testing.assert_array_equal(ours["gp-obs"].counts.values, gammapy_values(g.counts).astype(np.float64))
    assert ours.models["src"].spectral_model.parameters["index"].value == g.models["src"].spectral_model.index.value


HESS_PHA_PARTS = ("joint-crab", "spectra", "hess", "pha_obs23523.fits")


def test_onoff_fits_read_by_gammapy(tmp_path):
    """An on-off dataset (read from the H.E.S.S. DL3 DR1 OGIP files) written in Gammapy's layout is
    read by Gammapy's ``SpectrumDatasetOnOff.read`` with the same arrays; netCDF keeps it exactly."""
    from gammapy.datasets import SpectrumDatasetOnOff as GOnOff

    ds = xs.SpectrumDatasetOnOff.read(shared_data(*HESS_PHA_PARTS))
    path = tmp_path / "onoff.fits"
    ds.write(path)
    g = GOnOff.read(path)
    for k in ("counts", "counts_off", "acceptance", "acceptance_off", "exposure"):
        np.testing.assert_array_equal(gammapy_values(getattr(g, k)), ds.data[k].values, err_msg=k)
    np.testing.assert_array_equal(gammapy_values(g.mask_safe), ds.mask_safe.values)
    np.testing.assert_array_equal(gammapy_values(g.edisp.edisp_map), ds.edisp.values)
    back = xs.SpectrumDatasetOnOff.read(path)
    xr.testing.assert_equal(back.data, ds.data)
    nc = tmp_path / "onoff.nc"
    ds.write(nc)
    xr.testing.assert_identical(xs.SpectrumDatasetOnOff.read(nc).data, ds.data)
