"""Loss-free netCDF archives: exact round trips (hypothesis), CF attributes, engines, atomic writes, bad input."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings

import xspec_ds as xs
from xspec_ds.io import DatasetFileError
from xspec_ds.io.netcdf import MODELS_ATTR, netcdf_engine, read_netcdf, write_netcdf

from .._requirements import require
from ._datasets import dataset_params, random_dataset


def engines():
    out = ["scipy"]
    try:
        import netCDF4  # noqa: F401

        out.append("netcdf4")
    except ImportError:
        pass
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=dataset_params())
def test_netcdf_round_trip_identical(tmp_path, params):
    ds = random_dataset(**params, models=True, meta=params["seed"] % 2 == 0)
    path = tmp_path / "ds.nc"
    ds.write(path, overwrite=True)
    back = xs.SpectrumDataset.read(path)
    xr.testing.assert_identical(back.data, ds.data)
    for k in ds.data.variables:
        assert back.data[k].dtype == ds.data[k].dtype, k
    assert back.models.to_dict() == ds.models.to_dict()
    assert back.gti == ds.gti


@pytest.mark.parametrize("engine", engines())
def test_each_engine_is_loss_free(tmp_path, engine):
    ds = random_dataset(7, models=True, meta=True)
    ds.data.attrs["flags"] = {"nested": [1, 2], "ok": True}  # not a netCDF attribute type
    ds.data["counts"].attrs["checked"] = None
    path = tmp_path / f"ds_{engine}.nc"
    write_netcdf(ds, path, engine=engine)
    back = read_netcdf(xs.SpectrumDataset, path)
    xr.testing.assert_identical(back.data, ds.data)
    assert back.data.attrs["flags"] == {"nested": [1, 2], "ok": True}
    assert back.models.to_dict() == ds.models.to_dict()


def test_cf_attributes_and_plain_xarray_view(tmp_path):
    """Any xarray user opens the file: CF ``units``/``long_name``, coordinates, bool masks."""
    ds = xs.SpectrumDataset.create(xs.MapAxis.from_energy_bounds("0.1 TeV", "10 TeV", 5), name="cf")
    ds.exposure = np.full(5, 3.0) * u.Unit("cm2 s")
    ds.models = xs.PowerLawSpectralModel()
    path = tmp_path / "cf.nc"
    ds.write(path)
    with xr.open_dataset(path) as plain:
        assert plain["exposure"].attrs["units"] == "cm2 s"
        assert plain["exposure"].attrs["long_name"]
        assert plain["energy_min"].attrs["units"] == "TeV"
        assert "energy_min" in plain.coords and "energy_max" in plain.coords
        assert plain["mask_safe"].dtype == bool
        assert plain.attrs["name"] == "cf"
        assert "components" in plain.attrs[MODELS_ATTR]


def test_engine_choice():
    ds = random_dataset(1).data
    assert netcdf_engine(ds) == "scipy"
    ds2 = ds.assign(extra=("energy", np.arange(ds.sizes["energy"], dtype=np.int64)))
    assert netcdf_engine(ds2) == "netcdf4"  # netCDF-3 would turn int64 into int32
    ds3 = ds.copy()
    ds3.attrs["note"] = "énergie"
    assert netcdf_engine(ds3) == "netcdf4"


def test_int64_and_unicode_survive(tmp_path):
    ds = random_dataset(2)
    ds.data.attrs["note"] = "énergie vraie"
    data = ds.data.assign(obs_id=xr.Variable((), np.int64(2**40)))
    path = tmp_path / "x.nc"
    write_netcdf(data, path)
    back = xr.open_dataset(path, engine="netcdf4").load()
    assert back["obs_id"].dtype == np.int64 and int(back["obs_id"]) == 2**40
    assert back.attrs["note"] == "énergie vraie"


def test_overwrite_refused_and_failed_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ds.nc"
    random_dataset(1).write(path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        random_dataset(2).write(path)

    def broken(self, target, *args, **kwargs):
        with open(target, "wb") as f:
            f.write(before[:100])
        raise OSError("simulated failure mid-write")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)
    with pytest.raises(OSError, match="mid-write"):
        random_dataset(2).write(path, overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ds.nc"]


@pytest.mark.parametrize("cut", [10, 200, 0.6])
def test_truncated_netcdf_names_file(tmp_path, cut):
    good = tmp_path / "good.nc"
    random_dataset(1, n=30, n_true=30).write(good)
    raw = good.read_bytes()
    bad = tmp_path / "cut.nc"
    bad.write_bytes(raw[: int(cut if cut > 1 else cut * len(raw))])
    with pytest.raises(DatasetFileError, match="cut.nc"):
        xs.SpectrumDataset.read(bad)


def test_netcdf_suffix_with_fits_content(tmp_path):
    path = tmp_path / "wrong.nc"
    path.write_bytes(b"SIMPLE  =                    T" + b" " * 3000)
    with pytest.raises(DatasetFileError, match="wrong.nc"):
        xs.SpectrumDataset.read(path)


def test_read_by_magic_bytes_without_suffix(tmp_path):
    ds = random_dataset(9)
    nc = tmp_path / "archive.nc"
    ds.write(nc)
    renamed = tmp_path / "archive.data"
    nc.rename(renamed)
    back = xs.SpectrumDataset.read(renamed)
    xr.testing.assert_identical(back.data, ds.data)


def test_plain_xarray_dataset_write_and_name_override(tmp_path):
    ds = random_dataset(4)
    path = tmp_path / "plain.nc"
    write_netcdf(ds.data, path)
    back = xs.SpectrumDataset.read(path, name="renamed")
    expected = ds.data.copy()
    expected.attrs["name"] = "renamed"
    xr.testing.assert_identical(back.data, expected)
    assert len(back.models) == 0
    assert back.stat_sum() == ds.stat_sum()


def test_empty_gti_is_valid_netcdf3_for_netcdf_c(tmp_path):
    """A zero-length GTI is described in an attribute (netCDF-C refuses zero-length fixed dims)."""
    netCDF4 = require("netCDF4", extra="runtime (install_requires)")
    ds = random_dataset(6, n_gti=0)
    path = tmp_path / "nogti.nc"
    ds.write(path)
    with netCDF4.Dataset(path) as nc:
        assert nc.file_format.startswith("NETCDF3")
    back = xs.SpectrumDataset.read(path)
    xr.testing.assert_identical(back.data, ds.data)
    assert back.data["gti_start"].shape == (0,)
