"""`SpectrumDatasetOnOff`: on-off spectra fitted with WSTAT (Gammapy's ``SpectrumDatasetOnOff``).

An on-off measurement has counts ``n_on`` in the source region and ``n_off`` in background
regions; ``alpha = acceptance / acceptance_off`` is the on/off exposure ratio. The background
in the on region is unknown: WSTAT (XSPEC manual, appendix B "Poisson data with Poisson
background"; Gammapy's ``wstat``) profiles it out bin by bin. The Dataset stores ``counts``,
``counts_off``, ``acceptance``, ``acceptance_off`` (dims ``energy``) next to the usual
``exposure``, ``edisp`` and masks; ``background = alpha * counts_off`` is derived, never stored.

The statistic, its gradient (``stats.wstat_gradient_weights``, back-projected once through the
dispersion) and its information are computed by `xspec_ds.likelihood` from the ``"wstat"``
record of `xspec_ds.stats`; this class only supplies the arrays (`_likelihood_inputs`).
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import xarray as xr

from . import forward, stats, xrayfit
from .dataset import SpectrumDataset, _variable_property, get_random_state
from .stats import wstat_gradient_weights

__all__ = ["SpectrumDatasetOnOff", "wstat_gradient_weights"]

_ONOFF_NAMES = ("counts", "counts_off", "acceptance", "acceptance_off")
RESTRICT_TO_MASK = True
"""Fit on the masked bins only when the dispersion kernel is sparse (`_FitRestriction`)."""
RESTRICT_MAX_FRACTION = 0.8
"""... and when the cut kernel keeps at most this fraction of the non-zero elements (otherwise
indexing the arrays on every call costs more than it saves)."""


class _OnOffHot:
    __slots__ = ("keys", "n_on", "n_off", "alpha")

    def __init__(self, ds: xr.Dataset, keys):
        v = ds.variables
        self.keys = keys
        self.n_on = np.asarray(v["counts"].values, dtype=np.float64) if "counts" in v else None
        self.n_off = np.asarray(v["counts_off"].values, dtype=np.float64) if "counts_off" in v else None
        if "acceptance" in v and "acceptance_off" in v:
            acc = np.asarray(v["acceptance"].values, dtype=np.float64)
            acc_off = np.asarray(v["acceptance_off"].values, dtype=np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                self.alpha = np.nan_to_num(acc / acc_off, nan=0.0, posinf=0.0, neginf=0.0)
        else:
            self.alpha = None


class _FitRestriction:
    """The hot arrays cut to a fit mask: the reco bins in the mask and the true bins feeding them.

    Bins outside the mask add nothing to the statistic or its gradient, and true-energy bins
    whose dispersion row is zero in every masked reco bin add nothing to the masked predictions,
    so the fit can fold, profile and sum over these bins only (Sherpa likewise filters its
    response to the noticed channels, ``DataPHA.notice_response``). Used only for sparse
    kernels (`forward.SparseKernel`, large mostly-zero OGIP RMFs), which are copies anyway:
    in-place edits of ``edisp`` need `SpectrumDataset.reset_data_cache` with or without the
    restriction. The restriction is keyed on the ``_HotArrays`` object it was cut from and on the
    mask *contents*, so in-place edits of ``mask_safe``/``mask_fit`` values rebuild it; exposure
    and on-off arrays are indexed on every call (in-place edits of them stay visible). It is used
    only when the cut kernel keeps at most ``RESTRICT_MAX_FRACTION`` of the non-zero elements.
    """

    __slots__ = ("base", "mask", "cols", "rows", "e_lo", "e_hi", "edisp", "nodes", "useful")

    def __init__(self, base, mask: np.ndarray):
        self.base = base
        self.mask = mask.copy()
        self.cols = np.flatnonzero(mask)
        sub = base.edisp.transposed[self.cols]  # CSR: one row per masked reco bin
        self.rows = np.unique(sub.indices)  # true bins with a non-zero element in a masked reco bin
        self.e_lo, self.e_hi = base.e_lo[self.rows], base.e_hi[self.rows]
        self.edisp = forward.SparseKernel(sub[:, self.rows].toarray().T)
        self.nodes = {}
        self.useful = self.edisp.transposed.nnz <= RESTRICT_MAX_FRACTION * base.edisp.transposed.nnz

    @property
    def exposure(self) -> np.ndarray:
        return self.base.exposure[self.rows]


class SpectrumDatasetOnOff(SpectrumDataset):
    """Spectrum dataset with on and off counts, fitted with WSTAT.

    Parameters
    ----------
    models : `Models`, `SkyModel`, spectral model or list, optional
    counts, counts_off : `xarray.DataArray` or array, dims ``("energy",)``
        On and off counts.
    acceptance, acceptance_off : `xarray.DataArray` or array, dims ``("energy",)``
        On and off acceptances (OGIP ``BACKSCAL``); ``alpha = acceptance / acceptance_off``.
    exposure, edisp, mask_safe, mask_fit, name, gti, meta_table, livetime
        As `SpectrumDataset`.

    Examples
    --------
    >>> import xspec_ds as xs
    >>> axis = xs.MapAxis.from_energy_bounds("0.1 TeV", "10 TeV", 5)
    >>> ds = xs.SpectrumDatasetOnOff.create(axis)
    >>> ds.stat_type
    'wstat'
    """

    stat_type = xrayfit.StatType("wstat")  # settable to a chi2 type (xspec_ds.xrayfit)
    tag = "SpectrumDatasetOnOff"

    def __init__(
        self,
        models=None,
        counts=None,
        counts_off=None,
        acceptance=None,
        acceptance_off=None,
        exposure=None,
        edisp=None,
        mask_safe=None,
        mask_fit=None,
        name=None,
        gti=None,
        meta_table=None,
        livetime=None,
        **kwargs,
    ):
        if kwargs.get("background") is not None:
            raise TypeError("SpectrumDatasetOnOff has no background argument: it is alpha * counts_off")
        kwargs.pop("background", None)
        super().__init__(
            models=models,
            counts=counts,
            exposure=exposure,
            edisp=edisp,
            mask_safe=mask_safe,
            mask_fit=mask_fit,
            name=name,
            gti=gti,
            meta_table=meta_table,
            livetime=livetime,
            counts_off=counts_off,
            acceptance=acceptance,
            acceptance_off=acceptance_off,
            **kwargs,
        )

    def _init_view(self, data: xr.Dataset) -> None:
        super()._init_view(data)
        self._onoff_cache = None
        self._restriction = None

    def reset_data_cache(self) -> None:
        super().reset_data_cache()
        self._onoff_cache = None
        self._restriction = None

    def _onoff(self) -> _OnOffHot:
        get = self._data._variables.get
        keys = [None if (x := get(n)) is None else (id(x), id(x._data)) for n in _ONOFF_NAMES]
        cache = self._onoff_cache
        if cache is None or cache.keys != keys:
            cache = self._onoff_cache = _OnOffHot(self._data, keys)
        return cache

    # variables -----------------------------------------------------------------------------
    counts_off = _variable_property("counts_off", "Off counts (energy).")
    acceptance = _variable_property("acceptance", "On-region acceptance (energy).")
    acceptance_off = _variable_property("acceptance_off", "Off-region acceptance (energy).")

    def _require(self, what: str):
        hot = self._onoff()
        if hot.n_off is None or hot.alpha is None:
            raise ValueError(f"dataset {self.name!r} needs counts_off, acceptance and acceptance_off for {what}")
        return hot

    @property
    def alpha(self) -> xr.DataArray:
        """``acceptance / acceptance_off`` (0 where ``acceptance_off`` is 0, as Gammapy)."""
        hot = self._require("alpha")
        return self._as_dataarray(hot.alpha.copy(), "alpha")

    @property
    def background(self) -> xr.DataArray | None:
        """``alpha * counts_off`` (derived, read-only)."""
        hot = self._onoff()
        if hot.n_off is None or hot.alpha is None:
            return None
        return self._as_dataarray(hot.alpha * hot.n_off, "background")

    @background.setter
    def background(self, value) -> None:
        raise AttributeError("background of an on-off dataset is alpha * counts_off; set counts_off or acceptances")

    # predictions -----------------------------------------------------------------------------
    def _mu_sig(self) -> np.ndarray:
        sig = self._npred_signal_values()
        return np.zeros(self._energy_axis.nbin) if sig is None else sig

    def _mu_bkg_off(self, mu_sig: np.ndarray) -> np.ndarray:
        hot = self._require("the WSTAT background estimate")
        n_on = hot.n_on if hot.n_on is not None else np.zeros_like(hot.n_off)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.nan_to_num(stats.get_wstat_mu_bkg(n_on, hot.n_off, hot.alpha, mu_sig))

    def _npred_background_values(self) -> np.ndarray:
        """``alpha * mu_bkg``: the profile-likelihood background in the on region (Gammapy)."""
        hot = self._require("npred_background")
        return np.nan_to_num(hot.alpha * self._mu_bkg_off(self._mu_sig()))

    def npred_off(self) -> xr.DataArray:
        """Predicted off counts ``mu_bkg`` (the profiled background in the off region)."""
        return self._as_dataarray(self._mu_bkg_off(self._mu_sig()), "npred_off")

    @property
    def excess(self) -> xr.DataArray:
        """``counts - alpha * counts_off``."""
        return (self.counts - self.background).rename("excess").assign_attrs(units="")

    # statistics -------------------------------------------------------------------------------
    def _likelihood_inputs(self, restrict: bool = False):
        """WSTAT inputs for `xspec_ds.likelihood` (see `SpectrumDataset._likelihood_inputs`).

        With ``restrict``, a sparse dispersion kernel and a mask, the arrays are cut to the
        masked reco bins and the true bins feeding them (`_FitRestriction`); the sums are the same.
        """
        hot = self._require("the WSTAT statistic")
        if hot.n_on is None:
            raise ValueError(f"dataset {self.name!r} has no counts: cannot compute the statistic")
        base = self._hot()
        mask = base.mask
        r = self._fit_restriction(base, mask) if restrict else None
        record = stats.get_statistic(self.stat_type)  # "wstat", or a chi2 type set by the user
        if r is not None:
            data = {"counts": hot.n_on[r.cols], "counts_off": hot.n_off[r.cols], "alpha": hot.alpha[r.cols]}
            if record.name in xrayfit.CHI2_TYPES:
                data = xrayfit.chi2_data(self, data, None)
            return record, data, r, r.exposure, r.edisp, None
        data = {"counts": hot.n_on, "counts_off": hot.n_off, "alpha": hot.alpha}
        if record.name in xrayfit.CHI2_TYPES:
            data = xrayfit.chi2_data(self, data, mask)
        return record, data, base, base.exposure, base.edisp, mask

    def stat_array(self) -> xr.DataArray:
        """WSTAT per reco bin (`stats.wstat`, with Gammapy's goodness-of-fit terms), or the
        statistic ``stat_type`` names."""
        if xrayfit.active(self):  # x-ray hook: grouped data (per group)
            return SpectrumDataset.stat_array(self)
        return self._as_dataarray(self._stat_array_values(), "stat_array")

    def _fit_restriction(self, base, mask) -> _FitRestriction | None:
        """The cached `_FitRestriction` for this mask, or None where it does not apply."""
        if mask is None or not RESTRICT_TO_MASK or not isinstance(base.edisp, forward.SparseKernel):
            return None
        r = getattr(self, "_restriction", None)
        if r is None or r.base is not base or not np.array_equal(r.mask, mask):
            if not mask.any():
                return None
            r = self._restriction = _FitRestriction(base, mask)
        return r if r.useful else None

    # simulation ---------------------------------------------------------------------------------
    def fake(self, *args, random_state="random-seed", npred_background=None) -> None:
        """Draw on and off counts (in place), as Gammapy's ``SpectrumDatasetOnOff.fake``.

        ``counts = Poisson(npred_signal) + Poisson(npred_background)`` and
        ``counts_off = Poisson(npred_background / alpha)`` (in this order from one generator).

        Parameters
        ----------
        *args
            ``random_state`` and/or ``npred_background`` positionally, in either order.
        random_state : int, numpy Generator/RandomState, "random-seed" or "global-rng"
        npred_background : array_like or DataArray (energy), optional
            Expected background counts in the on region; default the current
            ``alpha * counts_off``. Gammapy's argument order ``fake(npred_background,
            random_state)`` is accepted too.
        """
        if len(args) > 2:
            raise TypeError("fake() takes at most two positional arguments (random_state, npred_background)")
        rng_types = (str, int, np.integer, np.random.Generator, np.random.RandomState)
        for arg in args:  # either order: ours (random_state, npred_background) or Gammapy's
            if isinstance(arg, rng_types):
                random_state = arg
            else:
                npred_background = arg
        rng = get_random_state(random_state)
        hot = self._require("fake")
        if npred_background is None:
            npred_background = hot.alpha * hot.n_off
        bkg = np.asarray(getattr(npred_background, "values", npred_background), dtype=np.float64)
        if bkg.shape != hot.alpha.shape:
            raise ValueError(f"npred_background has shape {bkg.shape}, the dataset has {hot.alpha.shape} energy bins")
        sig = np.nan_to_num(self._mu_sig(), nan=0.0, posinf=0.0, neginf=0.0)
        counts = rng.poisson(np.clip(sig, 0, None)).astype(np.float64) + rng.poisson(bkg).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            off = np.nan_to_num(bkg / hot.alpha, nan=0.0, posinf=0.0, neginf=0.0)
        counts_off = rng.poisson(off).astype(np.float64)
        self._data["counts"] = self._data["counts"].copy(data=counts)
        self._data["counts_off"] = self._data["counts_off"].copy(data=counts_off)
        self.reset_data_cache()

    # conversions --------------------------------------------------------------------------------
    def to_spectrum_dataset(self, name: str | None = None, **kwargs) -> SpectrumDataset:
        """A Cash `SpectrumDataset` with ``background = alpha * counts_off`` (models not copied)."""
        data = self._data.drop_vars([v for v in ("counts_off", "acceptance", "acceptance_off") if v in self._data])
        data = data.copy(deep=True)
        bkg = self.background
        data["background"] = bkg.variable.copy(deep=True)
        data["background"].attrs.update({"units": "", "long_name": "background counts alpha * n_off"})
        if name is not None:
            data.attrs["name"] = name
        return SpectrumDataset.from_xarray(data)

    def info_dict(self, in_safe_data_range: bool = True) -> dict:
        """Gammapy's on-off ``info_dict``: summed counts, ``counts_off``, ``alpha`` (the
        ``n_off``-weighted mean), ``background = alpha n_off``, excess, Li & Ma (1983, eq. 17)
        ``sqrt_ts``, acceptances, and the profiled ``npred_background``."""
        from .summary import info_dict

        info = info_dict(self, in_safe_data_range=in_safe_data_range)
        mask = np.ones(self._energy_axis.nbin, bool)
        if in_safe_data_range and self.mask_safe is not None:
            mask = np.asarray(self.mask_safe.values, bool)
        hot = self._require("info_dict")
        n_on = float(hot.n_on[mask].sum()) if hot.n_on is not None else 0.0
        n_off = float(hot.n_off[mask].sum())
        bkg = float((hot.alpha * hot.n_off)[mask].sum())
        alpha = bkg / n_off if n_off > 0 else np.nan
        info["background"] = bkg
        info["excess"] = n_on - bkg
        info["counts_off"] = n_off
        info["alpha"] = alpha
        info["sqrt_ts"] = float(stats.li_ma_significance(n_on, n_off, alpha)) if n_off > 0 else np.nan
        acc = float(np.asarray(self.acceptance.values)[mask].sum())
        info["acceptance"] = acc
        info["acceptance_off"] = acc / alpha if n_off > 0 else np.nan
        lt = info["livetime"].to_value(u.s) if isinstance(info.get("livetime"), u.Quantity) else np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            info["background_rate"] = bkg / lt / u.s
            info["excess_rate"] = (n_on - bkg) / lt / u.s
        return info

    # constructors and files -----------------------------------------------------------------------
    @classmethod
    def create(
        cls, e_reco, e_true=None, region=None, reference_time="2000-01-01", name=None, meta_table=None, **kwargs
    ) -> "SpectrumDatasetOnOff":
        """Empty on-off dataset: zero counts and off counts, acceptances 1, zero exposure,
        diagonal edisp and ``mask_safe`` False (as `SpectrumDataset.create`)."""
        ds = SpectrumDataset.create(
            e_reco, e_true, region=region, reference_time=reference_time, name=name, meta_table=meta_table
        )
        n = ds.data.sizes["energy"]
        data = ds.data.drop_vars("background")
        new = cls.from_xarray(data, validate=False)
        new.counts_off = kwargs.pop("counts_off", np.zeros(n))
        new.acceptance = kwargs.pop("acceptance", np.ones(n))
        new.acceptance_off = kwargs.pop("acceptance_off", np.ones(n))
        if kwargs:
            raise TypeError(f"create() got unexpected argument(s) {sorted(kwargs)}")
        return new

    @classmethod
    def from_spectrum_dataset(
        cls, dataset: SpectrumDataset, acceptance, acceptance_off, counts_off=None, name: str | None = None
    ) -> "SpectrumDatasetOnOff":
        """On-off dataset from a `SpectrumDataset`: ``counts_off = background / alpha`` unless given."""
        data = dataset.data.copy(deep=True)
        n = data.sizes["energy"]
        acc = np.broadcast_to(np.asarray(getattr(acceptance, "values", acceptance), dtype=np.float64), (n,)).copy()
        acc_off = np.broadcast_to(
            np.asarray(getattr(acceptance_off, "values", acceptance_off), dtype=np.float64), (n,)
        ).copy()
        if counts_off is None:
            bkg = np.asarray(data["background"].values) if "background" in data else np.zeros(n)
            counts_off = np.divide(bkg * acc_off, acc, out=np.zeros(n), where=acc > 0)
        if "background" in data:
            data = data.drop_vars("background")
        if name is not None:
            data.attrs["name"] = name
        new = cls.from_xarray(data, validate=False)
        new.counts_off = np.asarray(getattr(counts_off, "values", counts_off), dtype=np.float64)
        new.acceptance = acc
        new.acceptance_off = acc_off
        return new

    def write(self, filename, overwrite: bool = False, **kwargs) -> None:
        """Write OGIP PHA/ARF/RMF/BKG files (`xspec_ds.io.ogip.write_ogip`), or netCDF for ``.nc``."""
        name = str(filename)
        if name.endswith((".nc", ".nc4")):
            from .io import write_dataset

            write_dataset(self, filename, overwrite=overwrite, **kwargs)
            return
        from .io.ogip import write_ogip

        write_ogip(self, filename, overwrite=overwrite)

    @classmethod
    def read(cls, filename, name: str | None = None, **kwargs) -> "SpectrumDatasetOnOff":
        """Read an OGIP PHA (with its ARF, RMF and BACKFILE) or a netCDF file."""
        from .io import read_dataset

        return read_dataset(cls, filename, name=name, **kwargs)


# stacking rules for the on-off variables (used by `xspec_ds.ops.stack`) ----------------------------
def _stack_counts_off(arrays, ctx):
    return np.where(ctx.safe, arrays["counts_off"], 0.0).sum(axis=0)


def _stack_acceptance(arrays, ctx):
    return np.where(ctx.safe, arrays["acceptance"], 0.0).sum(axis=0)


def _stack_acceptance_off(arrays, ctx):
    """Gammapy's rule (``MapDatasetOnOff.stack``): the stacked alpha is the ``n_off``-weighted
    mean ``sum_k alpha_k n_off,k / sum_k n_off,k`` over safe bins, so ``alpha n_off`` (the
    background) is conserved; bins with no off counts use the overall weighted alpha."""
    safe = ctx.safe
    acc, acc_off, n_off = arrays["acceptance"], arrays["acceptance_off"], arrays["counts_off"]
    alpha = np.where(acc_off > 0, acc / np.where(acc_off > 0, acc_off, 1.0), 0.0)
    total_off = np.where(safe, n_off, 0.0).sum(axis=0)
    total_bkg = np.where(safe, alpha * n_off, 0.0).sum(axis=0)
    total_acc = np.where(safe, acc, 0.0).sum(axis=0)
    sum_off = total_off.sum()
    mean_alpha = total_bkg.sum() / np.where(sum_off > 0, sum_off, 1.0)
    per_bin = np.where(total_off > 0, total_bkg / np.where(total_off > 0, total_off, 1.0), mean_alpha)
    return np.where(per_bin > 0, total_acc / np.where(per_bin > 0, per_bin, 1.0), 0.0)


# resampling rules for the on-off variables (used by `xspec_ds.ops.resample`) --------------------------
def _resample_acceptance_off(da, safe, group, ds):
    """Merged bins keep the background: ``alpha_J = sum_j alpha_j n_off,j m_j / sum_j n_off,j m_j``
    (the ``n_off``-weighted alpha, as for stacking; the plain mean of the safe alphas where a
    merged bin has no off counts) and ``acceptance_off_J = acceptance_J / alpha_J``, with
    ``acceptance_J = sum_j acceptance_j m_j``."""
    import xarray as xr

    from .ops.resample import _sum_safe

    acc, acc_off, n_off = ds["acceptance"], da, ds["counts_off"]
    alpha = xr.where(acc_off > 0, acc / xr.where(acc_off > 0, acc_off, 1.0), 0.0)
    m = safe if safe is not None else xr.ones_like(n_off, dtype=bool)
    bkg_J = _sum_safe(alpha * n_off, m, group)
    off_J = _sum_safe(n_off, m, group)
    mean_J = _sum_safe(alpha, m, group) / xr.where(
        _sum_safe(m.astype(float), None, group) > 0, _sum_safe(m.astype(float), None, group), 1.0
    )
    alpha_J = xr.where(off_J > 0, bkg_J / xr.where(off_J > 0, off_J, 1.0), mean_J)
    acc_J = _sum_safe(acc, m, group)
    return xr.where(alpha_J > 0, acc_J / xr.where(alpha_J > 0, alpha_J, 1.0), acc_J)


_resample_acceptance_off.needs_dataset = True


def _register_resample_rules() -> None:
    from .ops.resample import RESAMPLE_RULES, _sum_safe

    RESAMPLE_RULES["counts_off"] = _sum_safe
    RESAMPLE_RULES["acceptance"] = _sum_safe
    RESAMPLE_RULES["acceptance_off"] = _resample_acceptance_off


def _register_stack_rules() -> None:
    try:
        from .ops.stack import StackRule, register_stack_rule
    except ImportError:  # ops not available: nothing to register
        return
    register_stack_rule("counts_off", StackRule(_stack_counts_off, "raise"))
    register_stack_rule("acceptance", StackRule(_stack_acceptance, "raise"))
    register_stack_rule("acceptance_off", StackRule(_stack_acceptance_off, "raise"))


_register_stack_rules()
_register_resample_rules()
