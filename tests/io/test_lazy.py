"""Lazy opening: `xs.open_dataset` and `xs.open_mfdataset` (dask-backed, many observations along ``obs``)."""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import dask.array as da
import numpy as np
import pytest
import xarray as xr

import xspec_ds as xs
from xspec_ds.gti import GTI
from xspec_ds.io import DatasetFileError
from xspec_ds.io.lazy import open_dataset, open_mfdataset

from ._datasets import random_dataset


@pytest.fixture
def files(tmp_path):
    """Three observations on the same binning, GTI of different lengths, as netCDF."""
    paths, datasets = [], []
    for i in range(3):
        ds = random_dataset(100, n=6, n_true=8, name=f"obs{i}", n_gti=i + 1)
        rng = np.random.default_rng(i)
        ds.data["counts"].values[:] = rng.poisson(4, 6)
        ds.data["mask_safe"].values[:] = rng.uniform(size=6) < 0.7
        ds.data["livetime"].values[...] = 100.0 * (i + 1)
        ds.gti = GTI(
            np.arange(i + 1) * 10.0 * u.s, (np.arange(i + 1) * 10.0 + 5) * u.s, reference_time="2011-03-04T05:06:07.891"
        )
        path = tmp_path / f"obs{i}.nc"
        ds.write(path)
        paths.append(path)
        datasets.append(ds)
    return paths, datasets


def test_open_dataset_is_lazy_and_equal(files):
    paths, datasets = files
    lazy = open_dataset(paths[0])
    assert isinstance(lazy["counts"].data, da.Array)
    assert isinstance(lazy["energy_min"].data, np.ndarray)  # edges are in memory
    xr.testing.assert_identical(lazy.compute(), datasets[0].data)
    assert lazy.spectrum.stat_sum() == datasets[0].stat_sum()


def test_open_dataset_fits(tmp_path):
    ds = random_dataset(5, name="f")
    path = tmp_path / "f.fits"
    ds.write(path)
    lazy = xs.open_dataset(path, chunks={"energy": 3})
    assert isinstance(lazy["counts"].data, da.Array) and lazy["counts"].data.chunks[0][0] == 3
    xr.testing.assert_equal(lazy.compute(), ds.data)


def test_open_mfdataset_along_obs(files):
    paths, datasets = files
    obs = xs.open_mfdataset(paths, parallel=False)
    assert list(obs["obs"].values) == ["obs0", "obs1", "obs2"]
    assert obs["counts"].dims == ("obs", "energy")
    assert isinstance(obs["counts"].data, da.Array)
    assert obs.sizes["gti"] == 3
    for i, ds in enumerate(datasets):
        one = obs.isel(obs=i).compute()
        for k in ("counts", "background", "exposure", "edisp", "mask_safe", "mask_fit", "livetime"):
            xr.testing.assert_identical(one[k].drop_vars("obs"), ds.data[k])
        start = one["gti_start"].values
        np.testing.assert_array_equal(start[: i + 1], ds.gti.met_start.value)
        assert np.all(np.isnan(start[i + 1 :]))


def test_open_mfdataset_parallel_and_stack(files):
    paths, datasets = files
    obs = xs.open_mfdataset([str(p) for p in paths], parallel=True)
    stacked = xs.stack(obs)
    expected = xs.stack(datasets)
    for k in ("counts", "background", "exposure", "mask_safe"):
        np.testing.assert_allclose(np.asarray(stacked[k].values), expected.data[k].values, rtol=1e-12)


def test_open_mfdataset_glob(files, tmp_path):
    obs = open_mfdataset(str(tmp_path / "obs*.nc"), parallel=False)
    assert obs.sizes["obs"] == 3


def test_open_mfdataset_mixed_fits_and_netcdf(files, tmp_path):
    paths, datasets = files
    fits_path = tmp_path / "obs2.fits"
    datasets[2].write(fits_path)
    obs = open_mfdataset([paths[0], paths[1], fits_path])
    np.testing.assert_array_equal(obs["counts"].values[2], datasets[2].counts.values)


