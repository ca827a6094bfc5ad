"""Stacking: the formulas of DESIGN.md checked against independent numpy computations, the
npred invariant and conservation laws as hypothesis properties, equality with K-1 successive
in-place stacks, the lazy (dask) path, bad input, and parity with Gammapy's stack_reduce."""

from __future__ import annotations

import copy
import importlib

import astropy.units as u
import numpy as np
import pytest
import xarray as xr
from astropy.table import Table, vstack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xspec_ds as xs
from tests.conftest import edge_coords
from xspec_ds.containers import table_from_text, table_to_text
from xspec_ds.ops.stack import concat_meta_tables, stack_xarray

from .._requirements import require_gammapy

REF_TIME = "2020-01-01T00:00:00"


# ------------------------------------------------------------------------------------------------
# independent builders (plain xarray, random content)
# ------------------------------------------------------------------------------------------------
def random_edges(rng, n: int, lo: float = 0.05, hi: float = 200.0) -> np.ndarray:
    x = np.sort(rng.uniform(np.log(lo), np.log(hi), n + 1))
    while np.any(np.diff(x) <= 1e-3):
        x = np.sort(rng.uniform(np.log(lo), np.log(hi), n + 1))
    return np.exp(x)


def random_kernel(rng, n_true: int, n_reco: int) -> np.ndarray:
    k = rng.uniform(0, 1, (n_true, n_reco)) * (rng.uniform(size=(n_true, n_reco)) < 0.7)
    s = k.sum(axis=1, keepdims=True)
    return np.where(s > 0, k / np.where(s > 0, s, 1) * rng.uniform(0.3, 1.0, (n_true, 1)), 0.0)


def make_xr(
    rng,
    e_reco,
    e_true,
    name,
    *,
    p_safe=0.7,
    exposure_unit="m2 s",
    mask=None,
    exposure=None,
    mask_fit=False,
    gti=True,
    meta=True,
    livetime=True,
) -> xr.Dataset:
    n, nt = e_reco.size - 1, e_true.size - 1
    cr, ct = edge_coords("energy", e_reco), edge_coords("energy_true", e_true)
    scale = 1e4 if exposure_unit == "cm2 s" else 1.0
    if exposure is None:
        exposure = rng.uniform(1e8, 1e10, nt) * (rng.uniform(size=nt) < 0.9)
    mask = rng.uniform(size=n) < p_safe if mask is None else np.asarray(mask, bool)
    data = {
        "counts": xr.DataArray(rng.poisson(20, n).astype(float), dims="energy", coords=cr, attrs={"units": ""}),
        "background": xr.DataArray(rng.uniform(0, 3, n), dims="energy", coords=cr, attrs={"units": ""}),
        "mask_safe": xr.DataArray(mask, dims="energy", coords=cr),
        "exposure": xr.DataArray(exposure * scale, dims="energy_true", coords=ct, attrs={"units": exposure_unit}),
        "edisp": xr.DataArray(
            random_kernel(rng, nt, n), dims=("energy_true", "energy"), coords={**ct, **cr}, attrs={"units": ""}
        ),
    }
    if mask_fit:
        data["mask_fit"] = xr.DataArray(rng.uniform(size=n) < 0.8, dims="energy", coords=cr)
    ds = xr.Dataset(data, attrs={"name": name})
    if livetime:
        ds["livetime"] = xr.Variable((), float(rng.uniform(100, 1000)), {"units": "s"})
    if gti:
        t0 = rng.uniform(0, 5000)
        ds["gti_start"] = xr.Variable("gti", [t0], {"units": "s", "time_reference": REF_TIME})
        ds["gti_stop"] = xr.Variable("gti", [t0 + rng.uniform(10, 2000)], {"units": "s", "time_reference": REF_TIME})
        ds.attrs["time_reference"] = REF_TIME
    if meta:
        ds.attrs["meta_table"] = table_to_text(Table({"OBS_ID": [int(rng.integers(1, 10**6))], "NAME": [name]}))
    return ds


def make_list(seed: int, K: int, n: int = 6, nt: int = 8, **kw) -> list[xr.Dataset]:
    rng = np.random.default_rng(seed)
    er, et = random_edges(rng, n), random_edges(rng, nt)
    return [make_xr(rng, er, et, f"obs{k}", **kw) for k in range(K)]


