"""Datasets and models YAML files (Gammapy's ``Datasets.write``/``read`` layout)."""

from __future__ import annotations

import pytest
import xarray as xr
import yaml

import xspec_ds as xs
from xspec_ds.io.yaml import dataset_from_dict, dataset_to_dict, read_datasets, write_datasets

from ._datasets import random_dataset


def test_dataset_to_dict_defaults_and_explicit_filename():
    ds = random_dataset(1, name="my obs")
    assert dataset_to_dict(ds) == {"name": "my obs", "type": "SpectrumDataset", "filename": "my_obs.fits"}
    assert ds.to_dict("x/y.nc") == {"name": "my obs", "type": "SpectrumDataset", "filename": "x/y.nc"}


@pytest.mark.parametrize("suffix", [".fits", ".nc"])
def test_from_dict_reads_the_file(tmp_path, suffix):
    ds = random_dataset(2, name="obs-2")
    path = tmp_path / f"obs{suffix}"
    ds.write(path)
    back = xs.SpectrumDataset.from_dict(ds.to_dict(str(path)))
    xr.testing.assert_equal(back.data, ds.data)
    assert back.name == "obs-2"
    relative = dataset_from_dict(
        xs.SpectrumDataset, {"name": "renamed", "type": "SpectrumDataset", "filename": path.name}, base_path=tmp_path
    )
    assert relative.name == "renamed"


def test_from_dict_errors():
    with pytest.raises(KeyError, match="filename"):
        dataset_from_dict(xs.SpectrumDataset, {"name": "a"})
    with pytest.raises(ValueError, match="unknown dataset type 'MapDataset'"):
        dataset_from_dict(xs.SpectrumDataset, {"name": "a", "type": "MapDataset", "filename": "a.fits"})


def test_write_read_datasets_round_trip(tmp_path):
    d1 = random_dataset(3, name="a", models=True)
    d2 = random_dataset(4, name="b")
    d2.models = d1.models  # shared model: one free parameter set in a joint fit
    d1.models["src"].spectral_model.parameters["index"].value = 2.71828
    write_datasets(xs.Datasets([d1, d2]), tmp_path / "datasets.yaml", tmp_path / "models.yaml")
    text = yaml.safe_load((tmp_path / "datasets.yaml").read_text())
    assert text == {
        "datasets": [
            {"name": "a", "type": "SpectrumDataset", "filename": "a.fits"},
            {"name": "b", "type": "SpectrumDataset", "filename": "b.fits"},
        ]
    }
    back = read_datasets(tmp_path / "datasets.yaml", tmp_path / "models.yaml")
    assert back.names == ["a", "b"]
    for orig, new in zip([d1, d2], back):
        xr.testing.assert_equal(new.data, orig.data)
    assert back["a"].models["src"].spectral_model.parameters["index"].value == 2.71828
    assert back["a"].models["src"] is back["b"].models["src"]
    assert back.stat_sum() == pytest.approx(xs.Datasets([d1, d2]).stat_sum(), rel=1e-12, abs=0)
    with pytest.raises(FileExistsError):
        write_datasets(xs.Datasets([d1, d2]), tmp_path / "datasets.yaml")


def test_read_datasets_bad_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: []\n")
    with pytest.raises(ValueError, match="bad.yaml.*datasets"):
        read_datasets(bad)
    bad.write_text("datasets: [unclosed\n")
    with pytest.raises(ValueError, match="bad.yaml.*not valid YAML"):
        read_datasets(bad)