def test_open_mfdataset_shifts_gti_to_first_reference(files, tmp_path):
    paths, datasets = files
    other = random_dataset(100, n=6, n_true=8, name="late")
    other.gti = GTI([0.0] * u.s, [5.0] * u.s, reference_time="2011-03-04T05:07:07.891")  # one minute later
    path = tmp_path / "late.nc"
    other.write(path)
    obs = open_mfdataset([paths[0], path], parallel=False)
    np.testing.assert_allclose(obs["gti_start"].values[1, 0], 60.0, rtol=0, atol=1e-6)


def test_open_mfdataset_refuses_other_binning(files, tmp_path):
    paths, _ = files
    odd = random_dataset(7, n=6, n_true=8, name="odd")
    bad = tmp_path / "odd.nc"
    odd.write(bad)
    with pytest.raises(ValueError, match="odd.nc.*binning differs"):
        open_mfdataset([paths[0], bad], parallel=False).compute()


def test_open_errors(tmp_path):
    with pytest.raises(ValueError, match="no files"):
        open_mfdataset(str(tmp_path / "nothing*.nc"))
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"CDF\x01garbage")
    with pytest.raises(DatasetFileError, match="bad.nc"):
        open_dataset(bad)


@pytest.mark.parametrize("mixed", [False, True])
def test_open_mfdataset_concatenates_meta_tables(tmp_path, mixed):
    """Each file's meta_table rows survive opening many files, so the stacked dataset lists
    every observation (as stacking in memory does)."""
    from astropy.table import Table

    datasets, paths = [], []
    for i in range(3):
        ds = random_dataset(7, n=5, n_true=6, name=f"m{i}")  # same binning in every file
        ds.meta_table = Table({"OBS_ID": [100 + i], "ZEN_PNT": [20.0 + i] * u.deg})
        suffix = ".fits" if (mixed and i == 1) else ".nc"
        path = tmp_path / f"m{i}{suffix}"
        ds.write(path)
        datasets.append(ds)
        paths.append(path)
    obs = open_mfdataset(paths)
    table = xs.SpectrumDataset.from_xarray(xs.stack(obs), validate=False).meta_table
    assert list(table["OBS_ID"]) == [100, 101, 102]
    assert table["ZEN_PNT"].unit == u.deg
    expected = xs.stack(datasets).meta_table
    assert list(expected["OBS_ID"]) == list(table["OBS_ID"])


# ---------------------------------------------------------------------------------------------
# many files per task: equality with the in-memory stack, per-file validation
# ---------------------------------------------------------------------------------------------
STACKED = ("counts", "background", "mask_safe", "exposure", "edisp", "livetime", "gti_start", "gti_stop")


@pytest.fixture
def many(tmp_path):
    """Seven observations on one binning (same edges, random values, safe masks and GTI)."""
    base = random_dataset(11, n=6, n_true=8, name="base")
    paths, datasets = [], []
    for i in range(7):
        ds = base.copy(name=f"obs{i}")
        rng = np.random.default_rng(100 + i)
        ds.data["counts"].values[:] = rng.poisson(7, 6)
        ds.data["background"].values[:] = rng.uniform(0, 2, 6)
        ds.data["exposure"].values[:] = rng.uniform(1e7, 1e9, 8)
        m = rng.uniform(0, 1, (8, 6))
        ds.data["edisp"].values[:] = m / m.sum(axis=1, keepdims=True) * rng.uniform(0.5, 1, (8, 1))
        ds.data["mask_safe"].values[:] = rng.uniform(size=6) < 0.7
        ds.data["livetime"].values[...] = 10.0 * (i + 1)
        start = np.sort(rng.uniform(0, 1e4, i % 3 + 1))
        ds.gti = GTI(start * u.s, (start + 5) * u.s, reference_time="2011-03-04T05:06:07.891")
        paths.append(tmp_path / f"obs{i}.nc")
        ds.write(paths[-1])
        datasets.append(ds)
    return paths, datasets


