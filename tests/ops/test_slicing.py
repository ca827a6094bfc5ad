"""Slicing: index and energy slices against plain numpy slicing and Gammapy's bin selection,
exact edges, plain xarray ``sel``, and the SpectrumDataset / accessor delegations."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import xarray as xr

import xspec_ds as xs
from xspec_ds.containers import validate_dataset
from xspec_ds.ops import slice_by_energy, slice_by_idx

from .._requirements import require_gammapy
from .test_stack import make_list


@pytest.fixture
def ds():
    return make_list(21, 1, n=8, nt=10, mask_fit=True)[0]


def edges(d, dim="energy"):
    return np.append(d[f"{dim}_min"].values, d[f"{dim}_max"].values[-1])


@pytest.mark.parametrize(
    "sl",
    [
        {"energy": slice(2, 6)},
        {"energy_true": slice(1, 9)},
        {"energy": slice(0, 1), "energy_true": slice(3, 4)},
        {"energy": slice(-3, None)},
    ],
)
def test_slice_by_idx_matches_numpy_slicing(ds, sl):
    out = slice_by_idx(ds, sl, name="cut")
    r = sl.get("energy", slice(None))
    t = sl.get("energy_true", slice(None))
    for v in ("counts", "background", "mask_safe", "mask_fit"):
        np.testing.assert_array_equal(out[v].values, ds[v].values[r])
    np.testing.assert_array_equal(out["exposure"].values, ds["exposure"].values[t])
    np.testing.assert_array_equal(out["edisp"].values, ds["edisp"].values[t, r])
    np.testing.assert_array_equal(edges(out), np.append(ds["energy_min"].values[r], ds["energy_max"].values[r][-1]))
    np.testing.assert_array_equal(out["gti_start"].values, ds["gti_start"].values)
    assert out.attrs["name"] == "cut" and out.attrs["meta_table"] == ds.attrs["meta_table"]
    assert float(out["livetime"]) == float(ds["livetime"])
    validate_dataset(out)


def test_slice_is_a_copy_and_integer_keeps_the_axis(ds):
    out = slice_by_idx(ds, {"energy": 3})
    assert out.sizes["energy"] == 1
    assert out["energy_min"].values[0] == ds["energy_min"].values[3]
    out["counts"].values[:] = -1
    assert ds["counts"].values[3] != -1


@pytest.mark.parametrize(
    "sl, exc, match",
    [
        ({"energy": slice(0, 8, 2)}, ValueError, "gaps"),
        ({"energy": slice(4, 4)}, ValueError, "selects no bins"),
        ({"energy": 99}, IndexError, "out of range"),
        ({"lon": slice(0, 1)}, ValueError, "unknown axis"),
        ({"energy": "a"}, TypeError, "int or a slice"),
    ],
)
def test_slice_by_idx_bad_input(ds, sl, exc, match):
    with pytest.raises(exc, match=match):
        slice_by_idx(ds, sl)


@pytest.mark.gammapy
@pytest.mark.parametrize(
    "bounds",
    [
        ("0.3 TeV", "20 TeV"),
        ("1 TeV", "1.5 TeV"),
        ("0.01 TeV", "1000 TeV"),
        (None, "5 TeV"),
        ("700 GeV", None),
        ("2 TeV", "2.2 TeV"),
    ],
)
def test_slice_by_energy_selects_the_bins_gammapy_selects(bounds):
    require_gammapy("gammapy")
    from gammapy.maps import MapAxis

    d = make_list(22, 1, n=12, nt=12)[0]
    e = edges(d)
    axis = MapAxis.from_energy_edges(e * u.TeV, name="energy")
    lo, hi = (None if b is None else u.Quantity(b) for b in bounds)
    try:
        group = axis.group_table(
            edges=[lo if lo is not None else axis.bounds[0], hi if hi is not None else axis.bounds[1]]
        )
        normal = group[group["bin_type"] == "normal   "]
    except ValueError:  # Gammapy: "No overlap between reference and target edges."
        normal = []
    if len(normal) == 0:
        with pytest.raises(ValueError, match="contains no bin"):
            slice_by_energy(d, lo, hi)
        return
    i0, i1 = int(normal["idx_min"][0]), int(normal["idx_max"][0]) + 1
    out = slice_by_energy(d, lo, hi)
    np.testing.assert_array_equal(out["counts"].values, d["counts"].values[i0:i1])
    np.testing.assert_array_equal(edges(out), e[i0 : i1 + 1])


def test_slice_by_energy_accepts_floats_in_axis_unit_and_rejects_empty(ds):
    e = edges(ds)
    out = slice_by_energy(ds, e[2], e[5])
    np.testing.assert_array_equal(edges(out), e[2:6])
    with pytest.raises(ValueError, match="contains no bin"):
        slice_by_energy(ds, e[3] * 1.0001, e[3] * 1.0002)


def test_plain_sel_gives_valid_dataset_with_exact_edges():
    d = make_list(23, 1, n=12, nt=12)[0]
    centres = d["energy"].values
    lo, hi = centres[3] * 0.999, centres[8] * 1.001
    sub = d.sel(energy=slice(lo, hi))
    validate_dataset(sub)
    np.testing.assert_array_equal(edges(sub), edges(d)[3:10])
    model = xs.SkyModel(spectral_model=xs.PowerLawSpectralModel(), name="s")
    np.testing.assert_allclose(
        sub.spectrum.__class__.from_xarray(sub, models=model).npred_signal().values,
        xs.SpectrumDataset.from_xarray(d, models=model).npred_signal().values[3:9],
        rtol=1e-14,
    )


def test_dataset_and_accessor_delegations(ds):
    spec = xs.SpectrumDataset.from_xarray(ds, models=xs.SkyModel(spectral_model=xs.PowerLawSpectralModel(), name="s"))
    a = spec.slice_by_idx({"energy": slice(1, 4)}, name="a")
    b = ds.spectrum.slice_by_idx({"energy": slice(1, 4)}, name="a")
    assert isinstance(a, xs.SpectrumDataset) and a.name == "a" and a.models.names == ["s"]
    xr.testing.assert_identical(a.data, b.data)
    c = spec.slice_by_energy(ds["energy_min"].values[1] * u.TeV, ds["energy_max"].values[3] * u.TeV)
    xr.testing.assert_identical(c.data.drop_attrs(), a.data.drop_attrs())
    assert spec.pad() is spec and spec.cutout() is spec
