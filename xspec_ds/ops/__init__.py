"""Label operations on spectrum datasets: stacking, slicing and resampling.

All functions are pure: they take `xarray.Dataset`s and return new ones (`stack` also accepts
and returns `SpectrumDataset`s). `SpectrumDataset` and the ``ds.spectrum`` accessor delegate here.
"""

from .resample import downsample, resample_energy_axis, to_image
from .slicing import slice_by_energy, slice_by_idx
from .stack import STACK_RULES, StackRule, register_stack_rule, stack, stack_obs, stack_xarray

__all__ = [
    "stack",
    "stack_xarray",
    "stack_obs",
    "StackRule",
    "STACK_RULES",
    "register_stack_rule",
    "slice_by_idx",
    "slice_by_energy",
    "resample_energy_axis",
    "downsample",
    "to_image",
]
