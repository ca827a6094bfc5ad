"""Resampling the reco axis: group sums against numpy ``add.reduceat``, conservation of safe
counts and the npred invariant as hypothesis properties, exact edges, the OR rule for the
safe mask, downsample/to_image, Gammapy parity for the counts and the kernel."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import xarray as xr
from hypothesis import given
from hypothesis import strategies as st

import xspec_ds as xs
from xspec_ds.containers import validate_dataset
from xspec_ds.ops import downsample, resample_energy_axis, to_image

from .._requirements import require_gammapy
from .test_stack import FAST, MODELS, _npred, make_list, make_xr, random_edges


def edges(d, dim="energy"):
    return np.append(d[f"{dim}_min"].values, d[f"{dim}_max"].values[-1])


def axis_from(e):
    return xs.MapAxis.from_energy_edges(e * u.TeV, name="energy")


@pytest.mark.parametrize("cuts", [[0, 3, 5, 9], [0, 9], [2, 4, 7], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]])
def test_group_sums_match_reduceat(cuts):
    d = make_list(31, 1, n=9, nt=7, mask_fit=True)[0]
    e = edges(d)
    out = resample_energy_axis(d, axis_from(e[cuts]), name="r")
    m = d["mask_safe"].values
    idx = np.array(cuts[:-1])
    sl = slice(cuts[0], cuts[-1])

    def group_sum(x):
        return np.add.reduceat(x[..., sl], idx - cuts[0], axis=-1)

    np.testing.assert_allclose(out["counts"].values, group_sum(d["counts"].values * m), rtol=1e-14)
    np.testing.assert_allclose(out["background"].values, group_sum(d["background"].values * m), rtol=1e-14)
    np.testing.assert_allclose(out["edisp"].values, group_sum(d["edisp"].values * m[None, :]), rtol=1e-14)
    np.testing.assert_array_equal(out["mask_safe"].values, group_sum(m.astype(int)) > 0)
    np.testing.assert_array_equal(out["mask_fit"].values, group_sum(d["mask_fit"].values.astype(int)) > 0)
    np.testing.assert_array_equal(out["exposure"].values, d["exposure"].values)
    np.testing.assert_array_equal(edges(out), e[cuts])  # exact copies of old edges
    np.testing.assert_array_equal(out["energy_true_min"].values, d["energy_true_min"].values)
    assert out.attrs["name"] == "r" and out["gti_start"].values[0] == d["gti_start"].values[0]
    validate_dataset(out)


resample_cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "n": st.integers(1, 12),
        "nt": st.integers(1, 10),
        "p_safe": st.sampled_from([0.0, 0.5, 0.9, 1.0]),
        "model": st.sampled_from(sorted(MODELS)),
    }
)


@FAST
@given(resample_cases, st.data())
def test_property_resample_conserves_safe_counts_and_npred(c, data):
    rng = np.random.default_rng(c["seed"])
    d = make_xr(rng, random_edges(rng, c["n"]), random_edges(rng, c["nt"]), "d", p_safe=c["p_safe"])
    inner = data.draw(st.sets(st.integers(1, c["n"] - 1), max_size=max(c["n"] - 1, 0))) if c["n"] > 1 else set()
    cuts = [0, *sorted(inner), c["n"]]
    out = resample_energy_axis(d, axis_from(edges(d)[cuts]))
    m = d["mask_safe"].values
    assert out["counts"].values[out["mask_safe"].values].sum() == pytest.approx(
        d["counts"].values[m].sum(), rel=1e-13, abs=0
    )
    model = MODELS[c["model"]](rng)
    expected = np.add.reduceat(_npred(d, model) * m, cuts[:-1])
    np.testing.assert_allclose(_npred(out, model), expected, rtol=1e-10, atol=1e-10 * max(expected.max(), 1e-300))
    np.testing.assert_array_equal(edges(out), edges(d)[cuts])


def test_resample_works_on_obs_dimension_and_dask():
    dss = make_list(32, 4, n=6, nt=5)
    obs = xr.concat(
        [x.drop_vars(["gti_start", "gti_stop"]) for x in dss], dim="obs", coords="minimal", compat="override"
    )
    ax = axis_from(edges(dss[0])[[0, 2, 6]])
    eager = resample_energy_axis(obs, ax)
    lazy = resample_energy_axis(obs.chunk({"obs": 2}), ax)
    assert lazy["counts"].chunks is not None
    xr.testing.assert_allclose(lazy.compute(), eager, atol=0)
    for k, x in enumerate(dss):
        xr.testing.assert_allclose(eager.isel(obs=k)["counts"], resample_energy_axis(x, ax)["counts"], atol=0)
    # resampling commutes with stacking for the additive quantities
    a = xs.stack([resample_energy_axis(x, ax) for x in dss])
    b = resample_energy_axis(xs.stack(dss), ax)
    for v in ("counts", "background", "mask_safe"):
        xr.testing.assert_allclose(a[v], b[v], rtol=1e-13, atol=0)


def test_downsample_or_mask_and_equivalence_with_resample():
    d = make_list(33, 1, n=8, nt=8)[0]
    d["mask_safe"].values[:] = [True, False, False, False, True, True, False, True]
    out = downsample(d, 2, axis_name="energy", name="ds")
    np.testing.assert_array_equal(out["mask_safe"].values, [True, False, True, True])  # OR (Gammapy: AND)
    xr.testing.assert_identical(out, resample_energy_axis(d, axis_from(edges(d)[::2]), name="ds"))
    with pytest.raises(ValueError, match="no spatial axes.*axis_name='energy'"):
        downsample(d, 3)  # never a silent no-op
    with pytest.raises(ValueError, match="not divisible"):
        downsample(d, 3, axis_name="energy")
    with pytest.raises(ValueError, match="only the reco axis"):
        downsample(d, 2, axis_name="energy_true")
    with pytest.raises(ValueError, match="positive integer"):
        downsample(d, 0, axis_name="energy")


def test_to_image_sums_safe_bins_into_one():
    d = make_list(34, 1, n=7, nt=9)[0]
    img = to_image(d, name="img")
    m = d["mask_safe"].values
    assert img.sizes["energy"] == 1
    assert img["counts"].values[0] == pytest.approx(d["counts"].values[m].sum(), rel=1e-14, abs=0)
    np.testing.assert_allclose(img["edisp"].values[:, 0], (d["edisp"].values * m).sum(axis=1), rtol=1e-14)
    np.testing.assert_array_equal(edges(img), edges(d)[[0, -1]])


def test_bad_axes_raise():
    d = make_list(35, 1, n=6, nt=6)[0]
    e = edges(d)
    with pytest.raises(ValueError, match="not an edge"):
        resample_energy_axis(d, axis_from(np.array([e[0], np.sqrt(e[1] * e[2]), e[-1]])))
    with pytest.raises(ValueError, match="named 'energy'"):
        resample_energy_axis(d, xs.MapAxis.from_energy_edges(e * u.TeV, name="energy_true"))
    with pytest.raises(TypeError, match="MapAxis"):
        resample_energy_axis(d, e)
    with pytest.raises(ValueError, match="no resampling rule"):
        resample_energy_axis(d.assign(extra=d["counts"]), axis_from(e[[0, -1]]))


def test_dataset_methods_delegate_and_keep_models():
    d = make_list(36, 1, n=6, nt=6)[0]
    spec = xs.SpectrumDataset.from_xarray(d, models=xs.SkyModel(spectral_model=xs.PowerLawSpectralModel(), name="s"))
    ax = axis_from(edges(d)[[0, 3, 6]])
    r = spec.resample_energy_axis(ax, name="r")
    assert r.name == "r" and r.models.names == ["s"] and r.models[0] is not spec.models[0]
    xr.testing.assert_identical(r.data, resample_energy_axis(d, ax, name="r"))
    xr.testing.assert_identical(spec.downsample(3, axis_name="energy", name="r").data, r.data)
    xr.testing.assert_identical(d.spectrum.to_image(name="i").data, to_image(d, name="i"))
    assert spec.downsample(2, axis_name="energy").data.sizes["energy"] == 3
    with pytest.raises(ValueError, match="axis_name='energy'"):
        spec.downsample(4)


@pytest.mark.gammapy
def test_resample_matches_gammapy():
    require_gammapy("gammapy")
    from gammapy.datasets import SpectrumDataset
    from gammapy.irf import EDispKernel, EDispKernelMap
    from gammapy.maps import MapAxis, RegionGeom, RegionNDMap

    d = make_list(37, 1, n=8, nt=6)[0]
    e, et = edges(d), edges(d, "energy_true")
    ax = MapAxis.from_energy_edges(e * u.TeV, name="energy")
    axt = MapAxis.from_energy_edges(et * u.TeV, name="energy_true")
    geom = RegionGeom.create("icrs;circle(0,0,0.1)", axes=[ax])
    geomt = RegionGeom.create("icrs;circle(0,0,0.1)", axes=[axt])
    edisp = EDispKernelMap.from_edisp_kernel(EDispKernel(axes=[axt, ax], data=d["edisp"].values), geom=geom)
    g = SpectrumDataset(
        counts=RegionNDMap.from_geom(geom, data=d["counts"].values[:, None, None]),
        background=RegionNDMap.from_geom(geom, data=d["background"].values[:, None, None]),
        exposure=RegionNDMap.from_geom(geomt, data=d["exposure"].values[:, None, None], unit="m2 s"),
        edisp=edisp,
        mask_safe=RegionNDMap.from_geom(geom, data=d["mask_safe"].values[:, None, None], dtype=bool),
    )
    cuts = [0, 2, 5, 8]
    gr = g.resample_energy_axis(MapAxis.from_energy_edges(e[cuts] * u.TeV, name="energy"))
    ours = resample_energy_axis(d, axis_from(e[cuts]))
    np.testing.assert_allclose(ours["counts"].values, gr.counts.data.ravel(), rtol=1e-12)
    np.testing.assert_allclose(ours["background"].values, gr.background.data.ravel(), rtol=1e-6)
    np.testing.assert_array_equal(ours["mask_safe"].values, gr.mask_safe.data.ravel())
    np.testing.assert_allclose(ours["edisp"].values, gr.edisp.get_edisp_kernel().data, rtol=1e-6, atol=1e-12)
