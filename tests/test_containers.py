"""Building and validating the Dataset (`xspec_ds.containers`): the direct assembly equals
xarray's public constructor, and every check still names the variable and the problem."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from xarray.testing import _assert_internal_invariants

import xspec_ds as xs
from xspec_ds.containers import _make_dataset, build_dataset, validate_dataset
from xspec_ds.gti import GTI


def _axes(n, n_true, unit="TeV"):
    e = xs.MapAxis.from_energy_bounds(0.1, 100, n, unit="TeV").copy()
    et = xs.MapAxis.from_energy_bounds(0.05, 200, n_true, unit="TeV", name="energy_true")
    if unit != "TeV":
        e = xs.MapAxis(e.edges.to(unit), name="energy")
    return e, et


def _arrays(rng, e, et):
    """counts and edisp as DataArrays with their own coordinates, the rest plain arrays."""
    template = xs.SpectrumDataset.create(e, et, name="t").data
    m = rng.uniform(0, 1, (et.nbin, e.nbin))
    m /= m.sum(axis=1, keepdims=True) * rng.uniform(1.0, 2.0, (et.nbin, 1))
    return {
        "counts": template["counts"].copy(data=rng.poisson(5, e.nbin).astype(float)),
        "edisp": template["edisp"].copy(data=m),
        "exposure": rng.uniform(1e8, 1e9, et.nbin) * u.Unit("cm2 s"),
        "background": rng.uniform(0, 2, e.nbin),
        "mask_safe": rng.uniform(size=e.nbin) < 0.8,
    }


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 12), n_true=st.integers(1, 12), gti=st.booleans())
def test_build_dataset_equals_the_public_constructor(seed, n, n_true, gti):
    rng = np.random.default_rng(seed)
    e, et = _axes(n, n_true)
    arrays = _arrays(rng, e, et)
    g = GTI([0.0, 10.0] * u.s, [5.0, 20.0] * u.s, reference_time="2010-01-01") if gti else None
    ds = build_dataset(arrays, name="x", gti=g, livetime=3.0 * u.h)
    _assert_internal_invariants(ds, check_default_indexes=True)
    public = xr.Dataset(
        {k: ds.variables[k] for k in ds.data_vars}, coords={k: ds.variables[k] for k in ds.coords}, attrs=ds.attrs
    )
    xr.testing.assert_identical(ds, public)
    assert list(ds.indexes) == ["energy", "energy_true"]
    # values as given, canonical attrs
    np.testing.assert_array_equal(ds["counts"].values, arrays["counts"].values)
    np.testing.assert_array_equal(ds["exposure"].values, arrays["exposure"].value)
    assert ds["exposure"].attrs["units"] == "cm2 s"
    assert ds["mask_safe"].dtype == bool
    assert float(ds["livetime"]) == 3 * 3600.0
    assert ds.attrs["name"] == "x"
    # same coordinates as the axes give
    for ax in (e, et):
        for k, v in ax.coords().items():
            xr.testing.assert_identical(ds[k].variable.to_base_variable(), v)


def test_make_dataset_refuses_inconsistent_lengths():
    coords = {"energy": xr.Variable("energy", [1.0, 2.0])}
    with pytest.raises(ValueError, match="dimension 'energy' has length [23], other variables have [23]"):
        _make_dataset({"counts": xr.Variable("energy", np.zeros(3))}, coords, {})


def test_data_arrays_in_other_units_are_compared_after_conversion():
    rng = np.random.default_rng(1)
    e, et = _axes(5, 7)
    arrays = _arrays(rng, e, et)
    e_gev, _ = _axes(5, 7, unit="GeV")
    arrays["background"] = xs.SpectrumDataset.create(e_gev, et, name="g").data["background"]
    ds = build_dataset(arrays)  # same edges in GeV: accepted, the first DataArray's unit kept
    assert ds["energy_min"].attrs["units"] in ("TeV", "GeV")
    shifted = xs.MapAxis(e.edges * (1 + 1e-8), name="energy")
    arrays["background"] = xs.SpectrumDataset.create(shifted, et, name="s").data["background"]
    with pytest.raises(ValueError, match="mismatched 'energy' axes for background"):
        build_dataset(arrays)


@pytest.mark.parametrize(
    ("edit", "error", "match"),
    [
        (lambda d: d.assign(counts=d["counts"] * -1), ValueError, "counts has negative values in 5 bin"),
        (lambda d: d.assign(background=d["background"] * np.nan), ValueError, "background has non-finite"),
        (lambda d: d.assign(edisp=d["edisp"] * 10), ValueError, "edisp rows .* sum to more than 1"),
        (lambda d: d.assign(edisp=-d["edisp"]), ValueError, "edisp has negative or non-finite"),
        (lambda d: d.assign(mask_safe=d["mask_safe"].astype(int)), TypeError, "mask_safe must be boolean"),
        (lambda d: _set_attr(d, "exposure", "units", "TeV"), u.UnitsError, "not area x time"),
        (lambda d: _set_attr(d, "edisp", "units", "m"), u.UnitsError, "edisp must be dimensionless"),
        (lambda d: d.drop_vars("energy_max"), ValueError, "no 'energy_min'/'energy_max' edge coordinates"),
        (lambda d: _set_attr(d, "energy_min", "units", "m"), u.UnitsError, "must be an energy"),
        (lambda d: d.assign_coords(energy_max=d["energy_max"] * 1.01), ValueError, "not contiguous"),
        (lambda d: d.assign_coords(energy_min=-d["energy_min"], energy_max=-d["energy_max"]), ValueError, "positive"),
        (lambda d: d.assign(counts=d["edisp"]), ValueError, "counts: energy dims must be"),
    ],
)
def test_validate_dataset_names_the_problem(edit, error, match):
    e, et = _axes(5, 7)
    data = build_dataset(_arrays(np.random.default_rng(2), e, et), name="v")
    counts = data["counts"].values.copy()
    counts[:] = np.arange(1, 6)
    data["counts"].values[:] = counts
    with pytest.raises(error, match=match):
        validate_dataset(edit(data.copy(deep=True)))


def _set_attr(ds, name, key, value):
    ds[name].attrs[key] = value
    return ds


def test_validate_dataset_leaves_lazy_values_alone():
    e, et = _axes(4, 6)
    data = build_dataset(_arrays(np.random.default_rng(3), e, et)).chunk()
    data["counts"] = data["counts"] * -1  # would fail if computed
    validate_dataset(data)
    assert data["counts"].chunks is not None
