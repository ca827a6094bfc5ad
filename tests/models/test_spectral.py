"""Spectral models: integrals vs scipy quad and analytic forms, derivatives, units, algebra."""

import math

import astropy.units as u
import numpy as np
import pytest
from scipy.integrate import quad

import xspec_ds as xs
from xspec_ds.models.spectral import SPECTRAL_MODEL_REGISTRY

from .._requirements import require_gammapy
from ..conftest import pl_integral_ref

EDGES = np.array([0.1, 0.13, 0.5, 0.9, 3.0, 20.0, 100.0])  # TeV, narrow and wide bins


def _template():
    e = np.geomspace(0.05, 200, 15)
    v = 1e-11 * e**-2.2 * np.exp(-e / 30)
    return xs.TemplateSpectralModel(energy=e * u.TeV, values=v * u.Unit("cm-2 s-1 TeV-1"))


MODELS = {
    "pl": lambda: xs.PowerLawSpectralModel(index=2.4, amplitude="3e-12 cm-2 s-1 TeV-1", reference="1 TeV"),
    "pl-index1": lambda: xs.PowerLawSpectralModel(index=1.0, amplitude="1e-12 cm-2 s-1 TeV-1"),
    "pl2": lambda: xs.PowerLaw2SpectralModel(amplitude="1e-11 cm-2 s-1", index=2.7, emin="0.2 TeV", emax="50 TeV"),
    "lp": lambda: xs.LogParabolaSpectralModel(
        amplitude="4e-12 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.3, beta=0.25
    ),
    "ecpl": lambda: xs.ExpCutoffPowerLawSpectralModel(index=1.8, amplitude="2e-12 cm-2 s-1 TeV-1", lambda_="0.2 TeV-1"),
    "ecpl-alpha": lambda: xs.ExpCutoffPowerLawSpectralModel(index=1.5, lambda_="0.3 TeV-1", alpha=0.6),
    "bpl": lambda: xs.BrokenPowerLawSpectralModel(index1=1.7, index2=3.1, ebreak="2.2 TeV"),
    "sbpl": lambda: xs.SmoothBrokenPowerLawSpectralModel(index1=1.6, index2=3.0, ebreak="4 TeV", beta=0.7),
    "const": lambda: xs.ConstantSpectralModel(const="5e-13 cm-2 s-1 TeV-1"),
    "template": _template,
    "scale": lambda: xs.ScaleSpectralModel(
        xs.LogParabolaSpectralModel(alpha=2.0, beta=0.1, reference="1 TeV"), norm=1.7
    ),
    "sum": lambda: (
        xs.PowerLawSpectralModel(index=2.0) + xs.ExpCutoffPowerLawSpectralModel(index=1.2, lambda_="0.5 TeV-1")
    ),
    "diff": lambda: (
        xs.PowerLawSpectralModel(index=2.0, amplitude="3e-12 cm-2 s-1 TeV-1") - xs.PowerLawSpectralModel(index=2.5)
    ),
    "product": lambda: xs.PowerLawSpectralModel(index=2.0) * xs.PowerLawNormSpectralModel(norm=1.3, tilt=0.2),
}


def _breakpoints(model):
    pts = []
    if isinstance(model, (xs.BrokenPowerLawSpectralModel,)):
        pts.append(model.parameters["ebreak"].quantity.to_value("TeV"))
    if isinstance(model, xs.TemplateSpectralModel):
        pts.extend(np.exp(model._log_e))
    return pts


def quad_integral(model, e1, e2):
    """scipy quad of dN/dE (cm-2 s-1 TeV-1) over [e1, e2] TeV, integrated in ln E."""

    def f(t):
        return float(model(np.exp(t) * u.TeV).to_value("cm-2 s-1 TeV-1")) * math.exp(t)

    pts = [math.log(p) for p in _breakpoints(model) if e1 < p < e2]
    val, err = quad(f, math.log(e1), math.log(e2), points=pts or None, epsabs=0, epsrel=1e-12, limit=500)
    return val


