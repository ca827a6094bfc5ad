"""`SpectrumDataset`: the seed's object API on top of an `xarray.Dataset`.

The class is thin: it holds the Dataset (``.data``) and the models, and delegates every
formula to a module that owns it (`xspec_ds.forward`, `xspec_ds.stats`, `xspec_ds.ops`,
`xspec_ds.io`, `xspec_ds.plotting`). The ``ds.spectrum`` accessor returns one of these as a
view on a Dataset (no copy).
"""

from __future__ import annotations

import copy as _copy

import astropy.units as u
import numpy as np
import xarray as xr

from . import forward, likelihood, stats, xrayfit
from .axes import MapAxis, SpectrumGeom, axis_from_dataset, overlap_matrix
from .containers import as_dataarray, build_dataset, table_from_text, validate_dataset
from .gti import GTI
from .models import FoVBackgroundModel, Models, SkyModel, make_name
from .models.spectral import ENERGY_UNIT, linear_norm_parameter

__all__ = ["SpectrumDataset", "SpectrumEvaluator", "get_random_state"]

CM2S = u.Unit("cm2 s")
_ARRAY_NAMES = ("counts", "exposure", "background", "edisp", "mask_safe", "mask_fit")


def get_random_state(random_state):
    """An int seed, ``numpy.random.Generator``/``RandomState``, ``"random-seed"`` or ``"global-rng"``
    -> a random generator (an int gives numpy's ``RandomState(seed)``, as Gammapy)."""
    if isinstance(random_state, (np.random.Generator, np.random.RandomState)):
        return random_state
    if random_state == "random-seed":
        return np.random.RandomState(None)
    if random_state == "global-rng":
        return np.random.mtrand._rand
    if isinstance(random_state, (int, np.integer)):
        return np.random.RandomState(int(random_state))
    raise ValueError(
        f"invalid random_state {random_state!r}: use an int, a numpy Generator/RandomState, "
        "'random-seed' or 'global-rng'"
    )


def _variable_property(name: str, doc: str) -> property:
    """A dataset attribute backed by the Dataset variable ``name`` (get, validated set)."""
    return property(lambda self: self._get(name), lambda self, value: self._set(name, value), doc=doc)


class _HotArrays:
    """Numpy views of a Dataset's arrays in canonical units, for the likelihood hot path.

    Only views are cached (never converted copies), so in-place edits such as
    ``ds.exposure.values *= 2`` or ``ds.mask_fit.values[:3] = False`` are seen: the exposure unit
    scale and the ``mask_safe & mask_fit`` combination are applied on access.
    """

    __slots__ = (
        "keys",
        "counts",
        "background",
        "_exposure",
        "_exposure_scale",
        "edisp",
        "_masks",
        "e_lo",
        "e_hi",
        "nodes",
    )

    @property
    def exposure(self):
        exp = self._exposure
        return exp if exp is None or self._exposure_scale == 1.0 else exp * self._exposure_scale

    @property
    def mask(self):
        masks = self._masks
        return masks[0] & masks[1] if len(masks) == 2 else (masks[0] if masks else None)

    def __init__(self, ds: xr.Dataset, keys):
        v = ds.variables
        self.keys = keys
        self.counts = np.asarray(v["counts"].values, dtype=np.float64) if "counts" in v else None
        self.background = np.asarray(v["background"].values, dtype=np.float64) if "background" in v else None
        if "exposure" in v:
            self._exposure_scale = float(u.Unit(v["exposure"].attrs.get("units", "m2 s")).to(CM2S))
            self._exposure = np.asarray(v["exposure"].values, dtype=np.float64)
            edges = axis_from_dataset(ds, "energy_true").edges.to_value(ENERGY_UNIT)
            self.e_lo, self.e_hi = edges[:-1], edges[1:]
        else:
            self._exposure = self.e_lo = self.e_hi = None
            self._exposure_scale = 1.0
        self.edisp = forward.prepare_kernel(np.asarray(v["edisp"].values, dtype=np.float64)) if "edisp" in v else None
        self._masks = tuple(np.asarray(v[m].values, dtype=bool) for m in ("mask_safe", "mask_fit") if m in v)
        self.nodes = {}


class SpectrumEvaluator:
    """Computes ``npred_signal`` of one sky model on one dataset (Gammapy's ``MapEvaluator``).

    It keeps the quadrature nodes for the dataset's true-energy bins, so repeated evaluations
    during a fit cost one model evaluation, one product and one matrix-vector fold.
    """

    def __init__(self, model: SkyModel, dataset: "SpectrumDataset"):
        self.model = model
        self.dataset = dataset

    def _nodes(self, hot: _HotArrays):
        key = id(self.model.spectral_model)
        if key not in hot.nodes:
            hot.nodes[key] = forward.nodes_for(self.model.spectral_model, hot.e_lo, hot.e_hi)
        return hot.nodes[key]

    def compute_flux(self) -> np.ndarray:
        hot = self.dataset._hot()
        return forward.integrate_flux(self.model.spectral_model, hot.e_lo, hot.e_hi, self._nodes(hot))

    def compute_npred(self) -> np.ndarray:
        hot = self.dataset._hot()
        if hot.exposure is None:
            raise ValueError(f"dataset {self.dataset.name!r} has no exposure: cannot predict signal counts")
        flux = forward.integrate_flux(self.model.spectral_model, hot.e_lo, hot.e_hi, self._nodes(hot))
        return forward.npred_signal(flux, hot.exposure, hot.edisp)

    def compute_npred_deriv(self, params) -> np.ndarray:
        """``d npred_signal / d p.value`` for each parameter in ``params``: shape (k, n_reco)."""
        hot = self.dataset._hot()
        dflux = self.model.spectral_model._integral_deriv(hot.e_lo, hot.e_hi, params, self._nodes(hot))
        return forward.npred_signal(dflux, hot.exposure, hot.edisp)