def as_spectrum(dss, models=None):
    return [xs.SpectrumDataset.from_xarray(d.copy(deep=True), models=copy.deepcopy(models)) for d in dss]


def reference_stack(dss: list[xr.Dataset]) -> dict:
    """The DESIGN.md stacking formulas written out in numpy, in m2 s."""
    m = np.stack([d["mask_safe"].values for d in dss])
    X = np.stack([d["exposure"].values * u.Unit(d["exposure"].attrs["units"]).to("m2 s") for d in dss])
    E = np.stack([d["edisp"].values for d in dss])
    s = m.any(axis=1)
    expo = (X * s[:, None]).sum(axis=0)
    num = np.zeros(E.shape[1:])
    for k in range(len(dss)):  # loop on purpose: an independent route to the same sum
        num += X[k][:, None] * E[k] * m[k][None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        edisp = np.where(expo[:, None] > 0, num / expo[:, None], 0.0)
    return {
        "counts": sum(d["counts"].values * d["mask_safe"].values for d in dss),
        "background": sum(d["background"].values * d["mask_safe"].values for d in dss),
        "mask_safe": m.any(axis=0),
        "exposure": expo,
        "edisp": edisp,
        "livetime": sum(float(d["livetime"]) for d, ok in zip(dss, s) if ok),
    }


def merge_intervals(starts, stops):
    """Union of intervals by a plain loop (independent of GTI.union)."""
    out = []
    for a, b in sorted(zip(starts, stops)):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return np.array(out).reshape(-1, 2)


# ------------------------------------------------------------------------------------------------
# formulas
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("K", [1, 3, 8])
@pytest.mark.parametrize("mixed_units", [False, True])
def test_stack_matches_reference_formulas(K, mixed_units):
    rng = np.random.default_rng(K)
    er, et = random_edges(rng, 7), random_edges(rng, 9)
    dss = [
        make_xr(rng, er, et, f"o{k}", exposure_unit="cm2 s" if (mixed_units and k % 2) else "m2 s") for k in range(K)
    ]
    dss[0]["mask_safe"].values[:] = False if K > 1 else dss[0]["mask_safe"].values  # a dataset with no safe bin
    ref = reference_stack(dss)
    out = xs.stack(dss, name="stacked")
    assert isinstance(out, xr.Dataset) and out.attrs["name"] == "stacked"
    np.testing.assert_allclose(out["counts"].values, ref["counts"], rtol=1e-13)
    np.testing.assert_allclose(out["background"].values, ref["background"], rtol=1e-13)
    np.testing.assert_array_equal(out["mask_safe"].values, ref["mask_safe"])
    np.testing.assert_allclose(out["exposure"].values, ref["exposure"], rtol=1e-13)
    assert out["exposure"].attrs["units"] == "m2 s"
    np.testing.assert_allclose(out["edisp"].values, ref["edisp"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(float(out["livetime"]), ref["livetime"], rtol=1e-13)
    gti = merge_intervals(
        np.concatenate([d["gti_start"].values for d in dss]), np.concatenate([d["gti_stop"].values for d in dss])
    )
    np.testing.assert_allclose(out["gti_start"].values, gti[:, 0])
    np.testing.assert_allclose(out["gti_stop"].values, gti[:, 1])
    meta = table_from_text(out.attrs["meta_table"])
    expected = vstack([table_from_text(d.attrs["meta_table"]) for d in dss])
    assert list(meta["OBS_ID"]) == list(expected["OBS_ID"]) and list(meta["NAME"]) == list(expected["NAME"])
    xs.SpectrumDataset.from_xarray(out)  # a valid dataset


def test_gti_with_different_reference_times():
    dss = make_list(1, 2)
    dss[1]["gti_start"].attrs["time_reference"] = "2020-01-02T00:00:00"  # one day later
    dss[1]["gti_stop"].attrs["time_reference"] = "2020-01-02T00:00:00"
    out = xs.stack(dss)
    starts = sorted([dss[0]["gti_start"].values[0], dss[1]["gti_start"].values[0] + 86400.0])
    np.testing.assert_allclose(out["gti_start"].values, starts, rtol=0, atol=1e-6)
    assert out["gti_start"].attrs["time_reference"].startswith("2020-01-01")


def test_mask_fit_rule_or_with_missing_as_all_true():
    dss = make_list(2, 3, mask_fit=True)
    out = xs.stack(dss)
    np.testing.assert_array_equal(out["mask_fit"].values, np.any([d["mask_fit"].values for d in dss], axis=0))
    dss[1] = dss[1].drop_vars("mask_fit")
    assert xs.stack(dss)["mask_fit"].values.all()
    assert "mask_fit" not in xs.stack(make_list(2, 3))


def test_missing_optional_variables_follow_documented_fills():
    dss = make_list(3, 3)
    ref = reference_stack(dss)
    no_bkg = [dss[0], dss[1].drop_vars("background"), dss[2]]
    out = xs.stack(no_bkg)
    expected = sum(d["background"].values * d["mask_safe"].values for d in (dss[0], dss[2]))
    np.testing.assert_allclose(out["background"].values, expected, rtol=1e-13)
    assert "livetime" not in xs.stack([dss[0], dss[1].drop_vars("livetime")])
    np.testing.assert_allclose(xs.stack(dss)["livetime"].values, ref["livetime"])


def test_meta_tables_with_different_headers_are_vstacked():
    a = table_to_text(Table({"OBS_ID": [1, 2]}))
    b = table_to_text(Table({"OBS_ID": [3], "ZEN": [20.0]}))
    t = table_from_text(concat_meta_tables([a, None, b]))
    assert list(t["OBS_ID"]) == [1, 2, 3]
    assert concat_meta_tables([None, None]) is None
    same = table_from_text(concat_meta_tables([a, a]))
    assert list(same["OBS_ID"]) == [1, 2, 1, 2]


# ------------------------------------------------------------------------------------------------
# properties
# ------------------------------------------------------------------------------------------------
MODELS = {
    "pl": lambda r: xs.PowerLawSpectralModel(
        index=r.uniform(1.2, 3.5), amplitude=f"{r.uniform(1e-12, 1e-10)} cm-2 s-1 TeV-1", reference="1 TeV"
    ),
    "lp": lambda r: xs.LogParabolaSpectralModel(
        amplitude=f"{r.uniform(1e-12, 1e-10)} cm-2 s-1 TeV-1",
        reference="1 TeV",
        alpha=r.uniform(1.5, 3),
        beta=r.uniform(0.01, 0.5),
    ),
    "ecpl": lambda r: xs.ExpCutoffPowerLawSpectralModel(
        amplitude=f"{r.uniform(1e-12, 1e-10)} cm-2 s-1 TeV-1",
        index=r.uniform(1.5, 3),
        lambda_=f"{r.uniform(0.01, 1)} TeV-1",
        reference="1 TeV",
    ),
}

collections = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "K": st.integers(1, 5),
        "n": st.integers(1, 8),
        "nt": st.integers(1, 10),
        "p_safe": st.sampled_from([0.0, 0.3, 0.7, 1.0]),
        "model": st.sampled_from(sorted(MODELS)),
    }
)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _npred(ds: xr.Dataset, model) -> np.ndarray:
    return (
        xs.SpectrumDataset.from_xarray(ds, models=xs.SkyModel(spectral_model=model, name="src")).npred_signal().values
    )


@FAST
@given(collections)
def test_property_npred_of_stack_is_sum_of_masked_npred(c):
    rng = np.random.default_rng(c["seed"])
    er, et = random_edges(rng, c["n"]), random_edges(rng, c["nt"])
    dss = [
        make_xr(rng, er, et, f"o{k}", p_safe=c["p_safe"], exposure_unit=["m2 s", "cm2 s"][k % 2], gti=False, meta=False)
        for k in range(c["K"])
    ]
    model = MODELS[c["model"]](rng)
    stacked = xs.stack(dss)
    expected = sum(_npred(d, model) * d["mask_safe"].values for d in dss)
    got = _npred(stacked, model)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10 * max(np.abs(expected).max(), 1e-300))


