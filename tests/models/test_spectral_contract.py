"""The spectral models' object contract (issue 14, mutation testing): construction and its
error messages, attribute access, the type registry, ``repr``, copies, serialisation round trips,
the template's validation and unit handling, the covariance cache, and the plotting methods'
delegation (arguments and defaults passed on unchanged)."""

from __future__ import annotations

import math

import astropy.units as u
import numpy as np
import pytest

import xspec_ds as xs
from xspec_ds.models.spectral import SPECTRAL_MODEL_REGISTRY

from .._asserts import assert_close

DNDE = u.Unit("cm-2 s-1 TeV-1")


def test_energy_without_unit_raises_naming_the_problem():
    with pytest.raises(u.UnitsError, match=r"^energy must carry an energy unit \(e\.g\. '1 TeV'\)$"):
        xs.PowerLawSpectralModel()(np.array([1.0, 2.0]))


def test_unknown_parameter_message_names_the_model_and_its_parameters():
    msg = r"^PowerLawSpectralModel got unknown parameter\(s\) \['foo'\]; its parameters are \['index', 'amplitude', 'reference'\]$"
    with pytest.raises(TypeError, match=msg):
        xs.PowerLawSpectralModel(foo=1.0)


def test_parameters_from_objects_floats_and_quantities():
    index = xs.PowerLawSpectralModel(index=2.7).index
    m = xs.PowerLawSpectralModel(index=index, amplitude=3e-12, reference=2 * u.TeV)
    assert m.index is index  # a Parameter passed in is used as is (shared, as Gammapy's linking)
    assert m.amplitude.unit == DNDE and m.amplitude.value == 3e-12  # a float is in the canonical unit
    assert m.reference.unit == u.TeV and m.reference.value == 2.0
    m2 = xs.PowerLawSpectralModel(amplitude="3e-8 m-2 s-1 GeV-1")
    assert m2.amplitude.unit == u.Unit("m-2 s-1 GeV-1")
    assert_close(m2.amplitude.canonical, 3e-12 * 1e3, rtol=1e-14)


def test_attribute_errors():
    m = xs.PowerLawSpectralModel()
    with pytest.raises(AttributeError) as err:
        m._not_there  # noqa: B018
    assert str(err.value) == "_not_there"
    with pytest.raises(AttributeError, match=r"^PowerLawSpectralModel has no attribute or parameter 'nope'$"):
        m.nope  # noqa: B018


def test_every_tag_is_registered_to_its_class():
    classes = [
        xs.PowerLawSpectralModel,
        xs.PowerLaw2SpectralModel,
        xs.LogParabolaSpectralModel,
        xs.ExpCutoffPowerLawSpectralModel,
        xs.BrokenPowerLawSpectralModel,
        xs.SmoothBrokenPowerLawSpectralModel,
        xs.ConstantSpectralModel,
        xs.TemplateSpectralModel,
        xs.ScaleSpectralModel,
        xs.CompoundSpectralModel,
        xs.PowerLawNormSpectralModel,
    ]
    for cls in classes:
        assert cls.tag
        for tag in cls.tag:
            assert SPECTRAL_MODEL_REGISTRY[tag] is cls, tag


def test_repr_lists_values_and_units():
    m = xs.PowerLawSpectralModel(index=2.3, amplitude="2e-11 cm-2 s-1 TeV-1")
    assert repr(m) == "PowerLawSpectralModel(index=2.3, amplitude=2e-11 1 / (TeV s cm2), reference=1 TeV)"
    assert repr(xs.ScaleSpectralModel(m, norm=0.5)) == (
        "ScaleSpectralModel(norm=0.5, index=2.3, amplitude=2e-11 1 / (TeV s cm2), reference=1 TeV)"
    )
    assert repr(m + xs.ConstantSpectralModel()) == (
        "CompoundSpectralModel(PowerLawSpectralModel(index=2.3, amplitude=2e-11 1 / (TeV s cm2), "
        "reference=1 TeV), ConstantSpectralModel(const=1e-12 1 / (TeV s cm2)), add)"
    )


