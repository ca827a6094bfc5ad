"""Parameter and Parameters: values, units, bounds, frozen, errors, lookup and dict round trip."""

import astropy.units as u
import numpy as np
import pytest

from xspec_ds import Parameter, Parameters


def test_from_string_and_quantity():
    p = Parameter("amplitude", "1e-12 cm-2 s-1 TeV-1")
    assert p.value == 1e-12
    assert p.unit == u.Unit("cm-2 s-1 TeV-1")
    q = Parameter("amplitude", 3e-8 * u.Unit("m-2 s-1 TeV-1"))
    assert q.quantity == 3e-8 * u.Unit("m-2 s-1 TeV-1")


def test_float_with_unit_and_dimensionless():
    p = Parameter("reference", 2.0, unit="TeV")
    assert p.quantity == 2 * u.TeV
    assert Parameter("index", 2.0).unit == u.dimensionless_unscaled


def test_canonical_value_converted():
    p = Parameter("amplitude", "1e-8 m-2 s-1 TeV-1", canonical_unit="cm-2 s-1 TeV-1")
    assert p.canonical == pytest.approx(1e-12, rel=1e-14, abs=0)
    p.value = 2e-8  # float stays in the parameter's own unit
    assert p.canonical == pytest.approx(2e-12, rel=1e-14, abs=0)
    p.value = "5e-13 cm-2 s-1 TeV-1"
    assert p.canonical == pytest.approx(5e-13, rel=1e-14, abs=0)
    assert p.unit == u.Unit("cm-2 s-1 TeV-1")


def test_incompatible_unit_names_parameter():
    with pytest.raises(u.UnitsError, match="'reference'"):
        Parameter("reference", "1 m", canonical_unit="TeV")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_value(value):
    with pytest.raises(ValueError, match="'index'.*finite"):
        Parameter("index", value)


def test_limits_frozen_error():
    p = Parameter("index", 2.0, min=1.0, max=3.0, frozen=True, error=0.1)
    assert (p.min, p.max, p.frozen, p.error) == (1.0, 3.0, True, 0.1)
    assert p.check_limits()
    p.value = 3.5
    assert not p.check_limits()
    q = Parameter("index", 2.0)
    assert np.isnan(q.min) and np.isnan(q.max)


def test_dict_round_trip():
    p = Parameter("amplitude", "2e-12 cm-2 s-1 TeV-1", min=0, max=1e-10, frozen=True, error=3e-13)
    d = p.to_dict()
    assert d == {
        "name": "amplitude",
        "value": 2e-12,
        "unit": "1 / (TeV s cm2)",
        "error": 3e-13,
        "min": 0.0,
        "max": 1e-10,
        "frozen": True,
    }
    q = Parameter("amplitude", 1.0, unit="m-2 s-1 GeV-1", canonical_unit="cm-2 s-1 TeV-1")
    q.update_from_dict(d)
    assert q.quantity == p.quantity
    assert (q.min, q.max, q.frozen, q.error) == (p.min, p.max, p.frozen, p.error)
    assert q.canonical == pytest.approx(2e-12, rel=1e-12, abs=0)


def test_copy_is_independent():
    p = Parameter("index", 2.0)
    c = p.copy()
    c.value = 3.0
    assert p.value == 2.0


def test_parameters_lookup_and_unknown_name():
    a, b = Parameter("index", 2.0), Parameter("amplitude", "1e-12 cm-2 s-1 TeV-1")
    pars = Parameters([a, b, a])  # shared object kept once
    assert pars.names == ["index", "amplitude"]
    assert pars["amplitude"] is b and pars[0] is a and pars[a] is a
    assert "index" in pars and b in pars and "beta" not in pars
    with pytest.raises(KeyError, match="'beta'.*index"):
        pars["beta"]


def test_parameters_free_and_values():
    a, b = Parameter("index", 2.0), Parameter("reference", "1 TeV", frozen=True)
    pars = Parameters([a, b])
    assert pars.free_parameters.names == ["index"]
    pars.value = [2.5, 3.0]
    np.testing.assert_array_equal(pars.value, [2.5, 3.0])
    with pytest.raises(ValueError):
        pars.value = [1.0]
    t = pars.to_table()
    assert list(t["name"]) == ["index", "reference"]
    assert list(t["frozen"]) == [False, True]
    assert len(pars + Parameters([a])) == 2
