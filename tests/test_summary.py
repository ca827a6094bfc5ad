"""Text and HTML summaries: units wherever energies are shown, collections with an ``obs``
dimension, stacked on-off datasets printed without RuntimeWarnings."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import xarray as xr

import xspec_ds as xs
from xspec_ds.example import load_example

from ._requirements import needs_shared

HESS = Path(__file__).parents[1] / ".." / "shared" / "data" / "joint-crab" / "spectra" / "hess"
needs_data = needs_shared


def test_summary_shows_energies_with_units():
    text = repr(load_example())
    assert "energy range      : 0.2 - 50 TeV (24 bins)" in text
    assert "energy_true range : 0.1 - 100 TeV (48 bins)" in text
    assert "safe energy range : 0.502 - 39.72 TeV (19 bins)" in text
    html = load_example()._repr_html_()
    assert "0.2 - 50 TeV (24 bins)" in html and "safe energy range" in html


@needs_data
def test_ogip_summary_names_the_stored_unit():
    ds = xs.SpectrumDatasetOnOff.read(HESS / "pha_obs23523.fits")
    assert "0.01 - 100 TeV (80 bins; coordinates stored in keV)" in repr(ds)


def _obs(k=3):
    dss = []
    for i in range(k):
        d = load_example().data.copy(deep=True)
        d["counts"] = d["counts"] + i
        dss.append(d.drop_vars(["gti_start", "gti_stop"], errors="ignore"))
    return xr.concat(dss, dim="obs", coords="minimal", compat="override", combine_attrs="drop_conflicts").assign_coords(
        obs=["o0", "o1", "o2"][:k]
    )


def test_repr_of_an_obs_collection():
    obs = _obs()
    text = repr(obs.spectrum)
    assert "view over several spectra" in text and "obs: 3" in text
    safe = obs["mask_safe"].values[0]
    expected = [obs["counts"].values[k][safe].sum() for k in range(3)]
    assert f"[{expected[0]:.6g}, {expected[1]:.6g}, {expected[2]:.6g}] per spectrum" in text
    assert "0.2 - 50 TeV (24 bins)" in text
    assert "view over several spectra" in obs.spectrum._repr_html_()
    lazy = obs.chunk({"obs": 1})
    assert "lazy (dask): not computed" in repr(lazy.spectrum)


def test_views_of_one_spectrum_get_distinct_names():
    obs = _obs()
    obs.attrs.pop("name", None)
    views = [obs.isel(obs=k).spectrum for k in range(3)]
    assert [v.name for v in views] == ["o0", "o1", "o2"]
    assert len(xs.Datasets(views)) == 3
    assert "name" not in obs.attrs  # the parent is not renamed
    plain = load_example().data.drop_vars([]).copy()
    plain.attrs.pop("name")
    a, b = plain.isel(energy=slice(0, 10)), plain.isel(energy=slice(10, 20))
    assert a.spectrum.name != b.spectrum.name  # isel views share the attrs dict: not the name


@needs_data
def test_stacked_onoff_prints_without_runtime_warnings():
    hess = [xs.SpectrumDatasetOnOff.read(p) for p in sorted(HESS.glob("pha_*.fits"))]
    stacked = xs.stack(hess)
    assert (stacked.acceptance_off.values == 0).any()  # the case that divided by zero
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        text = repr(stacked) + str(stacked) + stacked._repr_html_()
    assert np.isfinite(stacked.stat_sum()) and "stat_sum" in text


def test_open_mfdataset_views_are_named_by_file(tmp_path):
    paths = []
    for k in range(3):
        ds = load_example()
        ds.name = f"night{k}"
        paths.append(tmp_path / f"n{k}.nc")
        ds.write(paths[-1])
    obs = xs.open_mfdataset(paths)
    views = [obs.isel(obs=k).spectrum for k in range(obs.sizes["obs"])]
    assert [v.name for v in views] == ["night0", "night1", "night2"]
    assert xs.Datasets(views).names == ["night0", "night1", "night2"]
