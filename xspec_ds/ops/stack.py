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

Other notes: exposures in different units are converted to the first dataset's unit; edges must
agree to 1e-10 relative and the first dataset's edges are kept exactly. For one Dataset with an
``obs`` dimension, ``attrs`` (``meta_table`` included) are kept as given and the GTI union is
computed eagerly (it is small and its length is data-dependent). Because ``exposure`` only
counts datasets with a safe bin, slicing away all safe bins of a dataset before stacking drops
its exposure (npred is unchanged: its kernel columns are zero anyway). Gammapy's
``nan_to_num`` option is not offered: `xspec_ds.containers.validate_dataset` already rejects
non-finite counts, background, exposure and kernels.

The per-variable rules live in `STACK_RULES`; `register_stack_rule` adds one (e.g. for the
on-off variables ``counts_off``/``acceptance``/``acceptance_off``). A variable with no rule
raises a clear error instead of being dropped silently.
"""

from __future__ import annotations

import copy as _copy
import functools
import operator
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


def _is_lazy(a) -> bool:
    return hasattr(a, "__dask_graph__")


class StackContext:
    """Weights shared by the stack rules, computed once (numpy or dask arrays, ``obs`` first)."""

    def __init__(self, arrays: dict):
        self.arrays = arrays

    @cached_property
    def safe(self):
        """``m_kj``, shape (obs, energy), bool."""
        if "mask_safe" in self.arrays:
            return self.arrays["mask_safe"]
        return np.ones_like(self.arrays["counts"], dtype=bool)

    @cached_property
    def any_safe(self):
        """``s_k``, shape (obs,), float 0/1: the dataset has at least one safe bin."""
        return self.safe.any(axis=1).astype(np.float64)

    @cached_property
    def exposure(self):
        """``sum_k X_ki s_k``, shape (energy_true,)."""
        return np.einsum("k,ki->i", self.any_safe, self.arrays["exposure"])


@dataclass(frozen=True)
class StackRule:
    """How one variable is stacked.

    Attributes
    ----------
    reduce : callable
        ``reduce(arrays, ctx) -> array``: ``arrays`` maps variable names to numpy or dask arrays
        whose first axis is ``obs`` (other axes in the variable's dim order), ``ctx`` is a
        `StackContext`; returns the stacked array (``obs`` reduced away, other axes unchanged).
        Use array methods / numpy functions that dask also implements, so lazy inputs stay lazy.
    fill : str or callable
        What a dataset lacking the variable contributes: ``"zeros"``, ``"ones"`` (True for
        masks), ``"drop"`` (the result lacks the variable), ``"raise"``, or a callable
        ``fill(axes) -> numpy.ndarray`` given ``{"energy": MapAxis, "energy_true": MapAxis}``.
    """

    reduce: Callable[[dict, StackContext], object]
    fill: str | Callable = "raise"


def _masked_sum(name: str, arrays: dict, ctx: StackContext):
    """``sum_k v_kj m_kj`` of variable ``name``: the rule of ``counts`` and ``background``.

    Bound with `functools.partial` (not a closure built at import), so that mutation testing
    (``scripts/mutation_test.py``) reaches this body."""
    return np.where(ctx.safe, arrays[name], 0.0).sum(axis=0)


def _reduce_mask_safe(arrays, ctx):
    return ctx.safe.any(axis=0)


def _reduce_mask_fit(arrays, ctx):
    return arrays["mask_fit"].any(axis=0)


def _reduce_exposure(arrays, ctx):
    return ctx.exposure


def _reduce_edisp(arrays, ctx):
    if "exposure" not in arrays:
        raise ValueError("cannot stack edisp without exposure: the kernels are exposure-weighted")
    num = np.einsum("ki,kij,kj->ij", arrays["exposure"], arrays["edisp"], ctx.safe.astype(np.float64))
    den = ctx.exposure
    ok = den > 0
    return np.where(ok[:, None], num / np.where(ok, den, 1.0)[:, None], 0.0)


def _reduce_livetime(arrays, ctx):
    return np.einsum("k,k->", arrays["livetime"], ctx.any_safe)


def _fill_edisp(axes):
    return overlap_matrix(axes["energy_true"].edges, axes["energy"].edges)


STACK_RULES: dict[str, StackRule] = {
    "counts": StackRule(functools.partial(_masked_sum, "counts"), "raise"),
    "background": StackRule(functools.partial(_masked_sum, "background"), "zeros"),
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
# gathering K datasets into arrays with a leading obs axis
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


def _raw(var: xr.Variable):
    """The variable's array: numpy as is, dask as is, anything else (lazy backend) loaded."""
    data = var._data  # numpy or dask array behind the Variable (avoids the slow .chunks protocol check)
    if isinstance(data, np.ndarray) or _is_lazy(data):
        return data
    return np.asarray(var.values)


def _unit_of(var: xr.Variable, default: str) -> str:
    return var.attrs.get("units", default)


def _edge_pair(v, ds: xr.Dataset, dim: str, k: int, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) bin edges of ``dim`` in ``unit`` (``v``: the dataset's variables)."""
    lo, hi = v.get(f"{dim}_min"), v.get(f"{dim}_max")
    if lo is None or hi is None:
        raise ValueError(f"{_label(ds, k)}: axis {dim!r} has no '{dim}_min'/'{dim}_max' edge coordinates")
    lo_v, hi_v = _raw(lo), _raw(hi)
    if _is_lazy(lo_v) or _is_lazy(hi_v):  # edges are small: always compare them eagerly
        lo_v, hi_v = np.asarray(lo.values), np.asarray(hi.values)
    own = _unit_of(lo, "TeV")
    if own != unit:
        f = u.Unit(own).to(u.Unit(unit))
        lo_v, hi_v = lo_v * f, hi_v * f
    return lo_v, hi_v


def _edges(ds: xr.Dataset, dim: str, k: int, unit: str) -> np.ndarray:
    lo, hi = _edge_pair(ds.variables, ds, dim, k, unit)
    return np.concatenate([np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)[-1:]])


def _check_axes(dss: list[xr.Dataset], dim: str, varmaps: list) -> None:
    """All datasets must share axis ``dim`` (edges equal to 1e-10 relative); vectorised over K."""
    first = dss[0]
    has = [dim in ds.dims for ds in dss]
    if not all(has) and any(has):
        k = next(i for i, h in enumerate(has) if h != has[0])
        state = ("present", "missing") if has[0] else ("missing", "present")
        raise ValueError(
            f"cannot stack: axis {dim!r} is {state[0]} in {_label(first, 0)} but {state[1]} in {_label(dss[k], k)}"
        )
    if not has[0]:
        return
    unit = _unit_of(varmaps[0][f"{dim}_min"], "TeV")
    pairs = [_edge_pair(v, ds, dim, k, unit) for k, (v, ds) in enumerate(zip(varmaps, dss, strict=True))]
    ref_lo, ref_hi = pairs[0]
    sizes = np.array([p[0].size for p in pairs])
    bad = np.flatnonzero(sizes != ref_lo.size)
    if not bad.size:
        lo = np.stack([p[0] for p in pairs])
        hi = np.stack([p[1] for p in pairs])
        ok = (np.abs(lo - ref_lo) <= 1e-10 * np.abs(ref_lo)).all(axis=1)
        ok &= (np.abs(hi - ref_hi) <= 1e-10 * np.abs(ref_hi)).all(axis=1)
        bad = np.flatnonzero(~ok)
    if bad.size:
        k = int(bad[0])
        e = _edges(dss[k], dim, k, unit)
        ref = _edges(first, dim, 0, unit)
        raise ValueError(
            f"cannot stack: the {dim!r} axis of {_label(dss[k], k)} ({e.size - 1} bins, "
            f"[{e[0]:.6g}, {e[-1]:.6g}] {unit}) differs from that of {_label(first, 0)} "
            f"({ref.size - 1} bins, [{ref[0]:.6g}, {ref[-1]:.6g}] {unit})"
        )


def _gather(dss: list[xr.Dataset]) -> tuple[dict, dict, dict]:
    """Arrays with a leading ``obs`` axis from K single datasets (stacked, not merged).

    Returns ``(arrays, variables_template, coords)``.
    """
    first = dss[0]
    varmaps = [ds.variables for ds in dss]
    for dim in ENERGY_DIMS:
        _check_axes(dss, dim, varmaps)
    names: list[str] = []
    for ds in dss:
        for n in ds.data_vars:
            if n not in names and n not in GTI_VARIABLES:
                names.append(n)
    unknown = [n for n in names if n not in STACK_RULES]
    if unknown:
        raise ValueError(
            f"cannot stack variable(s) {unknown}: no stacking rule (see xspec_ds.ops.stack.register_stack_rule)"
        )
    axes = {}
    coords = {}
    for d in ENERGY_DIMS:
        if d in first.dims:
            unit = _unit_of(first.variables[f"{d}_min"], "TeV")
            axes[d] = MapAxis(_edges(first, d, 0, unit) * u.Unit(unit), name=d)
            for c in (d, f"{d}_min", f"{d}_max"):
                var = first.variables[c]
                coords[c] = var.compute() if _is_lazy(var._data) else var
    arrays, templates = {}, {}
    for n in names:
        rule = STACK_RULES[n]
        owner_k = next(k for k, v in enumerate(varmaps) if n in v)
        tmpl = varmaps[owner_k][n]
        dims = tuple(tmpl.dims)
        unit = None if tmpl.dtype == bool else _unit_of(tmpl, "")
        parts = []
        for k, ds in enumerate(dss):
            var = varmaps[k].get(n)
            if var is not None:
                if var.dims != dims:
                    var = var.transpose(*dims)
                a = _raw(var)
                if unit is not None and _unit_of(var, "") != unit:
                    a = a * u.Unit(_unit_of(var, "")).to(u.Unit(unit))
                parts.append(a)
                continue
            if rule.fill == "drop":
                parts = None
                break
            if rule.fill == "raise":
                raise ValueError(
                    f"cannot stack: {_label(ds, k)} has no {n!r} while {_label(dss[owner_k], owner_k)} has"
                )
            if callable(rule.fill):
                parts.append(np.asarray(rule.fill(axes), dtype=tmpl.dtype))
            else:
                shape = tuple(axes[d].nbin for d in dims)
                parts.append((np.ones if rule.fill == "ones" else np.zeros)(shape, dtype=tmpl.dtype))
        if parts is None:
            continue
        if any(_is_lazy(a) for a in parts):
            import dask.array as da

            arrays[n] = da.stack([da.asarray(a) for a in parts])
        else:
            arrays[n] = np.stack(parts)
        templates[n] = tmpl
    return arrays, templates, coords


def _obs_arrays(obs: xr.Dataset) -> tuple[dict, dict, dict]:
    """Arrays with a leading ``obs`` axis from one Dataset with an ``obs`` dimension."""
    if OBS_DIM not in obs.dims:
        raise ValueError(f"stack: the Dataset has no {OBS_DIM!r} dimension")
    if obs.sizes[OBS_DIM] == 0:
        raise ValueError("cannot stack an empty collection: the 'obs' dimension has length 0")
    arrays, templates = {}, {}
    for n, var in obs.data_vars.items():
        if n in GTI_VARIABLES:
            continue
        if n not in STACK_RULES:
            raise ValueError(
                f"cannot stack variable {n!r}: no stacking rule (see xspec_ds.ops.stack.register_stack_rule)"
            )
        if OBS_DIM not in var.dims:
            raise ValueError(f"cannot stack variable {n!r}: it has no {OBS_DIM!r} dimension")
        rest = tuple(d for d in var.dims if d != OBS_DIM)
        v = var.variable.transpose(OBS_DIM, *rest)
        arrays[n] = _raw(v)
        templates[n] = xr.Variable(rest, np.empty((0,) * len(rest)), dict(var.attrs))
    coords = {c: obs.coords[c].variable.compute() for c in obs.coords if OBS_DIM not in obs.coords[c].dims}
    return arrays, templates, coords


def _reduce(arrays: dict, templates: dict, coords: dict, attrs: dict, gti=None) -> xr.Dataset:
    if "counts" not in arrays:
        raise ValueError("cannot stack: the datasets have no 'counts'")
    reduced = _reduce_lazy(arrays) if _use_partials(arrays) else None
    if reduced is None:
        ctx = StackContext(arrays)
        reduced = {n: STACK_RULES[n].reduce(arrays, ctx) for n in arrays}
    out = {}
    for n in arrays:
        tmpl = templates[n]
        out[n] = xr.Variable(tmpl.dims, reduced[n], dict(tmpl.attrs))
    attrs = dict(attrs)
    if gti is not None:
        out.update(gti)
        attrs["time_reference"] = gti["gti_start"].attrs["time_reference"]
    return xr.Dataset(out, coords=coords, attrs=attrs)


# --------------------------------------------------------------------------------------------
# lazy inputs: partial sums per obs block inside one task, then a tree of sums
# --------------------------------------------------------------------------------------------
def _edisp_numerator(arrays, ctx):
    """``sum_k X_ki D_kij m_kj`` over the datasets of a block (`_reduce_edisp` before the division)."""
    if "exposure" not in arrays:
        raise ValueError("cannot stack edisp without exposure: the kernels are exposure-weighted")
    return np.einsum("ki,kij,kj->ij", arrays["exposure"], arrays["edisp"], ctx.safe.astype(np.float64))


PARTIALS = {
    "counts": (functools.partial(_masked_sum, "counts"), "sum"),
    "background": (functools.partial(_masked_sum, "background"), "sum"),
    "mask_safe": (_reduce_mask_safe, "any"),
    "mask_fit": (_reduce_mask_fit, "any"),
    "exposure": (_reduce_exposure, "sum"),
    "edisp": (_edisp_numerator, "sum"),
    "livetime": (_reduce_livetime, "sum"),
}
"""Decomposable form of the default rules: ``(partial(arrays, ctx), combine)``. Every stacked
quantity is a sum (or OR) over datasets, except ``edisp``, a ratio of two sums (its numerator
here and the exposure), divided once at the end (`_finalize_partials`)."""
_DEFAULT_RULES = dict(STACK_RULES)
PARTIALS_FAN_IN = 8
"""Partial results combined by one task of the aggregation tree."""


def _use_partials(arrays: dict) -> bool:
    """Dask inputs whose every variable has a default rule (user rules go through the generic path)."""
    return (
        all(_is_lazy(a) for a in arrays.values())
        and all(n in PARTIALS and STACK_RULES.get(n) is _DEFAULT_RULES[n] for n in arrays)
        and "counts" in arrays
    )


def _block_partials(names: tuple, *blocks) -> dict:
    """Partial stacks of one block of datasets (numpy arrays, ``obs`` first): one dask task."""
    arrays = dict(zip(names, blocks, strict=True))
    ctx = StackContext(arrays)
    return {n: PARTIALS[n][0](arrays, ctx) for n in names}


def _dict_partials(names: tuple, block: dict) -> dict:
    return _block_partials(names, *(block[n] for n in names))


def _common_source(blocks: dict, names: tuple, keys: list):
    """The key of the task whose output dict holds every variable's block (``xs.open_mfdataset``
    reads all variables of a block of files in one task), else None.

    Taking that dict directly makes "read a block of files, reduce it" a chain of two tasks, so
    the threaded scheduler reduces each block as soon as it is read instead of reading ahead.
    """
    source = None
    for n, key in zip(names, keys, strict=True):
        layer = blocks[n].dask.layers.get(blocks[n].name)
        task = layer.get(key) if layer is not None else None
        if not (isinstance(task, tuple) and len(task) == 3 and task[0] is operator.getitem and task[2] == n):
            return None
        if source is not None and task[1] != source:
            return None
        source = task[1]
    return source


def _combine_partials(*parts: dict) -> dict:
    out = {}
    for n in parts[0]:
        if PARTIALS[n][1] == "any":
            out[n] = np.logical_or.reduce([p[n] for p in parts])
        else:
            out[n] = np.sum([p[n] for p in parts], axis=0)
    return out


def _finalize_partials(total: dict) -> dict:
    out = dict(total)
    if "edisp" in out:
        num, den = out["edisp"], out["exposure"]
        ok = den > 0
        out["edisp"] = np.where(ok[:, None], num / np.where(ok, den, 1.0)[:, None], 0.0)
    return out


def _reduce_lazy(arrays: dict) -> dict | None:
    """The stack of dask-backed ``arrays`` as a graph of one task per ``obs`` block (all variables
    of the block reduced to partial sums there, so a block is dropped as soon as it is reduced),
    then a tree of `_combine_partials` with fan-in `PARTIALS_FAN_IN`. Returns single-chunk dask
    arrays, or None when the blocks do not line up (then the generic dask path is used)."""
    import dask
    import dask.array as da
    from dask.base import tokenize
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    names = tuple(arrays)
    obs_chunks = arrays["counts"].chunks[0]
    blocks = {}
    for n in names:
        a = arrays[n]
        if a.ndim == 0 or a.shape[0] != sum(obs_chunks):
            return None
        a = a.rechunk((obs_chunks,) + tuple((s,) for s in a.shape[1:]))  # no-op for open_mfdataset
        blocks[n] = a
    token = tokenize(*(blocks[n] for n in names))
    part, comb, final = f"stack-partials-{token}", f"stack-combine-{token}", f"stack-final-{token}"
    func = functools.partial(_block_partials, names)
    layer = {}
    for g in range(len(obs_chunks)):
        keys = [(blocks[n].name, g) + (0,) * (blocks[n].ndim - 1) for n in names]
        source = _common_source(blocks, names, keys)
        if source is not None:  # all variables are items of one task's dict (open_mfdataset): use it directly
            layer[(part, g)] = (functools.partial(_dict_partials, names), source)
        else:
            layer[(part, g)] = (func, *keys)
    level = [(part, g) for g in range(len(obs_chunks))]
    depth = 0
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), PARTIALS_FAN_IN):
            key = (comb, depth, i // PARTIALS_FAN_IN)
            layer[key] = (_combine_partials, *level[i : i + PARTIALS_FAN_IN])
            nxt.append(key)
        level, depth = nxt, depth + 1
    layer[final] = (_finalize_partials, level[0])
    graph = HighLevelGraph.from_collections(final, layer, dependencies=list(blocks.values()))
    total = Delayed(final, graph)
    out = {}
    for n in names:
        a = blocks[n]
        dtype = np.dtype(bool) if PARTIALS[n][1] == "any" else np.result_type(a.dtype, np.float64)
        item = dask.delayed(operator.getitem)(total, n)
        out[n] = da.from_delayed(item, a.shape[1:], dtype=dtype, meta=np.empty((0,) * (a.ndim - 1), dtype=dtype))
    return out


# --------------------------------------------------------------------------------------------
# GTI and meta_table
# --------------------------------------------------------------------------------------------
def _union_intervals(start: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge overlapping intervals (vectorised: sort, running maximum of the stops)."""
    if start.size == 0:
        return start, stop
    order = np.argsort(start, kind="stable")
    s, e = start[order], stop[order]
    run_end = np.maximum.accumulate(e)
    idx = np.flatnonzero(np.concatenate([[True], s[1:] > run_end[:-1]]))
    return s[idx], np.maximum.reduceat(e, idx)


def _gti_union(dss: list[xr.Dataset]) -> dict | None:
    """Union of the GTIs of ``dss`` as ``gti_start``/``gti_stop`` variables (None if no GTI).

    Times are re-expressed relative to the first dataset's reference time (astropy `Time` is
    used only for references that differ from it).
    """
    from ..gti import DEFAULT_REFERENCE

    parts = []
    first_attrs = None
    for ds in dss:
        v = ds.variables
        if "gti_start" not in v:
            continue
        start = np.asarray(v["gti_start"].values, dtype=np.float64).ravel()
        stop = np.asarray(v["gti_stop"].values, dtype=np.float64).ravel()
        attrs = v["gti_start"].attrs
        first_attrs = first_attrs or dict(attrs)
        unit = attrs.get("units", "s")
        scale = 1.0 if unit == "s" else u.Unit(unit).to(u.s)
        ok = np.isfinite(start) & np.isfinite(stop)  # obs-dim inputs are NaN-padded
        ref = attrs.get("time_reference", ds.attrs.get("time_reference", DEFAULT_REFERENCE))
        parts.append((start[ok] * scale, stop[ok] * scale, ref))
    if not parts:
        return None
    ref0 = parts[0][2]
    refs = {p[2] for p in parts}
    shifts = {ref0: 0.0}
    if len(refs) > 1:
        from astropy.time import Time

        t0 = Time(ref0, scale="tt")
        shifts.update({ref: (Time(ref, scale="tt") - t0).to_value(u.s) for ref in refs if ref != ref0})
    start, stop = _union_intervals(
        np.concatenate([p[0] + shifts[p[2]] for p in parts]), np.concatenate([p[1] + shifts[p[2]] for p in parts])
    )
    attrs = {"units": "s", "time_reference": ref0, "time_scale": first_attrs.get("time_scale", "tt")}
    return {
        "gti_start": xr.Variable("gti", start, dict(attrs, long_name="GTI start")),
        "gti_stop": xr.Variable("gti", stop, dict(attrs, long_name="GTI stop")),
    }


def _split_ecsv(text: str) -> tuple[str, str]:
    """(header incl. the column-name line, data rows) of an ECSV text."""
    lines = text.splitlines(keepends=True)
    k = 0
    while k < len(lines) and lines[k].startswith("#"):
        k += 1
    return "".join(lines[: k + 1]), "".join(lines[k + 1 :])


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
    ``attrs`` (including ``meta_table``, which describes the whole collection) are kept.
    """
    arrays, templates, coords = _obs_arrays(obs)
    return _reduce(arrays, templates, coords, dict(obs.attrs), _gti_union([obs]))


def stack_xarray(datasets: Sequence[xr.Dataset] | xr.Dataset, name: str | None = None) -> xr.Dataset:
    """Stack spectrum `xarray.Dataset`s (a list, or one Dataset with an ``obs`` dimension)."""
    if isinstance(datasets, xr.Dataset):
        result = stack_obs(datasets)
    else:
        dss = [_as_xarray(d, k) for k, d in enumerate(datasets)]
        if not dss:
            raise ValueError("cannot stack an empty list of datasets")
        arrays, templates, coords = _gather(dss)
        attrs = {k: v for k, v in dss[0].attrs.items() if k != "meta_table"}
        meta = concat_meta_tables([ds.attrs.get("meta_table") for ds in dss])
        if meta is not None:
            attrs["meta_table"] = meta
        result = _reduce(arrays, templates, coords, attrs, _gti_union(dss))
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

    Public API only (``del``, one `xarray.Dataset.update`, ``attrs``), so an accessor view
    (``xr_ds.spectrum``) sees the change, and Variable objects that other Datasets may share with
    ``target`` are replaced, never mutated. Coordinates are untouched: a stack keeps the edges.
    """
    for k in list(target.data_vars):
        if k not in new.data_vars or k in GTI_VARIABLES:
            del target[k]  # GTI: its length changes, so the old pair must go before the update
    target.update({k: v.variable for k, v in new.data_vars.items()})
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
