"""Stack inputs: axes present in some datasets only, missing edge coordinates, variables without
a ``units`` attribute (issue 14, mutation testing)."""

from __future__ import annotations

import numpy as np
import pytest

import xspec_ds as xs

from .test_stack import make_list, reference_stack


def test_axis_present_in_some_datasets_only_raises_naming_both():
    a, b = make_list(41, 2)
    b_without = b.drop_dims("energy_true")
    msg = r"^cannot stack: axis 'energy_true' is present in dataset 0 \('obs0'\) but missing in dataset 1 \('obs1'\)$"
    with pytest.raises(ValueError, match=msg):
        xs.stack([a, b_without])
    msg = r"^cannot stack: axis 'energy_true' is missing in dataset 0 \('obs1'\) but present in dataset 1 \('obs0'\)$"
    with pytest.raises(ValueError, match=msg):
        xs.stack([b_without, a])


def test_missing_edge_coordinates_raise_naming_the_dataset():
    a, b = make_list(42, 2)
    msg = r"^dataset 1 \('obs1'\): axis 'energy' has no 'energy_min'/'energy_max' edge coordinates$"
    with pytest.raises(ValueError, match=msg):
        xs.stack([a, b.drop_vars("energy_max")])


def test_variables_without_units_attribute_stack():
    dss = make_list(43, 3)
    for d in dss:
        d["counts"].attrs.pop("units")
        d["background"].attrs.pop("units")
    out = xs.stack(dss)
    ref = reference_stack(dss)
    np.testing.assert_array_equal(out["counts"].values, ref["counts"])
    np.testing.assert_allclose(out["background"].values, ref["background"], rtol=1e-12, atol=0)
    assert "units" not in out["counts"].attrs


def _with_gti(ds, start, stop, attrs, ds_reference=None):
    ds = ds.drop_vars(["gti_start", "gti_stop"])
    ds.attrs.pop("time_reference", None)
    if ds_reference is not None:
        ds.attrs["time_reference"] = ds_reference
    ds["gti_start"] = ("gti", np.asarray(start, float), dict(attrs))
    ds["gti_stop"] = ("gti", np.asarray(stop, float), dict(attrs))
    return ds


def test_gti_units_references_and_attributes():
    """GTI in ks are converted to s; a reference time given on the Dataset (not on the variable)
    is used; the union is in s from the first reference, with the first time scale ("tt" if none)."""
    a, b = make_list(44, 2)
    a = _with_gti(a, [1.0], [2.0], {"units": "ks", "time_scale": "utc"}, ds_reference="2020-01-01T00:00:00")
    b = _with_gti(b, [0.0], [10.0], {"units": "s"}, ds_reference="2020-01-01T00:01:00")  # 60 s later
    out = xs.stack([a, b])
    assert out["gti_start"].dims == ("gti",)
    np.testing.assert_allclose(out["gti_start"].values, [60.0, 1000.0], rtol=1e-9, atol=0)
    np.testing.assert_allclose(out["gti_stop"].values, [70.0, 2000.0], rtol=1e-9, atol=0)
    assert out["gti_start"].attrs == {
        "units": "s",
        "time_reference": "2020-01-01T00:00:00",
        "time_scale": "utc",
        "long_name": "GTI start",
    }
    out = xs.stack([b, b])
    assert out["gti_stop"].attrs["time_scale"] == "tt" and out["gti_stop"].attrs["long_name"] == "GTI stop"


def test_stacked_datasets_get_a_new_name_unless_given():
    spec = [xs.SpectrumDataset.from_xarray(d) for d in make_list(45, 3)]
    out = xs.stack(spec)
    assert out.name not in {s.name for s in spec}
    assert xs.stack(spec, name="all").name == "all"
