"""Merging reconstructed-energy bins: `resample_energy_axis`, `downsample`, `to_image`.

A new reco axis whose edges are a subset of the old edges groups old bins ``j`` into new bins
``J``; with ``m_j`` the safe mask (Gammapy's ``MapDataset.resample_energy_axis``):

- ``counts_J = sum_{j in J} n_j m_j``, ``background_J = sum_{j in J} b_j m_j`` (safe counts
  are conserved);
- ``mask_safe_J = OR_{j in J} m_j``; ``mask_fit_J = OR_{j in J} mask_fit_j``;
- ``edisp_iJ = sum_{j in J} edisp_ij m_j`` (Gammapy's ``EDispKernelMap.resample_energy_axis``
  with ``mask_safe_edisp`` weights), so ``npred_J = sum_{j in J} npred_j m_j`` for any model;
- ``exposure`` (true energy), GTI, livetime and meta_table are unchanged.

The grouping is a 0/1 matrix applied with `xarray.dot`, so it is vectorised, works on dask
arrays and on datasets with an extra ``obs`` dimension. Edges of the result are copies of old
edge values (exact). Deviations from Gammapy 2.1: the new edges must coincide with old edges
(to 1e-10 relative) instead of being snapped silently; `downsample` ORs the safe mask within
each group as resampling does (Gammapy's ``downsample`` ANDs it, its issue 3495).

`RESAMPLE_RULES` maps variable names to rules ``rule(da, safe, group)``; a rule with the attribute
``needs_dataset = True`` also gets the whole Dataset as ``ds=`` (for variables derived from
others, e.g. the on-off ``acceptance_off``). A variable on the ``energy`` axis without a rule
raises.
"""

from __future__ import annotations

from collections.abc import Callable

import astropy.units as u
import numpy as np
import xarray as xr

from ..axes import MapAxis, edges_from_coords

__all__ = ["RESAMPLE_RULES", "resample_energy_axis", "downsample", "to_image", "group_matrix"]

_NEW = "_energy_new"


def _sum_safe(da: xr.DataArray, safe: xr.DataArray | None, group: xr.DataArray) -> xr.DataArray:
    if safe is not None:
        da = xr.where(safe, da, 0.0)
    return xr.dot(da, group, dim="energy")


def _any(da: xr.DataArray, safe, group: xr.DataArray) -> xr.DataArray:
    return xr.dot(da.astype(np.int64), group.astype(np.int64), dim="energy") > 0


RESAMPLE_RULES: dict[str, Callable] = {
    "counts": _sum_safe,
    "background": _sum_safe,
    "edisp": _sum_safe,
    "mask_safe": _any,
    "mask_fit": _any,
}


