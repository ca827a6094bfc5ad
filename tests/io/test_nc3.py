"""The minimal netCDF-3 reader (`xspec_ds.io.nc3`) against xarray on the same files."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from xspec_ds.io import nc3

from ._datasets import random_dataset


def _read_all(path):
    with open(path, "rb") as f:
        header, buf = nc3.read_header(f, prefix=64)  # a short prefix: the header is read in pieces
        return header, {k: nc3.variable_values(v, buf, f) for k, v in header.variables.items()}


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(1, 9),
    n_true=st.integers(1, 9),
    n_gti=st.integers(1, 4),
    meta=st.booleans(),
    models=st.booleans(),
)
def test_values_and_attrs_equal_xarray(tmp_path_factory, seed, n, n_true, n_gti, meta, models):
    path = tmp_path_factory.mktemp("nc3") / "d.nc"
    random_dataset(seed, n=n, n_true=n_true, n_gti=n_gti, meta=meta, models=models).write(path)
    header, values = _read_all(path)
    with xr.open_dataset(path, engine="scipy", decode_times=False, decode_timedelta=False) as ref:
        assert set(values) == set(ref.variables)
        for k, v in values.items():
            assert v.dtype == ref[k].dtype, k
            np.testing.assert_array_equal(v, ref[k].values)
            assert header.variables[k].dims == ref[k].dims
        assert header.attrs == dict(ref.attrs)


@pytest.mark.parametrize("version", ["NETCDF3_CLASSIC", "NETCDF3_64BIT"])
def test_classic_and_64bit_offset_and_xarray_encodings(tmp_path, version):
    """Files written by xarray itself (NaN _FillValue on floats, bool as int8, int attrs)."""
    ds = xr.Dataset(
        {
            "a": ("x", np.array([1.5, np.nan, -2.0])),
            "m": ("x", np.array([True, False, True])),
            "i": (("x", "y"), np.arange(6, dtype=np.int32).reshape(3, 2), {"flag": np.int16(3), "v": [1.0, 2.0]}),
            "s": ((), 4.0),
        },
        attrs={"title": "t", "n": 7},
    )
    path = tmp_path / "x.nc"
    ds.to_netcdf(path, engine="scipy", format=version)
    header, values = _read_all(path)
    ref = xr.open_dataset(path, engine="scipy").load()
    for k in ds.variables:
        assert values[k].dtype == ref[k].dtype
        np.testing.assert_array_equal(values[k], ref[k].values)
    assert header.variables["i"].attrs["flag"] == 3
    np.testing.assert_array_equal(header.variables["i"].attrs["v"], [1.0, 2.0])
    assert header.attrs == {"title": "t", "n": 7}


def test_unsupported_encodings_are_refused(tmp_path):
    ds = xr.Dataset({"a": ("x", np.array([1.0, 2.0]))})
    path = tmp_path / "scaled.nc"
    ds.to_netcdf(path, engine="scipy", encoding={"a": {"dtype": "int16", "scale_factor": 0.1, "_FillValue": -1}})
    with open(path, "rb") as f, pytest.raises(nc3.UnsupportedError, match="'a'.*scale_factor"):
        nc3.read_header(f)
    path = tmp_path / "record.nc"
    ds.to_netcdf(path, engine="scipy", unlimited_dims=["x"])
    with open(path, "rb") as f, pytest.raises(nc3.UnsupportedError, match="record"):
        nc3.read_header(f)


def test_truncated_and_foreign_files(tmp_path):
    path = tmp_path / "t.nc"
    random_dataset(1).write(path)
    data = path.read_bytes()
    header, _ = _read_all(path)
    (tmp_path / "cut.nc").write_bytes(data[: header.size - 5])
    with open(tmp_path / "cut.nc", "rb") as f, pytest.raises(ValueError, match="ends inside its header"):
        nc3.read_header(f)
    with pytest.raises(ValueError, match="not a netCDF-3 file"):
        nc3.parse_header(b"\x89HDF\r\n\x1a\n....")


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), n_gti=st.integers(0, 3), meta=st.booleans(), models=st.booleans())
def test_read_xarray_is_identical_to_xarray(tmp_path_factory, seed, n_gti, meta, models):
    path = tmp_path_factory.mktemp("nc3x") / "d.nc"
    random_dataset(seed, n_gti=n_gti, meta=meta, models=models).write(path)
    ours = nc3.read_xarray(path)
    with xr.open_dataset(path, engine="scipy", decode_times=False, decode_timedelta=False) as ref:
        xr.testing.assert_identical(ours, ref.load())
        assert list(ours.variables) == list(ref.variables)