@pytest.mark.parametrize("name", sorted(MODELS))
def test_integral_vs_quad(name):
    model = MODELS[name]()
    got = model.integral(EDGES[:-1] * u.TeV, EDGES[1:] * u.TeV)
    assert got.unit == u.Unit("cm-2 s-1")
    expected = np.array([quad_integral(model, a, b) for a, b in zip(EDGES[:-1], EDGES[1:])])
    np.testing.assert_allclose(got.value, expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("index", [2.4, 1.0, 1.0 + 1e-12, 0.5, -1.0, 3.7])
def test_power_law_integral_analytic(index):
    amp, ref = 3.3e-12, 1.7
    model = xs.PowerLawSpectralModel(index=index, amplitude=amp * u.Unit("cm-2 s-1 TeV-1"), reference=ref * u.TeV)
    got = model.integral(EDGES[:-1] * u.TeV, EDGES[1:] * u.TeV).to_value("cm-2 s-1")
    expected = pl_integral_ref(amp, 1.0 if abs(index - 1) < 1e-9 else index, ref, EDGES[:-1], EDGES[1:])
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_power_law_index1_is_log():
    model = xs.PowerLawSpectralModel(index=1.0, amplitude="2e-12 cm-2 s-1 TeV-1", reference="1 TeV")
    got = model.integral(1 * u.TeV, 10 * u.TeV).to_value("cm-2 s-1")
    assert got == pytest.approx(2e-12 * math.log(10), rel=1e-14, abs=0)


def test_power_law2_integral_is_amplitude():
    model = MODELS["pl2"]()
    assert model.integral(0.2 * u.TeV, 50 * u.TeV).to_value("cm-2 s-1") == pytest.approx(1e-11, rel=1e-12, abs=0)


def test_dnde_values():
    pl = xs.PowerLawSpectralModel(index=2.0, amplitude="1e-12 cm-2 s-1 TeV-1", reference="1 TeV")
    assert pl(10 * u.TeV).to_value("cm-2 s-1 TeV-1") == pytest.approx(1e-14, rel=1e-14, abs=0)
    assert pl("1000 GeV").to_value("cm-2 s-1 TeV-1") == pytest.approx(1e-12, rel=1e-14, abs=0)
    ecpl = xs.ExpCutoffPowerLawSpectralModel(index=2.0, amplitude="1e-12 cm-2 s-1 TeV-1", lambda_="0.1 TeV-1")
    assert ecpl(10 * u.TeV).to_value("cm-2 s-1 TeV-1") == pytest.approx(1e-14 * math.exp(-1), rel=1e-14, abs=0)
    lp = xs.LogParabolaSpectralModel(amplitude="1e-12 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.0, beta=0.5)
    x = math.log(10)
    assert lp(10 * u.TeV).to_value("cm-2 s-1 TeV-1") == pytest.approx(1e-12 * 10 ** (-2.0 - 0.5 * x), rel=1e-13, abs=0)


def test_dnde_energy_without_unit_raises():
    with pytest.raises(u.UnitsError, match="energy unit"):
        xs.PowerLawSpectralModel()(np.array([1.0, 2.0]))


# derivatives ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["pl", "pl-index1", "pl2", "lp", "ecpl", "bpl", "sbpl", "scale", "sum"])
def test_integral_deriv_vs_finite_differences(name):
    model = MODELS[name]()
    if name == "pl":
        model.amplitude.unit = "m-2 s-1 GeV-1"  # non-canonical unit: derivative is per *value* unit
    emin, emax = EDGES[:-1], EDGES[1:]
    params = [p for p in model.parameters if not p.frozen]
    deriv = model._integral_deriv(emin, emax, params)
    assert deriv.shape == (len(params), emin.size)
    for k, p in enumerate(params):
        v0 = p.value
        h = 1e-4 * abs(v0) if v0 != 0 else 1e-6
        p.value = v0 + h
        fp = model._integral(emin, emax)
        p.value = v0 - h
        fm = model._integral(emin, emax)
        p.value = v0
        fd = (fp - fm) / (2 * h)
        np.testing.assert_allclose(deriv[k], fd, rtol=1e-6, atol=1e-9 * np.abs(fd).max(), err_msg=p.name)


# conversions and units -------------------------------------------------------------------------
def test_log_parabola_from_log10():
    beta10 = 0.4
    lp = xs.LogParabolaSpectralModel.from_log10(
        amplitude="1e-11 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.2, beta=beta10
    )
    assert lp.parameters["beta"].value == pytest.approx(beta10 / math.log(10), rel=1e-15, abs=0)
    e = np.array([0.1, 0.7, 3.0, 40.0])
    log10_form = 1e-11 * e ** (-2.2 - beta10 * np.log10(e))
    np.testing.assert_allclose(lp(e * u.TeV).to_value("cm-2 s-1 TeV-1"), log10_form, rtol=1e-13)


@pytest.mark.parametrize(
    "amplitude, reference",
    [
        ("1e-11 m-2 s-1 GeV-1", "1000 GeV"),
        (1e-11 * u.Unit("m-2 s-1 GeV-1"), 1 * u.TeV),
        ("1e-12 cm-2 s-1 TeV-1", "1 TeV"),
        (1e-12 * u.Unit("cm-2 s-1 TeV-1"), "1e9 keV"),
    ],
)
def test_units_same_dnde(amplitude, reference):
    model = xs.PowerLawSpectralModel(index=2.5, amplitude=amplitude, reference=reference)
    e = np.array([0.2, 1.0, 17.0]) * u.TeV
    expected = 1e-12 * e.value**-2.5
    np.testing.assert_allclose(model(e).to_value("cm-2 s-1 TeV-1"), expected, rtol=1e-12)
    np.testing.assert_allclose(
        model.integral(1 * u.TeV, 10 * u.TeV).to_value("cm-2 s-1"), pl_integral_ref(1e-12, 2.5, 1.0, 1, 10), rtol=1e-12
    )


def test_parameter_keeps_user_unit():
    model = xs.PowerLawSpectralModel(amplitude="1e-11 m-2 s-1 GeV-1")
    assert model.parameters["amplitude"].unit == u.Unit("m-2 s-1 GeV-1")
    assert model.parameters["amplitude"].value == 1e-11


def test_bad_parameter_unit():
    with pytest.raises(u.UnitsError, match="amplitude"):
        xs.PowerLawSpectralModel(amplitude="1e-12 cm-2 s-1")


def test_unknown_parameter_name_constructor():
    with pytest.raises(TypeError, match="indx"):
        xs.PowerLawSpectralModel(indx=2.0)


def test_unknown_parameter_name_lookup():
    model = xs.PowerLawSpectralModel()
    with pytest.raises(KeyError, match="alpha"):
        model.parameters["alpha"]
    with pytest.raises(AttributeError, match="alpha"):
        model.alpha  # noqa: B018


def test_attribute_access_and_set():
    model = xs.PowerLawSpectralModel()
    model.index = 2.9
    assert model.parameters["index"].value == 2.9
    assert model.index is model.parameters["index"]
    model.amplitude = "3e-12 cm-2 s-1 TeV-1"
    assert model(1 * u.TeV).to_value("cm-2 s-1 TeV-1") == pytest.approx(3e-12, rel=1e-12, abs=0)


# compound models ----------------------------------------------------------------------------
def test_compound_sum_and_product_dnde():
    a = xs.PowerLawSpectralModel(index=2.0, amplitude="1e-12 cm-2 s-1 TeV-1")
    b = xs.ConstantSpectralModel(const="2e-13 cm-2 s-1 TeV-1")
    e = np.array([0.5, 2.0, 8.0]) * u.TeV
    np.testing.assert_allclose((a + b)(e).value, a(e).value + b(e).value, rtol=1e-14)
    np.testing.assert_allclose((a - b)(e).value, a(e).value - b(e).value, rtol=1e-14)
    norm = xs.PowerLawNormSpectralModel(norm=2.0, tilt=0.5)
    np.testing.assert_allclose((a * norm)(e).value, a(e).value * 2.0 * e.value**-0.5, rtol=1e-14)
    total = a + b
    assert total.parameters["index"] is a.parameters["index"]  # shared by identity
    assert len(total.parameters) == len(a.parameters) + len(b.parameters)


def test_compound_sum_integral_is_sum_of_analytic():
    a = xs.PowerLawSpectralModel(index=2.2, amplitude="1e-12 cm-2 s-1 TeV-1")
    b = xs.ConstantSpectralModel(const="2e-13 cm-2 s-1 TeV-1")
    got = (a + b).integral(EDGES[:-1] * u.TeV, EDGES[1:] * u.TeV).value
    expected = pl_integral_ref(1e-12, 2.2, 1.0, EDGES[:-1], EDGES[1:]) + 2e-13 * np.diff(EDGES)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_compound_bad_operator():
    with pytest.raises(ValueError, match="unknown operator"):
        xs.CompoundSpectralModel(xs.PowerLawSpectralModel(), xs.PowerLawSpectralModel(), "pow")


def test_scale_model():
    inner = xs.PowerLawSpectralModel(index=2.0)
    scaled = xs.ScaleSpectralModel(inner, norm=3.0)
    e = np.array([1.0, 4.0]) * u.TeV
    np.testing.assert_allclose(scaled(e).value, 3 * inner(e).value, rtol=1e-15)
    np.testing.assert_allclose(
        scaled.integral(1 * u.TeV, 4 * u.TeV).value, 3 * inner.integral(1 * u.TeV, 4 * u.TeV).value, rtol=1e-15
    )
    assert scaled.parameters["index"] is inner.parameters["index"]


def test_template_interpolates_nodes_exactly_and_power_law_between():
    e = np.array([1.0, 2.0, 4.0])
    v = np.array([8.0, 2.0, 1.0]) * 1e-12
    t = xs.TemplateSpectralModel(energy=e * u.TeV, values=v * u.Unit("cm-2 s-1 TeV-1"))
    np.testing.assert_allclose(t(e * u.TeV).value, v, rtol=1e-13)
    # between 1 and 2 TeV the log-log line is 8e-12 E^-2
    assert t(1.5 * u.TeV).value == pytest.approx(8e-12 * 1.5**-2, rel=1e-13, abs=0)
    assert t.integral(1 * u.TeV, 2 * u.TeV).value == pytest.approx(
        pl_integral_ref(8e-12, 2.0, 1.0, 1, 2), rel=1e-12, abs=0
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"energy": [1, 2] * u.TeV, "values": [1, 2]}, "unit"),
        ({"energy": [2, 1] * u.TeV, "values": [1, 2] * u.Unit("cm-2 s-1 TeV-1")}, "increase"),
        ({"energy": [1, 2, 3] * u.TeV, "values": [1, 2] * u.Unit("cm-2 s-1 TeV-1")}, "equal length"),
    ],
)
def test_template_bad_input(kwargs, match):
    with pytest.raises((ValueError, u.UnitsError), match=match):
        xs.TemplateSpectralModel(**kwargs)


