"""Stacking spectrum datasets: one vectorised reduction along an ``obs`` dimension.

``K`` datasets on the same energy axes are laid side by side along a new dimension ``obs``
and reduced in one step (a dask tree reduction when the arrays are dask-backed), instead of
``K - 1`` sequential pairwise merges as in Gammapy's ``Datasets.stack_reduce``.

Rules (``m_kj``: safe mask of dataset ``k`` in reco bin ``j``; ``s_k = OR_j m_kj``: dataset ``k``
has at least one safe bin; ``X_ki``: exposure in true bin ``i``; ``D_kij``: edisp kernel)

- ``counts_j = sum_k n_kj m_kj`` and ``background_j = sum_k b_kj m_kj`` (Gammapy's
  ``MapDataset.stack`` docstring, which we follow; counts outside each safe mask are lost);
- ``mask_safe_j = OR_k m_kj``;
- ``exposure_i = sum_k X_ki s_k`` (Gammapy weights exposure by ``mask_safe_image``);
- ``edisp_ij = sum_k X_ki D_kij m_kj / exposure_i`` (0 where ``exposure_i == 0``): the
  exposure-weighted mean of the kernels, each with its reco columns outside its safe mask zeroed
  (Gammapy's ``IRFMap.stack`` with ``mask_safe_edisp`` weights). Then for any model with
  true-bin fluxes ``F_i``::

      npred_j(stacked) = sum_i F_i exposure_i edisp_ij
                       = sum_i F_i sum_k X_ki D_kij m_kj = sum_k m_kj npred_kj,

  so the stacked prediction is exactly the sum of the masked predictions (up to rounding);
- ``livetime = sum_k livetime_k s_k`` (Gammapy adds a dataset's livetime only when it has a
  safe bin; we apply that rule to every dataset, including the first);
- GTI: the union of all intervals (times re-expressed relative to the first reference time);
- ``meta_table``: rows concatenated (Gammapy's ``hstack_columns``); datasets without one are
  skipped, as in Gammapy.

Where we deviate from Gammapy 2.1, on purpose:

- ``mask_fit``: ``OR_k mask_fit_k`` where a dataset without ``mask_fit`` counts as all True
  (Gammapy ignores a missing ``mask_fit``, so the union can depend on the order of stacking).
  The result has ``mask_fit`` only if at least one input has one.
- The first dataset is masked like all others (Gammapy's ``stack_reduce`` also masks it via
  ``to_masked``, but the in-place ``MapDataset.stack`` does not mask ``self``; our in-place
  `stack` does, so that ``a.stack(b)`` equals ``stack([a, b])``).
- Models: a stacked `SpectrumDataset` keeps (a copy of) the first dataset's models; Gammapy's
  stacked dataset has none.
- A dataset without ``mask_safe`` counts as all-safe; without ``background``, zero background;
  without ``edisp``, the diagonal kernel (`xspec_ds.axes.overlap_matrix`); without ``exposure``,
  zero exposure. ``livetime`` is kept only if every input has it. Missing ``counts`` raise.

The per-variable rules live in `STACK_RULES`; `register_stack_rule` adds one (e.g. for the
on-off variables ``counts_off``/``acceptance``/``acceptance_off``). A variable with no rule
raises a clear error instead of being dropped silently.
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import astropy.units as u
import numpy as np
import xarray as xr

from ..axes import ENERGY_DIMS, MapAxis, overlap_matrix

__all__ = [
    "OBS_DIM",
    "StackRule",
    "STACK_RULES",
    "register_stack_rule",
    "stack",
    "stack_xarray",
    "stack_obs",
    "stack_in_place",
]

OBS_DIM = "obs"
GTI_VARIABLES = ("gti_start", "gti_stop")


class StackContext:
    """Weights shared by the stack rules, computed once from the ``obs`` Dataset (lazy-safe)."""

    def __init__(self, obs: xr.Dataset):
        self.obs = obs

    @cached_property
    def safe(self) -> xr.DataArray:
        """``m_kj`` (obs, energy), bool."""
        if "mask_safe" in self.obs.variables:
            return self.obs["mask_safe"]
        return xr.ones_like(self.obs["counts"], dtype=bool)

    @cached_property
    def any_safe(self) -> xr.DataArray:
        """``s_k`` (obs,), bool: the dataset has at least one safe bin."""
        return self.safe.any("energy")

    @cached_property
    def exposure(self) -> xr.DataArray:
        """``sum_k X_ki s_k`` (energy_true)."""
        return xr.dot(self.obs["exposure"], self.any_safe.astype(np.float64), dim=OBS_DIM)


@dataclass(frozen=True)
class StackRule:
    """How one variable is stacked.

    Attributes
    ----------
    reduce : callable
        ``reduce(obs, ctx) -> DataArray``: ``obs`` is the Dataset with the ``obs`` dimension,
        ``ctx`` a `StackContext`; returns the stacked variable (``obs`` reduced away).
    fill : str or callable
        What a dataset lacking the variable contributes: ``"zeros"``, ``"ones"`` (True for
        masks), ``"drop"`` (the result lacks the variable), ``"raise"``, or a callable
        ``fill(axes) -> numpy.ndarray`` given ``{"energy": MapAxis, "energy_true": MapAxis}``.
    """

    reduce: Callable[[xr.Dataset, StackContext], xr.DataArray]
    fill: str | Callable = "raise"


def _sum_over_safe(name: str):
    def reduce(obs: xr.Dataset, ctx: StackContext) -> xr.DataArray:
        return xr.where(ctx.safe, obs[name], 0.0).sum(OBS_DIM)

    return reduce


def _reduce_mask_safe(obs, ctx):
    return ctx.safe.any(OBS_DIM)


def _reduce_mask_fit(obs, ctx):
    return obs["mask_fit"].any(OBS_DIM)


def _reduce_exposure(obs, ctx):
    return ctx.exposure


def _reduce_edisp(obs, ctx):
    if "exposure" not in obs.variables:
        raise ValueError("cannot stack edisp without exposure: the kernels are exposure-weighted")
    num = xr.dot(obs["exposure"], obs["edisp"], ctx.safe.astype(np.float64), dim=OBS_DIM)
    den = ctx.exposure
    return xr.where(den > 0, num / den.where(den > 0, 1.0), 0.0).transpose("energy_true", "energy")


def _reduce_livetime(obs, ctx):
    return xr.dot(obs["livetime"], ctx.any_safe.astype(np.float64), dim=OBS_DIM)


def _fill_edisp(axes):
    return overlap_matrix(axes["energy_true"].edges, axes["energy"].edges)


STACK_RULES: dict[str, StackRule] = {
    "counts": StackRule(_sum_over_safe("counts"), "raise"),
    "background": StackRule(_sum_over_safe("background"), "zeros"),
    "mask_safe": StackRule(_reduce_mask_safe, "ones"),
    "mask_fit": StackRule(_reduce_mask_fit, "ones"),
    "exposure": StackRule(_reduce_exposure, "zeros"),
    "edisp": StackRule(_reduce_edisp, _fill_edisp),
    "livetime": StackRule(_reduce_livetime, "drop"),
}


def register_stack_rule(name: str, rule: StackRule) -> None:
    """Add or replace the stacking rule of variable ``name`` (e.g. ``counts_off``)."""
    if not isinstance(rule, StackRule):
        raise TypeError(f"rule must be a StackRule, got {type(rule).__name__}")
    STACK_RULES[name] = rule


# --------------------------------------------------------------------------------------------
# gathering K datasets into one obs Dataset
# --------------------------------------------------------------------------------------------
def _as_xarray(item, k: int) -> xr.Dataset:
    if isinstance(item, xr.Dataset):
        return item
    data = getattr(item, "data", None)
    if isinstance(data, xr.Dataset):
        return data
    raise TypeError(f"stack: item {k} is a {type(item).__name__}, expected a SpectrumDataset or an xarray.Dataset")


def _label(ds: xr.Dataset, k: int) -> str:
    name = ds.attrs.get("name")
    return f"dataset {k} ({name!r})" if name is not None else f"dataset {k}"


def _edge_values(ds: xr.Dataset, dim: str, unit: u.UnitBase, k: int) -> np.ndarray:
    v = ds.variables
    try:
        lo, hi = v[f"{dim}_min"], v[f"{dim}_max"]
    except KeyError:
        raise ValueError(f"{_label(ds, k)}: axis {dim!r} has no '{dim}_min'/'{dim}_max' edge coordinates") from None
    lo_v = np.asarray(lo.values, dtype=np.float64)
    hi_v = np.asarray(hi.values, dtype=np.float64)
    own = lo.attrs.get("units", "TeV")
    if own != unit.to_string():
        f = u.Unit(own).to(unit)
        lo_v, hi_v = lo_v * f, hi_v * f
    return np.append(lo_v, hi_v[-1:])


def _check_axes(dss: list[xr.Dataset], dim: str) -> None:
    """All datasets must share axis ``dim`` (edges equal to 1e-10 relative)."""
    first = dss[0]
    has = [dim in ds.dims for ds in dss]
    if not all(has) and any(has):
        k = next(i for i, h in enumerate(has) if h != has[0])
        state = ("present", "missing") if has[0] else ("missing", "present")
        raise ValueError(f"cannot stack: axis {dim!r} is {state[0]} in {_label(first, 0)} "
                         f"but {state[1]} in {_label(dss[k], k)}")
    if not has[0]:
        return
    unit = u.Unit(first.variables[f"{dim}_min"].attrs.get("units", "TeV"))
    ref = _edge_values(first, dim, unit, 0)
    for k, ds in enumerate(dss[1:], start=1):
        e = _edge_values(ds, dim, unit, k)
        if e.shape != ref.shape or not np.allclose(e, ref, rtol=1e-10, atol=0):
            raise ValueError(
                f"cannot stack: the {dim!r} axis of {_label(ds, k)} ({e.size - 1} bins, "
                f"[{e[0]:.6g}, {e[-1]:.6g}] {unit}) differs from that of {_label(first, 0)} "
                f"({ref.size - 1} bins, [{ref[0]:.6g}, {ref[-1]:.6g}] {unit})"
            )


def _variable_array(ds: xr.Dataset, name: str, dims: tuple, unit: str | None):
    var = ds.variables[name]
    if tuple(var.dims) != dims:
        var = var.transpose(*dims)
    data = var.data if var.chunks is not None else np.asarray(var.values)
    if unit is not None:
        own = var.attrs.get("units", "")
        if own != unit:
            data = data * u.Unit(own).to(u.Unit(unit))
    return data


def _gather(dss: list[xr.Dataset]) -> xr.Dataset:
    """One Dataset with an ``obs`` dimension from K single datasets (arrays stacked, not merged)."""
    first = dss[0]
    for dim in ENERGY_DIMS:
        _check_axes(dss, dim)
    names: list[str] = []
    for ds in dss:
        for n in ds.data_vars:
            if n not in names and n not in GTI_VARIABLES:
                names.append(n)
    unknown = [n for n in names if n not in STACK_RULES]
    if unknown:
        raise ValueError(f"cannot stack variable(s) {unknown}: no stacking rule "
                         "(see xspec_ds.ops.stack.register_stack_rule)")
    axes = {d: MapAxis(_edge_values(first, d, u.Unit(first.variables[f"{d}_min"].attrs.get("units", "TeV")), 0)
                       * u.Unit(first.variables[f"{d}_min"].attrs.get("units", "TeV")), name=d)
            for d in ENERGY_DIMS if d in first.dims}
    coords = {}
    for d in axes:
        for c in (d, f"{d}_min", f"{d}_max"):
            coords[c] = first.variables[c]
    data_vars = {}
    for n in names:
        rule = STACK_RULES[n]
        owner = next(ds for ds in dss if n in ds.variables)
        tmpl = owner.variables[n]
        dims = tuple(d for d in tmpl.dims if d != OBS_DIM)
        is_mask = tmpl.dtype == bool
        unit = None if is_mask else tmpl.attrs.get("units", "")
        arrays = []
        dropped = False
        for k, ds in enumerate(dss):
            if n in ds.variables:
                arrays.append(_variable_array(ds, n, dims, unit))
                continue
            if rule.fill == "drop":
                dropped = True
                break
            if rule.fill == "raise":
                raise ValueError(f"cannot stack: {_label(ds, k)} has no {n!r} while {_label(owner, dss.index(owner))} has")
            shape = tuple(axes[d].nbin for d in dims)
            if callable(rule.fill):
                arrays.append(np.asarray(rule.fill(axes), dtype=tmpl.dtype))
            else:
                arrays.append((np.ones if rule.fill == "ones" else np.zeros)(shape, dtype=tmpl.dtype))
        if dropped:
            continue
        if any(not isinstance(a, np.ndarray) for a in arrays):
            import dask.array as da

            stacked = da.stack([da.asarray(a) for a in arrays])
        else:
            stacked = np.stack(arrays)
        data_vars[n] = xr.Variable((OBS_DIM,) + dims, stacked, dict(tmpl.attrs))
    return xr.Dataset(data_vars, coords=coords)


# --------------------------------------------------------------------------------------------
# GTI and meta_table
# --------------------------------------------------------------------------------------------
def _gti_union(dss: list[xr.Dataset]):
    """Union of the GTIs of ``dss`` as xarray variables (None if no dataset has a GTI)."""
    from astropy.time import Time

    from ..gti import DEFAULT_REFERENCE, GTI

    parts = []
    for ds in dss:
        if "gti_start" not in ds.variables:
            continue
        start = np.asarray(ds.variables["gti_start"].values, dtype=np.float64).ravel()
        stop = np.asarray(ds.variables["gti_stop"].values, dtype=np.float64).ravel()
        attrs = ds.variables["gti_start"].attrs
        scale = u.Unit(attrs.get("units", "s")).to(u.s)
        ok = np.isfinite(start) & np.isfinite(stop)  # obs-dim inputs are NaN-padded
        ref = attrs.get("time_reference", ds.attrs.get("time_reference", DEFAULT_REFERENCE))
        parts.append((start[ok] * scale, stop[ok] * scale, ref))
    if not parts:
        return None
    ref0 = parts[0][2]
    shifts = {ref: (Time(ref, scale="tt") - Time(ref0, scale="tt")).to_value(u.s) if ref != ref0 else 0.0
              for ref in {p[2] for p in parts}}
    start = np.concatenate([p[0] + shifts[p[2]] for p in parts])
    stop = np.concatenate([p[1] + shifts[p[2]] for p in parts])
    return GTI(start * u.s, stop * u.s, ref0).union()


def _split_ecsv(text: str) -> tuple[str, str]:
    """(header incl. the column-name line, data rows) of an ECSV text."""
    lines = text.splitlines(keepends=True)
    k = 0
    while k < len(lines) and lines[k].startswith("#"):
        k += 1
    return "".join(lines[: k + 1]), "".join(lines[k + 1:])


def concat_meta_tables(texts: Sequence[str | None]) -> str | None:
    """Concatenate the rows of ECSV meta tables (None entries skipped).

    When every table has the same ECSV header (same columns, dtypes and meta) the data rows
    are joined as text (fast, loss-free); otherwise the tables are parsed and stacked with
    `astropy.table.vstack` (outer join, later meta conflicts ignored).
    """
    texts = [t for t in texts if t]
    if not texts:
        return None
    if len(texts) == 1:
        return texts[0]
    split = [_split_ecsv(t) for t in texts]
    header = split[0][0]
    if all(h == header for h, _ in split) and '"' not in "".join(d for _, d in split):
        rows = [d if d.endswith("\n") or not d else d + "\n" for _, d in split]
        return header + "".join(rows)
    from astropy.table import vstack

    from ..containers import table_from_text, table_to_text

    return table_to_text(vstack([table_from_text(t) for t in texts], join_type="outer", metadata_conflicts="silent"))


# --------------------------------------------------------------------------------------------
# the reduction
# --------------------------------------------------------------------------------------------
def stack_obs(obs: xr.Dataset) -> xr.Dataset:
    """Reduce a Dataset with an ``obs`` dimension to one stacked dataset (see module docs).

    Works unchanged on numpy- and dask-backed arrays; with dask the result stays lazy and is a
    tree reduction over the ``obs`` chunks. GTI (``gti_start``/``gti_stop`` with dims
    ``(obs, gti)`` NaN-padded, or ``(gti,)``) are computed eagerly (they are small) and merged;
    ``attrs`` (including ``meta_table``) are kept as they are.
    """
    if OBS_DIM not in obs.dims:
        raise ValueError(f"stack_obs: the Dataset has no {OBS_DIM!r} dimension")
    if obs.sizes[OBS_DIM] == 0:
        raise ValueError("cannot stack an empty collection: the 'obs' dimension has length 0")
    if "counts" not in obs.variables:
        raise ValueError("cannot stack: the datasets have no 'counts'")
    ctx = StackContext(obs)
    out = {}
    for n in obs.data_vars:
        if n in GTI_VARIABLES:
            continue
        if n not in STACK_RULES:
            raise ValueError(f"cannot stack variable {n!r}: no stacking rule (see xspec_ds.ops.stack.register_stack_rule)")
        if OBS_DIM not in obs[n].dims:
            raise ValueError(f"cannot stack variable {n!r}: it has no {OBS_DIM!r} dimension")
        da = STACK_RULES[n].reduce(obs, ctx)
        out[n] = xr.Variable(da.dims, da.data, dict(obs[n].attrs))
    coords = {c: obs.coords[c].variable for c in obs.coords if OBS_DIM not in obs.coords[c].dims}
    result = xr.Dataset(out, coords=coords, attrs=dict(obs.attrs))
    gti = _gti_union([obs])
    if gti is not None:
        for k, var in gti.to_xarray().items():
            result[k] = var
        result.attrs["time_reference"] = gti.time_ref.tt.isot
    return result


def stack_xarray(datasets: Sequence[xr.Dataset] | xr.Dataset, name: str | None = None) -> xr.Dataset:
    """Stack spectrum `xarray.Dataset`s (a list, or one Dataset with an ``obs`` dimension)."""
    if isinstance(datasets, xr.Dataset):
        result = stack_obs(datasets)
    else:
        dss = [_as_xarray(d, k) for k, d in enumerate(datasets)]
        if not dss:
            raise ValueError("cannot stack an empty list of datasets")
        obs = _gather(dss)
        result = stack_obs(obs)
        result.attrs = {k: v for k, v in dss[0].attrs.items() if k != "meta_table"}
        gti = _gti_union(dss)
        if gti is not None:
            for k, var in gti.to_xarray().items():
                result[k] = var
            result.attrs["time_reference"] = gti.time_ref.tt.isot
        meta = concat_meta_tables([ds.attrs.get("meta_table") for ds in dss])
        if meta is not None:
            result.attrs["meta_table"] = meta
    if name is not None:
        result.attrs["name"] = str(name)
    return result


def _compute(result: xr.Dataset, progress: bool) -> xr.Dataset:
    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):
        client = None
    if client is not None:
        result = result.persist()
        if progress:
            from distributed import progress as dist_progress

            dist_progress(result)
        return result.compute()
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return result.compute()
    return result.compute()


def _carry_models(models, new_name: str, old_name: str | None):
    """Deep copy of ``models``; a FoVBackgroundModel of the old dataset follows the new name."""
    from ..models import FoVBackgroundModel

    models = _copy.deepcopy(models)
    for m in models:
        if isinstance(m, FoVBackgroundModel) and old_name in (m.datasets_names or []):
            m.datasets_names = [new_name]
            m.name = f"{new_name}-bkg"
    return models


def stack(datasets, name: str | None = None, progress: bool = False, compute: bool | None = None):
    """Stack datasets into one, as a single vectorised reduction over an ``obs`` dimension.

    Parameters
    ----------
    datasets : list of `SpectrumDataset`, list of `xarray.Dataset`, `Datasets`, or `xarray.Dataset`
        The datasets (all on the same ``energy`` and ``energy_true`` axes), or one Dataset whose
        variables carry an ``obs`` dimension (e.g. from ``xr.open_mfdataset(...,
        concat_dim="obs", combine="nested")``).
    name : str, optional
        Name of the stacked dataset (a random one if None and the input is SpectrumDatasets).
    progress : bool
        Show a progress bar while computing a dask-backed result (dask's ``ProgressBar``, or
        ``distributed.progress`` under a ``Client``). Implies ``compute=True``.
    compute : bool, optional
        Compute a dask-backed result now. Default: keep it lazy (unless ``progress``).

    Returns
    -------
    `SpectrumDataset` (same class as the first input) if given dataset objects, else `xarray.Dataset`.
    A stacked `SpectrumDataset` keeps a copy of the first dataset's models (Gammapy drops them).

    Raises
    ------
    ValueError
        Empty input, energy axes that differ (the message names the axis and the dataset), or
        variables without a stacking rule. Inputs are never modified.

    Notes
    -----
    Formulas and the differences from Gammapy 2.1 (``MapDataset.stack``, ``stack_reduce``) are
    in the module docstring of `xspec_ds.ops.stack`.
    """
    from ..models import make_name

    if isinstance(datasets, xr.Dataset):
        items = None
    else:
        items = list(datasets)
        if not items:
            raise ValueError("cannot stack an empty list of datasets")
    objects = items is not None and not isinstance(items[0], xr.Dataset)
    if objects and name is None:
        name = make_name()
    result = stack_xarray(datasets if items is None else items, name=name)
    if compute or progress:
        result = _compute(result, progress)
    if not objects:
        return result
    first = items[0]
    cls = type(first)
    models = _carry_models(first.models, result.attrs["name"], first.name) if len(first.models) else None
    return cls.from_xarray(result, models=models)


def replace_contents(target: xr.Dataset, new: xr.Dataset) -> None:
    """Make ``target`` hold the variables and attrs of ``new``, in place (same Dataset object).

    Uses the public API (``del``, `xarray.Dataset.update`, ``attrs``) so that an accessor view
    (``xr_ds.spectrum``) sees the change. Coordinates are replaced too; energy edges do not change
    in a stack so the index coordinates stay the same.
    """
    for k in list(target.data_vars):
        if k not in new.data_vars or k in GTI_VARIABLES:
            del target[k]
    target.update(new)
    target.attrs.clear()
    target.attrs.update(new.attrs)


def stack_in_place(dataset, other) -> None:
    """``dataset.stack(other)``: stack ``other`` into ``dataset`` in place (name and models kept).

    Equals ``stack([dataset, other])``: both datasets are masked by their safe masks. The new
    arrays are computed first; ``dataset`` is modified only if that succeeds.
    """
    new = stack_xarray([dataset.data, _as_xarray(other, 1)], name=dataset.name)
    replace_contents(dataset.data, new)
    dataset.reset_data_cache()
