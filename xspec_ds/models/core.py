"""Sky models, background models and model collections, with YAML serialisation.

The dict layout follows Gammapy's models YAML (``components:`` with ``name``, ``type``,
``spectral: {type, parameters}``), so model files can be exchanged with Gammapy.
"""

from __future__ import annotations

import copy as _copy
import uuid

import yaml

from .parameter import Parameters
from .spectral import PowerLawNormSpectralModel, SpectralModel

__all__ = ["SkyModel", "FoVBackgroundModel", "Models", "make_name"]


def make_name() -> str:
    """A short random name (8 hex characters), as Gammapy gives unnamed datasets and models."""
    return uuid.uuid4().hex[:8]


class SkyModel:
    """A source: a spectral model with a name (a spectrum has no spatial part).

    Parameters
    ----------
    spectral_model : `SpectralModel`
    name : str, optional
    datasets_names : list of str, optional
        Restrict the model to these datasets (None: all).
    """

    tag = ("SkyModel",)

    def __init__(
        self,
        spectral_model: SpectralModel,
        spatial_model=None,
        temporal_model=None,
        name: str | None = None,
        datasets_names=None,
    ):
        if not isinstance(spectral_model, SpectralModel):
            raise TypeError(f"SkyModel needs a SpectralModel, got {type(spectral_model).__name__}")
        if spatial_model is not None:
            raise ValueError("a 1-D spectrum dataset has no spatial axes: spatial_model must be None")
        self.spectral_model = spectral_model
        self.temporal_model = temporal_model
        self.name = name or make_name()
        self.datasets_names = list(datasets_names) if datasets_names is not None else None

    @property
    def parameters(self) -> Parameters:
        return self.spectral_model.parameters

    def __call__(self, energy):
        return self.spectral_model(energy)

    def to_dict(self, full_output: bool = False) -> dict:
        d = {"name": self.name, "type": "SkyModel", "spectral": self.spectral_model.to_dict()}
        if self.datasets_names is not None:
            d["datasets_names"] = list(self.datasets_names)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "SkyModel":
        if "spectral" not in data:
            raise ValueError(f"SkyModel dict {data.get('name')!r} has no 'spectral' entry")
        if data.get("spatial"):
            raise ValueError(f"model {data.get('name')!r} has a spatial part: not supported for 1-D spectra")
        return cls(
            SpectralModel.from_dict(data["spectral"]), name=data.get("name"), datasets_names=data.get("datasets_names")
        )

    def copy(self, name: str | None = None) -> "SkyModel":
        new = _copy.deepcopy(self)
        if name is not None:
            new.name = name
        return new

    def __repr__(self):
        return f"SkyModel(name={self.name!r}, spectral_model={self.spectral_model!r})"


class FoVBackgroundModel:
    """Scales a dataset's background array: ``npred_background = background * norm (E/E0)^-tilt``
    evaluated at the reco bin centres (Gammapy's FoVBackgroundModel with its default
    PowerLawNormSpectralModel).

    Parameters
    ----------
    dataset_name : str
        Name of the dataset whose background this model scales.
    spectral_model : `PowerLawNormSpectralModel`, optional
    """

    tag = ("FoVBackgroundModel",)

    def __init__(self, dataset_name: str, spectral_model: SpectralModel | None = None, name: str | None = None):
        if not dataset_name:
            raise ValueError("FoVBackgroundModel needs the dataset_name it belongs to")
        self.datasets_names = [dataset_name]
        self.spectral_model = spectral_model or PowerLawNormSpectralModel()
        self.name = name or f"{dataset_name}-bkg"

    @property
    def parameters(self) -> Parameters:
        return self.spectral_model.parameters

    def to_dict(self, full_output: bool = False) -> dict:
        return {
            "name": self.name,
            "type": "FoVBackgroundModel",
            "datasets_names": list(self.datasets_names),
            "spectral": self.spectral_model.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "FoVBackgroundModel":
        names = data.get("datasets_names") or [None]
        spectral = SpectralModel.from_dict(data["spectral"]) if "spectral" in data else None
        return cls(dataset_name=names[0], spectral_model=spectral, name=data.get("name"))

    def copy(self, name=None):
        new = _copy.deepcopy(self)
        if name is not None:
            new.name = name
        return new

    def __repr__(self):
        return f"FoVBackgroundModel(dataset_name={self.datasets_names[0]!r}, {self.spectral_model!r})"


_MODEL_TYPES = {"SkyModel": SkyModel, "FoVBackgroundModel": FoVBackgroundModel}


class Models:
    """An ordered list of `SkyModel` / `FoVBackgroundModel`, indexable by position or name.

    Accepts a SkyModel, a bare SpectralModel (wrapped in a SkyModel), a list of those, or
    another `Models`.
    """

    def __init__(self, models=None):
        if models is None:
            models = []
        if isinstance(models, Models):
            models = list(models)
        elif isinstance(models, (SkyModel, FoVBackgroundModel, SpectralModel)):
            models = [models]
        items = []
        for m in models:
            if isinstance(m, SpectralModel):
                m = SkyModel(spectral_model=m)
            if not isinstance(m, (SkyModel, FoVBackgroundModel)):
                raise TypeError(f"cannot use {type(m).__name__} as a model; give a SkyModel or SpectralModel")
            items.append(m)
        names = [m.name for m in items]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"model names must be unique, repeated: {sorted(dupes)}")
        self._models = items

    @property
    def names(self) -> list[str]:
        return [m.name for m in self._models]

    @property
    def parameters(self) -> Parameters:
        return Parameters([p for m in self._models for p in m.parameters])

    def __getitem__(self, key):
        if isinstance(key, int):
            return self._models[key]
        for m in self._models:
            if m.name == key:
                return m
        raise KeyError(f"no model named {key!r}; models are {self.names}")

    def __iter__(self):
        return iter(self._models)

    def __len__(self):
        return len(self._models)

    def __add__(self, other):
        return Models(list(self) + list(Models(other)))

    def append(self, model) -> None:
        self._models = list(Models(list(self) + [model]))

    def select(self, dataset_name: str | None) -> "Models":
        """Models that apply to the dataset named ``dataset_name``."""
        return Models([m for m in self._models if m.datasets_names is None or dataset_name in m.datasets_names])

    def to_dict(self, full_output: bool = False) -> dict:
        return {"components": [m.to_dict(full_output) for m in self._models]}

    @classmethod
    def from_dict(cls, data: dict) -> "Models":
        items = []
        for comp in data.get("components", []):
            typ = comp.get("type", "SkyModel")
            if typ not in _MODEL_TYPES:
                raise ValueError(f"unknown model type {typ!r}; known: {sorted(_MODEL_TYPES)}")
            items.append(_MODEL_TYPES[typ].from_dict(comp))
        return cls(items)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> "Models":
        return cls.from_dict(yaml.safe_load(text))

    def write(self, path, overwrite: bool = False) -> None:
        from ..io.atomic import atomic_write_text

        atomic_write_text(path, self.to_yaml(), overwrite=overwrite)

    @classmethod
    def read(cls, path) -> "Models":
        with open(path) as f:
            return cls.from_yaml(f.read())

    def copy(self) -> "Models":
        return _copy.deepcopy(self)

    def __repr__(self):
        return "Models([\n  " + ",\n  ".join(repr(m) for m in self._models) + "\n])"
