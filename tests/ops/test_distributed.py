"""xs.stack on lazily opened files under a dask.distributed LocalCluster (2 worker processes)
gives the same result as the in-memory path."""

from __future__ import annotations

import pytest
import xarray as xr

import xspec_ds as xs

from .._requirements import require
from .test_stack import make_list

distributed = require("distributed", allow_module_level=True)

VARIABLES = ("counts", "background", "mask_safe", "exposure", "edisp", "livetime")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, silence_logs=40
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture
def files(tmp_path):
    dss = make_list(41, 6, n=7, nt=9)
    paths = []
    for k, d in enumerate(dss):
        p = tmp_path / f"obs{k}.nc"
        d.to_netcdf(p)
        paths.append(p)
    return dss, paths


def test_stack_lazy_files_on_local_cluster_equals_in_memory(client, files):
    dss, paths = files
    expected = xs.stack(dss)
    lazy = [xr.open_dataset(p, chunks={}) for p in paths]
    assert lazy[0]["counts"].chunks is not None
    out = xs.stack(lazy)
    assert out["edisp"].chunks is not None  # still lazy: computed on the cluster below
    computed = out.compute()  # uses the active Client
    for v in VARIABLES + ("gti_start", "gti_stop"):
        xr.testing.assert_allclose(computed[v], expected[v], rtol=1e-13, atol=0)
    assert computed.attrs["meta_table"] == expected.attrs["meta_table"]
    for d in lazy:
        d.close()


def test_stack_open_mfdataset_obs_dimension_on_cluster(client, files):
    dss, paths = files
    expected = xs.stack(dss)
    obs = xr.open_mfdataset(
        paths,
        combine="nested",
        concat_dim="obs",
        data_vars="all",
        coords="minimal",
        compat="override",
        chunks={"obs": 2},
    )
    out = xs.stack(obs, compute=True, progress=True)  # distributed progress, then computed
    assert out["counts"].chunks is None
    for v in VARIABLES + ("gti_start", "gti_stop"):
        xr.testing.assert_allclose(out[v], expected[v], rtol=1e-13, atol=0)
    obs.close()


def test_stack_xs_open_mfdataset_on_cluster(client, tmp_path):
    if not hasattr(xs, "open_mfdataset"):
        pytest.skip("xs.open_mfdataset not available")
    dss = make_list(42, 5, n=6, nt=8)
    paths = []
    for k, d in enumerate(dss):
        paths.append(tmp_path / f"obs{k}.nc")
        xs.SpectrumDataset.from_xarray(d).write(paths[-1])
    obs = xs.open_mfdataset(paths)
    out = xs.stack(obs).compute()
    expected = xs.stack(dss)
    for v in VARIABLES + ("gti_start", "gti_stop"):
        xr.testing.assert_allclose(out[v], expected[v], rtol=1e-13, atol=0)


def test_xs_open_mfdataset_many_files_per_task_on_cluster(client, tmp_path):
    """Blocks of several files per task, reduced on the workers; a bad file is named there too."""
    import numpy as np
    import pytest as _pytest

    from xspec_ds.io import DatasetFileError

    dss = make_list(43, 9, n=6, nt=8)
    paths = []
    for k, d in enumerate(dss):
        paths.append(tmp_path / f"obs{k}.nc")
        xs.SpectrumDataset.from_xarray(d).write(paths[-1])
    obs = xs.open_mfdataset(paths, files_per_task=4)
    assert obs["edisp"].data.chunks[0] == (4, 4, 1)
    out = xs.stack(obs, compute=True)
    expected = xs.stack(dss)
    np.testing.assert_array_equal(out["counts"].values, expected["counts"].values)
    for v in VARIABLES + ("gti_start", "gti_stop"):
        xr.testing.assert_allclose(out[v], expected[v], rtol=1e-12, atol=0)
    bad = dss[6].copy(deep=True)
    bad["background"].values[2] = -1.0
    bad.to_netcdf(paths[6], engine="scipy")
    with _pytest.raises(DatasetFileError, match=r"obs6\.nc: background has a negative"):
        xs.stack(xs.open_mfdataset(paths, files_per_task=4)).compute()