def group_matrix(old_edges: np.ndarray, new_edges: np.ndarray, rtol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """(index of each new edge among the old edges, 0/1 matrix old bin x new bin).

    Raises a ValueError naming the first new edge that is not an old edge.
    """
    old = np.asarray(old_edges, dtype=np.float64)
    new = np.asarray(new_edges, dtype=np.float64)
    pos = np.clip(np.searchsorted(old, new), 0, old.size - 1)
    lower = np.clip(pos - 1, 0, old.size - 1)
    pick = np.where(np.abs(old[lower] - new) < np.abs(old[pos] - new), lower, pos)
    ok = np.isclose(old[pick], new, rtol=rtol, atol=0)
    if not ok.all():
        bad = new[~ok][0]
        raise ValueError(
            f"resample_energy_axis: new edge {bad:.10g} is not an edge of the 'energy' axis; "
            "bins can only be merged, so every new edge must be an existing edge"
        )
    if np.any(np.diff(pick) <= 0):
        raise ValueError("resample_energy_axis: new edges must map to strictly increasing old edges")
    old_bin = np.arange(old.size - 1)
    label = np.searchsorted(pick, old_bin, side="right") - 1  # new bin of each old bin (-1/m: outside)
    matrix = (label[:, None] == np.arange(new.size - 1)[None, :]).astype(np.float64)
    return pick, matrix


def resample_energy_axis(ds: xr.Dataset, energy_axis: MapAxis, name: str | None = None) -> xr.Dataset:
    """Merge reco-energy bins onto ``energy_axis`` (Gammapy's ``resample_energy_axis``).

    Parameters
    ----------
    ds : `xarray.Dataset`
        A spectrum dataset (an extra ``obs`` dimension is fine).
    energy_axis : `MapAxis`
        New reco axis; its edges must be edges of the current axis (a sub-range is allowed:
        bins outside it are dropped).
    name : str, optional
        Name of the result; kept from ``ds`` when None.
    """
    if not isinstance(energy_axis, MapAxis):
        raise TypeError(f"energy_axis must be a MapAxis, got {type(energy_axis).__name__}")
    if energy_axis.name != "energy":
        raise ValueError(f"resample_energy_axis needs a reco axis named 'energy', got {energy_axis.name!r}")
    old = edges_from_coords(ds, "energy")
    new_vals = energy_axis.edges.to_value(old.unit)
    pick, matrix = group_matrix(old.value, new_vals)
    exact = old.value[pick]  # exact old edge values
    new_axis = MapAxis(exact * old.unit, name="energy")
    group = xr.DataArray(matrix, dims=("energy", _NEW))
    safe = ds["mask_safe"] if "mask_safe" in ds.variables else None
    out = {}
    for n, var in ds.data_vars.items():
        if "energy" not in var.dims:
            out[n] = var.variable.copy(deep=True)
            continue
        rule = RESAMPLE_RULES.get(n)
        if rule is None:
            raise ValueError(
                f"cannot resample variable {n!r}: no resampling rule (see xspec_ds.ops.resample.RESAMPLE_RULES)"
            )
        res = rule(ds[n], safe, group, ds=ds) if getattr(rule, "needs_dataset", False) else rule(ds[n], safe, group)
        res = res.rename({_NEW: "energy"}).transpose(*var.dims)
        out[n] = xr.Variable(res.dims, res.data, dict(var.attrs))
    coords = {c: v.variable.copy(deep=True) for c, v in ds.coords.items() if "energy" not in v.dims}
    coords.update(new_axis.coords())
    for c in ("energy", "energy_min", "energy_max"):
        coords[c].attrs = dict(ds.coords[c].attrs) if c in ds.coords else coords[c].attrs
    result = xr.Dataset(out, coords=coords, attrs=dict(ds.attrs))
    if name is not None:
        result.attrs["name"] = str(name)
    return result


def downsample(ds: xr.Dataset, factor: int, axis_name: str | None = None, name: str | None = None) -> xr.Dataset:
    """Merge every ``factor`` reco bins (Gammapy's ``downsample``).

    ``axis_name=None`` (Gammapy: spatial axes only) raises: a spectrum has no spatial axes, and a
    silent no-op would hide the mistake. ``axis_name="energy"`` requires ``nbin`` divisible by ``factor`` (as Gammapy's
    ``MapAxis.downsample``) and equals `resample_energy_axis` on every ``factor``-th edge;
    the safe mask is ORed within each group (Gammapy ANDs it; see the module notes).
    """
    if not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"downsample: factor must be a positive integer, got {factor!r}")
    if axis_name is None:
        raise ValueError(
            f"downsample({factor}): a spectrum has no spatial axes to downsample (Gammapy's default); "
            "pass axis_name='energy' to merge reco-energy bins"
        )
    if axis_name != "energy":
        raise ValueError(
            f"downsample: only the reco axis 'energy' can be downsampled, got {axis_name!r} "
            "(merging true-energy bins would need a flux-weighted exposure)"
        )
    edges = edges_from_coords(ds, "energy")
    nbin = edges.size - 1
    if nbin % factor:
        raise ValueError(f"downsample: the {nbin} 'energy' bins are not divisible by factor {factor}")
    return resample_energy_axis(ds, MapAxis(edges[::factor], name="energy"), name=name)


def to_image(ds: xr.Dataset, name: str | None = None) -> xr.Dataset:
    """Sum over the reco axis into one bin spanning it (Gammapy's ``to_image``)."""
    edges = edges_from_coords(ds, "energy")
    return resample_energy_axis(ds, MapAxis(u.Quantity([edges[0], edges[-1]]), name="energy"), name=name)