@FAST
@given(collections)
def test_property_safe_counts_conserved_and_edges_exact(c):
    rng = np.random.default_rng(c["seed"])
    er, et = random_edges(rng, c["n"]), random_edges(rng, c["nt"])
    dss = [make_xr(rng, er, et, f"o{k}", p_safe=c["p_safe"], gti=False, meta=False) for k in range(c["K"])]
    stacked = xs.stack(dss)
    total_in = sum(float(d["counts"].values[d["mask_safe"].values].sum()) for d in dss)
    total_out = float(stacked["counts"].values[stacked["mask_safe"].values].sum())
    assert total_out == pytest.approx(total_in, rel=1e-13, abs=0)
    assert float(stacked["counts"].values[~stacked["mask_safe"].values].sum()) == 0.0
    for c_name in ("energy_min", "energy_max", "energy_true_min", "energy_true_max", "energy", "energy_true"):
        np.testing.assert_array_equal(stacked[c_name].values, dss[0][c_name].values)


@FAST
@given(collections, st.data())
def test_property_slice_then_stack_equals_stack_then_slice(c, data):
    rng = np.random.default_rng(c["seed"])
    er, et = random_edges(rng, c["n"]), random_edges(rng, c["nt"])
    dss = [make_xr(rng, er, et, f"o{k}", p_safe=c["p_safe"], gti=False, meta=False) for k in range(c["K"])]
    i0 = data.draw(st.integers(0, c["n"] - 1))
    i1 = data.draw(st.integers(i0 + 1, c["n"]))
    j0 = data.draw(st.integers(0, c["nt"] - 1))
    j1 = data.draw(st.integers(j0 + 1, c["nt"]))
    sl = {"energy": slice(i0, i1), "energy_true": slice(j0, j1)}
    a = xs.stack([xs.ops.slice_by_idx(d, sl) for d in dss])
    b = xs.ops.slice_by_idx(xs.stack(dss), sl)
    for v in ("counts", "background", "mask_safe"):
        xr.testing.assert_allclose(a[v], b[v], rtol=1e-13, atol=0)
    for cname in ("energy_min", "energy_max", "energy_true_min", "energy_true_max"):
        np.testing.assert_array_equal(a[cname].values, b[cname].values)
    model = MODELS[c["model"]](rng)
    np.testing.assert_allclose(_npred(a, model), _npred(b, model), rtol=1e-10, atol=1e-300)
    # exposure/edisp are equal too unless slicing leaves a dataset without any safe bin
    # (its exposure then drops out of the stack: DESIGN's "datasets that have any safe bin")
    if all(d["mask_safe"].values.any() == d["mask_safe"].values[i0:i1].any() for d in dss):
        xr.testing.assert_allclose(a["exposure"], b["exposure"], rtol=1e-13, atol=0)
        xr.testing.assert_allclose(a["edisp"], b["edisp"], rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------------------------------------
# vectorised == sequential, input forms, in-place and accessor paths
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("K", [2, 17, pytest.param(1000, marks=pytest.mark.slow)])  # slow: skipped by mutation runs
def test_vectorised_stack_equals_successive_in_place_stacks(K):
    rng = np.random.default_rng(K)
    er, et = random_edges(rng, 4), random_edges(rng, 5)
    dss = [make_xr(rng, er, et, f"o{k}") for k in range(min(K, 50))]
    base = make_xr(rng, er, et, "base", meta=False)
    fresh = {
        "counts": lambda: rng.poisson(20, 4).astype(float),
        "background": lambda: rng.uniform(0, 3, 4),
        "mask_safe": lambda: rng.uniform(size=4) < 0.7,
        "exposure": lambda: rng.uniform(1e8, 1e10, 5),
        "edisp": lambda: random_kernel(rng, 5, 4),
        "gti_start": lambda: rng.uniform(0, 5000, 1),
        "livetime": lambda: rng.uniform(100, 1000),
    }
    for k in range(len(dss), K):  # the rest: cheap copies of a template with fresh random content
        d = base.copy(deep=True)
        d.attrs["name"] = f"o{k}"
        for v, draw in fresh.items():
            d[v].values = draw()
        d["gti_stop"].values = d["gti_start"].values + rng.uniform(10, 2000, 1)
        dss.append(d)
    spec = [xs.SpectrumDataset.from_xarray(d) for d in dss]
    vec = xs.stack(spec, name="vec")
    acc = xs.SpectrumDataset.from_xarray(dss[0].copy(deep=True))
    for d in spec[1:]:
        acc.stack(d)
    for v in ("counts", "background", "mask_safe", "exposure", "edisp", "livetime", "gti_start", "gti_stop"):
        xr.testing.assert_allclose(acc.data[v], vec.data[v], rtol=1e-12, atol=1e-15)
    assert acc.data.attrs["meta_table"] == vec.data.attrs["meta_table"]
    assert len(table_from_text(vec.data.attrs["meta_table"])) == min(K, 50)  # datasets without one are skipped


def test_input_forms_agree_and_stack_reduce():
    dss = make_list(5, 4)
    from_xr = xs.stack(dss, name="s")
    spec = as_spectrum(dss)
    from_spec = xs.stack(spec, name="s")
    assert isinstance(from_spec, xs.SpectrumDataset)
    xr.testing.assert_identical(from_spec.data, from_xr)
    obs = xr.concat(
        [d.drop_vars(["gti_start", "gti_stop"]) for d in dss], dim="obs", coords="minimal", compat="override"
    )
    from_obs = xs.stack(obs, name="s")
    for v in ("counts", "background", "mask_safe", "exposure", "edisp", "livetime"):
        xr.testing.assert_allclose(from_obs[v], from_xr[v], rtol=1e-13, atol=0)
    reduced = xs.Datasets(spec).stack_reduce(name="s")
    xr.testing.assert_identical(reduced.data, from_xr)


def test_stacked_dataset_keeps_copy_of_first_models():
    pl = xs.PowerLawSpectralModel(index=2.0, amplitude="1e-11 cm-2 s-1 TeV-1", reference="1 TeV")
    spec = as_spectrum(make_list(6, 3), models=xs.SkyModel(spectral_model=pl, name="src"))
    spec[0].models = [spec[0].models[0], xs.FoVBackgroundModel(dataset_name=spec[0].name)]
    out = xs.stack(spec, name="st")
    assert out.models.names[0] == "src"
    assert out.models[0] is not spec[0].models[0]
    assert out.models[0].spectral_model.parameters["index"].value == 2.0
    assert out.background_model is not None and out.background_model.datasets_names == ["st"]


def test_in_place_stack_equals_function_and_keeps_name_and_models():
    dss = make_list(7, 2)
    a, b = as_spectrum(dss, models=xs.SkyModel(spectral_model=xs.PowerLawSpectralModel(), name="src"))
    models = a.models
    data_obj = a.data
    a.stack(b)
    assert a.name == "obs0" and a.models is models and a.data is data_obj
    xr.testing.assert_identical(a.data.drop_attrs(), xs.stack(dss).drop_attrs())


def test_in_place_stack_through_accessor_updates_same_dataset():
    dss = make_list(8, 2)
    target = dss[0].copy(deep=True)
    subset = target[["counts", "mask_safe"]]  # shares Variable objects with target
    counts_before = subset["counts"].values.copy()
    view = target.spectrum
    view.stack(dss[1])
    np.testing.assert_array_equal(subset["counts"].values, counts_before)  # replaced in target, not mutated
    expected = xs.stack(dss)
    for v in ("counts", "background", "mask_safe", "exposure", "edisp", "livetime", "gti_start", "gti_stop"):
        xr.testing.assert_allclose(target[v], expected[v], rtol=1e-13, atol=0)
    np.testing.assert_allclose(view.counts.values, expected["counts"].values)


# ------------------------------------------------------------------------------------------------
# dask
# ------------------------------------------------------------------------------------------------
def test_dask_inputs_give_lazy_tree_reduction_equal_to_eager():
    dss = make_list(9, 12)
    obs = xr.concat(
        [d.drop_vars(["gti_start", "gti_stop"]) for d in dss], dim="obs", coords="minimal", compat="override"
    )
    lazy_in = obs.chunk({"obs": 5})
    out = xs.stack(lazy_in)
    for v in ("counts", "background", "mask_safe", "exposure", "edisp", "livetime"):
        assert out[v].chunks is not None or out[v].variable._data.__class__.__name__ == "Array", v
    eager = xs.stack(obs)
    xr.testing.assert_allclose(out.compute(), eager, rtol=1e-13, atol=0)
    # 40 chunks along obs: dask reduces them as a tree (partial sums, then an aggregate), not serially
    many = xr.concat(
        [d.drop_vars(["gti_start", "gti_stop"]) for d in make_list(9, 40)],
        dim="obs",
        coords="minimal",
        compat="override",
    )
    tree = xs.stack(many.chunk({"obs": 1}))
    for v in ("counts", "exposure", "edisp"):
        keys = [k for k in tree[v].data.dask if isinstance(k, tuple)]
        partials = [k for k in keys if k[0].startswith("stack-partials-")]
        combines = [k for k in keys if k[0].startswith("stack-combine-")]
        # one partial stack per obs chunk, combined as a tree (fan-in 8: 40 -> 5 -> 1)
        assert len(partials) == 40 and len(combines) == 6, (v, len(partials), len(combines))
    xr.testing.assert_allclose(tree.compute(), xs.stack(many), rtol=1e-13, atol=0)
    lazy_list = xs.stack([d.chunk() for d in dss])
    assert lazy_list["counts"].chunks is not None
    xr.testing.assert_allclose(lazy_list.compute().drop_vars(["gti_start", "gti_stop"]), eager, rtol=1e-13, atol=0)


def test_progress_bar_is_off_by_default_and_shown_on_request(capsys):
    dss = make_list(10, 4)
    obs = xr.concat(
        [d.drop_vars(["gti_start", "gti_stop"]) for d in dss], dim="obs", coords="minimal", compat="override"
    ).chunk({"obs": 2})
    xs.stack(obs)
    assert capsys.readouterr().out == ""
    out = xs.stack(obs, progress=True)
    assert "Completed" in capsys.readouterr().out
    assert out["counts"].chunks is None  # computed


# ------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------
def _snapshot(dss):
    return [d.copy(deep=True) for d in dss]


@pytest.mark.parametrize("axis", ["energy", "energy_true"])
def test_different_axes_raise_naming_the_axis_and_mutate_nothing(axis):
    dss = make_list(11, 3)
    rng = np.random.default_rng(0)
    er = dss[0]["energy_min"].values.tolist() + [dss[0]["energy_max"].values[-1]]
    et = dss[0]["energy_true_min"].values.tolist() + [dss[0]["energy_true_max"].values[-1]]
    if axis == "energy":
        er = np.array(er) * 1.01
    else:
        et = np.array(et[:-1])
    dss.append(make_xr(rng, np.asarray(er), np.asarray(et), "odd"))
    before = _snapshot(dss)
    with pytest.raises(ValueError, match=f"'{axis}' axis of dataset 3 \\('odd'\\)"):
        xs.stack(dss)
    spec = as_spectrum(dss)
    with pytest.raises(ValueError, match=f"'{axis}' axis"):
        spec[0].stack(spec[3])
    for d, b in zip(dss, before):
        xr.testing.assert_identical(d, b)
    xr.testing.assert_identical(spec[0].data, before[0])


def test_empty_and_invalid_inputs_raise():
    with pytest.raises(ValueError, match="empty"):
        xs.stack([])
    with pytest.raises(ValueError, match="empty"):
        xs.Datasets([]).stack_reduce()
    obs = xr.concat(
        [d.drop_vars(["gti_start", "gti_stop"]) for d in make_list(12, 2)],
        dim="obs",
        coords="minimal",
        compat="override",
    )
    with pytest.raises(ValueError, match="empty"):
        xs.stack(obs.isel(obs=slice(0, 0)))
    with pytest.raises(ValueError, match="no 'obs' dimension"):
        xs.stack(obs.isel(obs=0))
    with pytest.raises(TypeError, match="item 1"):
        xs.stack([make_list(12, 1)[0], "not a dataset"])
    dss = make_list(13, 2)
    with pytest.raises(ValueError, match="'counts'"):
        xs.stack([dss[0], dss[1].drop_vars("counts")])
    weird = dss[1].assign(extra=dss[1]["counts"] * 2)
    before = _snapshot(dss)
    with pytest.raises(ValueError, match="no stacking rule"):
        xs.stack([dss[0], weird])
    xr.testing.assert_identical(dss[0], before[0])


# ------------------------------------------------------------------------------------------------
# Gammapy parity (independent implementation of the same rules)
# ------------------------------------------------------------------------------------------------
@pytest.mark.gammapy
def test_matches_gammapy_stack_reduce():
    gp = require_gammapy("gammapy")
    from gammapy.datasets import Datasets, SpectrumDataset
    from gammapy.irf import EDispKernel, EDispKernelMap
    from gammapy.maps import MapAxis, RegionGeom, RegionNDMap

    assert gp.__version__.startswith("2.")
    dss = make_list(14, 5, n=6, nt=7)
    er = np.append(dss[0]["energy_min"].values, dss[0]["energy_max"].values[-1])
    et = np.append(dss[0]["energy_true_min"].values, dss[0]["energy_true_max"].values[-1])
    ax = MapAxis.from_energy_edges(er * u.TeV, name="energy")
    axt = MapAxis.from_energy_edges(et * u.TeV, name="energy_true")
    geom = RegionGeom.create("icrs;circle(0,0,0.1)", axes=[ax])
    geomt = RegionGeom.create("icrs;circle(0,0,0.1)", axes=[axt])
    gds = []
    for d in dss:
        col = lambda a: a[:, None, None]  # noqa: E731
        edisp = EDispKernelMap.from_edisp_kernel(EDispKernel(axes=[axt, ax], data=d["edisp"].values), geom=geom)
        edisp.exposure_map.data = d["exposure"].values.reshape(-1, 1, 1, 1)
        gds.append(
            SpectrumDataset(
                counts=RegionNDMap.from_geom(geom, data=col(d["counts"].values)),
                background=RegionNDMap.from_geom(geom, data=col(d["background"].values)),
                exposure=RegionNDMap.from_geom(geomt, data=col(d["exposure"].values), unit="m2 s"),
                edisp=edisp,
                mask_safe=RegionNDMap.from_geom(geom, data=col(d["mask_safe"].values), dtype=bool),
                name=d.attrs["name"],
            )
        )
    g = Datasets(gds).stack_reduce()
    ours = xs.stack(dss)
    np.testing.assert_allclose(ours["counts"].values, g.counts.data.ravel(), rtol=1e-12)
    np.testing.assert_allclose(ours["background"].values, g.background.data.ravel(), rtol=1e-6)  # float32 in Gammapy
    np.testing.assert_array_equal(ours["mask_safe"].values, g.mask_safe.data.ravel())
    np.testing.assert_allclose(ours["exposure"].values, g.exposure.data.ravel(), rtol=1e-6)  # float32 in Gammapy
    np.testing.assert_allclose(ours["edisp"].values, g.edisp.get_edisp_kernel().data, rtol=2e-6, atol=1e-7)


def test_stack_xarray_name_and_attrs():
    dss = make_list(15, 2)
    out = stack_xarray(dss)
    assert out.attrs["name"] == "obs0"  # first dataset's attrs when no name is given
    assert stack_xarray(dss, name="x").attrs["name"] == "x"


def test_lazy_partial_stack_equals_generic_dask_path(monkeypatch):
    """The per-block partial sums and the generic dask reduction (used for user rules) agree."""
    stack_mod = importlib.import_module("xspec_ds.ops.stack")

    many = xr.concat(
        [d.drop_vars(["gti_start", "gti_stop"]) for d in make_list(21, 23)],
        dim="obs",
        coords="minimal",
        compat="override",
    ).chunk({"obs": 3})
    fast = xs.stack(many)
    assert any(str(k[0]).startswith("stack-partials-") for k in fast["edisp"].data.dask if isinstance(k, tuple))
    monkeypatch.setattr(stack_mod, "_use_partials", lambda arrays: False)
    generic = xs.stack(many)
    assert not any("stack-partials" in str(k) for k in generic["edisp"].data.dask)
    computed, expected = fast.compute(), generic.compute()
    np.testing.assert_array_equal(computed["counts"].values, expected["counts"].values)
    np.testing.assert_array_equal(computed["mask_safe"].values, expected["mask_safe"].values)
    assert set(computed.data_vars) == set(expected.data_vars)
    for v in ("background", "exposure", "edisp", "livetime"):
        np.testing.assert_allclose(computed[v].values, expected[v].values, rtol=1e-12, atol=0)


def test_lazy_stack_with_a_user_rule_takes_the_generic_path(monkeypatch):
    stack_mod = importlib.import_module("xspec_ds.ops.stack")

    rule = stack_mod.StackRule(lambda arrays, ctx: arrays["background"].max(axis=0), "zeros")
    monkeypatch.setitem(stack_mod.STACK_RULES, "background", rule)
    dss = make_list(22, 6)
    obs = xr.concat(
        [d.drop_vars(["gti_start", "gti_stop"]) for d in dss], dim="obs", coords="minimal", compat="override"
    )
    out = xs.stack(obs.chunk({"obs": 2})).compute()
    np.testing.assert_array_equal(out["background"].values, np.max([d["background"].values for d in dss], axis=0))