class SpectrumDataset:
    """Spectrum dataset for likelihood fitting (the seed API of Gammapy's ``SpectrumDataset``).

    Parameters
    ----------
    models : `Models`, `SkyModel`, `SpectralModel` or list, optional
    counts, background, mask_safe, mask_fit : `xarray.DataArray`, dims ``("energy",)``
    exposure : `xarray.DataArray`, dims ``("energy_true",)``, unit area x time
    edisp : `xarray.DataArray`, dims ``("energy_true", "energy")``
    name : str, optional
    gti : `GTI`, optional
    meta_table : `astropy.table.Table`, optional
    livetime : Quantity, optional

    Examples
    --------
    >>> import xspec_ds as xs
    >>> axis = xs.MapAxis.from_energy_bounds("0.1 TeV", "100 TeV", 30)
    >>> ds = xs.SpectrumDataset.create(axis)
    >>> ds.counts.dims
    ('energy',)
    """

    stat_type = xrayfit.StatType("cash")  # settable to a chi2 type (xspec_ds.xrayfit)
    tag = "SpectrumDataset"
    psf = None
    mask_safe_psf = None

    def __init__(
        self,
        models=None,
        counts=None,
        exposure=None,
        background=None,
        edisp=None,
        mask_safe=None,
        mask_fit=None,
        name=None,
        gti=None,
        meta_table=None,
        livetime=None,
        **kwargs,
    ):
        data = kwargs.pop("_data", None)
        arrays = {
            "counts": counts,
            "exposure": exposure,
            "background": background,
            "edisp": edisp,
            "mask_safe": mask_safe,
            "mask_fit": mask_fit,
        }
        arrays.update({k: kwargs.pop(k) for k in list(kwargs) if k in ("counts_off", "acceptance", "acceptance_off")})
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected argument(s) {sorted(kwargs)}")
        if data is None:
            data = build_dataset(arrays, name=name or make_name(), gti=gti, meta_table=meta_table, livetime=livetime)
        self._init_view(data)
        self.models = models

    def _init_view(self, data: xr.Dataset) -> None:
        self._data = data
        self._cache = None
        self._evaluators = {}
        self._models = Models()
        self._xray_view = None

    @classmethod
    def from_xarray(cls, data: xr.Dataset, models=None, validate: bool = True) -> "SpectrumDataset":
        """A view on an existing `xarray.Dataset` (no copy); validates it unless told not to."""
        if not isinstance(data, xr.Dataset):
            raise TypeError(f"expected an xarray.Dataset, got {type(data).__name__}")
        if validate:
            validate_dataset(data)
        new = cls.__new__(cls)
        new._init_view(data)
        new.models = models
        return new

    # data access ------------------------------------------------------------------------
    @property
    def data(self) -> xr.Dataset:
        """The backing `xarray.Dataset`."""
        return self._data

    def _get(self, name):
        return self._data[name] if name in self._data.variables else None

    def _set(self, name, value):
        if value is None:
            if name in self._data.variables:
                del self._data[name]
        else:
            axes = {d: axis_from_dataset(self._data, d) for d in ("energy", "energy_true") if d in self._data.dims}
            da = as_dataarray(name, value, axes)
            old = self._data.variables[name] if name in self._data.variables else None
            self._data[name] = da.variable
            try:
                validate_dataset(self._data)
            except Exception:  # restore the previous array: a rejected assignment changes nothing
                if old is None:
                    del self._data[name]
                else:
                    self._data[name] = old
                raise
        self.reset_data_cache()

    counts = _variable_property("counts", "Counts spectrum (energy).")
    exposure = _variable_property("exposure", "Exposure (energy_true), area x time.")
    background = _variable_property("background", "Background counts (energy).")
    edisp = _variable_property("edisp", "Energy dispersion kernel (energy_true, energy).")
    mask_safe = _variable_property("mask_safe", "Safe data range (energy).")
    mask_fit = _variable_property("mask_fit", "Fit range (energy).")

    def _hot(self) -> _HotArrays:
        """Cached numpy arrays; rebuilt when a variable object or its buffer changes."""
        get = self._data._variables.get  # the plain dict behind ``.variables`` (no Frozen wrapper: 2x faster)
        keys = [None if (x := get(n)) is None else (id(x), id(x._data)) for n in _ARRAY_NAMES]
        cache = self._cache
        if cache is None or cache.keys != keys:
            cache = self._cache = _HotArrays(self._data, keys)
        return cache

    def _refresh_kernels(self) -> None:
        """Drop the cached arrays if the dispersion matrix was edited in place since its sparse
        copy or its bands were made (`xspec_ds.forward.kernel_fingerprint`: one matrix-vector
        product). Called where a fit or an estimator starts, so in-place edits between fits are
        always seen; between direct `npred` / `stat_sum` calls, edits far out in a banded kernel's
        tails or anywhere in a sparse one need `reset_data_cache`."""
        hot = self._cache
        kernel = None if hot is None else hot.edisp
        if isinstance(kernel, forward.SparseKernel | forward.BandedKernel) and not kernel.is_current():
            self.reset_data_cache()

    def reset_data_cache(self) -> None:
        """Drop cached arrays and evaluators (they are rebuilt on next use)."""
        self._cache = None
        self._evaluators = {}
        self._xray_view = None

    @property
    def name(self) -> str:
        """``attrs["name"]``; for one spectrum of an ``obs`` collection (``obs_ds.isel(obs=k)``)
        without one, its scalar ``obs`` label (the file's dataset name); else a new random name.
        The name is stored in a new attrs dict: views made by ``isel`` share their parent's
        dict, and must not share a name."""
        name = self._data.attrs.get("name")
        if name is None:
            obs = self._data.coords.get("obs")
            name = str(obs.values.item()) if obs is not None and obs.ndim == 0 else make_name()
            self._data.attrs = {**self._data.attrs, "name": name}
        return name

    @name.setter
    def name(self, value: str) -> None:
        self._data.attrs = {**self._data.attrs, "name": str(value)}  # not the dict an isel view shares

    @property
    def gti(self) -> GTI | None:
        return GTI.from_xarray(self._data)

    @gti.setter
    def gti(self, gti: GTI | None) -> None:
        for k in ("gti_start", "gti_stop"):
            if k in self._data.variables:
                del self._data[k]
        if gti is not None:
            for k, var in gti.to_xarray().items():
                self._data[k] = var
            self._data.attrs["time_reference"] = gti.time_ref.tt.isot

    @property
    def meta_table(self):
        text = self._data.attrs.get("meta_table")
        return table_from_text(text) if text else None

    @meta_table.setter
    def meta_table(self, table) -> None:
        from .containers import table_to_text

        if table is None:
            self._data.attrs.pop("meta_table", None)
        else:
            self._data.attrs["meta_table"] = table_to_text(table)

    @property
    def livetime(self) -> u.Quantity | None:
        if "livetime" not in self._data.variables:
            return None
        return float(self._data["livetime"].values) * u.Unit(self._data["livetime"].attrs.get("units", "s"))

    # geometry ---------------------------------------------------------------------------
    @property
    def _energy_axis(self) -> MapAxis:
        return axis_from_dataset(self._data, "energy")

    @property
    def _energy_axis_true(self) -> MapAxis:
        if "energy_true" in self._data.dims:
            return axis_from_dataset(self._data, "energy_true")
        return self._energy_axis.copy(name="energy_true")

    @property
    def data_shape(self) -> tuple[int, ...]:
        """Shape of the counts (or background) array: ``(n_energy,)`` (a spectrum has no
        spatial pixels; Gammapy reports ``(n_energy, 1, 1)``)."""
        arr = self.counts if self.counts is not None else self.background
        return tuple(arr.shape) if arr is not None else (self._energy_axis.nbin,)

    @property
    def geoms(self) -> dict:
        """Geometries: ``geom`` (reco energy), ``geom_exposure`` (true energy), ``geom_edisp``."""
        geoms = {"geom": SpectrumGeom([self._energy_axis])}
        if "energy_true" in self._data.dims:
            geoms["geom_exposure"] = SpectrumGeom([self._energy_axis_true])
        if self.edisp is not None:
            geoms["geom_edisp"] = SpectrumGeom([self._energy_axis_true, self._energy_axis])
        return geoms

    @property
    def mask(self) -> xr.DataArray | None:
        """Combined mask: ``mask_safe AND mask_fit`` (None if neither is set)."""
        ms, mf = self.mask_safe, self.mask_fit
        if ms is None and mf is None:
            return None
        if ms is None:
            return mf.rename("mask")
        if mf is None:
            return ms.rename("mask")
        return (ms & mf).rename("mask")

    @property
    def mask_safe_image(self) -> xr.DataArray | None:
        """Safe mask reduced over energy (True if any bin is safe)."""
        return None if self.mask_safe is None else self.mask_safe.any("energy")

    @property
    def mask_safe_edisp(self) -> xr.DataArray | None:
        """Safe mask on the edisp kernel's reco-energy axis (the reco safe mask of a spectrum)."""
        if self.mask_safe is None or self.edisp is None:
            return None
        return self.mask_safe

    def energy_mask(self, energy_min=None, energy_max=None, round_to_edge: bool = False) -> xr.DataArray:
        """Reco bins lying fully inside ``[energy_min, energy_max]`` (Gammapy's ``energy_mask``).

        Bounds are Quantities or strings (``"0.66 TeV"``) in any energy unit, whatever unit
        the file stored; ``dataset.mask_fit = dataset.energy_mask("0.66 TeV", "30 TeV")``
        (`xspec_ds.ops.select.energy_mask`).
        """
        from .ops.select import energy_mask

        return energy_mask(self._data, energy_min, energy_max, round_to_edge=round_to_edge)

    def sel(self, indexers: dict | None = None, **kwargs) -> xr.Dataset:
        """``xarray.Dataset.sel`` by energy value with units, e.g.
        ``sel(energy=slice("1 TeV", "10 TeV"))`` (bins fully inside); returns the selected
        `xarray.Dataset` (`xspec_ds.ops.select.sel`)."""
        from .ops.select import sel

        return sel(self._data, indexers, **kwargs)

    @property
    def energy_range(self) -> tuple[u.Quantity, u.Quantity]:
        """(lowest, highest) edge of the safe bins; NaN if no bin is safe."""
        edges = self._energy_axis.edges
        ms = self.mask_safe
        safe = np.ones(edges.size - 1, bool) if ms is None else np.asarray(ms.values, bool)
        if not safe.any():
            return np.nan * edges.unit, np.nan * edges.unit
        idx = np.flatnonzero(safe)
        return edges[idx[0]], edges[idx[-1] + 1]

    # models -----------------------------------------------------------------------------
    @property
    def models(self) -> Models:
        return self._models

    @models.setter
    def models(self, models) -> None:
        self._models = Models(models)
        self._evaluators = {}

    @property
    def _sky_models(self) -> list:
        name = self.name
        return [
            m
            for m in self._models
            if isinstance(m, SkyModel) and (m.datasets_names is None or name in m.datasets_names)
        ]

    @property
    def background_model(self) -> FoVBackgroundModel | None:
        name = self.name
        for m in self._models:
            if isinstance(m, FoVBackgroundModel) and name in m.datasets_names:
                return m
        return None

    @property
    def evaluators(self) -> dict:
        """One `SpectrumEvaluator` per sky model that applies to this dataset."""
        models = self._sky_models
        if set(self._evaluators) != {m.name for m in models} or any(
            self._evaluators[m.name].model is not m for m in models
        ):
            self._evaluators = {m.name: SpectrumEvaluator(m, self) for m in models}
        return self._evaluators

    # predictions ------------------------------------------------------------------------
    def _as_dataarray(self, values: np.ndarray, name: str) -> xr.DataArray:
        coords = {k: self._data.coords[k] for k in ("energy", "energy_min", "energy_max")}
        return xr.DataArray(values, dims=("energy",), coords=coords, name=name, attrs={"units": ""})

    def _npred_signal_values(self, model=None) -> np.ndarray | None:
        evaluators = self.evaluators
        if model is not None:
            if isinstance(model, str):
                model = self._models[model]
            return SpectrumEvaluator(model, self).compute_npred()
        total = None
        for ev in evaluators.values():
            npred = ev.compute_npred()
            total = npred if total is None else total + npred
        return total

    def _background_factor(self) -> np.ndarray | float:
        bkg = self.background_model
        if bkg is None:
            return 1.0
        centers = self._energy_axis.center.to_value(ENERGY_UNIT)
        return bkg.spectral_model._dnde(centers)

    def _npred_background_values(self) -> np.ndarray | None:
        hot = self._hot()
        if hot.background is None:
            return None
        factor = self._background_factor()
        return hot.background * factor if not isinstance(factor, float) else hot.background

    def _npred_values(self) -> np.ndarray:
        signal = self._npred_signal_values()
        bkg = self._npred_background_values()
        if signal is None and bkg is None:
            return np.zeros(self._energy_axis.nbin)
        return forward.npred_total(signal, bkg)

    def npred(self) -> xr.DataArray:
        """Predicted source and background counts (per group when grouped)."""
        if xrayfit.active(self) and (view := xrayfit.grouped_view(self)) is not self:  # x-ray hook
            return view.npred()
        return self._as_dataarray(self._npred_values(), "npred")

    def npred_signal(self, model=None) -> xr.DataArray:
        """Predicted signal counts of all sky models, or of ``model`` (a SkyModel or its name)."""
        if xrayfit.active(self) and (view := xrayfit.grouped_view(self)) is not self:  # x-ray hook
            return view.npred_signal(model)
        values = self._npred_signal_values(model)
        if values is None:
            values = np.zeros(self._energy_axis.nbin)
        return self._as_dataarray(values, "npred_signal")

    def npred_background(self) -> xr.DataArray:
        """Predicted background counts (the background array, scaled by a FoVBackgroundModel if any)."""
        if xrayfit.active(self) and (view := xrayfit.grouped_view(self)) is not self:  # x-ray hook
            return view.npred_background()
        values = self._npred_background_values()
        return self._as_dataarray(np.zeros(self._energy_axis.nbin) if values is None else values, "npred_background")

    @property
    def excess(self) -> xr.DataArray:
        """``counts - background`` (the background array, not rescaled by a background model, as Gammapy)."""
        bkg = self.background
        excess = self.counts if bkg is None else self.counts - bkg
        return excess.rename("excess").assign_attrs(units="")

    # statistics -------------------------------------------------------------------------
    def _likelihood_inputs(self, restrict: bool = False):
        """``(statistic, data, grid, exposure, edisp, mask)`` for `xspec_ds.likelihood`.

        ``grid`` holds the true-energy bin edges (``e_lo``, ``e_hi``) and a ``nodes`` dict for
        the models' quadrature nodes. ``restrict`` allows a subclass to cut the arrays to the fit
        mask (`SpectrumDatasetOnOff`); the Cash dataset always uses all bins.
        """
        hot = self._hot()
        if hot.counts is None:
            raise ValueError(f"dataset {self.name!r} has no counts: cannot compute the statistic")
        data = {"counts": hot.counts}
        bkg = self._npred_background_values()
        if bkg is not None:
            data["background"] = bkg
        record = stats.get_statistic(self.stat_type)
        if record.name in xrayfit.CHI2_TYPES:
            data = xrayfit.chi2_data(self, data, hot.mask)
        return record, data, hot, hot.exposure, hot.edisp, hot.mask

    def _stat_array_values(self) -> np.ndarray:
        record, data, grid, *_ = self._likelihood_inputs()
        mu_sig = self._npred_signal_values()
        if mu_sig is None:
            mu_sig = np.zeros(self._energy_axis.nbin)
        return likelihood.stat_array(record, mu_sig, data)

    def stat_array(self) -> xr.DataArray:
        """Cash statistic per reco bin (``stats.cash``); per group, or chi2, per `xrayfit`."""
        if xrayfit.active(self):  # x-ray hook: grouped data (per group)
            view = xrayfit.grouped_view(self)
            return view._as_dataarray(xrayfit.stat_array(self), "stat_array")
        return self._as_dataarray(self._stat_array_values(), "stat_array")

    def stat_sum(self) -> float:
        """Total statistic: sum of `stat_array` over `mask` (all bins if no mask).

        Raises `xspec_ds.validation.DatasetValidationError` (never a finite number) when the
        counts, background or exposure hold negative or non-finite values or no bin is in the
        mask (`xspec_ds.validation.check_stat_inputs`)."""
        from .validation import check_stat_inputs

        if xrayfit.active(self):  # x-ray hook: grouped data (fitted on the group sums)
            return xrayfit.stat_sum(self)
        hot = self._hot()
        mask = hot.mask
        check_stat_inputs(self, hot, mask)
        stat = self._stat_array_values()
        total = float(likelihood.masked_sum(stat, mask))
        if not np.isfinite(total):  # e.g. an infinite input value: name it (else the model gives inf)
            from .validation import validate

            validate(self)
        return total

    def _model_fluxes(self, grid, index: dict, cache: dict | None = None):
        """Summed true-bin flux of the sky models on ``grid`` and the Jacobian rows of the
        parameters in ``index`` (``{id(parameter): position}``).

        Returns ``(flux or None, rows, dflux or None)``: ``dflux[r]`` is ``d flux / d p`` for the
        parameter at position ``rows[r]``. ``cache`` (one dict per likelihood call of a joint fit)
        shares evaluations of one model on one true-energy grid between datasets.
        """
        flux, rows, blocks = None, [], []
        grid_key = None
        for ev in self.evaluators.values():
            sm = ev.model.spectral_model
            mine = [p for p in ev.model.parameters if id(p) in index]
            hit = None
            if cache is not None:
                if grid_key is None:
                    grid_key = (grid.e_lo.tobytes(), grid.e_hi.tobytes())
                key = (id(sm), grid_key, tuple(p.value for p in ev.model.parameters), tuple(id(p) for p in mine))
                hit = cache.get(key)
            if hit is None:
                nodes = _grid_nodes(grid, sm)
                f = forward.integrate_flux(sm, grid.e_lo, grid.e_hi, nodes)
                d = sm._integral_deriv(grid.e_lo, grid.e_hi, mine, nodes) if mine else None
                hit = (f, d)
                if cache is not None:
                    cache[key] = hit
            f, d = hit
            flux = f if flux is None else flux + f
            if mine:
                rows.extend(index[id(p)] for p in mine)
                blocks.append(d)
        dflux = None if not blocks else (blocks[0] if len(blocks) == 1 else np.concatenate(blocks))
        return flux, rows, dflux

    def _stat_gradient(
        self, params, cache: dict | None = None, fold_cache: dict | None = None
    ) -> tuple[float, np.ndarray]:
        """Statistic and its gradient with respect to ``params`` (``Parameter`` objects).

        One call of `xspec_ds.likelihood.stat_grad` (K = 1, adjoint fold); parameters not used
        by this dataset get 0. ``cache``: see `_model_fluxes`; ``fold_cache``: see
        `_signal_from_fold_cache` (the fold is skipped when only the norm changed).
        """
        if xrayfit.active(self):  # x-ray hook: grouped data (fitted on the group sums)
            return xrayfit.grouped_view(self)._stat_gradient(params, cache, fold_cache)
        record, data, grid, exposure, edisp, mask = self._likelihood_inputs(restrict=True)
        index = {id(p): k for k, p in enumerate(params)}
        flux, rows, dflux = self._model_fluxes(grid, index, cache)
        if flux is not None and exposure is None:
            raise ValueError(f"dataset {self.name!r} has no exposure: cannot predict signal counts")
        mu_sig = self._signal_from_fold_cache(fold_cache, grid, exposure, edisp, lambda: flux)
        stat, g, w = likelihood.stat_grad(record, flux, dflux, exposure, edisp, data, mask, mu_sig=mu_sig)
        grad = np.zeros(len(params))
        if g is not None:
            if len(set(rows)) == len(rows):
                grad[rows] += g
            else:  # a parameter used by several models of this dataset
                np.add.at(grad, rows, g)
        if "background" in data:
            self._background_model_gradient(index, w, grad)
        return float(stat), grad

    def _norm_split(self):
        """``(norm, others)`` when the prediction is proportional to one parameter: one sky model
        whose spectral model has one (`xspec_ds.models.spectral.linear_norm_parameter`). Else None."""
        evaluators = self.evaluators
        if len(evaluators) != 1:
            return None
        (ev,) = evaluators.values()
        norm = linear_norm_parameter(ev.model.spectral_model)
        if norm is None:
            return None
        return norm, [p for p in ev.model.parameters if p is not norm]

    def _signal_from_fold_cache(self, fold_cache: dict | None, grid, exposure, edisp, flux_fn):
        """Folded signal counts, reusing the last fold when only the norm parameter changed.

        ``fold_cache`` (one dict per fit, `xspec_ds.fit.joint.JointLikelihood`; None: always
        fold) holds, per dataset, the values of the other parameters, the norm and the folded
        counts of the last fold. When only the norm changed the counts are rescaled by the ratio
        of the norms instead of folded again (as Gammapy's ``MapEvaluator`` does): the same
        numbers to ~1e-16 relative, since the prediction is linear in the norm. The cache lives
        for one fit, so in-place edits of the arrays between fits are always seen.
        ``flux_fn()`` gives the true-bin flux when a fold is needed.
        """
        split = self._norm_split() if fold_cache is not None else None
        if split is not None:
            norm, others = split
            key = tuple(p.value for p in others)
            hit = fold_cache.get(id(self))
            if hit is not None and hit[0] == key and hit[1] != 0 and hit[3] is grid:
                return hit[2] * (norm.value / hit[1])
        flux = flux_fn()
        if flux is None:
            return None
        if exposure is None:
            raise ValueError(f"dataset {self.name!r} has no exposure: cannot predict signal counts")
        mu_sig = likelihood.predict(flux, exposure, edisp)
        if split is not None:
            fold_cache[id(self)] = (key, norm.value, mu_sig, grid)
        return mu_sig

    def _stat_value(self, cache: dict | None = None, fold_cache: dict | None = None) -> float:
        """The statistic of `_stat_gradient` without the gradient: one fold (none when only the
        norm changed, `_signal_from_fold_cache`), no adjoint, no model Jacobian (line searches and
        MINUIT's function calls)."""
        if xrayfit.active(self):  # x-ray hook: grouped data (fitted on the group sums)
            return xrayfit.grouped_view(self)._stat_value(cache, fold_cache)
        record, data, grid, exposure, edisp, mask = self._likelihood_inputs(restrict=True)
        mu_sig = self._signal_from_fold_cache(
            fold_cache, grid, exposure, edisp, lambda: self._model_fluxes(grid, {}, cache)[0]
        )
        stat, _, _ = likelihood.stat_grad(record, None, None, exposure, edisp, data, mask, mu_sig=mu_sig)
        return float(stat)

    def _stat_grad_fisher(self, params, cache: dict | None = None):
        """`_stat_gradient` plus the expected information ``(P, P)`` of the statistic, from one
        fold of the value and Jacobian rows (`xspec_ds.likelihood.stat_grad_fisher`), for Fisher
        scoring in `xspec_ds.fit.Fit`.

        Returns ``(stat, grad, info)``, or None where the information is not available (free
        parameters of a background model, which act on the prediction directly).
        """
        if xrayfit.active(self):  # x-ray hook: grouped data (fitted on the group sums)
            return xrayfit.grouped_view(self)._stat_grad_fisher(params, cache)
        index = {id(p): k for k, p in enumerate(params)}
        bkg_model = self.background_model
        if bkg_model is not None and any(id(p) in index for p in bkg_model.parameters):
            return None
        record, data, grid, exposure, edisp, mask = self._likelihood_inputs(restrict=True)
        flux, rows, dflux = self._model_fluxes(grid, index, cache)
        n = len(params)
        if flux is None or dflux is None:  # nothing of this dataset is free: a constant term
            stat, _, _ = likelihood.stat_grad(record, flux, None, exposure, edisp, data, mask)
            return float(stat), np.zeros(n), np.zeros((n, n))
        if exposure is None:
            raise ValueError(f"dataset {self.name!r} has no exposure: cannot predict signal counts")
        stat, g, info, _ = likelihood.stat_grad_fisher(record, flux, dflux, exposure, edisp, data, mask)
        return (float(stat), *likelihood.on_parameters(g, info, rows, n))

    def _background_model_gradient(self, index: dict, w: np.ndarray, grad: np.ndarray) -> None:
        """Add ``sum_j w_j background_j d factor_j / d p`` for free background-model parameters
        (``w = d stat / d mu``; the background enters the prediction as ``mu_sig + background``)."""
        bkg_model = self.background_model
        hot = self._hot()
        if bkg_model is None or hot.background is None:
            return
        if not any(id(p) in index for p in bkg_model.parameters):
            return
        centers = self._energy_axis.center.to_value(ENERGY_UNIT)
        spec = bkg_model.spectral_model
        jac = spec.dnde_jacobian(spec.theta(), centers)  # (P, N), canonical units (pure kernel)
        dmu = jac @ (hot.background * w)
        for i, q in enumerate(spec.parameters):
            if id(q) in index:
                grad[index[id(q)]] += dmu[i] * q._scale_to_canonical

    # simulation & residuals ---------------------------------------------------------------
    def fake(self, random_state="random-seed") -> None:
        """Replace counts by a Poisson draw of `npred` (in place)."""
        rng = get_random_state(random_state)
        npred = self._npred_values()
        counts = rng.poisson(npred).astype(np.float64)
        if self.counts is None:
            self.counts = counts
        else:
            self._data["counts"] = self._data["counts"].copy(data=counts)
            self.reset_data_cache()

    def residuals(self, method: str = "diff") -> xr.DataArray:
        """Residuals ``counts - npred``, divided by ``npred`` or ``sqrt(npred)`` per ``method``;
        NaN outside `mask` (as Gammapy's ``residuals``). Per group when grouped."""
        if xrayfit.active(self) and (view := xrayfit.grouped_view(self)) is not self:  # x-ray hook
            return view.residuals(method)
        values = _compute_residuals(np.asarray(self.counts.values), self._npred_values(), method)
        mask = self._hot().mask
        if mask is not None:
            values = np.where(mask, values, np.nan)
        return self._as_dataarray(values, "residuals")

    def info_dict(self, in_safe_data_range: bool = True) -> dict:
        """Summary numbers summed over energy (Gammapy's ``info_dict`` keys)."""
        from .summary import info_dict

        return info_dict(self, in_safe_data_range=in_safe_data_range)

    # copies and masks ---------------------------------------------------------------------
    def copy(self, name: str | None = None) -> "SpectrumDataset":
        """A deep copy, named ``name`` (a new random name if None, as Gammapy). Models are
        deep-copied too (Gammapy drops them); a background model follows the new name."""
        data = self._data.copy(deep=True)
        new_name = name or make_name()
        data.attrs["name"] = new_name
        models = self._models.copy()
        for m in models:
            if isinstance(m, FoVBackgroundModel) and self.name in m.datasets_names:
                m.datasets_names = [new_name]
                m.name = f"{new_name}-bkg"
        return type(self).from_xarray(data, models=models, validate=False)

    def apply_mask_safe(self) -> None:
        """Zero counts and background outside the safe mask (in place)."""
        if self.mask_safe is None:
            return
        safe = np.asarray(self.mask_safe.values, bool)
        for name in ("counts", "background", "counts_off"):
            if name in self._data.variables:
                self._data[name] = self._data[name].where(safe, 0.0)
        self.reset_data_cache()

    def to_spectrum_dataset(self, *args, **kwargs) -> "SpectrumDataset":
        """Returns self (it already is a spectrum dataset)."""
        return self

    def cutout(self, *args, **kwargs) -> "SpectrumDataset":
        """Returns self: a spectrum has no spatial extent to cut."""
        return self

    def pad(self, *args, **kwargs) -> "SpectrumDataset":
        """Returns self: a spectrum has no spatial extent to pad."""
        return self

    # label operations: thin delegations to xspec_ds.ops (stack/slicing/resample) ---------------
    def stack(self, other: "SpectrumDataset") -> None:
        """Stack ``other`` into this dataset in place (`xspec_ds.ops.stack.stack_in_place`).

        Equals ``xs.stack([self, other])`` with this dataset's name and models; the backing
        `xarray.Dataset` object is updated in place (accessor views see it). Nothing changes if
        the stack fails (e.g. different energy axes).
        """
        from .ops.stack import stack_in_place

        stack_in_place(self, other)

    def _derived(self, data: xr.Dataset, name: str | None) -> "SpectrumDataset":
        from .ops.stack import _carry_models

        new_name = name or make_name()
        data.attrs["name"] = new_name
        models = _carry_models(self._models, new_name, self.name) if len(self._models) else None
        return type(self).from_xarray(data, models=models, validate=False)

    def slice_by_idx(self, slices: dict, name: str | None = None) -> "SpectrumDataset":
        """Sub-dataset by bin index, e.g. ``{"energy": slice(2, 8)}`` (`xspec_ds.ops.slicing`)."""
        from .ops.slicing import slice_by_idx

        return self._derived(slice_by_idx(self._data, slices), name)

    def slice_by_energy(self, energy_min=None, energy_max=None, name: str | None = None) -> "SpectrumDataset":
        """Sub-dataset in a reco-energy range, bounds snapped to edges as Gammapy (`xspec_ds.ops.slicing`)."""
        from .ops.slicing import slice_by_energy

        return self._derived(slice_by_energy(self._data, energy_min, energy_max), name)

    def resample_energy_axis(self, energy_axis: MapAxis, name: str | None = None) -> "SpectrumDataset":
        """Merge reco bins onto ``energy_axis``, summing over safe bins (`xspec_ds.ops.resample`)."""
        from .ops.resample import resample_energy_axis

        return self._derived(resample_energy_axis(self._data, energy_axis), name)

    def downsample(self, factor: int, axis_name: str | None = None, name: str | None = None) -> "SpectrumDataset":
        """Merge every ``factor`` reco bins; ``axis_name="energy"`` is required (a spectrum has no
        spatial axes, Gammapy's default: without it a ValueError, never a silent no-op;
        `xspec_ds.ops.resample.downsample`)."""
        from .ops.resample import downsample

        return self._derived(downsample(self._data, factor, axis_name=axis_name), name)

    def to_image(self, name: str | None = None) -> "SpectrumDataset":
        """Sum over reco energy into one bin (`xspec_ds.ops.resample.to_image`)."""
        from .ops.resample import to_image

        return self._derived(to_image(self._data), name)

    # x-ray grouping and filters (issue 13): thin delegations to xspec_ds.grouping ------------------
    def group_counts(self, n: float, tab_stops=None) -> None:
        """Group channels (in place) to at least ``n`` counts per group, Sherpa's rule
        (`xspec_ds.grouping.group_counts`; channels outside ``mask_fit`` are not grouped)."""
        from .grouping import group_counts

        group_counts(self._data, n, tab_stops=tab_stops)
        self.reset_data_cache()

    def group_snr(self, snr: float, tab_stops=None) -> None:
        """Group channels (in place) to a signal-to-noise ratio of at least ``snr``, Sherpa's rule
        with Poisson errors (`xspec_ds.grouping.group_snr`)."""
        from .grouping import group_snr

        group_snr(self._data, snr, tab_stops=tab_stops)
        self.reset_data_cache()

    def group_min(self, n: float) -> None:
        """Alias of `group_counts` (grppha's ``group min``)."""
        self.group_counts(n)

    def ungroup(self) -> None:
        """Fit channel by channel again (in place); the filter is kept."""
        from .grouping import ungroup

        ungroup(self._data)
        self.reset_data_cache()

    def notice(self, lo=None, hi=None) -> None:
        """Add the channels (groups) overlapping ``(lo, hi)`` to ``mask_fit`` (Sherpa's ``notice``;
        bounds are Quantities, strings or numbers in keV; no bounds: notice everything)."""
        from .grouping import notice

        self.mask_fit = notice(self._data, lo, hi)

    def ignore(self, lo=None, hi=None) -> None:
        """Remove the channels (groups) overlapping ``(lo, hi)`` from ``mask_fit`` (Sherpa's ``ignore``)."""
        from .grouping import ignore

        self.mask_fit = ignore(self._data, lo, hi)

    # end of label operations ------------------------------------------------------------------

    # constructors -------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        e_reco: MapAxis,
        e_true: MapAxis | None = None,
        region=None,
        reference_time="2000-01-01",
        name: str | None = None,
        meta_table=None,
        **kwargs,
    ) -> "SpectrumDataset":
        """Empty dataset: zero counts, background and exposure, a diagonal edisp (true -> reco
        overlap fractions) and ``mask_safe`` False everywhere (as the seed says)."""
        if isinstance(e_reco, SpectrumGeom):
            e_reco = e_reco.axis("energy")
        if not isinstance(e_reco, MapAxis):
            raise TypeError(f"e_reco must be a MapAxis, got {type(e_reco).__name__}")
        if e_reco.name != "energy":
            raise ValueError(f"e_reco must be named 'energy', got {e_reco.name!r}")
        e_true = e_reco.copy(name="energy_true") if e_true is None else e_true
        if e_true.name != "energy_true":
            raise ValueError(f"e_true must be named 'energy_true', got {e_true.name!r}")
        axes = {"energy": e_reco, "energy_true": e_true}
        arrays = {
            "counts": as_dataarray("counts", np.zeros(e_reco.nbin), axes),
            "background": as_dataarray("background", np.zeros(e_reco.nbin), axes),
            "exposure": as_dataarray("exposure", np.zeros(e_true.nbin) * u.Unit("m2 s"), axes),
            "edisp": as_dataarray("edisp", overlap_matrix(e_true.edges, e_reco.edges), axes),
            "mask_safe": as_dataarray("mask_safe", np.zeros(e_reco.nbin, bool), axes),
        }
        extra = {k: kwargs.pop(k) for k in list(kwargs) if k in ("counts_off", "acceptance", "acceptance_off")}
        for k, v in extra.items():
            arrays[k] = as_dataarray(k, v, axes)
        if kwargs:
            raise TypeError(f"create() got unexpected argument(s) {sorted(kwargs)}")
        gti = GTI([] * u.s, [] * u.s, reference_time=reference_time)
        data = build_dataset(arrays, name=name or make_name(), gti=gti, meta_table=meta_table)
        return cls.from_xarray(data, validate=False)

    @classmethod
    def from_geoms(
        cls, geom, geom_exposure=None, geom_psf=None, geom_edisp=None, reference_time="2000-01-01", name=None, **kwargs
    ) -> "SpectrumDataset":
        """Zero-filled dataset on the given geometries (`SpectrumGeom` or `MapAxis`)."""
        if geom_psf is not None:
            raise ValueError("a spectrum dataset has no PSF: geom_psf must be None")
        e_reco = geom.axis("energy") if isinstance(geom, SpectrumGeom) else geom
        e_true = None
        for g in (geom_exposure, geom_edisp):
            if isinstance(g, SpectrumGeom) and "energy_true" in g.axes_names:
                e_true = g.axis("energy_true")
                break
            if isinstance(g, MapAxis) and g.name == "energy_true":
                e_true = g
                break
        return cls.create(e_reco, e_true, reference_time=reference_time, name=name, **kwargs)

    # serialisation, ops, plotting: thin delegations -------------------------------------------
    def to_dict(self, filename: str = "") -> dict:
        from .io.yaml import dataset_to_dict

        return dataset_to_dict(self, filename)

    @classmethod
    def from_dict(cls, data: dict, **kwargs) -> "SpectrumDataset":
        from .io.yaml import dataset_from_dict

        return dataset_from_dict(cls, data, **kwargs)

    def write(self, filename, overwrite: bool = False, **kwargs) -> None:
        """Write to ``filename``: netCDF for ``.nc``, FITS (Gammapy's layout) otherwise."""
        from .io import write_dataset

        write_dataset(self, filename, overwrite=overwrite, **kwargs)

    @classmethod
    def read(cls, filename, name: str | None = None, **kwargs) -> "SpectrumDataset":
        """Read a dataset written by `write` (or by Gammapy, or an OGIP PHA for on-off)."""
        from .io import read_dataset

        return read_dataset(cls, filename, name=name, **kwargs)

    def to_hdulist(self):
        from .io.fits import to_hdulist

        return to_hdulist(self)

    @classmethod
    def from_hdulist(cls, hdulist, name: str | None = None, **kwargs):
        from .io.fits import from_hdulist

        return from_hdulist(cls, hdulist, name=name, **kwargs)

    # plotting (issue 6): thin wrappers over xspec_ds.plotting, on the seed's signatures ----------
    def peek(self, fig=None):
        """Quick-look plots: counts/background/excess, exposure, energy dispersion (`plotting.peek`)."""
        from .plotting import peek

        return peek(self, fig=fig)

    def plot_counts(self, ax=None, kwargs_counts=None, kwargs_background=None, **kwargs):
        """Plot counts and background (`plotting.plot_counts`)."""
        from .plotting import plot_counts

        return plot_counts(self, ax=ax, kwargs_counts=kwargs_counts, kwargs_background=kwargs_background, **kwargs)

    def plot_excess(self, ax=None, kwargs_excess=None, kwargs_npred_signal=None, **kwargs):
        """Plot excess and predicted signal (`plotting.plot_excess`)."""
        from .plotting import plot_excess

        return plot_excess(self, ax=ax, kwargs_excess=kwargs_excess, kwargs_npred_signal=kwargs_npred_signal, **kwargs)

    def plot_fit(self, ax_spectrum=None, ax_residuals=None, kwargs_spectrum=None, kwargs_residuals=None):
        """Plot spectrum and residuals in two panels (`plotting.plot_fit`)."""
        from .plotting import plot_fit

        return plot_fit(
            self,
            ax_spectrum=ax_spectrum,
            ax_residuals=ax_residuals,
            kwargs_spectrum=kwargs_spectrum,
            kwargs_residuals=kwargs_residuals,
        )

    def plot_residuals(self, ax=None, method="diff", **kwargs):
        """Plot spectrum residuals (`plotting.plot_residuals`)."""
        from .plotting import plot_residuals

        return plot_residuals(self, ax=ax, method=method, **kwargs)

    def plot_residuals_spectral(self, ax=None, method="diff", region=None, **kwargs):
        """Plot spectral residuals (`plotting.plot_residuals_spectral`; ``region`` must be None)."""
        from .plotting import plot_residuals_spectral

        return plot_residuals_spectral(self, ax=ax, method=method, region=region, **kwargs)

    def plot_residuals_spatial(self, ax=None, method="diff", smooth_kernel="gauss", smooth_radius="0.1 deg", **kwargs):
        """Not available: a 1-D spectrum has no spatial axes (raises ValueError)."""
        from .plotting import plot_residuals_spatial

        return plot_residuals_spatial(self, ax=ax, method=method, **kwargs)

    # end of plotting block -------------------------------------------------------------------------

    def __repr__(self) -> str:
        from .summary import text_summary

        return text_summary(self)

    def __str__(self) -> str:
        """The `info_dict` summary above the xarray repr of ``.data``."""
        from .summary import str_summary

        return str_summary(self)

    def _repr_html_(self) -> str:
        from .summary import html_summary

        return html_summary(self)

    def __deepcopy__(self, memo):
        new = type(self).from_xarray(self._data.copy(deep=True), validate=False)
        new._models = _copy.deepcopy(self._models, memo)
        return new


def _grid_nodes(grid, model):
    """Quadrature nodes of ``model`` on ``grid``'s true-energy bins, kept in ``grid.nodes``."""
    key = id(model)
    if key not in grid.nodes:
        grid.nodes[key] = forward.nodes_for(model, grid.e_lo, grid.e_hi)
    return grid.nodes[key]


def _compute_residuals(data: np.ndarray, model: np.ndarray, method: str) -> np.ndarray:
    """Residuals per ``method``: ``diff``, ``diff/model`` or ``diff/sqrt(model)``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "diff":
            return data - model
        if method == "diff/model":
            return (data - model) / model
        if method == "diff/sqrt(model)":
            return (data - model) / np.sqrt(model)
    raise ValueError(f"invalid residuals method {method!r}; use 'diff', 'diff/model' or 'diff/sqrt(model)'")
