"""MapAxis constructors, exact edges, log centres, bad input and the diagonal overlap kernel."""

import astropy.units as u
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import xspec_ds as xs
from xspec_ds.axes import axis_from_dataset, edges_from_coords, overlap_matrix


def test_from_energy_bounds_edges_and_centres():
    ax = xs.MapAxis.from_energy_bounds(0.1, 100, 3, unit="TeV")
    assert ax.nbin == 3
    assert ax.name == "energy"
    np.testing.assert_allclose(ax.edges.to_value("TeV"), [0.1, 1.0, 10.0, 100.0], rtol=1e-14)
    # end points are exact, not rounded through log/exp
    assert ax.edges[0].value == 0.1 and ax.edges[-1].value == 100.0
    np.testing.assert_allclose(ax.center.to_value("TeV"), np.sqrt([0.1 * 1, 1 * 10, 10 * 100]), rtol=1e-14)
    assert ax.center.unit == u.TeV


@pytest.mark.parametrize("emin, emax", [("100 GeV", "100 TeV"), (0.1 * u.TeV, 1e5 * u.GeV)])
def test_from_energy_bounds_quantities_and_strings(emin, emax):
    ax = xs.MapAxis.from_energy_bounds(emin, emax, 6, unit="TeV")
    assert ax.edges.unit == u.TeV
    np.testing.assert_allclose(ax.edges.to_value("TeV")[[0, -1]], [0.1, 100.0], rtol=1e-14)
    ratios = ax.edges[1:] / ax.edges[:-1]
    np.testing.assert_allclose(ratios.value, 10**0.5, rtol=1e-12)


def test_from_energy_bounds_per_decade():
    ax = xs.MapAxis.from_energy_bounds("1 TeV", "100 TeV", 5, per_decade=True)
    assert ax.nbin == 10


def test_from_energy_edges_exact():
    edges = np.array([0.3, 0.7, 1.1, 5.0, 13.0]) * u.TeV
    ax = xs.MapAxis.from_energy_edges(edges, name="energy_true")
    assert ax.name == "energy_true"
    assert np.array_equal(ax.edges.value, edges.value)  # bit-exact
    np.testing.assert_allclose(ax.center.value, np.sqrt(edges.value[:-1] * edges.value[1:]), rtol=1e-15)
    assert ax == xs.MapAxis.from_energy_edges(edges, name="energy_true")
    assert ax != xs.MapAxis.from_energy_edges(edges, name="energy")


def test_coords_round_trip_exact():
    edges = np.array([0.123456789, 0.5, 2.0, 7.77777777777, 31.0]) * u.TeV
    ax = xs.MapAxis.from_energy_edges(edges)
    da = xr.DataArray(np.zeros(ax.nbin), dims="energy", coords=ax.coords())
    assert da.coords["energy_min"].attrs["units"] == "TeV"
    assert np.array_equal(edges_from_coords(da, "energy").value, edges.value)
    # slicing keeps the exact edges of the kept bins
    sub = da.isel(energy=slice(1, 3))
    assert np.array_equal(edges_from_coords(sub, "energy").value, edges.value[1:4])
    assert axis_from_dataset(da.to_dataset(name="x"), "energy") == ax


@pytest.mark.parametrize(
    "edges, exc, match",
    [
        ([1.0, 2.0, 2.0, 3.0], ValueError, "strictly increasing"),
        ([3.0, 2.0, 1.0], ValueError, "strictly increasing"),
        ([1.0], ValueError, "at least two edges"),
        ([-1.0, 1.0], ValueError, "positive"),
        ([1.0, np.nan], ValueError, "finite"),
    ],
)
def test_bad_edges(edges, exc, match):
    with pytest.raises(exc, match=match):
        xs.MapAxis.from_energy_edges(np.array(edges) * u.TeV)


