"""netCDF archives: checksums verified on read (eager and lazy), dtypes checked, CF-1.8 compliance."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import xarray as xr

import xspec_ds as xs
from xspec_ds.io import DatasetFileError
from xspec_ds.io.netcdf import (
    BOUNDS_CHECKSUM_ATTR,
    CF_ATTR,
    CHECKSUM_ATTR,
    encode_dataset,
    load_verified,
    open_netcdf,
    read_nc3,
    variable_checksum,
    verify_netcdf,
    write_netcdf,
)

from .._requirements import require
from ._datasets import random_dataset


def _onoff(seed=3, name="onoff"):
    ds = random_dataset(seed, name=name)
    n = ds.data.sizes["energy"]
    rng = np.random.default_rng(seed)
    return xs.SpectrumDatasetOnOff(
        counts=ds.data["counts"],
        counts_off=ds.data["counts"] * 0 + rng.poisson(10, n).astype(float),
        acceptance=ds.data["counts"] * 0 + 1.0,
        acceptance_off=ds.data["counts"] * 0 + rng.uniform(2, 10, n),
        exposure=ds.data["exposure"],
        edisp=ds.data["edisp"],
        mask_safe=ds.data["mask_safe"],
        name=name,
        gti=ds.gti,
        livetime=ds.livetime,
    )


def _value_offset(path, var_name):
    """Byte offset of the largest value of ``var_name`` in a netCDF-3 file (the variable's
    big-endian block is found by its bytes, which are unique)."""
    with xr.open_dataset(path, engine="scipy") as raw:
        values = np.asarray(raw[var_name].values, dtype=">f8")
    needle = values.tobytes()
    data = path.read_bytes()
    pos = data.find(needle)
    assert pos > 0 and data.find(needle, pos + 1) < 0, "values not found once in the file"
    return pos + 8 * int(np.argmax(np.abs(values.ravel())))


@pytest.fixture
def written(tmp_path):
    ds = random_dataset(11, n=20, n_true=30, models=True, meta=True)
    path = tmp_path / "ds.nc"
    ds.write(path)
    return ds, path


def test_checksums_written_and_removed_on_read(written):
    ds, path = written
    with xr.open_dataset(path, engine="scipy") as raw:
        assert CHECKSUM_ATTR in raw.attrs
        for k, var in raw.variables.items():
            if k.endswith("_bounds"):
                assert k in json.loads(raw.attrs[BOUNDS_CHECKSUM_ATTR])
                assert not var.attrs  # CF 7.1: bounds inherit the parent's attributes
            else:
                assert len(var.attrs[CHECKSUM_ATTR]) == 8
    back = xs.SpectrumDataset.read(path)
    xr.testing.assert_identical(back.data, ds.data)
    assert all(CHECKSUM_ATTR not in v.attrs for v in back.data.variables.values())


def test_variable_checksum_is_crc32_of_little_endian_bytes():
    values = np.arange(6, dtype=">f8").reshape(2, 3)
    import zlib

    head = json.dumps(["x", ["a", "b"], [2, 3], "<f8", json.dumps({"units": "1"}, sort_keys=True)])
    expected = zlib.crc32(values.astype("<f8").tobytes(), zlib.crc32(head.encode()))
    assert variable_checksum("x", ("a", "b"), {"units": "1"}, values) == f"{expected:08x}"
    assert variable_checksum("x", ("a", "b"), {"units": "1"}, values.astype("<f8")) == f"{expected:08x}"


@pytest.mark.parametrize("var_name", ["counts", "edisp", "exposure", "energy_min", "energy_true"])
@pytest.mark.parametrize("how", ["zero", "flip"])
def test_damaged_value_detected(written, var_name, how):
    _, path = written
    pos = _value_offset(path, var_name)
    data = bytearray(path.read_bytes())
    if how == "zero":
        data[pos : pos + 8] = bytes(8)
    else:
        data[pos + 7] ^= 0x01  # the last mantissa bit: a relative change of 1e-16
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetFileError, match=rf"{path}.*'{var_name}' fails its checksum"):
        xs.SpectrumDataset.read(path)


def test_lazy_open_verifies_at_compute(written):
    _, path = written
    pos = _value_offset(path, "edisp")
    data = bytearray(path.read_bytes())
    data[pos : pos + 16] = bytes(16)
    path.write_bytes(bytes(data))
    ds, _ = open_netcdf(path, chunks={})  # opening is cheap: no data read yet
    assert ds["counts"].sum().compute() >= 0  # undamaged variables compute
    with pytest.raises(DatasetFileError, match=rf"{path}.*'edisp' fails its checksum"):
        ds["edisp"].sum().compute()


def test_lazy_open_multi_chunk_verifies(written):
    _, path = written
    pos = _value_offset(path, "edisp")
    data = bytearray(path.read_bytes())
    data[pos] ^= 0xFF
    path.write_bytes(bytes(data))
    ds, _ = open_netcdf(path, chunks={"energy_true": 7})
    assert ds["edisp"].data.npartitions > 1
    with pytest.raises(DatasetFileError, match="'edisp' fails its checksum"):
        ds["edisp"].values  # noqa: B018


def test_lazy_open_of_good_file_equals_read(written):
    ds, path = written
    lazy, _ = open_netcdf(path, chunks={"energy_true": 7})
    xr.testing.assert_identical(lazy.compute(), ds.data)


def test_verify_single_variable(written):
    _, path = written
    with xr.open_dataset(path, engine="scipy", decode_times=False) as raw:
        out = verify_netcdf(raw, path, variables=["counts"])
        assert CHECKSUM_ATTR not in out["counts"].attrs


def test_renamed_variable_detected(written):
    _, path = written
    data = path.read_bytes()
    assert data.count(b"background") >= 1
    path.write_bytes(data.replace(b"background", b"backgroune", 1))
    with pytest.raises(DatasetFileError, match=rf"{path}.*checksum"):
        xs.SpectrumDataset.read(path)


def test_edited_unit_attribute_detected(written):
    _, path = written
    data = path.read_bytes()
    i = data.find(b"m2 s")
    assert i > 0
    path.write_bytes(data[:i] + b"m2 S" + data[i + 4 :])  # siemens: a silent unit change without checksums
    with pytest.raises(DatasetFileError, match=rf"{path}.*'exposure' fails its checksum"):
        xs.SpectrumDataset.read(path)


def test_missing_checksum_attribute_detected(tmp_path):
    ds = random_dataset(2)
    enc = encode_dataset(ds.data)
    del enc["counts"].attrs[CHECKSUM_ATTR]
    path = tmp_path / "x.nc"
    enc.to_netcdf(path, engine="scipy")
    with pytest.raises(DatasetFileError, match=r"\['counts'\] have no xspec_ds_crc32"):
        xs.SpectrumDataset.read(path)


def test_file_without_checksums_still_reads(tmp_path):
    """Files of other software (no xspec_ds attributes at all) are read unverified."""
    ds = random_dataset(4)
    enc = encode_dataset(ds.data, checksums=False)
    path = tmp_path / "foreign.nc"
    enc.to_netcdf(path, engine="scipy")
    back = xs.SpectrumDataset.read(path)
    xr.testing.assert_identical(back.data, ds.data)


@pytest.mark.parametrize(
    ("var_name", "dtype", "words"),
    [
        ("edisp", np.int8, "'edisp' is stored as int8, expected floating point"),
        ("exposure", np.int32, "'exposure' is stored as int32, expected floating point"),
        ("mask_safe", np.float64, "'mask_safe' is stored as float64, expected a boolean mask"),
    ],
)
def test_wrong_dtype_refused(tmp_path, var_name, dtype, words):
    ds = random_dataset(5).data.copy()
    with np.errstate(invalid="ignore"):
        ds[var_name] = ds[var_name].astype(dtype)
    path = tmp_path / "bad.nc"
    encode_dataset(ds, checksums=False).to_netcdf(path, engine="scipy")
    with pytest.raises(DatasetFileError, match=rf"{path}.*{words}"):
        xs.SpectrumDataset.read(path)
    with pytest.raises(DatasetFileError, match=words):
        open_netcdf(path, chunks={})


def test_integer_counts_of_other_software_accepted(tmp_path):
    ds = random_dataset(6).data.copy()
    ds["counts"] = ds["counts"].round().astype(np.int32)
    path = tmp_path / "int_counts.nc"
    encode_dataset(ds, checksums=False).to_netcdf(path, engine="scipy")
    back, _ = open_netcdf(path)
    assert back["counts"].dtype == np.int32


# ------------------------------------------------------------------------------------------
# CF
# ------------------------------------------------------------------------------------------
def _collection(tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / f"obs{i}.nc"
        _onoff(seed=20, name=f"run{i}").write(p)
        paths.append(p)
    return xs.open_mfdataset(paths)


@pytest.fixture(params=["plain", "onoff", "obs"])
def cf_file(request, tmp_path):
    path = tmp_path / f"{request.param}.nc"
    if request.param == "plain":
        original = random_dataset(8, models=True, meta=True).data
        write_netcdf(random_dataset(8, models=True, meta=True), path)
    elif request.param == "onoff":
        original = _onoff().data
        write_netcdf(_onoff(), path)
    else:
        original = _collection(tmp_path).compute()
        write_netcdf(original, path)
    return request.param, path, original


def test_cf_layout_and_round_trip(cf_file):
    kind, path, original = cf_file
    with xr.open_dataset(path, decode_times=False) as raw:
        assert raw.attrs["Conventions"] == "CF-1.8"
        assert raw.attrs["title"] and raw.attrs["history"]
        for d in ("energy", "energy_true"):
            assert raw[d].attrs["bounds"] == f"{d}_bounds"
            assert "_FillValue" not in raw[d].encoding
            np.testing.assert_array_equal(raw[f"{d}_bounds"].values[:, 0], raw[f"{d}_min"].values)
            np.testing.assert_array_equal(raw[f"{d}_bounds"].values[:, 1], raw[f"{d}_max"].values)
        assert raw["edisp"].attrs["units"] == "1"
        assert all("long_name" in v.attrs for k, v in raw.variables.items() if not k.endswith("_bounds"))
        if kind == "obs":
            assert "obs_label" in raw.coords and "obs" not in raw.variables
    back, _ = open_netcdf(path)
    xr.testing.assert_identical(back.load(), original)
    assert CF_ATTR not in back.attrs and "Conventions" not in back.attrs


def test_user_cf_attributes_kept(tmp_path):
    ds = random_dataset(9)
    ds.data.attrs["title"] = "my title"
    ds.data["edisp"].attrs["units"] = "1"
    path = tmp_path / "t.nc"
    ds.write(path)
    back = xs.SpectrumDataset.read(path)
    assert back.data.attrs["title"] == "my title"
    assert back.data["edisp"].attrs["units"] == "1"
    assert "history" not in back.data.attrs


def test_cf_xarray_finds_bounds(cf_file):
    cfxr = require("cf_xarray")
    _, path, _ = cf_file
    with xr.open_dataset(path, decode_times=False) as raw:
        assert cfxr  # registers the .cf accessor
        bounds = raw.cf.get_bounds("energy")
        np.testing.assert_array_equal(bounds.values[:, 0], raw["energy_min"].values)


def test_compliance_checker_cf18(cf_file):
    """IOOS compliance-checker: 0 errors and 0 warnings (all priorities) under cf:1.8."""
    exe = shutil.which("compliance-checker")
    if exe is None:
        require("compliance_checker")
        import sys
        from pathlib import Path

        exe = str(Path(sys.executable).parent / "compliance-checker")
    _, path, _ = cf_file
    proc = subprocess.run(
        [exe, "--test=cf:1.8", "--format=json", "-o", "-", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=path.parent,
    )
    report = json.loads(proc.stdout)["cf:1.8"]
    failed = [p for p in report["all_priorities"] if p["value"][0] < p["value"][1]]
    assert failed == [], failed
    assert report["scored_points"] == report["possible_points"]
    assert "exceptions occurred" not in proc.stderr, proc.stderr


def test_load_verified_for_lazy_readers(written):
    """The per-variable loader offered to multi-file lazy reading (one dask task per file)."""
    ds, path = written
    np.testing.assert_array_equal(load_verified(path, "edisp"), ds.data["edisp"].values)
    np.testing.assert_array_equal(load_verified(path, "mask_safe"), ds.data["mask_safe"].values)
    pos = _value_offset(path, "edisp")
    data = bytearray(path.read_bytes())
    data[pos + 3] ^= 0x08
    path.write_bytes(bytes(data))
    np.testing.assert_array_equal(load_verified(path, "counts"), ds.data["counts"].values)
    with pytest.raises(DatasetFileError, match=rf"{path}.*'edisp' fails its checksum"):
        load_verified(path, "edisp")
    with pytest.raises(DatasetFileError, match=rf"{path}: no variable 'nope'"):
        load_verified(path, "nope")


def test_public_open_dataset_verifies_at_compute(written):
    _, path = written
    pos = _value_offset(path, "exposure")
    data = bytearray(path.read_bytes())
    data[pos : pos + 8] = bytes(8)
    path.write_bytes(bytes(data))
    lazy = xs.open_dataset(path)
    with pytest.raises(DatasetFileError, match=rf"{path}.*'exposure' fails its checksum"):
        lazy["exposure"].values  # noqa: B018


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_gti", [0, 3])
def test_fast_netcdf3_reader_matches_xarray(tmp_path, seed, n_gti):
    """`read_nc3` gives what xarray's scipy backend gives (values, dtypes, attrs, coords)."""
    ds = random_dataset(seed, n_gti=n_gti, models=True, meta=True)
    path = tmp_path / "x.nc"
    ds.write(path)
    fast = read_nc3(path)
    with xr.open_dataset(path, engine="scipy", decode_times=False, decode_timedelta=False) as raw:
        slow = raw.load()
    xr.testing.assert_identical(fast, slow)
    assert list(fast.coords) == list(slow.coords) or set(fast.coords) == set(slow.coords)
    for k in slow.variables:
        assert fast[k].dtype == slow[k].dtype, k
        assert fast[k].dtype.isnative, k


def test_fast_reader_declines_fill_values(tmp_path):
    ds = random_dataset(3).data.copy()
    path = tmp_path / "fill.nc"
    ds["counts"].encoding["_FillValue"] = -1.0
    ds.to_netcdf(path, engine="scipy")
    assert read_nc3(path) is None


def test_load_verified_netcdf4(tmp_path):
    require("netCDF4")
    ds = random_dataset(12, n=10, n_true=12)
    path = tmp_path / "four.nc"
    write_netcdf(ds, path, engine="netcdf4")
    np.testing.assert_array_equal(load_verified(path, "edisp"), ds.data["edisp"].values)
    np.testing.assert_array_equal(load_verified(path, "mask_fit"), ds.data["mask_fit"].values)
