"""The ``spectrum`` accessor: the full dataset API on any `xarray.Dataset`.

``xr_ds.spectrum`` returns a `SpectrumDataset` (or `SpectrumDatasetOnOff` when the Dataset
has ``counts_off``) that is a view on ``xr_ds``: no data is copied and changes go both ways.
xarray caches the accessor on the Dataset object, so models set on ``xr_ds.spectrum`` stay.
"""

from __future__ import annotations

import xarray as xr

__all__ = ["SpectrumAccessor"]


@xr.register_dataset_accessor("spectrum")
def SpectrumAccessor(ds: xr.Dataset):  # noqa: N802 - xarray calls it like a class
    from .dataset import SpectrumDataset

    cls = SpectrumDataset
    if "counts_off" in ds.variables:
        from .onoff import SpectrumDatasetOnOff

        cls = SpectrumDatasetOnOff
    return cls.from_xarray(ds)