@pytest.mark.parametrize("unit", ["m", "s", "", "cm2"])
def test_non_energy_unit(unit):
    with pytest.raises(u.UnitsError, match="energy"):
        xs.MapAxis.from_energy_edges(np.array([1.0, 2.0, 3.0]) * u.Unit(unit))


def test_wrong_name():
    with pytest.raises(ValueError, match="name must be one of"):
        xs.MapAxis.from_energy_edges([1, 2, 3] * u.TeV, name="time")


def test_old_spelling_energy_true():
    assert xs.MapAxis.from_energy_edges([1, 2] * u.TeV, name="energy-true").name == "energy_true"


def test_nbin_must_be_positive():
    with pytest.raises(ValueError, match="nbin"):
        xs.MapAxis.from_energy_bounds(1, 10, 0)


# overlap matrix --------------------------------------------------------------------------------
def test_overlap_identity_for_equal_edges():
    edges = xs.MapAxis.from_energy_bounds(0.1, 100, 17).edges
    m = overlap_matrix(edges, edges)
    assert np.array_equal(m, np.eye(17))


def test_overlap_unit_conversion():
    edges = xs.MapAxis.from_energy_bounds(0.1, 100, 5).edges
    m = overlap_matrix(edges.to("GeV"), edges)
    np.testing.assert_allclose(m, np.eye(5), atol=1e-12)


def test_overlap_known_values():
    true = [1.0, 2.0, 4.0] * u.TeV
    reco = [1.5, 3.0, 10.0] * u.TeV
    m = overlap_matrix(true, reco)
    # true [1,2]: 0.5 of its width inside reco [1.5,3]; true [2,4]: 1/2 in [1.5,3], 1/2 in [3,10]
    np.testing.assert_allclose(m, [[0.5, 0.0], [0.5, 0.5]], rtol=1e-14)


@st.composite
def two_edge_sets(draw):
    def edges():
        n = draw(st.integers(1, 12))
        logs = draw(st.lists(st.floats(-2, 3), min_size=n + 1, max_size=n + 1, unique=True))
        return np.sort(10 ** np.array(logs))

    t, r = edges(), edges()
    if np.any(np.diff(t) <= 0) or np.any(np.diff(r) <= 0):
        t, r = np.array([1.0, 2.0]), np.array([1.0, 3.0])
    return t, r


@settings(max_examples=150, deadline=None)
@given(two_edge_sets())
def test_overlap_rows_sum_to_covered_fraction(edges):
    t, r = edges
    m = overlap_matrix(t * u.TeV, r * u.TeV)
    assert m.shape == (t.size - 1, r.size - 1)
    assert np.all(m >= 0) and np.all(m <= 1 + 1e-12)
    covered = np.clip(np.minimum(t[1:], r[-1]) - np.maximum(t[:-1], r[0]), 0, None) / np.diff(t)
    np.testing.assert_allclose(m.sum(axis=1), covered, rtol=1e-9, atol=1e-12)
    # each entry is the overlap length of two intervals over the true width (brute force)
    i, j = np.random.default_rng(0).integers(0, m.shape[0]), np.random.default_rng(1).integers(0, m.shape[1])
    ov = max(0.0, min(t[i + 1], r[j + 1]) - max(t[i], r[j]))
    assert m[i, j] == pytest.approx(ov / (t[i + 1] - t[i]), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("lo", "hi", "unit", "expected"),
    [
        (0.3, 10.0, "keV", "keV"),  # X-ray range reads well in keV
        (3.162e7, 1.995e9, "keV", "GeV"),  # Fermi-LAT OGIP file stored in keV
        (1e8, 1e11, "keV", "TeV"),  # IACT OGIP file stored in keV
        (0.1, 100.0, "TeV", "TeV"),
    ],
)
def test_display_unit(lo, hi, unit, expected):
    from xspec_ds.axes import display_unit

    assert display_unit(np.array([lo]), np.array([hi]), u.Unit(unit)) == u.Unit(expected)
