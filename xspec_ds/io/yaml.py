"""Datasets and models as YAML files, as Gammapy's ``Datasets.write`` / ``Datasets.read``.

A datasets YAML file lists each dataset by name, type (its ``tag``) and data file::

    datasets:
    - name: obs-1
      type: SpectrumDataset
      filename: obs-1.fits

Relative file names are relative to the YAML file's folder. The models go to a separate
models YAML file (``components: [...]``, as Gammapy's models files), and are attached to the
datasets on reading.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .atomic import atomic_write_text

__all__ = ["dataset_to_dict", "dataset_from_dict", "write_datasets", "read_datasets", "dataset_class"]


def dataset_class(tag: str):
    """The dataset class for a YAML ``type`` (``SpectrumDataset``, ``SpectrumDatasetOnOff``)."""
    import xspec_ds

    classes = {"SpectrumDataset": xspec_ds.SpectrumDataset}
    onoff = getattr(xspec_ds, "SpectrumDatasetOnOff", None)
    if onoff is not None:
        classes["SpectrumDatasetOnOff"] = onoff
    if tag not in classes:
        raise ValueError(f"unknown dataset type {tag!r}; known: {sorted(classes)}")
    return classes[tag]


def dataset_to_dict(dataset, filename: str | Path = "") -> dict:
    """``{"name", "type", "filename"}`` of a dataset (default file name ``<name>.fits``,
    spaces replaced by underscores, as Gammapy)."""
    if not filename:
        filename = f"{dataset.name.replace(' ', '_')}.fits"
    return {"name": dataset.name, "type": dataset.tag, "filename": str(filename)}


def dataset_from_dict(cls, data: dict, base_path: str | Path | None = None, **kwargs):
    """Read the dataset a `dataset_to_dict` entry describes.

    ``cls`` is used unless the entry's ``type`` names a subclass; a relative ``filename`` is
    taken relative to ``base_path`` (default: the current folder).
    """
    missing = [k for k in ("name", "filename") if k not in data]
    if missing:
        raise KeyError(f"dataset entry {data!r} lacks {missing}")
    typ = data.get("type", getattr(cls, "tag", "SpectrumDataset"))
    target = dataset_class(typ)
    if cls is not None and issubclass(cls, target):
        target = cls
    path = Path(data["filename"])
    if base_path is not None and not path.is_absolute():
        path = Path(base_path) / path
    return target.read(path, name=data["name"], **kwargs)


def write_datasets(
    datasets, filename_datasets, filename_models=None, overwrite: bool = False, write_data: bool = True
) -> None:
    """Write each dataset's data file, the datasets YAML and (optionally) the models YAML.

    Data files go beside the YAML file as ``<name>.fits`` (Gammapy's choice); every write is
    atomic and refuses to replace files unless ``overwrite``.
    """
    path = Path(filename_datasets)
    entries = []
    for d in datasets:
        entry = dataset_to_dict(d)
        if write_data:
            d.write(path.parent / entry["filename"], overwrite=overwrite)
        entries.append(entry)
    atomic_write_text(path, yaml.safe_dump({"datasets": entries}, sort_keys=False), overwrite=overwrite)
    if filename_models is not None:
        from ..models import Models

        models = Models(list(datasets.models)) if hasattr(datasets, "models") else _all_models(datasets)
        models.write(filename_models, overwrite=overwrite)


def _all_models(datasets):
    from ..models import Models

    seen, items = set(), []
    for d in datasets:
        for m in d.models:
            if id(m) not in seen:
                seen.add(id(m))
                items.append(m)
    return Models(items)


def read_datasets(filename_datasets, filename_models=None, **kwargs):
    """Read a datasets YAML file (and a models YAML file) into `xspec_ds.Datasets`.

    Models are attached to every dataset (each model's ``datasets_names`` selects where it
    applies, as in Gammapy).
    """
    from ..fit import Datasets

    path = Path(filename_datasets)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("datasets"), list):
        raise ValueError(f"{path}: not a datasets YAML file (needs a 'datasets:' list)")
    items = [dataset_from_dict(None, entry, base_path=path.parent, **kwargs) for entry in data["datasets"]]
    out = Datasets(items)
    if filename_models is not None:
        from ..models import Models

        out.models = Models.read(filename_models)
    return out
