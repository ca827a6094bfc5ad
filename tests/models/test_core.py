"""SkyModel, FoVBackgroundModel, Models: construction, lookup, dict/YAML round trips, files."""

import astropy.units as u
import numpy as np
import pytest
import yaml

import xspec_ds as xs
from xspec_ds.models import SpectralModel

from .test_spectral import MODELS


def _tune(model):
    """Give every parameter non-default bounds, frozen flags and errors to round-trip."""
    for k, p in enumerate(model.parameters):
        p.error = 0.01 * (k + 1) * abs(p.value)
        p.min = p.value / 10 if p.value > 0 else p.value * 10
        p.max = p.value * 10 if p.value > 0 else p.value / 10
        p.frozen = k % 2 == 1
    return model


def assert_params_equal(a, b):
    assert a.names == b.names
    for p, q in zip(a, b):
        assert p.value == q.value, p.name
        assert p.unit == q.unit, p.name
        assert p.error == q.error, p.name
        assert p.frozen == q.frozen, p.name
        for x, y in ((p.min, q.min), (p.max, q.max)):
            assert (np.isnan(x) and np.isnan(y)) or x == y, p.name


def assert_spectral_equal(a, b):
    assert type(a) is type(b)
    assert_params_equal(a.parameters, b.parameters)
    e = np.geomspace(0.1, 100, 13) * u.TeV
    np.testing.assert_allclose(a(e).value, b(e).value, rtol=1e-14)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_spectral_dict_round_trip(name):
    model = _tune(MODELS[name]())
    data = model.to_dict()
    assert data["type"] == model.tag[0]
    back = SpectralModel.from_dict(data)
    assert_spectral_equal(model, back)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_sky_model_yaml_round_trip(name):
    sky = xs.SkyModel(spectral_model=_tune(MODELS[name]()), name=f"src-{name}", datasets_names=["a", "b"])
    models = xs.Models([sky])
    text = models.to_yaml()
    assert yaml.safe_load(text)["components"][0]["type"] == "SkyModel"
    back = xs.Models.from_yaml(text)
    assert back.names == [f"src-{name}"]
    assert back[0].datasets_names == ["a", "b"]
    assert_spectral_equal(sky.spectral_model, back[0].spectral_model)


def test_fov_background_round_trip():
    bkg = xs.FoVBackgroundModel(dataset_name="obs1")
    bkg.spectral_model.parameters["norm"].value = 1.3
    bkg.spectral_model.parameters["norm"].error = 0.05
    bkg.spectral_model.parameters["tilt"].frozen = False
    models = xs.Models([bkg])
    back = xs.Models.from_yaml(models.to_yaml())
    assert isinstance(back[0], xs.FoVBackgroundModel)
    assert back[0].name == "obs1-bkg"
    assert back[0].datasets_names == ["obs1"]
    assert_spectral_equal(bkg.spectral_model, back[0].spectral_model)


def test_fov_background_needs_dataset_name():
    with pytest.raises(ValueError, match="dataset_name"):
        xs.FoVBackgroundModel(dataset_name="")


def test_models_write_read(tmp_path):
    models = xs.Models(
        [
            xs.SkyModel(_tune(MODELS["lp"]()), name="crab"),
            xs.SkyModel(MODELS["template"](), name="tpl"),
            xs.FoVBackgroundModel(dataset_name="d1"),
        ]
    )
    path = tmp_path / "models.yaml"
    models.write(path)
    back = xs.Models.read(path)
    assert back.names == ["crab", "tpl", "d1-bkg"]
    for a, b in zip(models, back):
        assert_spectral_equal(a.spectral_model, b.spectral_model)
    with pytest.raises(FileExistsError, match="overwrite"):
        models.write(path)
    models["crab"].spectral_model.parameters["alpha"].value = 3.0
    models.write(path, overwrite=True)
    assert xs.Models.read(path)["crab"].parameters["alpha"].value == 3.0
    # atomic writes leave no temporary files behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models.yaml"]


def test_unknown_model_type():
    with pytest.raises(ValueError, match="unknown model type 'SpatialModel'"):
        xs.Models.from_dict({"components": [{"name": "x", "type": "SpatialModel"}]})
    with pytest.raises(ValueError, match="unknown spectral model type 'FooSpectralModel'"):
        SpectralModel.from_dict({"type": "FooSpectralModel", "parameters": []})


def test_unknown_parameter_in_dict():
    data = xs.PowerLawSpectralModel().to_dict()
    data["parameters"].append({"name": "gamma", "value": 1.0})
    with pytest.raises(KeyError, match="gamma"):
        SpectralModel.from_dict(data)


def test_sky_model_basics():
    pl = xs.PowerLawSpectralModel()
    sky = xs.SkyModel(spectral_model=pl, name="src")
    assert sky.parameters["index"] is pl.parameters["index"]
    assert sky(1 * u.TeV) == pl(1 * u.TeV)
    with pytest.raises(TypeError, match="SpectralModel"):
        xs.SkyModel(spectral_model="pl")
    with pytest.raises(ValueError, match="spatial"):
        xs.SkyModel(spectral_model=pl, spatial_model=object())
    c = sky.copy(name="other")
    assert c.name == "other" and c.parameters["index"] is not pl.parameters["index"]
    assert len(xs.SkyModel(spectral_model=xs.PowerLawSpectralModel()).name) == 8  # random name


@pytest.mark.parametrize("kind", ["sky", "list", "models", "spectral"])
def test_models_accepts_various_inputs(kind):
    pl = xs.PowerLawSpectralModel()
    sky = xs.SkyModel(pl, name="s")
    arg = {"sky": sky, "list": [sky], "models": xs.Models([sky]), "spectral": pl}[kind]
    models = xs.Models(arg)
    assert len(models) == 1
    assert models[0].spectral_model is pl
    assert models.parameters["index"] is pl.parameters["index"]


def test_models_errors_and_lookup():
    a = xs.SkyModel(xs.PowerLawSpectralModel(), name="a")
    with pytest.raises(ValueError, match="unique.*'a'"):
        xs.Models([a, xs.SkyModel(xs.PowerLawSpectralModel(), name="a")])
    with pytest.raises(TypeError, match="int"):
        xs.Models([3])
    models = xs.Models([a])
    with pytest.raises(KeyError, match="'b'"):
        models["b"]
    models.append(xs.SkyModel(xs.ConstantSpectralModel(), name="b"))
    assert models.names == ["a", "b"]
    assert models.select("anything").names == ["a", "b"]
    restricted = xs.Models([xs.SkyModel(xs.PowerLawSpectralModel(), name="r", datasets_names=["d1"])])
    assert restricted.select("d2").names == [] and restricted.select("d1").names == ["r"]


def test_shared_parameter_counted_once():
    pl = xs.PowerLawSpectralModel()
    m = xs.Models([xs.SkyModel(pl, name="a"), xs.SkyModel(xs.ScaleSpectralModel(pl), name="b")])
    assert sum(p is pl.parameters["index"] for p in m.parameters) == 1
