"""Spectral models with Gammapy's names, parameters and formulas.

Every model works internally in canonical units: energy in TeV, differential flux (dN/dE) in
``cm-2 s-1 TeV-1`` and integral flux in ``cm-2 s-1``. Parameters may be given in any compatible
unit; `Parameter.canonical` holds the converted float that the formulas below use.

Formulas follow the Gammapy documentation of the models of the same name (Gammapy 2.1,
``gammapy.modeling.models.spectral``). Closed-form integrals are used for the power-law family,
constant and broken power law; everything else is integrated by log-space Gauss-Legendre
quadrature (`xspec_ds.models.quadrature`) to better than 1e-6 relative.
"""

from __future__ import annotations

import copy as _copy
import operator

import astropy.units as u
import numpy as np

from .parameter import Parameter, Parameters
from .quadrature import QuadratureNodes, quadrature_nodes

__all__ = [
    "SpectralModel",
    "PowerLawSpectralModel",
    "PowerLaw2SpectralModel",
    "LogParabolaSpectralModel",
    "ExpCutoffPowerLawSpectralModel",
    "BrokenPowerLawSpectralModel",
    "SmoothBrokenPowerLawSpectralModel",
    "ConstantSpectralModel",
    "TemplateSpectralModel",
    "ScaleSpectralModel",
    "CompoundSpectralModel",
    "PowerLawNormSpectralModel",
    "SPECTRAL_MODEL_REGISTRY",
]

ENERGY_UNIT = u.TeV
DNDE_UNIT = u.Unit("cm-2 s-1 TeV-1")
FLUX_UNIT = u.Unit("cm-2 s-1")

SPECTRAL_MODEL_REGISTRY: dict[str, type] = {}


def _energy_tev(energy) -> np.ndarray:
    q = u.Quantity(energy)
    if q.unit == u.dimensionless_unscaled:
        raise u.UnitsError("energy must carry an energy unit (e.g. '1 TeV')")
    return np.asarray(q.to_value(ENERGY_UNIT), dtype=np.float64)


def _pl_integral(amplitude, index, reference, emin, emax):
    """Integral of ``A (E/E0)^-index`` over [emin, emax], stable near index = 1."""
    g = 1.0 - index
    if (isinstance(g, float) and abs(g) >= 0.05) or (
        isinstance(g, np.ndarray) and g.size and np.min(np.abs(g)) >= 0.05
    ):
        # Fast path (the fit hot path): the plain difference ``x2^g - x1^g``. Its relative
        # rounding error is about 2e-16 / (|g| ln(emax/emin)): below 5e-12 for |g| >= 0.05 and
        # ln(emax/emin) >= 1e-3 (~2000 bins per decade); the expm1 form below is for g near 0.
        if isinstance(g, np.ndarray) and g.ndim:  # a batch of rows: powers once per edge, not twice per bin
            p = _edge_powers(g, reference, emin, emax)
            if p is not None:
                return (amplitude * reference / g) * (p[..., 1:] - p[..., :-1])
        return (amplitude * reference / g) * ((emax / reference) ** g - (emin / reference) ** g)
    if isinstance(g, np.ndarray) and g.ndim and np.max(np.abs(g)) >= 0.05:
        # a batch with both kinds of rows: each form on its own rows (or elements)
        rows = _split_rows(g, (amplitude, index, reference), emin, np.abs(g) >= 0.05)
        if rows is not None:
            return _combine_rows(rows, lambda a, i, r: _pl_integral(a, i, r, emin, emax), np.shape(emin))
        G, A, R, E1, E2 = np.broadcast_arrays(g, amplitude, reference, emin, emax)
        big = np.abs(G) >= 0.05
        out = np.empty(G.shape)
        out[big] = _pl_integral(A[big], 1.0 - G[big], R[big], E1[big], E2[big])
        small = ~big
        out[small] = _pl_integral(A[small], 1.0 - G[small], R[small], E1[small], E2[small])
        return out
    x1 = emin / reference
    log_ratio = np.log(emax / emin)
    gl = g * log_ratio
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(np.abs(gl) < 1e-10, log_ratio * (1 + 0.5 * gl), np.expm1(gl) / np.where(g == 0, 1.0, g))
    return amplitude * reference * x1**g * factor


def _split_rows(g, params, emin, first):
    """For parameters of shape ``(K, 1)`` and 1-D bins: ``(mask, params_true, params_false)``
    splitting the rows by the boolean ``first`` (shape ``(K, 1)``), else None."""
    if g.ndim != 2 or g.shape[1] != 1 or np.ndim(emin) != 1:
        return None
    k = g.shape[0]
    full = [np.broadcast_to(np.asarray(p, dtype=np.float64), (k, 1)) for p in params]
    m = first[:, 0]
    return m, [p[m] for p in full], [p[~m] for p in full]


def _combine_rows(rows, func, bins_shape):
    m, p_true, p_false = rows
    out = np.empty((m.size,) + bins_shape)
    if m.any():
        out[m] = func(*p_true)
    if (~m).any():
        out[~m] = func(*p_false)
    return out


def _contiguous(emin, emax) -> bool:
    return (
        np.ndim(emin) == 1
        and np.shape(emin) == np.shape(emax)
        and np.size(emin) > 0
        and np.array_equal(emin[1:], emax[:-1])
    )


def _edge_powers(g, reference, emin, emax, with_log: bool = False):
    """``(E/E0)^g`` at the ``Nt + 1`` edges of contiguous bins (None if the bins are not
    contiguous), computed as ``exp(g (ln E - ln E0))``; with ``with_log`` also ``ln(E/E0)``."""
    if not _contiguous(emin, emax) or any(np.shape(v)[-1:] not in ((), (1,)) for v in (g, reference)):
        return None  # needs bins along the last axis and one parameter value per row
    log_e = np.log(np.append(emin, emax[-1])) - np.log(reference)
    p = np.exp(g * log_e)
    return (p, log_e) if with_log else p