def test_evaluate_is_call_and_copy_is_deep():
    m = xs.LogParabolaSpectralModel(amplitude="3e-12 cm-2 s-1 TeV-1", reference="2 TeV", alpha=2.3, beta=0.25)
    e = [0.5, 2.0, 7.0] * u.TeV
    ref = 3e-12 * np.exp(-np.log(e.value / 2) * (2.3 + 0.25 * np.log(e.value / 2)))
    assert_close(m.evaluate(e).to_value(DNDE), ref, rtol=1e-14)
    c = m.copy()
    c.alpha.value = 3.0
    assert m.alpha.value == 2.3
    assert all(p is not q for p, q in zip(c.parameters, m.parameters))


def test_scale_model_default_norm_is_one():
    m = xs.ScaleSpectralModel(xs.ConstantSpectralModel(const="2e-12 cm-2 s-1 TeV-1"))
    assert m.norm.value == 1.0
    assert_close(m(1 * u.TeV).to_value(DNDE), 2e-12, rtol=1e-15)


def test_power_law_norm_is_dimensionless():
    m = xs.PowerLawNormSpectralModel(norm=1.5, tilt=0.2, reference="2 TeV")
    val = m([1.0, 4.0] * u.TeV)
    assert val.unit == u.dimensionless_unscaled
    assert_close(val.value, 1.5 * (np.array([1.0, 4.0]) / 2) ** -0.2, rtol=1e-14)


# ------------------------------------------------------------------------------------------------
# serialisation
# ------------------------------------------------------------------------------------------------
def test_from_dict_accepts_a_sky_model_entry_and_dispatches_on_the_type():
    lp = xs.LogParabolaSpectralModel(alpha=2.1, beta=0.3)
    d = lp.to_dict()
    for cls in (xs.SpectralModel, xs.PowerLawSpectralModel):  # the tag decides, not the class called
        back = cls.from_dict(d)
        assert type(back) is xs.LogParabolaSpectralModel
        assert back.alpha.value == 2.1 and back.beta.value == 0.3
    back = xs.SpectralModel.from_dict({"spectral": d})  # a SkyModel's "spectral" entry
    assert type(back) is xs.LogParabolaSpectralModel and back.beta.value == 0.3
    pl = xs.PowerLawSpectralModel.from_dict({"type": "pl"})  # no parameters: the defaults
    assert type(pl) is xs.PowerLawSpectralModel and pl.index.value == 2.0
    with pytest.raises(ValueError, match=r"unknown spectral model type 'nope'; known types: \["):
        xs.SpectralModel.from_dict({"type": "nope"})


def test_scale_and_template_round_trips():
    inner = xs.PowerLawSpectralModel(index=2.6)
    s = xs.SpectralModel.from_dict({"type": "ScaleSpectralModel", "model": inner.to_dict()})
    assert s.norm.value == 1.0 and s.model.index.value == 2.6
    s = xs.SpectralModel.from_dict(xs.ScaleSpectralModel(inner, norm=0.25).to_dict())
    assert s.norm.value == 0.25
    t = xs.TemplateSpectralModel(energy=[1.0, 2.0, 4.0] * u.TeV, values=[4.0, 1.0, 0.5] * DNDE)
    d = t.to_dict()
    assert d["parameters"] == [] and d["type"] == "TemplateSpectralModel"
    back = xs.SpectralModel.from_dict(d)
    e = [1.3, 3.0] * u.TeV
    assert_close(back(e).to_value(DNDE), t(e).to_value(DNDE), rtol=1e-14)


