"""Energy ranges by value (`xspec_ds.ops.select`): ``energy_mask`` and unit-aware ``sel``.

The bins are checked against a rule written out here (bins fully inside the range), against
the same range given in other units, and against Gammapy's ``geom.energy_mask`` on the
H.E.S.S. and 3C 273 files and the bundled example.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import xspec_ds as xs
from xspec_ds.example import load_example
from xspec_ds.ops.select import energy_mask, sel

from .._requirements import needs_shared, require_gammapy

DATA = Path(__file__).parents[2] / ".." / "shared" / "data"
HESS = sorted((DATA / "joint-crab" / "spectra" / "hess").glob("pha_*.fits")) if DATA.exists() else []
XRAY = DATA / "xray" / "3c273" / "3c273.pi"
needs_data = needs_shared


def axis_dataset(edges_tev, unit="TeV"):
    """A SpectrumDataset whose energy coordinates are stored in ``unit``."""
    edges = (np.asarray(edges_tev) * u.TeV).to(unit)
    axis = xs.MapAxis.from_energy_edges(edges)
    return xs.SpectrumDataset.create(axis, name="sel")


def rule(edges_tev, lo_tev, hi_tev):
    e = np.asarray(edges_tev)
    return (e[:-1] >= lo_tev) & (e[1:] <= hi_tev)


EDGES = [0.1, 0.3, 0.66, 1.0, 3.0, 10.0, 30.0, 100.0]


@pytest.mark.parametrize("unit", ["TeV", "GeV", "keV", "erg"])
@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        ("0.66 TeV", "30 TeV", [False, False, True, True, True, True, False]),
        ("660 GeV", "3e4 GeV", [False, False, True, True, True, True, False]),
        ("0.5 TeV", "20 TeV", [False, False, True, True, True, False, False]),
        (None, "1 TeV", [True, True, True, False, False, False, False]),
        ("10 TeV", None, [False, False, False, False, False, True, True]),
        ("2 TeV", "2.5 TeV", [False] * 7),
    ],
)
def test_energy_mask_same_bins_whatever_the_stored_unit(unit, lo, hi, expected):
    ds = axis_dataset(EDGES, unit)
    mask = ds.energy_mask(lo, hi)
    assert mask.dims == ("energy",) and mask.dtype == bool
    np.testing.assert_array_equal(mask.values, expected)
    np.testing.assert_array_equal(ds.geoms["geom"].energy_mask(lo, hi).values, expected)
    ds.mask_fit = mask  # assignable as is
    np.testing.assert_array_equal(ds.mask_fit.values, expected)


@settings(max_examples=40, deadline=None)
@given(
    lo=st.floats(0.05, 200.0),
    width=st.floats(1.0, 1e4),
    unit=st.sampled_from(["TeV", "GeV", "MeV", "keV"]),
)
def test_energy_mask_matches_rule(lo, width, unit):
    hi = lo * width
    ds = axis_dataset(EDGES, "keV")
    got = ds.energy_mask((lo * u.TeV).to(unit), (hi * u.TeV).to(unit)).values
    # compared in keV as the coordinates are stored: convert the rule's inputs the same way
    e_kev = (np.asarray(EDGES) * u.TeV).to_value("keV")
    expected = (e_kev[:-1] >= (lo * u.TeV).to(unit).to_value("keV")) & (
        e_kev[1:] <= (hi * u.TeV).to(unit).to_value("keV")
    )
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("bad", "exc", "words"),
    [
        (0.66, TypeError, "has no unit"),
        ("0.66 m", u.UnitsError, "not an energy"),
        ("banana", ValueError, "cannot parse"),
        ([1, 2] * u.TeV, ValueError, "expected one energy"),
    ],
)
def test_energy_mask_refuses_bounds_without_an_energy(bad, exc, words):
    ds = axis_dataset(EDGES)
    with pytest.raises(exc, match=words):
        ds.energy_mask(bad, "30 TeV")


def test_round_to_edge_snaps_to_nearest_log_edge():
    ds = axis_dataset(EDGES, "GeV")
    # 0.7 TeV rounds to the 0.66 TeV edge, 28 TeV to 30 TeV
    np.testing.assert_array_equal(
        ds.energy_mask("0.7 TeV", "28 TeV", round_to_edge=True).values, rule(EDGES, 0.66, 30.0)
    )
    assert not ds.energy_mask("0.7 TeV", "28 TeV").values[2]


@pytest.mark.parametrize("unit", ["TeV", "keV"])
def test_accessor_sel_by_value(unit):
    ds = axis_dataset(EDGES, unit)
    out = ds.data.spectrum.sel(energy=slice("1 TeV", "30 TeV"))
    assert isinstance(out, xr.Dataset)
    np.testing.assert_allclose(
        (out["energy_min"].values * u.Unit(unit)).to_value("TeV"), [1.0, 3.0, 10.0], rtol=1e-12, atol=0
    )
    xr.testing.assert_identical(out, ds.data.isel(energy=slice(3, 6)))
    # one energy selects the bin containing it; the dimension is kept
    one = sel(ds.data, energy="2 TeV")
    assert one.sizes["energy"] == 1 and one["energy_min"].values[0] == ds.data["energy_min"].values[3]
    # the true axis too
    t = ds.sel(energy_true=slice("0.1 TeV", "1 TeV"))
    assert t.sizes["energy_true"] == 3 and t.sizes["energy"] == 7


def test_sel_errors_name_the_problem():
    ds = axis_dataset(EDGES)
    with pytest.raises(ValueError, match="no 'energy' bin lies fully inside"):
        ds.sel(energy=slice("2 TeV", "2.5 TeV"))
    with pytest.raises(KeyError, match="outside the 'energy' axis"):
        ds.sel(energy="1 PeV")
    with pytest.raises(TypeError, match="has no unit"):
        ds.sel(energy=slice(1, 10))
    with pytest.raises(ValueError, match="no step"):
        ds.sel(energy=slice("1 TeV", "10 TeV", 2))


def test_sel_passes_other_dims_through():
    d = axis_dataset(EDGES).data
    obs = xr.concat([d, d], dim="obs").assign_coords(obs=["a", "b"])
    out = sel(obs, energy=slice("1 TeV", "10 TeV"), obs="b")
    assert "obs" not in out.dims and out.sizes["energy"] == 2


def test_energy_mask_of_true_axis_and_missing_dim():
    ds = axis_dataset(EDGES)
    m = energy_mask(ds.data, "1 TeV", None, dim="energy_true")
    assert m.dims == ("energy_true",) and m.values.sum() == 4
    with pytest.raises(ValueError, match="no 'energy_true' dimension"):
        energy_mask(ds.data[["counts"]], "1 TeV", dim="energy_true")


# Gammapy parity -------------------------------------------------------------------------------
RANGES_TEV = [("0.66 TeV", "30 TeV"), ("0.8 TeV", "20 TeV"), ("300 GeV", "2e10 keV"), ("0.1 TeV", None)]


def _gammapy_mask_from_edges(edges, lo, hi):
    from gammapy.maps import MapAxis as GMapAxis
    from gammapy.maps import RegionGeom

    axis = GMapAxis.from_energy_edges(edges, name="energy")
    geom = RegionGeom.create("icrs;circle(83.63,22.01,0.1)", axes=[axis])
    q = [None if b is None else u.Quantity(b) for b in (lo, hi)]
    return geom.energy_mask(*q).data.ravel()


@pytest.mark.gammapy
@needs_data
@pytest.mark.parametrize("pha", HESS, ids=lambda p: p.stem)
@pytest.mark.parametrize(("lo", "hi"), [*RANGES_TEV, ("0.1 TeV", "1e12 keV")])
def test_hess_energy_mask_equals_gammapy_rule_on_the_file_edges(pha, lo, hi):
    """Gammapy's geom built on the file's EBOUNDS. (Bounds exactly on an edge, such as 1 TeV, are
    left out: Gammapy's MapAxis recomputes its edges by log interpolation, 1 TeV becomes
    0.99999999999999928 TeV, so its answer there is rounding noise; ours uses the file's edges.)"""
    require_gammapy()
    ds = xs.SpectrumDatasetOnOff.read(pha)
    expected = _gammapy_mask_from_edges(ds.geoms["geom"].axis("energy").edges, lo, hi)
    np.testing.assert_array_equal(ds.energy_mask(lo, hi).values, expected)


@pytest.mark.gammapy
@needs_data
@pytest.mark.parametrize("pha", HESS, ids=lambda p: p.stem)
@pytest.mark.parametrize(
    ("lo", "hi"), [*RANGES_TEV[:1], ("0.8 TeV", "20 TeV"), ("300 GeV", "1.5e10 keV"), ("0.1 TeV", None)]
)
def test_hess_energy_mask_equals_gammapy(pha, lo, hi):
    """Against Gammapy's own reading of the file. Gammapy recomputes the log edges from EBOUNDS
    (the 1 TeV edge becomes 0.99999999999999928 TeV), so its mask can differ from the file's
    edges where a bound falls exactly on an edge; these bounds do not."""
    require_gammapy()
    from gammapy.datasets import SpectrumDatasetOnOff as GOnOff

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = GOnOff.read(pha, format="ogip")
    q = [None if b is None else u.Quantity(b) for b in (lo, hi)]
    expected = g.counts.geom.energy_mask(*q).data.ravel()
    ds = xs.SpectrumDatasetOnOff.read(pha)
    np.testing.assert_array_equal(ds.energy_mask(lo, hi).values, expected)
    out = ds.data.spectrum.sel(energy=slice(lo or "1 keV", hi or "1e12 keV"))
    assert out.sizes["energy"] == expected.sum()


@pytest.mark.gammapy
@needs_data
@pytest.mark.parametrize(("lo", "hi"), [("0.5 keV", "7 keV"), ("500 eV", "0.01 MeV"), ("2 keV", None)])
def test_3c273_energy_mask_equals_gammapy_geom(lo, hi):
    require_gammapy()
    ds = xs.SpectrumDatasetOnOff.read(XRAY)
    edges = ds.geoms["geom"].axis("energy").edges
    expected = _gammapy_mask_from_edges(edges, lo, hi)
    assert 0 < expected.sum() < edges.size - 1
    np.testing.assert_array_equal(ds.energy_mask(lo, hi).values, expected)


@pytest.mark.gammapy
@pytest.mark.parametrize(("lo", "hi"), RANGES_TEV)
def test_example_energy_mask_equals_gammapy_geom(lo, hi):
    require_gammapy()
    ds = load_example()
    expected = _gammapy_mask_from_edges(ds.geoms["geom"].axis("energy").edges, lo, hi)
    np.testing.assert_array_equal(ds.energy_mask(lo, hi).values, expected)