def _pl_unit_and_dindex(index, reference, emin, emax):
    """Batch path: ``integral (E/E0)^-index dE`` per bin and its ``index`` derivative from one set
    of edge powers (closed forms of `_pl_integral` and `_pl_integral_dindex`); None where the
    series forms are needed (``|1 - index|`` small) or the bins are not contiguous."""
    g = 1.0 - index
    if not (isinstance(g, np.ndarray) and g.size and np.min(np.abs(g)) >= 0.05):
        return None
    out = _edge_powers(g, reference, emin, emax, with_log=True)
    if out is None:
        return None
    p, log_x = out
    unit = reference / g * (p[..., 1:] - p[..., :-1])
    q = p * (log_x / g - 1 / g**2)
    return unit, -reference * (q[..., 1:] - q[..., :-1])


def _pl_integral_dindex(amplitude, index, reference, emin, emax):
    """d/d(index) of `_pl_integral`: ``-A E0 integral x^-index ln x dx``."""
    g = 1.0 - index
    x1, x2 = emin / reference, emax / reference
    l1, l2 = np.log(x1), np.log(x2)
    if not isinstance(g, float) and np.ndim(g) > 0:  # a batch: series where |g| is small, closed form elsewhere
        small = np.abs(g) < 1e-3
        if not np.any(small):
            return _pl_integral_dindex_closed(amplitude, g, reference, x1, x2, l1, l2)
        if np.all(small):
            return _pl_integral_dindex_series(amplitude, g, reference, l1, l2)
        # evaluate each form only on its own rows or elements (the series is 12 terms: not for every row)
        rows = _split_rows(g, (amplitude, index, reference), emin, ~small)
        if rows is not None:
            return _combine_rows(rows, lambda a, i, r: _pl_integral_dindex(a, i, r, emin, emax), np.shape(emin))
        G, A, R, X1, X2, L1, L2 = np.broadcast_arrays(g, amplitude, reference, x1, x2, l1, l2)
        sel = np.abs(G) < 1e-3
        out = np.empty(G.shape)
        out[sel] = _pl_integral_dindex_series(A[sel], G[sel], R[sel], L1[sel], L2[sel])
        rest = ~sel
        out[rest] = _pl_integral_dindex_closed(A[rest], G[rest], R[rest], X1[rest], X2[rest], L1[rest], L2[rest])
        return out
    if abs(g) < 1e-3:
        # the closed form cancels like 1/g^2 near index = 1 (1e-2 relative error at g = 1e-7);
        # integral of t e^(g t) dt = sum_k g^k / k! (l2^(k+2) - l1^(k+2)) / (k+2), |g t| << 1
        prim = np.zeros(np.broadcast(l1, l2).shape)
        coef = 1.0
        for k in range(12):
            prim = prim + coef * (l2 ** (k + 2) - l1 ** (k + 2)) / (k + 2)
            coef *= g / (k + 1)
    else:
        prim = (x2**g * (l2 / g - 1 / g**2)) - (x1**g * (l1 / g - 1 / g**2))
    return -amplitude * reference * prim


def _pl_integral_dindex_closed(amplitude, g, reference, x1, x2, l1, l2):
    prim = (x2**g * (l2 / g - 1 / g**2)) - (x1**g * (l1 / g - 1 / g**2))
    return -amplitude * reference * prim


def _pl_integral_dindex_series(amplitude, g, reference, l1, l2):
    prim = 0.0
    coef = 1.0
    for k in range(12):
        prim = prim + coef * (l2 ** (k + 2) - l1 ** (k + 2)) / (k + 2)
        coef = coef * g / (k + 1)
    return -amplitude * reference * prim


def _expand(t, n: int) -> list:
    """Each parameter array of ``t`` with ``n`` trailing axes added (to broadcast with energies)."""
    idx = (Ellipsis,) + (None,) * n
    return [np.asarray(x, dtype=np.float64)[idx] for x in t]


FD_REL_STEP = 1e-6
"""Relative step of the central differences on parameter arrays used by models without an
analytic Jacobian (about 1e-10 relative accuracy; parameters are never mutated)."""


