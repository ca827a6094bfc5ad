"""The object layer's class choice for Datasets built by readers.

Readers (`xspec_ds.io`) build plain `xarray.Dataset`s; this module, which knows the dataset
classes, picks the class and registers itself with `xspec_ds.io` when the package is imported.
So no module of `xspec_ds.io` imports `xspec_ds.dataset` or `xspec_ds.onoff` (the import circle
dataset -> io -> ogip -> onoff -> dataset is gone; ``tests/test_layering.py`` enforces it).
"""

from __future__ import annotations

import xarray as xr

from .dataset import SpectrumDataset
from .io import register_object_factory
from .onoff import SpectrumDatasetOnOff

__all__ = ["dataset_from_xarray"]


def dataset_from_xarray(data: xr.Dataset, cls=None, kind: str | None = None) -> SpectrumDataset:
    """The dataset object for ``data``, a Dataset built by a reader.

    ``kind="ogip"`` or ``"auto"``: data with ``counts_off`` give a `SpectrumDatasetOnOff` (or ``cls`` if it is
    a subclass of it); data without give a `SpectrumDataset` (or ``cls`` if it is unrelated to the
    on-off class). Otherwise ``cls`` (default `SpectrumDataset`). Not validated again (readers
    build valid Datasets).
    """
    if kind in ("ogip", "auto"):
        if "counts_off" not in data.variables:
            cls = SpectrumDataset if cls is None or issubclass(SpectrumDatasetOnOff, cls) else cls
        elif cls is None or not issubclass(cls, SpectrumDatasetOnOff):
            cls = SpectrumDatasetOnOff
    return (cls or SpectrumDataset).from_xarray(data, validate=False)


register_object_factory(dataset_from_xarray, SpectrumDataset)