def test_registry_has_gammapy_names():
    for name in [
        "PowerLawSpectralModel",
        "PowerLaw2SpectralModel",
        "LogParabolaSpectralModel",
        "ExpCutoffPowerLawSpectralModel",
        "BrokenPowerLawSpectralModel",
        "SmoothBrokenPowerLawSpectralModel",
        "ConstantSpectralModel",
        "TemplateSpectralModel",
        "CompoundSpectralModel",
        "ScaleSpectralModel",
    ]:
        assert name in SPECTRAL_MODEL_REGISTRY


GAMMAPY_EQUIV = {
    "pl": ("PowerLawSpectralModel", dict(index=2.4, amplitude="3e-12 cm-2 s-1 TeV-1", reference="1 TeV")),
    "pl2": ("PowerLaw2SpectralModel", dict(amplitude="1e-11 cm-2 s-1", index=2.7, emin="0.2 TeV", emax="50 TeV")),
    "lp": ("LogParabolaSpectralModel", dict(amplitude="4e-12 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.3, beta=0.25)),
    "ecpl-alpha": ("ExpCutoffPowerLawSpectralModel", dict(index=1.5, lambda_="0.3 TeV-1", alpha=0.6)),
    "bpl": ("BrokenPowerLawSpectralModel", dict(index1=1.7, index2=3.1, ebreak="2.2 TeV")),
    "sbpl": ("SmoothBrokenPowerLawSpectralModel", dict(index1=1.6, index2=3.0, ebreak="4 TeV", beta=0.7)),
}


@pytest.mark.gammapy
@pytest.mark.parametrize("name", sorted(GAMMAPY_EQUIV))
def test_dnde_matches_gammapy(name):
    gm = require_gammapy("gammapy.modeling.models")
    cls_name, kwargs = GAMMAPY_EQUIV[name]
    ours = MODELS[name]()
    theirs = getattr(gm, cls_name)(**kwargs)
    e = np.geomspace(0.11, 90, 25) * u.TeV
    np.testing.assert_allclose(ours(e).to_value("cm-2 s-1 TeV-1"), theirs(e).to_value("cm-2 s-1 TeV-1"), rtol=1e-12)


@pytest.mark.parametrize("index", [1.0, 1 + 1e-9, 1 + 1e-7, 1 - 1e-6, 1 + 1e-5, 1 + 1e-3, 1.1, 2.5])
def test_power_law_index_derivative_near_one(index):
    """d F / d index = -A E0 integral t e^((1-index) t) dt (t = ln E/E0), checked by quad for
    indices at and near 1, where the closed form cancels."""
    model = xs.PowerLawSpectralModel(index=index, amplitude="1e-12 cm-2 s-1 TeV-1", reference="1 TeV")
    emin, emax = EDGES[:-1], EDGES[1:]
    got = model._integral_deriv(emin, emax, [model.parameters["index"]])[0]
    g = 1.0 - index
    expected = [
        -1e-12 * quad(lambda t: t * math.exp(g * t), math.log(a), math.log(b), epsabs=0, epsrel=1e-13)[0]
        for a, b in zip(emin, emax)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-9)
