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