class SpectralModel:
    """Base class: a differential flux ``dN/dE(E)`` with named parameters.

    Subclasses declare ``_parameter_specs``: tuples ``(name, default, canonical_unit, options)``
    and implement ``_dnde_t(t, energy)``: the formula as a pure function of ``t``, the canonical
    parameter values in the order of `parameters` (floats, or arrays broadcasting against
    ``energy``). Models with a closed-form integral override ``_integral_t(t, emin, emax, nodes)``;
    models with analytic derivatives override ``_dnde_jac_t`` / ``_integral_jac_t``.

    The kernels `dnde_kernel`, `integral_kernel`, `dnde_jacobian` and `integral_jacobian` take a
    parameter array ``theta[..., P]`` (K rows for K spectra) and broadcast: no formula reads a
    parameter from ``self`` or changes one, so one model object serves any number of spectra.
    ``_dnde``/``_integral`` are these kernels at the current parameter values.
    """

    tag: tuple[str, ...] = ()
    _parameter_specs: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for t in cls.tag:
            SPECTRAL_MODEL_REGISTRY[t] = cls

    def __init__(self, **kwargs):
        known = [spec[0] for spec in self._parameter_specs]
        unknown = set(kwargs) - set(known)
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unknown parameter(s) {sorted(unknown)}; its parameters are {known}"
            )
        params = []
        for name, default, unit, opts in self._parameter_specs:
            value = kwargs.get(name, default)
            if isinstance(value, Parameter):
                par = value
            else:
                par = Parameter(
                    name,
                    value,
                    unit=None if isinstance(value, (str, u.Quantity)) else unit,
                    canonical_unit=unit,
                    **opts,
                )
            params.append(par)
        self._parameters = Parameters(params)
        for p in params:
            setattr(self, "_p_" + p.name, p)

    # parameters ---------------------------------------------------------------------------
    @property
    def parameters(self) -> Parameters:
        return self._parameters

    def __getattr__(self, name):
        # model.index, model.amplitude, ... like Gammapy
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.__dict__["_parameters"][name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no attribute or parameter {name!r}") from None

    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if params is not None and not name.startswith("_") and name in params.names:
            if isinstance(value, Parameter):
                raise AttributeError("replace parameters by setting their value, not the object")
            params[name].value = value
            return
        super().__setattr__(name, value)

    def _t(self) -> tuple:
        """Current canonical parameter values, in the order of `parameters` (Python floats)."""
        return tuple(p.canonical for p in self._parameters)

    def theta(self) -> np.ndarray:
        """Current canonical parameter values as an array of shape ``(P,)`` (see `integral_kernel`)."""
        return np.array(self._t(), dtype=np.float64)

    # pure kernels of a parameter array ------------------------------------------------------
    def dnde_kernel(self, theta, energy) -> np.ndarray:
        """``dN/dE`` in ``cm-2 s-1 TeV-1`` at ``energy`` (TeV, shape ``(N,)``) for parameter rows
        ``theta[..., P]`` (canonical units, order of `parameters`): shape ``(..., N)``."""
        theta = np.asarray(theta, dtype=np.float64)
        out = self._dnde_t(_expand(np.moveaxis(theta, -1, 0), 1), np.asarray(energy, dtype=np.float64))
        return np.broadcast_to(out, theta.shape[:-1] + np.shape(energy))

    def dnde_jacobian(self, theta, energy) -> np.ndarray:
        """``d dnde / d theta``: shape ``(..., P, N)`` (analytic where the model has it)."""
        theta = np.asarray(theta, dtype=np.float64)
        t = _expand(np.moveaxis(theta, -1, 0), 1)
        jac = self._dnde_jac_t(t, np.asarray(energy, dtype=np.float64))
        shape = theta.shape[:-1] + (np.size(energy),)
        return (
            np.stack([np.broadcast_to(j, shape) for j in jac], axis=-2)
            if jac
            else np.zeros(shape[:-1] + (0, shape[-1]))
        )

    def integral_kernel(self, theta, e_lo, e_hi, nodes: QuadratureNodes | None = None) -> np.ndarray:
        """Integral flux per bin (``cm-2 s-1``) of ``[e_lo, e_hi]`` (TeV, shape ``(N,)``) for
        parameter rows ``theta[..., P]``: shape ``(..., N)``."""
        theta = np.asarray(theta, dtype=np.float64)
        t = _expand(np.moveaxis(theta, -1, 0), 1)
        out = self._integral_t(t, e_lo, e_hi, nodes)
        return np.broadcast_to(out, theta.shape[:-1] + np.shape(e_lo))

    def integral_jacobian(self, theta, e_lo, e_hi, nodes: QuadratureNodes | None = None) -> np.ndarray:
        """``d integral / d theta`` per bin: shape ``(..., P, N)`` (canonical units)."""
        theta = np.asarray(theta, dtype=np.float64)
        t = _expand(np.moveaxis(theta, -1, 0), 1)
        jac = self._integral_jac_t(t, e_lo, e_hi, nodes)
        shape = theta.shape[:-1] + np.shape(e_lo)
        if not jac:
            return np.zeros(theta.shape[:-1] + (0,) + np.shape(e_lo))
        return np.stack([np.broadcast_to(j, shape) for j in jac], axis=-2)

    def integral_and_jacobian(self, theta, e_lo, e_hi, nodes: QuadratureNodes | None = None, wrt=None):
        """`integral_kernel` and `integral_jacobian` in one call (models share work where they can).

        ``wrt``: positions (in `parameters`) of the Jacobian rows wanted, default all; the
        Jacobian has shape ``(..., len(wrt), N)``.
        """
        theta = np.asarray(theta, dtype=np.float64)
        t = _expand(np.moveaxis(theta, -1, 0), 1)
        flux, jac = self._integral_and_jac_t(t, e_lo, e_hi, nodes)
        shape = theta.shape[:-1] + np.shape(e_lo)
        flux = np.broadcast_to(flux, shape)
        if wrt is not None:
            jac = [jac[i] for i in wrt]
        if not jac:
            return flux, np.zeros(theta.shape[:-1] + (0,) + np.shape(e_lo))
        out = np.empty(theta.shape[:-1] + (len(jac),) + np.shape(e_lo))
        for i, j in enumerate(jac):
            out[..., i, :] = j
        return flux, out

    # formulas on t (override in subclasses) -----------------------------------------------------
    def _integral_and_jac_t(self, t, emin, emax, nodes=None):
        return self._integral_t(t, emin, emax, nodes), self._integral_jac_t(t, emin, emax, nodes)

    def _dnde_t(self, t, energy):  # pragma: no cover - abstract
        raise NotImplementedError

    def _integral_t(self, t, emin, emax, nodes=None):
        """Quadrature of `_dnde_t` (models with a closed form override this)."""
        if nodes is None:
            nodes = quadrature_nodes(emin, emax)
        return nodes.integrate(self._dnde_t(_expand(t, 1), nodes.energy))

    def _dnde_jac_t(self, t, energy) -> list:
        """``[d dnde / d t_k for k]``: central differences on the parameter arrays by default."""
        return _central_differences(lambda tt: self._dnde_t(tt, energy), t)

    def _integral_jac_t(self, t, emin, emax, nodes=None) -> list:
        """``[d integral / d t_k]``: quadrature of `_dnde_jac_t` for quadrature models, else central
        differences of `_integral_t` on the parameter arrays."""
        if not self.has_analytic_integral and type(self)._dnde_jac_t is not SpectralModel._dnde_jac_t:
            if nodes is None:
                nodes = quadrature_nodes(emin, emax)
            return [nodes.integrate(j) for j in self._dnde_jac_t(_expand(t, 1), nodes.energy)]
        return _central_differences(lambda tt: self._integral_t(tt, emin, emax, nodes), t)

    # evaluation -------------------------------------------------------------------------
    def __call__(self, energy) -> u.Quantity:
        """dN/dE at ``energy`` (a Quantity or string), in ``cm-2 s-1 TeV-1``."""
        return self._dnde(_energy_tev(energy)) * DNDE_UNIT

    def evaluate(self, energy):
        """Alias of ``__call__``."""
        return self(energy)

    def _dnde(self, energy: np.ndarray) -> np.ndarray:
        """dN/dE at canonical energies (TeV) for the current parameter values."""
        return self._dnde_t(self._t(), energy)

    def _integral(self, emin: np.ndarray, emax: np.ndarray, nodes: QuadratureNodes | None = None) -> np.ndarray:
        """Integral flux per bin in ``cm-2 s-1`` from canonical edges (TeV), current parameters."""
        return self._integral_t(self._t(), emin, emax, nodes)

    @property
    def has_analytic_integral(self) -> bool:
        return type(self)._integral_t is not SpectralModel._integral_t

    def integral(self, energy_min, energy_max, **kwargs) -> u.Quantity:
        """Integral flux between ``energy_min`` and ``energy_max`` (Quantities), ``cm-2 s-1``."""
        emin, emax = np.broadcast_arrays(_energy_tev(energy_min), _energy_tev(energy_max))
        return self._integral(emin, emax) * FLUX_UNIT

    def energy_flux(self, energy_min, energy_max) -> u.Quantity:
        """Energy flux ``integral E dN/dE dE`` in ``TeV cm-2 s-1`` (quadrature)."""
        emin, emax = np.broadcast_arrays(_energy_tev(energy_min), _energy_tev(energy_max))
        nodes = quadrature_nodes(emin, emax)
        return nodes.integrate(nodes.energy * self._dnde(nodes.energy)) * (FLUX_UNIT * ENERGY_UNIT)

    def _integral_deriv(self, emin, emax, params, nodes=None) -> np.ndarray:
        """d(integral per bin)/d(parameter value) for each parameter in ``params``.

        Returns an array of shape ``(len(params),) + emin.shape``: the rows of `integral_jacobian`
        at the current values (analytic where the model has it, else central differences on
        the parameter array), converted from canonical units to each parameter's value unit.
        """
        jac = self._integral_jac_t(self._t(), emin, emax, nodes)
        position = {id(q): i for i, q in enumerate(self._parameters)}  # `Parameters` holds each object once
        out = np.zeros((len(params),) + np.shape(emin))  # a parameter not of this model: 0
        for k, par in enumerate(params):
            i = position.get(id(par))
            if i is not None:
                out[k] = jac[i] * par._scale_to_canonical
        return out

    # algebra ----------------------------------------------------------------------------
    def __add__(self, other):
        return CompoundSpectralModel(self, other, operator.add)

    def __sub__(self, other):
        return CompoundSpectralModel(self, other, operator.sub)

    def __mul__(self, other):
        return CompoundSpectralModel(self, other, operator.mul)

    # serialisation ----------------------------------------------------------------------
    def to_dict(self, full_output: bool = False) -> dict:
        return {"type": self.tag[0], "parameters": [p.to_dict() for p in self.parameters]}

    @classmethod
    def from_dict(cls, data: dict) -> "SpectralModel":
        data = dict(data.get("spectral", data))
        tag = data.get("type")
        model_cls = SPECTRAL_MODEL_REGISTRY.get(tag) if cls is SpectralModel or tag not in cls.tag else cls
        if model_cls is None:
            raise ValueError(f"unknown spectral model type {tag!r}; known types: {sorted(SPECTRAL_MODEL_REGISTRY)}")
        return model_cls._from_dict(data)

    @classmethod
    def _from_dict(cls, data: dict) -> "SpectralModel":
        model = cls()
        model._update_parameters(data.get("parameters", []))
        return model

    def _update_parameters(self, items: list[dict]) -> None:
        for item in items:
            self.parameters[item["name"]].update_from_dict(item)

    def copy(self) -> "SpectralModel":
        return _copy.deepcopy(self)

    def __repr__(self) -> str:
        pars = ", ".join(
            f"{p.name}={p.value:.4g}{' ' + p.unit.to_string() if p.unit != u.dimensionless_unscaled else ''}"
            for p in self.parameters
        )
        return f"{type(self).__name__}({pars})"

    def plot(
        self, energy_bounds, ax=None, sed_type: str = "dnde", energy_power: int = 0, n_points: int = 100, **kwargs
    ):
        """Plot the model between ``energy_bounds`` (see `xspec_ds.plotting`)."""
        from ..plotting import plot_spectral_model

        return plot_spectral_model(
            self, energy_bounds, ax=ax, sed_type=sed_type, energy_power=energy_power, n_points=n_points, **kwargs
        )

    # covariance of the parameters (set by `xspec_ds.Fit`) ------------------------------------
    @property
    def covariance(self):
        """Covariance of `parameters` from the last fit: a ``DataArray(("parameter",
        "parameter_j"))`` labelled by parameter name (zero rows and columns for frozen parameters,
        all NaN after a failed covariance), or None before any fit. May be assigned (an array or
        DataArray ordered as `parameters`)."""
        cov = self.__dict__.get("_covariance")
        if isinstance(cov, tuple):  # (matrix, names, units) stored by the fit: label it once, now
            from .errors import covariance_dataarray

            cov = self.__dict__["_covariance"] = covariance_dataarray(*cov)
        return cov

    @covariance.setter
    def covariance(self, value) -> None:
        self.__dict__["_covariance"] = value
        self.__dict__.pop("_correlation", None)

    @property
    def correlation(self):
        """Correlation matrix of `covariance` (labelled the same way), or None."""
        corr = self.__dict__.get("_correlation")
        if corr is None:
            cov = self.covariance
            if cov is None:
                return None
            from .errors import correlation_dataarray, covariance_dataarray

            if not hasattr(cov, "dims"):
                names = [p.name for p in self.parameters]
                cov = covariance_dataarray(np.asarray(cov, dtype=np.float64), names)
            corr = self.__dict__["_correlation"] = correlation_dataarray(cov)
        return corr

    def _set_covariance(self, matrix, names, units) -> None:
        self.__dict__["_covariance"] = (matrix, names, units)
        self.__dict__.pop("_correlation", None)

    # errors of derived quantities (covariance propagation, `xspec_ds.models.errors`) -----------
    def evaluate_error(self, energy) -> u.Quantity:
        """``[dnde, dnde_errn, dnde_errp]`` at ``energy`` (see `xspec_ds.models.errors`)."""
        from .errors import evaluate_error

        return evaluate_error(self, energy)

    def integral_error(self, energy_min, energy_max) -> u.Quantity:
        """``[flux, flux_errn, flux_errp]`` between the bounds (see `xspec_ds.models.errors`)."""
        from .errors import integral_error

        return integral_error(self, energy_min, energy_max)

    def energy_flux_error(self, energy_min, energy_max) -> u.Quantity:
        """``[eflux, eflux_errn, eflux_errp]`` between the bounds (see `xspec_ds.models.errors`)."""
        from .errors import energy_flux_error

        return energy_flux_error(self, energy_min, energy_max)

    def plot_error(
        self, energy_bounds, ax=None, sed_type: str = "dnde", energy_power: int = 0, n_points: int = 100, **kwargs
    ):
        """Plot the 1-sigma error band (see `xspec_ds.models.errors.plot_error`)."""
        from .errors import plot_error

        return plot_error(
            self, energy_bounds, ax=ax, sed_type=sed_type, energy_power=energy_power, n_points=n_points, **kwargs
        )


class PowerLawSpectralModel(SpectralModel):
    r"""Power law ``dN/dE = amplitude (E / reference)^-index``.

    The bin integral is analytic, ``A E0 / (1 - index) [(E2/E0)^(1-index) - (E1/E0)^(1-index)]``
    (written with ``expm1`` so that index = 1 is exact), as in Gammapy's
    ``PowerLawSpectralModel.evaluate_integral``.
    """

    tag = ("PowerLawSpectralModel", "pl")
    _parameter_specs = (
        ("index", 2.0, u.dimensionless_unscaled, {}),
        ("amplitude", "1e-12 cm-2 s-1 TeV-1", DNDE_UNIT, {"is_norm": True}),
        ("reference", "1 TeV", ENERGY_UNIT, {"frozen": True}),
    )

    def _dnde_t(self, t, energy):
        index, amplitude, reference = t
        return amplitude * (energy / reference) ** (-index)

    def _dnde_jac_t(self, t, energy):
        index, amplitude, reference = t
        shape = amplitude * 0 + 1.0  # broadcast helper for amplitude = 0
        unit = (energy / reference) ** (-index) * shape
        dnde = amplitude * unit
        return [-np.log(energy / reference) * dnde, unit, index / reference * dnde]

    def _integral_t(self, t, emin, emax, nodes=None):
        index, amplitude, reference = t
        return _pl_integral(amplitude, index, reference, emin, emax)

    def _integral_and_jac_t(self, t, emin, emax, nodes=None):
        index, amplitude, reference = t
        fast = _pl_unit_and_dindex(index, reference, emin, emax)
        if fast is None:
            return SpectralModel._integral_and_jac_t(self, t, emin, emax, nodes)
        unit, dunit = fast
        flux = amplitude * unit
        return flux, [amplitude * dunit, unit * (amplitude * 0 + 1.0), index / reference * flux]

    def _integral_jac_t(self, t, emin, emax, nodes=None):
        """Analytic: ``dF/dA = F(A=1)``, ``dF/dindex`` (`_pl_integral_dindex`) and, since
        ``F = A E0^index integral E^-index dE``, ``dF/dE0 = index F / E0``."""
        index, amplitude, reference = t
        unit = _pl_integral(1.0, index, reference, emin, emax)
        return [
            _pl_integral_dindex(amplitude, index, reference, emin, emax),
            unit * (amplitude * 0 + 1.0),
            index / reference * amplitude * unit,
        ]


class PowerLaw2SpectralModel(SpectralModel):
    r"""Power law normalised by the integral flux between ``emin`` and ``emax``:
    ``dN/dE = amplitude (1 - index) E^-index / (emax^(1-index) - emin^(1-index))``
    (Gammapy's ``PowerLaw2SpectralModel``)."""

    tag = ("PowerLaw2SpectralModel", "pl-2")
    _parameter_specs = (
        ("amplitude", "1e-12 cm-2 s-1", FLUX_UNIT, {"is_norm": True}),
        ("index", 2.0, u.dimensionless_unscaled, {}),
        ("emin", "0.1 TeV", ENERGY_UNIT, {"frozen": True}),
        ("emax", "100 TeV", ENERGY_UNIT, {"frozen": True}),
    )

    def _dnde_t(self, t, energy):
        a, idx, e1, e2 = t
        norm = _pl_integral(1.0, idx, 1.0, e1, e2)
        return a * energy ** (-idx) / norm

    def _integral_t(self, t, emin, emax, nodes=None):
        a, idx, e1, e2 = t
        return a * _pl_integral(1.0, idx, 1.0, emin, emax) / _pl_integral(1.0, idx, 1.0, e1, e2)


class LogParabolaSpectralModel(SpectralModel):
    r"""Log parabola ``dN/dE = A (E/E0)^(-alpha - beta ln(E/E0))`` (natural log, as Gammapy).

    Use `from_log10` for the ``log10`` form of the literature (e.g. Nigro et al. 2019):
    ``beta_ln = beta_log10 / ln(10)``.
    """

    tag = ("LogParabolaSpectralModel", "lp")
    _parameter_specs = (
        ("amplitude", "1e-12 cm-2 s-1 TeV-1", DNDE_UNIT, {"is_norm": True}),
        ("reference", "10 TeV", ENERGY_UNIT, {"frozen": True}),
        ("alpha", 2.0, u.dimensionless_unscaled, {}),
        ("beta", 1.0, u.dimensionless_unscaled, {}),
    )

    @classmethod
    def from_log10(cls, amplitude, reference, alpha, beta, **kwargs) -> "LogParabolaSpectralModel":
        """Construct from the log10 form ``A (E/E0)^(-alpha - beta log10(E/E0))``."""
        beta = u.Quantity(beta).to_value(u.dimensionless_unscaled) / np.log(10)
        return cls(amplitude=amplitude, reference=reference, alpha=alpha, beta=beta, **kwargs)

    def _dnde_t(self, t, energy):
        amplitude, reference, alpha, beta = t
        x = np.log(energy / reference)
        return amplitude * np.exp(-x * (alpha + beta * x))

    def _dnde_jac_t(self, t, energy):
        """``d/dA = dnde/A``, ``d/dalpha = -x dnde``, ``d/dbeta = -x^2 dnde`` and
        ``d/dE0 = (alpha + 2 beta x) dnde / E0`` with ``x = ln(E/E0)``."""
        amplitude, reference, alpha, beta = t
        x = np.log(energy / reference)
        unit = np.exp(-x * (alpha + beta * x)) * (amplitude * 0 + 1.0)
        dnde = amplitude * unit
        return [unit, (alpha + 2 * beta * x) / reference * dnde, -x * dnde, -(x**2) * dnde]


class ExpCutoffPowerLawSpectralModel(SpectralModel):
    r"""``dN/dE = A (E/E0)^-index exp(-(lambda_ E)^alpha)`` (Gammapy's ExpCutoffPowerLawSpectralModel)."""

    tag = ("ExpCutoffPowerLawSpectralModel", "ecpl")
    _parameter_specs = (
        ("index", 1.5, u.dimensionless_unscaled, {}),
        ("amplitude", "1e-12 cm-2 s-1 TeV-1", DNDE_UNIT, {"is_norm": True}),
        ("reference", "1 TeV", ENERGY_UNIT, {"frozen": True}),
        ("lambda_", "0.1 TeV-1", 1 / ENERGY_UNIT, {}),
        ("alpha", 1.0, u.dimensionless_unscaled, {"frozen": True}),
    )

    def _dnde_t(self, t, energy):
        index, amplitude, reference, lambda_, alpha = t
        pl = amplitude * (energy / reference) ** (-index)
        return pl * np.exp(-((lambda_ * energy) ** alpha))

    def _dnde_jac_t(self, t, energy):
        """With ``u = (lambda E)^alpha``: ``d/dindex = -ln(E/E0) dnde``, ``d/dA = dnde/A``,
        ``d/dE0 = index dnde / E0``, ``d/dlambda = -alpha u dnde / lambda`` (written
        ``-alpha lambda^(alpha-1) E^alpha dnde``; at lambda = 0 its limit: ``-E dnde`` for
        alpha = 1, 0 for alpha > 1, and 0 in place of the divergent value for alpha < 1) and
        ``d/dalpha = -u ln(lambda E) dnde`` (0 where ``lambda E = 0``)."""
        index, amplitude, reference, lambda_, alpha = t
        le = lambda_ * energy
        u_ = le**alpha
        unit = (energy / reference) ** (-index) * np.exp(-u_) * (amplitude * 0 + 1.0)
        dnde = amplitude * unit
        with np.errstate(divide="ignore", invalid="ignore"):
            log_le = np.where(le > 0, np.log(np.where(le > 0, le, 1.0)), 0.0)
            # 0 ** 0 = 1 (alpha = 1: the derivative at lambda = 0 is -E dnde, not 0), 0 ** (> 0) = 0
            d_lambda = (
                -alpha * np.where((lambda_ != 0) | (alpha >= 1), lambda_ ** (alpha - 1), 0.0) * energy**alpha * dnde
            )
        return [
            -np.log(energy / reference) * dnde,
            unit,
            index / reference * dnde,
            d_lambda,
            -u_ * log_le * dnde,
        ]


class BrokenPowerLawSpectralModel(SpectralModel):
    r"""``dN/dE = A (E/E_break)^-index1`` below ``ebreak`` and ``A (E/E_break)^-index2`` above.
    The bin integral is analytic, split at the break."""

    tag = ("BrokenPowerLawSpectralModel", "bpl")
    _parameter_specs = (
        ("index1", 2.0, u.dimensionless_unscaled, {}),
        ("index2", 2.0, u.dimensionless_unscaled, {}),
        ("amplitude", "1e-12 cm-2 s-1 TeV-1", DNDE_UNIT, {"is_norm": True}),
        ("ebreak", "1 TeV", ENERGY_UNIT, {}),
    )

    def _dnde_t(self, t, energy):
        i1, i2, a, eb = t
        idx = np.where(energy < eb, i1, i2)
        return a * (energy / eb) ** (-idx)

    def _integral_t(self, t, emin, emax, nodes=None):
        i1, i2, a, eb = t
        lo_hi = np.minimum(emax, eb)
        hi_lo = np.maximum(emin, eb)
        below = np.where(emin < eb, _pl_integral(a, i1, eb, emin, np.maximum(lo_hi, emin)), 0.0)
        above = np.where(emax > eb, _pl_integral(a, i2, eb, np.minimum(hi_lo, emax), emax), 0.0)
        return below + above


class SmoothBrokenPowerLawSpectralModel(SpectralModel):
    r"""``dN/dE = A (E/E0)^-index1 [1 + (E/E_break)^((index2 - index1)/beta)]^-beta``
    (Gammapy's SmoothBrokenPowerLawSpectralModel)."""

    tag = ("SmoothBrokenPowerLawSpectralModel", "sbpl")
    _parameter_specs = (
        ("index1", 2.0, u.dimensionless_unscaled, {}),
        ("index2", 2.0, u.dimensionless_unscaled, {}),
        ("amplitude", "1e-12 cm-2 s-1 TeV-1", DNDE_UNIT, {"is_norm": True}),
        ("ebreak", "1 TeV", ENERGY_UNIT, {}),
        ("reference", "1 TeV", ENERGY_UNIT, {"frozen": True}),
        ("beta", 1.0, u.dimensionless_unscaled, {}),
    )

    def _dnde_t(self, t, energy):
        i1, i2, amplitude, ebreak, reference, beta = t
        pl = amplitude * (energy / reference) ** (-i1)
        return pl * (1 + (energy / ebreak) ** ((i2 - i1) / beta)) ** (-beta)


class ConstantSpectralModel(SpectralModel):
    """``dN/dE = const``; the bin integral is ``const (E2 - E1)``."""

    tag = ("ConstantSpectralModel", "const")
    _parameter_specs = (("const", "1e-12 cm-2 s-1 TeV-1", DNDE_UNIT, {"is_norm": True}),)

    def _dnde_t(self, t, energy):
        (const,) = t
        return const * np.ones(np.shape(energy))

    def _dnde_jac_t(self, t, energy):
        (const,) = t
        return [np.ones(np.shape(energy)) * (const * 0 + 1.0)]

    def _integral_t(self, t, emin, emax, nodes=None):
        (const,) = t
        return const * (emax - emin)

    def _integral_jac_t(self, t, emin, emax, nodes=None):
        (const,) = t
        return [(emax - emin) * (const * 0 + 1.0)]


class PowerLawNormSpectralModel(SpectralModel):
    """Dimensionless ``norm (E/reference)^-tilt``: the spectral part of a background model
    (Gammapy's ``PowerLawNormSpectralModel``, the default of ``FoVBackgroundModel``)."""

    tag = ("PowerLawNormSpectralModel", "pl-norm")
    _parameter_specs = (
        ("norm", 1.0, u.dimensionless_unscaled, {"is_norm": True}),
        ("tilt", 0.0, u.dimensionless_unscaled, {"frozen": True}),
        ("reference", "1 TeV", ENERGY_UNIT, {"frozen": True}),
    )

    def _dnde_t(self, t, energy):
        norm, tilt, reference = t
        return norm * (energy / reference) ** (-tilt)

    def _dnde_jac_t(self, t, energy):
        norm, tilt, reference = t
        unit = (energy / reference) ** (-tilt) * (norm * 0 + 1.0)
        dnde = norm * unit
        return [unit, -np.log(energy / reference) * dnde, tilt / reference * dnde]

    def __call__(self, energy):
        return self._dnde(_energy_tev(energy)) * u.dimensionless_unscaled


class TemplateSpectralModel(SpectralModel):
    """Tabulated ``dN/dE`` at ``energy`` nodes, interpolated linearly in log-log space and
    extrapolated the same way (Gammapy's TemplateSpectralModel with ``interp_kwargs`` default).
    It has no free parameters; scale it with `ScaleSpectralModel`."""

    tag = ("TemplateSpectralModel", "template")
    _parameter_specs = ()

    def __init__(self, energy=None, values=None):
        super().__init__()
        if energy is None or values is None:
            raise TypeError("TemplateSpectralModel needs `energy` and `values`")
        energy_tev = _energy_tev(energy)
        values = u.Quantity(values)
        if values.unit == u.dimensionless_unscaled:
            raise u.UnitsError("TemplateSpectralModel values need a dN/dE unit, e.g. 'cm-2 s-1 TeV-1'")
        vals = values.to_value(DNDE_UNIT)
        if energy_tev.shape != vals.shape or energy_tev.ndim != 1 or energy_tev.size < 2:
            raise ValueError("TemplateSpectralModel: energy and values must be 1-D of equal length >= 2")
        if np.any(np.diff(energy_tev) <= 0) or np.any(vals <= 0):
            raise ValueError("TemplateSpectralModel: energies must increase and values be positive")
        self._log_e = np.log(energy_tev)
        self._log_v = np.log(vals)

    def _dnde_t(self, t, energy):
        le = np.log(energy)
        i = np.clip(np.searchsorted(self._log_e, le) - 1, 0, self._log_e.size - 2)
        x0, x1 = self._log_e[i], self._log_e[i + 1]
        y0, y1 = self._log_v[i], self._log_v[i + 1]
        return np.exp(y0 + (le - x0) * (y1 - y0) / (x1 - x0))

    def _integral_t(self, t, emin, emax, nodes=None):
        # exact: piecewise power law between nodes, split bins at the nodes
        e = np.exp(self._log_e)
        slopes = -np.diff(self._log_v) / np.diff(self._log_e)
        emin, emax = np.broadcast_arrays(emin, emax)
        pts = np.concatenate([[0.0], e[1:-1], [np.inf]])
        total = np.zeros(emin.shape)
        for k in range(slopes.size):  # loop over template segments (few), vectorised over bins
            lo = np.maximum(emin, pts[k])
            hi = np.minimum(emax, pts[k + 1])
            valid = hi > lo
            amp = np.exp(self._log_v[k])
            seg = _pl_integral(amp, slopes[k], e[k], np.where(valid, lo, 1.0), np.where(valid, hi, 1.0))
            total += np.where(valid, seg, 0.0)
        return total

    def to_dict(self, full_output: bool = False) -> dict:
        return {
            "type": self.tag[0],
            "energy": {"data": np.exp(self._log_e).tolist(), "unit": "TeV"},
            "values": {"data": np.exp(self._log_v).tolist(), "unit": DNDE_UNIT.to_string()},
            "parameters": [],
        }

    @classmethod
    def _from_dict(cls, data):
        return cls(
            energy=u.Quantity(data["energy"]["data"], data["energy"]["unit"]),
            values=u.Quantity(data["values"]["data"], data["values"]["unit"]),
        )


class ScaleSpectralModel(SpectralModel):
    """``norm * model`` (Gammapy's ScaleSpectralModel)."""

    tag = ("ScaleSpectralModel",)
    _parameter_specs = (("norm", 1.0, u.dimensionless_unscaled, {"is_norm": True}),)

    def __init__(self, model: SpectralModel, norm=1.0):
        super().__init__(norm=norm)
        self._model = model
        self._parameters = Parameters(list(self._parameters) + list(model.parameters))

    @property
    def model(self):
        return self._model

    def _dnde_t(self, t, energy):
        return t[0] * self._model._dnde_t(t[1:], energy)

    def _integral_t(self, t, emin, emax, nodes=None):
        return t[0] * self._model._integral_t(t[1:], emin, emax, nodes)

    def _dnde_jac_t(self, t, energy):
        return [self._model._dnde_t(t[1:], energy)] + [t[0] * j for j in self._model._dnde_jac_t(t[1:], energy)]

    def _integral_jac_t(self, t, emin, emax, nodes=None):
        inner = self._model._integral_jac_t(t[1:], emin, emax, nodes)
        return [self._model._integral_t(t[1:], emin, emax, nodes)] + [t[0] * j for j in inner]

    def to_dict(self, full_output: bool = False) -> dict:
        return {"type": self.tag[0], "parameters": [self._p_norm.to_dict()], "model": self._model.to_dict()}

    @classmethod
    def _from_dict(cls, data):
        model = cls(SpectralModel.from_dict(data["model"]))
        model._update_parameters(data.get("parameters", []))
        return model


def _central_differences(func, t) -> list:
    """``[d func / d t_k]`` by central differences with a relative step `FD_REL_STEP` on the
    parameter arrays ``t`` (pure: new arrays are built, nothing is mutated)."""
    t = [np.asarray(x, dtype=np.float64) for x in t]
    out = []
    for k, x in enumerate(t):
        h = FD_REL_STEP * np.maximum(np.abs(x), 1e-12)
        plus = t[:k] + [x + h] + t[k + 1 :]
        minus = t[:k] + [x - h] + t[k + 1 :]
        out.append((func(plus) - func(minus)) / (2 * h))
    return out


_OPERATORS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul}


