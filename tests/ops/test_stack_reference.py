"""Stacking pinned by a hand computation with literal numbers (issue 14).

Three datasets, 3 true and 2 reco bins. A is safe in reco bin 0 only, B in bin 1 only (its
exposure in cm2 s), C nowhere (it adds no exposure and no livetime). The stacking rules of
DESIGN.md / Gammapy (``exposure_i = sum_k X_ki s_k``, ``edisp_ij = sum_k X_ki D_kij m_kj /
exposure_i``, ``livetime = sum_k t_k s_k``) are evaluated by hand below, digit by digit, so the
expected values do not come from any code.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xspec_ds as xs
from tests.conftest import edge_coords

from .._asserts import assert_close

ER = np.array([1.0, 2.0, 4.0])
ET = np.array([0.8, 1.6, 3.2, 6.4])


def _ds(name, counts, background, mask, exposure, unit, edisp, livetime):
    cr, ct = edge_coords("energy", ER), edge_coords("energy_true", ET)
    ds = xr.Dataset(
        {
            "counts": xr.DataArray(np.array(counts, float), dims="energy", coords=cr, attrs={"units": ""}),
            "background": xr.DataArray(np.array(background, float), dims="energy", coords=cr, attrs={"units": ""}),
            "mask_safe": xr.DataArray(np.array(mask, bool), dims="energy", coords=cr),
            "exposure": xr.DataArray(np.array(exposure, float), dims="energy_true", coords=ct, attrs={"units": unit}),
            "edisp": xr.DataArray(
                np.array(edisp, float), dims=("energy_true", "energy"), coords={**ct, **cr}, attrs={"units": ""}
            ),
        },
        attrs={"name": name},
    )
    ds["livetime"] = xr.Variable((), float(livetime), {"units": "s"})
    return ds


def three():
    a = _ds("A", [5, 7], [1.0, 2.0], [True, False], [1e9, 2e9, 3e9], "m2 s",
            [[0.5, 0.25], [0.25, 0.5], [0.0, 1.0]], 100)  # fmt: skip
    b = _ds("B", [11, 13], [0.5, 0.25], [False, True], [4e13, 5e13, 6e13], "cm2 s",
            [[1.0, 0.0], [0.5, 0.5], [0.25, 0.75]], 300)  # fmt: skip
    c = _ds("C", [17, 19], [3.0, 3.0], [False, False], [7e9, 7e9, 7e9], "m2 s",
            [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]], 1000)  # fmt: skip
    return [a, b, c]


# by hand (exposure in m2 s, the first dataset's unit; B: 4e13 cm2 s = 4e9 m2 s):
EXPOSURE = [1e9 + 4e9, 2e9 + 5e9, 3e9 + 6e9]  # C has no safe bin: not counted
# edisp_i0 = X_Ai D_Ai0 / exposure_i (only A is safe in bin 0); edisp_i1 = X_Bi D_Bi1 / exposure_i
EDISP = [
    [1e9 * 0.5 / 5e9, 4e9 * 0.0 / 5e9],  # [0.1, 0.0]
    [2e9 * 0.25 / 7e9, 5e9 * 0.5 / 7e9],  # [1/14, 5/14]
    [3e9 * 0.0 / 9e9, 6e9 * 0.75 / 9e9],  # [0.0, 0.5]
]
COUNTS = [5, 13]
BACKGROUND = [1.0, 0.25]
LIVETIME = 100 + 300


@pytest.mark.parametrize("form", ["list", "spectrum", "obs", "in_place"])
def test_stack_literal_values(form):
    dss = three()
    if form == "list":
        out = xs.stack(dss)
    elif form == "spectrum":
        out = xs.stack([xs.SpectrumDataset.from_xarray(d) for d in dss]).data
    elif form == "obs":
        dss[1]["exposure"] = dss[1]["exposure"] * 1e-4
        dss[1]["exposure"].attrs["units"] = "m2 s"
        out = xs.stack(xr.concat(dss, dim="obs", coords="minimal", compat="override"))
    else:
        first = xs.SpectrumDataset.from_xarray(dss[0])
        first.stack(xs.SpectrumDataset.from_xarray(dss[1]))
        first.stack(xs.SpectrumDataset.from_xarray(dss[2]))
        out = first.data
    assert out["exposure"].attrs["units"] == "m2 s"
    assert_close(out["exposure"].values, EXPOSURE, rtol=1e-15)
    assert_close(out["edisp"].values, EDISP, rtol=1e-15)
    assert_close(out["counts"].values, COUNTS, rtol=0)
    assert_close(out["background"].values, BACKGROUND, rtol=0)
    np.testing.assert_array_equal(out["mask_safe"].values, [True, True])
    assert_close(float(out["livetime"]), LIVETIME, rtol=1e-15)


def test_stacked_npred_is_sum_of_masked_npred_literal():
    """npred of the stack = sum of each dataset's npred in its safe bins (a constant spectrum:
    flux_i = 1e-13 (E_i+1 - E_i) cm-2 s-1, exposures x 1e4 cm2/m2)."""
    model = xs.SkyModel(xs.ConstantSpectralModel(const="1e-13 cm-2 s-1 TeV-1"), name="c")
    dss = [xs.SpectrumDataset.from_xarray(d, models=model) for d in three()]
    stacked = xs.stack(dss)
    stacked.models = model
    flux = 1e-13 * np.array([0.8, 1.6, 3.2])  # cm-2 s-1 per true bin
    mu_a = flux * np.array([1e13, 2e13, 3e13])  # counts per true bin, A
    mu_b = flux * np.array([4e13, 5e13, 6e13])
    expected = [
        mu_a[0] * 0.5 + mu_a[1] * 0.25 + mu_a[2] * 0.0,  # reco 0: A only
        mu_b[0] * 0.0 + mu_b[1] * 0.5 + mu_b[2] * 0.75,  # reco 1: B only
    ]
    assert_close(stacked.npred_signal().values, expected, rtol=1e-13)
