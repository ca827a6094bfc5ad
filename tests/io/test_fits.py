"""Gammapy's SpectrumDataset FITS layout: round trips, layout details, atomic writes, bad input."""

from __future__ import annotations

import sys
import types

import astropy.units as u
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from hypothesis import HealthCheck, given, settings

import xspec_ds as xs
from xspec_ds.io import DatasetFileError
from xspec_ds.io.fits import from_hdulist, to_hdulist

from ._datasets import dataset_params, random_dataset


def assert_same_dataset(a: xr.Dataset, b: xr.Dataset) -> None:
    """Same variables, values (exact), coordinates, units, name, GTI and livetime."""
    xr.testing.assert_equal(a, b)
    for k in a.variables:
        assert a[k].dtype == b[k].dtype, k
        ua, ub = a[k].attrs.get("units"), b[k].attrs.get("units")
        assert (ua is None) == (ub is None), k
        if ua is not None:
            assert u.Unit(ua) == u.Unit(ub), k
    assert a.attrs["name"] == b.attrs["name"]
    assert a.attrs.get("time_reference") == b.attrs.get("time_reference")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=dataset_params())
def test_fits_round_trip_random(tmp_path, params):
    ds = random_dataset(**params)
    path = tmp_path / "ds.fits"
    ds.write(path, overwrite=True)
    back = xs.SpectrumDataset.read(path)
    assert_same_dataset(ds.data, back.data)
    assert back.gti == ds.gti
    assert back.livetime == ds.livetime


def test_fits_round_trip_exact_livetime_and_meta_table(tmp_path):
    ds = random_dataset(3, meta=True)
    ds.data["livetime"].values[...] = 1234.5678901234567  # 17 significant digits
    path = tmp_path / "ds.fits"
    ds.write(path)
    back = xs.SpectrumDataset.read(path)
    assert float(back.data["livetime"]) == 1234.5678901234567
    mt, mt2 = ds.meta_table, back.meta_table
    assert mt2.colnames == mt.colnames
    assert mt2["OBS_ID"][0] == mt["OBS_ID"][0]
    assert mt2["RA_PNT"].unit == u.deg and mt2["RA_PNT"][0] == mt["RA_PNT"][0]


def test_hdulist_round_trip_and_name_override():
    ds = random_dataset(5)
    hdul = ds.to_hdulist()
    back = xs.SpectrumDataset.from_hdulist(hdul)
    assert_same_dataset(ds.data, back.data)
    other = from_hdulist(xs.SpectrumDataset, hdul, name="renamed")
    assert other.name == "renamed"


def test_layout_matches_gammapy_conventions():
    """HDU names, columns, TDIM and AXCOLS as Gammapy 2.1 writes them (checked by hand against a
    file Gammapy wrote; the interop tests check Gammapy reads ours)."""
    ds = random_dataset(11, n=4, n_true=6, mask_fit=True)
    hdul = to_hdulist(ds)
    names = [h.name for h in hdul]
    for n in ("COUNTS", "EXPOSURE", "BACKGROUND", "EDISP", "MASK_SAFE", "MASK_FIT"):
        assert n in names and f"{n}_BANDS" in names
    assert hdul[0].header["NAME"] == "obs-1"
    assert hdul["COUNTS"].header["AXCOLS1"] == "E_MIN,E_MAX"
    assert hdul["EXPOSURE"].header["AXCOLS1"] == "ENERGY_TRUE_MIN,ENERGY_TRUE_MAX"
    assert hdul["EXPOSURE"].columns["DATA"].unit == "m2 s"
    assert hdul["COUNTS"].header["TDIM2"] == "(1,1)"
    edisp = hdul["EDISP"]
    assert edisp.header["TDIM2"] == "(1,1,4)" and len(edisp.data) == 6
    assert edisp.header["AXCOLS1"] == "E_MIN,E_MAX"
    assert edisp.header["AXCOLS2"] == "ENERGY_TRUE_MIN,ENERGY_TRUE_MAX"
    np.testing.assert_array_equal(edisp.data["DATA"].reshape(6, 4), ds.edisp.values)
    bands = hdul["EDISP_BANDS"].data
    assert len(bands) == 24
    # reco energy varies fastest
    np.testing.assert_array_equal(bands["E_MIN"][:4], ds.data["energy_min"].values)
    np.testing.assert_array_equal(bands["ENERGY_TRUE_MIN"][::4], ds.data["energy_true_min"].values)
    assert hdul["MASK_SAFE"].columns["DATA"].format == "L"
    gti = hdul["GTI"]
    np.testing.assert_array_equal(gti.data["START"], ds.gti.met_start.value)
    ref = ds.gti.time_ref
    assert gti.header["MJDREFI"] + gti.header["MJDREFF"] == pytest.approx(ref.mjd, abs=1e-11)
    assert gti.header["TIMESYS"] == "tt"