# ------------------------------------------------------------------------------------------------
# template validation
# ------------------------------------------------------------------------------------------------
def test_template_values_in_any_flux_density_unit():
    a = xs.TemplateSpectralModel(energy=[1.0, 10.0] * u.TeV, values=[2e-8, 2e-10] * u.Unit("m-2 s-1 GeV-1"))
    b = xs.TemplateSpectralModel(energy=[1.0, 10.0] * u.TeV, values=[2e-9, 2e-11] * DNDE)
    e = [1.0, 3.0, 10.0] * u.TeV
    assert_close(a(e).to_value(DNDE), b(e).to_value(DNDE), rtol=1e-14)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"values": [1.0, 2.0] * DNDE}, TypeError, r"^TemplateSpectralModel needs `energy` and `values`$"),
        ({"energy": [1.0, 2.0] * u.TeV}, TypeError, r"^TemplateSpectralModel needs `energy` and `values`$"),
        (
            {"energy": [1.0, 2.0] * u.TeV, "values": [1.0, 2.0]},
            u.UnitsError,
            r"^TemplateSpectralModel values need a dN/dE unit, e\.g\. 'cm-2 s-1 TeV-1'$",
        ),
        (
            {"energy": [[1.0, 2.0], [3.0, 4.0]] * u.TeV, "values": [[1.0, 2.0], [3.0, 4.0]] * DNDE},
            ValueError,
            r"^TemplateSpectralModel: energy and values must be 1-D of equal length >= 2$",
        ),
        (
            {"energy": [1.0] * u.TeV, "values": [1.0] * DNDE},
            ValueError,
            r"^TemplateSpectralModel: energy and values must be 1-D of equal length >= 2$",
        ),
        (
            {"energy": [1.0, 1.0, 2.0] * u.TeV, "values": [1.0, 1.0, 2.0] * DNDE},
            ValueError,
            r"^TemplateSpectralModel: energies must increase and values be positive$",
        ),
        (
            {"energy": [1.0, 2.0] * u.TeV, "values": [1.0, 0.0] * DNDE},
            ValueError,
            r"^TemplateSpectralModel: energies must increase and values be positive$",
        ),
        (
            {"energy": [1.0, 2.0] * u.TeV, "values": [1.0, -1.0] * DNDE},
            ValueError,
            r"^TemplateSpectralModel: energies must increase and values be positive$",
        ),
    ],
)
def test_template_bad_input_raises(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        xs.TemplateSpectralModel(**kwargs)


def test_log_parabola_from_log10_converts_beta_and_takes_only_its_parameters():
    m = xs.LogParabolaSpectralModel.from_log10("1e-11 cm-2 s-1 TeV-1", "1 TeV", 2.2, 40 * u.percent)
    assert_close(m.beta.value, 0.4 / math.log(10), rtol=1e-15)
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['lambda_'\]"):
        xs.LogParabolaSpectralModel.from_log10("1e-11 cm-2 s-1 TeV-1", "1 TeV", 2.2, 0.4, lambda_=1.0)


# ------------------------------------------------------------------------------------------------
# covariance cache and plotting delegation
# ------------------------------------------------------------------------------------------------
def test_new_covariance_from_the_fit_replaces_the_cached_correlation():
    m = xs.PowerLawSpectralModel()
    names = [p.name for p in m.parameters]
    m._set_covariance(np.diag([4.0, 1.0, 0.0]), names, ["", "cm-2 s-1 TeV-1", "TeV"])
    assert m.correlation.values[0, 1] == 0.0
    cov = np.array([[4.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    m._set_covariance(cov, names, ["", "cm-2 s-1 TeV-1", "TeV"])
    assert_close(m.correlation.values[0, 1], 0.5, rtol=1e-15)


def test_plot_and_plot_error_pass_their_arguments_on(monkeypatch):
    import xspec_ds.models.errors as errors_mod
    import xspec_ds.plotting as plotting_mod

    seen = {}
    monkeypatch.setattr(plotting_mod, "plot_spectral_model", lambda *a, **k: seen.setdefault("plot", (a, k)))
    monkeypatch.setattr(errors_mod, "plot_error", lambda *a, **k: seen.setdefault("error", (a, k)))
    m = xs.PowerLawSpectralModel()
    bounds = [1, 10] * u.TeV
    m.plot(bounds)
    m.plot_error(bounds)
    defaults = {"ax": None, "sed_type": "dnde", "energy_power": 0, "n_points": 100}
    for key in ("plot", "error"):
        args, kwargs = seen.pop(key)
        assert args[0] is m and args[1] is bounds
        assert kwargs == defaults, key
    ax = object()
    given = {"ax": ax, "sed_type": "e2dnde", "energy_power": 2, "n_points": 7, "color": "red"}
    m.plot(bounds, **given)
    m.plot_error(bounds, **given)
    for key in ("plot", "error"):
        assert seen[key][1] == given, key


def test_plot_energy_power_scales_the_line():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = xs.PowerLawSpectralModel(index=2.0, amplitude="1e-11 cm-2 s-1 TeV-1")
    fig, ax = plt.subplots()
    m.plot([1, 10] * u.TeV, ax=ax, energy_power=2, n_points=5, show_error=False)
    x, y = ax.lines[0].get_data()
    plt.close(fig)
    assert_close(x, np.geomspace(1, 10, 5), rtol=1e-14)
    assert_close(y, 1e-11 * np.ones(5), rtol=1e-12)  # E^2 x E^-2 = 1
