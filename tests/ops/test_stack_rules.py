"""Stacking rules not pinned elsewhere (found by mutation testing): the diagonal fill of a missing
kernel, custom rules, the background model following the stacked name, variables dropped by an
in-place stack, and the dataset labels of error messages."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xspec_ds as xs
from xspec_ds.ops.stack import STACK_RULES, StackRule, register_stack_rule

from .._asserts import assert_close
from .test_stack import make_list


def test_missing_edisp_is_filled_with_the_overlap_matrix():
    """A dataset without edisp counts with the diagonal (overlap) kernel of its axes."""
    a, b = make_list(11, 2, p_safe=1.0)
    b = b.drop_vars("edisp")
    out = xs.stack([a, b])
    et = np.append(a["energy_true_min"].values, a["energy_true_max"].values[-1])
    er = np.append(a["energy_min"].values, a["energy_max"].values[-1])
    # the diagonal kernel written out: linear overlap of true bin i with reco bin j over the true bin width
    diag = np.array(
        [[max(0.0, min(et[i + 1], er[j + 1]) - max(et[i], er[j])) / (et[i + 1] - et[i]) for j in range(er.size - 1)]
         for i in range(et.size - 1)]
    )  # fmt: skip
    xa, xb = a["exposure"].values, b["exposure"].values
    expected = (xa[:, None] * a["edisp"].values + xb[:, None] * diag) / (xa + xb)[:, None]
    expected = np.where((xa + xb)[:, None] > 0, expected, 0.0)
    assert_close(out["edisp"].values, expected, rtol=1e-12, atol=1e-300)


def test_register_stack_rule(monkeypatch):
    monkeypatch.setitem(STACK_RULES, "dummy", STACK_RULES["counts"])  # restored after the test
    with pytest.raises(TypeError, match="rule must be a StackRule, got dict"):
        register_stack_rule("dummy", {"reduce": None})
    register_stack_rule("dummy", StackRule(lambda arrays, ctx: arrays["dummy"].max(axis=0), "zeros"))
    a, b = make_list(12, 2)
    a["dummy"] = a["counts"] * 0 + 3.0
    b["dummy"] = b["counts"] * 0 + 5.0
    np.testing.assert_array_equal(xs.stack([a, b])["dummy"].values, 5.0)


def test_background_model_follows_the_stacked_dataset_only_if_it_is_its_own():
    a, b = (xs.SpectrumDataset.from_xarray(d) for d in make_list(13, 2))
    own = xs.FoVBackgroundModel(dataset_name=a.name)
    other = xs.FoVBackgroundModel(dataset_name="someone-else")
    a.models = [own, other]
    out = xs.stack([a, b], name="st")
    names = {m.name: m.datasets_names for m in out.models}
    assert names == {"st-bkg": ["st"], other.name: ["someone-else"]}


def test_in_place_stack_drops_variables_the_stack_drops():
    """livetime is kept only if every input has it: an in-place stack with a dataset without it
    removes it from the target, as the functional stack does."""
    a, b = make_list(14, 2)
    target = xs.SpectrumDataset.from_xarray(a.copy(deep=True))
    target.stack(b.drop_vars("livetime"))
    assert "livetime" not in target.data
    xr.testing.assert_identical(target.data.drop_attrs(), xs.stack([a, b.drop_vars("livetime")]).drop_attrs())


def test_error_labels_name_the_dataset_and_omit_a_missing_name():
    a, b = make_list(15, 2)
    b = b.assign_coords(energy_min=b["energy_min"] * 1.01)
    with pytest.raises(ValueError, match=r"dataset 1 \('obs1'\)"):
        xs.stack([a, b])
    b.attrs.pop("name")
    with pytest.raises(ValueError) as info:
        xs.stack([a, b])
    assert "dataset 1" in str(info.value) and "None" not in str(info.value)


def test_in_place_stack_of_a_wrong_type_names_the_item():
    target = xs.SpectrumDataset.from_xarray(make_list(16, 1)[0])
    with pytest.raises(TypeError, match=r"^stack: item 1 is a int, expected a SpectrumDataset or an xarray.Dataset$"):
        target.stack(42)