def test_multi_obs_dataset_refused():
    ds = random_dataset(1)
    obs = xr.concat([ds.data, ds.data], dim="obs")
    with pytest.raises(ValueError, match="extra dims \\['obs'\\]"):
        to_hdulist(obs)


def test_overwrite_false_refuses_and_keeps_file(tmp_path):
    path = tmp_path / "ds.fits"
    random_dataset(1).write(path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="exists"):
        random_dataset(2).write(path)
    assert path.read_bytes() == before
    random_dataset(2).write(path, overwrite=True)
    assert path.read_bytes() != before


def test_failed_write_leaves_existing_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "ds.fits"
    random_dataset(1).write(path)
    before = path.read_bytes()

    def broken_writeto(self, name, *args, **kwargs):
        with open(name, "wb") as f:
            f.write(before[: len(before) // 3])  # part of a file, then the disk "fails"
        raise OSError("simulated failure mid-write")

    monkeypatch.setattr(fits.HDUList, "writeto", broken_writeto)
    with pytest.raises(OSError, match="mid-write"):
        random_dataset(2).write(path, overwrite=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds.fits"]  # no temp file left behind


def test_truncated_fits_names_file(tmp_path):
    good = tmp_path / "good.fits"
    random_dataset(1).write(good)
    bad = tmp_path / "truncated.fits"
    bad.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(DatasetFileError, match="truncated.fits"):
        xs.SpectrumDataset.read(bad)


def test_garbage_and_empty_files(tmp_path):
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"this is not a FITS file at all" * 10)
    with pytest.raises(DatasetFileError, match="junk.fits.*neither FITS nor netCDF"):
        xs.SpectrumDataset.read(junk)
    empty = tmp_path / "empty.fits"
    empty.write_bytes(b"")
    with pytest.raises(DatasetFileError, match="empty.fits.*empty"):
        xs.SpectrumDataset.read(empty)
    with pytest.raises(FileNotFoundError, match="missing.fits"):
        xs.SpectrumDataset.read(tmp_path / "missing.fits")


def test_fits_of_another_kind(tmp_path):
    path = tmp_path / "image.fits"
    fits.HDUList([fits.PrimaryHDU(np.zeros((4, 4))), fits.ImageHDU(np.ones(3), name="STUFF")]).writeto(path)
    with pytest.raises(DatasetFileError, match="image.fits.*another kind.*STUFF"):
        xs.SpectrumDataset.read(path)


def test_sky_map_counts_is_refused(tmp_path):
    """A COUNTS HDU with several spatial pixels (a MapDataset) is not a spectrum."""
    hdul = to_hdulist(random_dataset(4, n=3))
    col = hdul["COUNTS"].columns["DATA"]
    data = np.repeat(hdul["COUNTS"].data["DATA"], 4, axis=1)
    hdul["COUNTS"] = fits.BinTableHDU.from_columns(
        [hdul["COUNTS"].columns["CHANNEL"], fits.Column("DATA", "2D", dim="(1,2)", unit=col.unit, array=data[:, :2])],
        header=hdul["COUNTS"].header,
        name="COUNTS",
    )
    with pytest.raises(DatasetFileError, match="more than one spatial pixel"):
        from_hdulist(xs.SpectrumDataset, hdul, source="sky.fits")


def test_ogip_pha_is_passed_to_ogip_reader(tmp_path, monkeypatch):
    path = tmp_path / "pha.fits"
    spec = fits.BinTableHDU.from_columns(
        [fits.Column("CHANNEL", "J", array=np.arange(3)), fits.Column("COUNTS", "J", array=np.arange(3))],
        name="SPECTRUM",
    )
    spec.header["HDUCLAS1"] = "SPECTRUM"
    fits.HDUList([fits.PrimaryHDU(), spec]).writeto(path)
    calls = []
    fake = types.ModuleType("xspec_ds.io.ogip")

    def read_pha(filename, name=None, **kwargs):
        calls.append((str(filename), name))
        return "from-ogip"

    fake.read_pha = read_pha
    monkeypatch.setitem(sys.modules, "xspec_ds.io.ogip", fake)
    assert xs.SpectrumDataset.read(path, name="x") == "from-ogip"
    assert calls == [(str(path), "x")]