def assert_same_stack(lazy_result: xr.Dataset, expected: xr.Dataset) -> None:
    """Exact counts and masks, 1e-12 relative elsewhere."""
    np.testing.assert_array_equal(lazy_result["counts"].values, expected["counts"].values)
    np.testing.assert_array_equal(lazy_result["mask_safe"].values, expected["mask_safe"].values)
    for k in STACKED[3:] + ("background",):
        np.testing.assert_allclose(lazy_result[k].values, expected[k].values, rtol=1e-12, atol=0)


@pytest.mark.parametrize("files_per_task", [None, 1, 3, 7])
def test_open_mfdataset_stack_equals_in_memory(many, files_per_task):
    paths, datasets = many
    obs = open_mfdataset(paths, files_per_task=files_per_task)
    step = files_per_task or 7  # default: all seven fit in one task's bytes
    assert obs["edisp"].data.chunks[0] == tuple(min(step, 7 - s) for s in range(0, 7, step))
    for k in ("counts", "edisp", "mask_safe"):
        xr.testing.assert_identical(
            obs[k].compute().drop_vars("obs"),
            xr.concat([d.data[k] for d in datasets], dim="obs"),
        )
    assert_same_stack(xs.stack(obs).compute(), xs.stack(datasets).data)


def test_open_mfdataset_one_read_per_file_for_all_variables(many, monkeypatch):
    """Every energy variable of a task comes from one read of each file (the task is shared)."""
    from xspec_ds.io import lazy

    calls = []
    original = lazy._load_files
    monkeypatch.setattr(lazy, "_load_files", lambda *a: calls.append(len(a[0])) or original(*a))
    paths, _ = many
    obs = open_mfdataset(paths, files_per_task=4)
    xs.stack(obs).compute()
    assert sorted(calls) == [3, 4]


def test_open_mfdataset_netcdf4_files_in_the_collection(many, tmp_path):
    """netCDF-4 files (read with xarray inside the tasks) mix with netCDF-3 ones."""
    paths, datasets = many
    nc4 = tmp_path / "obs3_nc4.nc"
    datasets[3].write(nc4, engine="netcdf4")
    assert nc4.read_bytes()[:4] == b"\x89HDF"
    mixed = paths[:3] + [nc4] + paths[4:]
    assert_same_stack(xs.stack(open_mfdataset(mixed, files_per_task=2)).compute(), xs.stack(datasets).data)


def _write_raw(ds: xr.Dataset, path) -> None:
    """Write an xarray Dataset as netCDF-3 without any xspec_ds check (to make bad files)."""
    ds.to_netcdf(path, engine="scipy")


@pytest.mark.parametrize(
    ("edit", "when", "match"),
    [
        (lambda d: d.drop_vars("background"), "open", "variable 'background' is missing"),
        (lambda d: d.assign(mask_safe=d["mask_safe"].astype(float)), "open", "variable 'mask_safe' has dtype float64"),
        (lambda d: d.assign(edisp=d["edisp"].transpose()), "open", "variable 'edisp' has dims"),
        (lambda d: d.assign(counts=d["counts"].where(d["energy"] < d["energy"][2])), "compute", "counts .* non-finite"),
        (lambda d: d.assign(exposure=-d["exposure"]), "compute", "exposure has a negative"),
        (lambda d: d.assign(edisp=d["edisp"] * 3), "compute", "edisp row .* sums to"),
    ],
)
def test_open_mfdataset_names_the_bad_file(many, tmp_path, edit, when, match):
    paths, datasets = many
    bad = tmp_path / "broken.nc"
    data = datasets[5].data.copy(deep=True)
    for v in data.variables.values():
        v.encoding = {}
    _write_raw(edit(data), bad)
    files = paths[:5] + [bad] + paths[6:]
    if when == "open":
        with pytest.raises(DatasetFileError, match=f"broken.nc.*{match}"):
            open_mfdataset(files, files_per_task=3)
    else:
        stacked = xs.stack(open_mfdataset(files, files_per_task=3))  # lazy: nothing read yet
        with pytest.raises(DatasetFileError, match=f"broken.nc.*{match}"):
            stacked.compute()