class CompoundSpectralModel(SpectralModel):
    """Sum, difference or product of two spectral models (Gammapy's CompoundSpectralModel).

    A sum or difference is integrated term by term (analytic where the terms are); a product
    is integrated by quadrature.
    """

    tag = ("CompoundSpectralModel",)

    def __init__(self, model1: SpectralModel, model2: SpectralModel, operator):
        super().__init__()
        if isinstance(operator, str):
            if operator not in _OPERATORS:
                raise ValueError(f"unknown operator {operator!r}; use one of {sorted(_OPERATORS)}")
            operator = _OPERATORS[operator]
        self.model1, self.model2, self.operator = model1, model2, operator
        self._parameters = Parameters(list(model1.parameters) + list(model2.parameters))

    def _split(self, t):
        n1 = len(self.model1.parameters)
        return t[:n1], t[n1:]

    def _dnde_t(self, t, energy):
        t1, t2 = self._split(t)
        return self.operator(self.model1._dnde_t(t1, energy), self.model2._dnde_t(t2, energy))

    def _dnde_jac_t(self, t, energy):
        """Sum, difference and product rules on the terms' Jacobians."""
        t1, t2 = self._split(t)
        j1, j2 = self.model1._dnde_jac_t(t1, energy), self.model2._dnde_jac_t(t2, energy)
        if self.operator is operator.add:
            return j1 + j2
        if self.operator is operator.sub:
            return j1 + [-j for j in j2]
        f1, f2 = self.model1._dnde_t(t1, energy), self.model2._dnde_t(t2, energy)
        return [j * f2 for j in j1] + [f1 * j for j in j2]

    def _integral_t(self, t, emin, emax, nodes=None):
        if self.operator in (operator.add, operator.sub):
            t1, t2 = self._split(t)
            return self.operator(
                self.model1._integral_t(t1, emin, emax, nodes), self.model2._integral_t(t2, emin, emax, nodes)
            )
        return SpectralModel._integral_t(self, t, emin, emax, nodes)

    def _integral_jac_t(self, t, emin, emax, nodes=None):
        if self.operator in (operator.add, operator.sub):
            t1, t2 = self._split(t)
            j1 = self.model1._integral_jac_t(t1, emin, emax, nodes)
            j2 = self.model2._integral_jac_t(t2, emin, emax, nodes)
            return j1 + (j2 if self.operator is operator.add else [-j for j in j2])
        if nodes is None:
            nodes = quadrature_nodes(emin, emax)
        return [nodes.integrate(j) for j in self._dnde_jac_t(_expand(t, 1), nodes.energy)]

    def to_dict(self, full_output: bool = False) -> dict:
        name = next(k for k, v in _OPERATORS.items() if v is self.operator)
        return {"type": self.tag[0], "model1": self.model1.to_dict(), "model2": self.model2.to_dict(), "operator": name}

    @classmethod
    def _from_dict(cls, data):
        return cls(SpectralModel.from_dict(data["model1"]), SpectralModel.from_dict(data["model2"]), data["operator"])

    def __repr__(self):
        return f"CompoundSpectralModel({self.model1!r}, {self.model2!r}, {self.operator.__name__})"


def linear_norm_parameter(model: SpectralModel):
    """The parameter ``model``'s flux is proportional to, or None.

    That is its one ``is_norm`` parameter (Gammapy's convention: a norm scales the flux
    linearly), provided the model has exactly one and contains no sum or difference (in
    ``PL + template`` the flux is not proportional to the power law's amplitude; products such as
    an absorbed power law are). Used to skip the fold when only the norm changes.

    Examples
    --------
    >>> pl = PowerLawSpectralModel()
    >>> linear_norm_parameter(pl) is pl.amplitude
    True
    >>> linear_norm_parameter(pl + ConstantSpectralModel()) is None
    True
    """

    def has_sum(m) -> bool:
        if isinstance(m, CompoundSpectralModel):
            return m.operator is not operator.mul or has_sum(m.model1) or has_sum(m.model2)
        inner = getattr(m, "_model", None)  # ScaleSpectralModel
        return has_sum(inner) if isinstance(inner, SpectralModel) else False

    norms = [p for p in model.parameters if p.is_norm]
    if len(norms) != 1 or has_sum(model):
        return None
    return norms[0]
