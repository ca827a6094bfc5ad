"""The lazy (dask) stack: partial sums per ``obs`` block and their aggregation tree, checked
against the DESIGN.md formulas written out in numpy (``reference_stack`` of test_stack.py), plus
the compute step under a distributed ``Client`` (issue 14, mutation testing)."""

from __future__ import annotations

import sys

import distributed
import numpy as np
import pytest
import xarray as xr

import xspec_ds as xs

from .test_stack import make_list, make_xr, random_edges, reference_stack


def _obs(dss):
    return xr.concat(
        [d.drop_vars(["gti_start", "gti_stop"]) for d in dss], dim="obs", coords="minimal", compat="override"
    )


@pytest.mark.parametrize("n_obs", [9, 17])
def test_lazy_tree_with_a_lone_block_in_the_last_group(n_obs):
    """9 (17) one-dataset blocks with fan-in 8: the last group of the first level holds one
    block, which the combine step must pass through unchanged."""
    dss = make_list(31, n_obs)
    out = xs.stack(_obs(dss).chunk({"obs": 1})).compute()
    ref = reference_stack(dss)
    np.testing.assert_array_equal(out["counts"].values, ref["counts"])
    np.testing.assert_array_equal(out["mask_safe"].values, ref["mask_safe"])
    for v in ("background", "exposure", "edisp"):
        np.testing.assert_allclose(out[v].values, ref[v], rtol=1e-12, atol=0, err_msg=v)


def test_lazy_edisp_of_a_true_bin_without_exposure_is_zero():
    """A true bin with zero exposure in every dataset gets a zero kernel row (not 0/0 = NaN), on
    the lazy path as on the eager one; any positive exposure, however small (here below 1 m2 s
    in total), gives the weighted mean of the kernels."""
    rng = np.random.default_rng(5)
    er, et = random_edges(rng, 5), random_edges(rng, 6)
    dss = []
    for k in range(4):
        exposure = rng.uniform(0.01, 0.2, 6)
        exposure[[0, 3]] = 0.0
        dss.append(make_xr(rng, er, et, f"o{k}", exposure=exposure, p_safe=1.0))
    lazy = xs.stack(_obs(dss).chunk({"obs": 2})).compute()
    eager = xs.stack(_obs(dss))
    for out in (lazy, eager):
        edisp = out["edisp"].values
        assert np.isfinite(edisp).all()
        np.testing.assert_array_equal(edisp[[0, 3]], 0.0)
        np.testing.assert_allclose(edisp, reference_stack(dss)["edisp"], rtol=1e-12, atol=0)


def test_lazy_edisp_without_exposure_raises_naming_the_problem():
    dss = make_list(32, 4)
    obs = _obs(dss).drop_vars("exposure").chunk({"obs": 2})
    with pytest.raises(ValueError, match="cannot stack edisp without exposure: the kernels are exposure-weighted"):
        xs.stack(obs).compute()
    with pytest.raises(ValueError, match="cannot stack edisp without exposure: the kernels are exposure-weighted"):
        xs.stack(_obs(dss).drop_vars("exposure"))


def test_compute_under_a_distributed_client_persists_then_shows_its_progress(monkeypatch):
    """Under a ``Client`` the stacked graph is persisted on the cluster, ``distributed.progress``
    follows it and the computed result is returned (a stand-in client: no cluster is started)."""
    calls = []
    persist = xr.Dataset.persist

    def spy_persist(self, **kwargs):
        calls.append("persist")
        return persist(self, **kwargs)

    real_get_client = distributed.get_client

    def get_client():  # a client for the stack's own look-up only (dask's look-ups find none)
        if sys._getframe(1).f_globals.get("__name__") == "xspec_ds.ops.stack":
            return object()
        return real_get_client()

    monkeypatch.setattr(distributed, "get_client", get_client)
    monkeypatch.setattr(distributed, "progress", lambda obj: calls.append(("progress", obj)))
    monkeypatch.setattr(xr.Dataset, "persist", spy_persist)
    dss = make_list(33, 6)
    out = xs.stack(_obs(dss).chunk({"obs": 2}), progress=True)
    assert calls[0] == "persist"
    assert calls[1][0] == "progress" and isinstance(calls[1][1], xr.Dataset)
    assert out["counts"].chunks is None
    np.testing.assert_array_equal(out["counts"].values, reference_stack(dss)["counts"])
    calls.clear()
    out = xs.stack(_obs(dss).chunk({"obs": 2}), compute=True)  # no progress: persist and compute only
    assert calls == ["persist"]
    np.testing.assert_array_equal(out["counts"].values, reference_stack(dss)["counts"])


def test_lazy_result_declares_the_dtypes_it_computes():
    """Before computing, the lazy stack's arrays carry the dtypes of the eager result (float sums,
    bool masks), so code inspecting the lazy Dataset sees the right types."""
    dss = make_list(34, 5)
    lazy = xs.stack(_obs(dss).chunk({"obs": 2}))
    eager = xs.stack(_obs(dss))
    for v in eager.data_vars:
        assert lazy[v].dtype == eager[v].dtype, v
        assert lazy[v].compute().dtype == eager[v].dtype, v
    assert lazy["mask_safe"].dtype == bool and lazy["counts"].dtype == float