def test_open_mfdataset_notices_a_file_changed_after_opening(many):
    paths, datasets = many
    obs = open_mfdataset(paths)
    other = datasets[2].copy(name="a-much-longer-name-than-before")
    other.write(paths[2], overwrite=True)
    with pytest.raises(DatasetFileError, match="obs2.nc: the file changed"):
        obs["counts"].compute()


def test_open_mfdataset_truncated_file(many):
    paths, _ = many
    data = paths[4].read_bytes()
    paths[4].write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetFileError, match="obs4.nc.*truncated"):
        open_mfdataset(paths)


def test_open_mfdataset_rechunked_energy_still_stacks_exactly(many):
    """User chunks along energy: the per-block partial stack rechunks to whole rows first."""
    paths, datasets = many
    obs = open_mfdataset(paths, chunks={"energy": 4, "energy_true": 3}, files_per_task=2)
    assert obs["edisp"].data.chunks[1:] == ((3, 3, 2), (4, 2))
    assert_same_stack(xs.stack(obs).compute(), xs.stack(datasets).data)


def test_open_mfdataset_netcdf4_collection_in_parallel(many, tmp_path):
    paths, datasets = many
    nc4 = []
    for i, ds in enumerate(datasets):
        nc4.append(tmp_path / f"four{i}.nc")
        ds.write(nc4[-1], engine="netcdf4")
    obs = open_mfdataset(nc4, parallel=True, files_per_task=3)
    assert list(obs["obs"].values) == [d.name for d in datasets]
    assert_same_stack(xs.stack(obs).compute(), xs.stack(datasets).data)


def test_open_mfdataset_verifies_each_files_checksums(tmp_path):
    """A flipped byte inside one file's data block (header intact) is caught at compute time by
    that file's own CRC-32 (written by ``ds.write``), naming the file and the variable."""
    from xspec_ds.io import nc3

    paths = []
    for k in range(4):
        ds = xs.SpectrumDataset.read(Path(xs.__file__).parent / "data" / "example_spectrum.nc")
        ds.name = f"run{k}"
        paths.append(tmp_path / f"run{k}.nc")
        ds.write(paths[-1])
    obs = xs.open_mfdataset(paths)
    good = obs["counts"].values.copy()  # all files verify
    assert good.shape[0] == 4
    with open(paths[2], "rb") as f:
        header, _ = nc3.read_header(f)
    var = header.variables["exposure"]
    raw = bytearray(paths[2].read_bytes())
    raw[var.begin + 8 * 3] ^= 0x01  # one bit of one exposure value (still a finite positive number)
    paths[2].write_bytes(bytes(raw))
    obs = xs.open_mfdataset(paths)
    with pytest.raises(xs.io.DatasetFileError, match=r"run2\.nc: variable 'exposure' fails its checksum"):
        obs["exposure"].values


_THREAD_STRESS = """
import sys
from pathlib import Path

import dask
import xspec_ds as xs

paths = [Path(p) for p in sys.argv[1:]]
with dask.config.set(scheduler="threads", num_workers=4):
    for _ in range(4):
        obs = xs.open_mfdataset(paths, parallel=True, files_per_task=1)
        xs.stack(obs).compute()
print("stacked", len(paths))
"""


def test_open_mfdataset_netcdf4_tasks_in_threads_do_not_crash(tmp_path):
    """Regression: dask tasks opening netCDF-4 (HDF5) files in several threads at once crashed the
    interpreter (segmentation fault inside xarray's ``get_attrs``; HDF5 is not thread-safe). Before
    the fix this script died in 4 of 4 runs; it runs in a subprocess so a crash fails one test."""
    import subprocess
    import sys

    base = xs.SpectrumDataset.read(Path(xs.__file__).parent / "data" / "example_spectrum.nc")
    paths = []
    for i in range(40):
        paths.append(tmp_path / f"h5_{i}.nc")
        base.copy(name=f"obs{i}").write(paths[-1], engine="netcdf4")
    script = tmp_path / "stress.py"
    script.write_text(_THREAD_STRESS)
    run = subprocess.run([sys.executable, str(script), *map(str, paths)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-2000:]}"
    assert run.stdout.split() == ["stacked", "40"]
