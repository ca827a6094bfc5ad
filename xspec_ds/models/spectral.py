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
    if isinstance(g, float) and abs(g) >= 0.05:
        # Fast path (the fit hot path): the plain difference ``x2^g - x1^g``. Its relative
        # rounding error is about 2e-16 / (|g| ln(emax/emin)): below 5e-12 for |g| >= 0.05 and
        # ln(emax/emin) >= 1e-3 (~2000 bins per decade); the expm1 form below is for g near 0.
        return (amplitude * reference / g) * ((emax / reference) ** g - (emin / reference) ** g)
    x1 = emin / reference
    log_ratio = np.log(emax / emin)
    gl = g * log_ratio
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(np.abs(gl) < 1e-10, log_ratio * (1 + 0.5 * gl), np.expm1(gl) / np.where(g == 0, 1.0, g))
    return amplitude * reference * x1**g * factor


def _pl_integral_dindex(amplitude, index, reference, emin, emax):
    """d/d(index) of `_pl_integral`: ``-A E0 integral x^-index ln x dx``."""
    g = 1.0 - index
    x1, x2 = emin / reference, emax / reference
    l1, l2 = np.log(x1), np.log(x2)
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


class SpectralModel:
    """Base class: a differential flux ``dN/dE(E)`` with named parameters.

    Subclasses declare ``_parameter_specs``: tuples ``(name, default, canonical_unit, options)``
    and implement ``_dnde(energy_tev)`` on canonical floats. Models with a closed-form integral
    override ``_integral(emin, emax)``.
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

    def _pv(self, name: str) -> float:
        return self.__dict__["_p_" + name].canonical

    # evaluation -------------------------------------------------------------------------
    def __call__(self, energy) -> u.Quantity:
        """dN/dE at ``energy`` (a Quantity or string), in ``cm-2 s-1 TeV-1``."""
        return self._dnde(_energy_tev(energy)) * DNDE_UNIT

    def evaluate(self, energy):
        """Alias of ``__call__``."""
        return self(energy)

    def _dnde(self, energy: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _integral(self, emin: np.ndarray, emax: np.ndarray, nodes: QuadratureNodes | None = None) -> np.ndarray:
        """Integral flux per bin in ``cm-2 s-1`` from canonical edges (TeV)."""
        if nodes is None:
            nodes = quadrature_nodes(emin, emax)
        return nodes.integrate(self._dnde(nodes.energy))

    @property
    def has_analytic_integral(self) -> bool:
        return type(self)._integral is not SpectralModel._integral

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

        Returns an array of shape ``(len(params),) + emin.shape``. The default uses central
        differences with a relative step of 1e-6 on each parameter (about 1e-10 relative
        accuracy); models override it with analytic derivatives where they have them.
        """
        out = np.empty((len(params),) + np.shape(emin))
        for k, par in enumerate(params):
            v0 = par.value
            h = 1e-6 * max(abs(v0), 1e-12)
            try:
                par.value = v0 + h
                f_plus = self._integral(emin, emax, nodes)
                par.value = v0 - h
                f_minus = self._integral(emin, emax, nodes)
            finally:
                par.value = v0
            out[k] = (f_plus - f_minus) / (2 * h)
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

        return plot_spectral_model(self, energy_bounds, ax=ax, sed_type=sed_type, n_points=n_points, **kwargs)

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

    def _dnde(self, energy):
        return self._pv("amplitude") * (energy / self._pv("reference")) ** (-self._pv("index"))

    def _integral(self, emin, emax, nodes=None):
        return _pl_integral(self._pv("amplitude"), self._pv("index"), self._pv("reference"), emin, emax)

    def _integral_deriv(self, emin, emax, params, nodes=None):
        out = np.empty((len(params),) + np.shape(emin))
        fd = []
        for k, par in enumerate(params):
            if par is self._p_amplitude:
                out[k] = (
                    _pl_integral(1.0, self._pv("index"), self._pv("reference"), emin, emax) * par._scale_to_canonical
                )
            elif par is self._p_index:
                out[k] = _pl_integral_dindex(
                    self._pv("amplitude"), self._pv("index"), self._pv("reference"), emin, emax
                )
            else:
                fd.append(k)
        if fd:
            out[fd] = SpectralModel._integral_deriv(self, emin, emax, [params[k] for k in fd], nodes)
        return out


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

    def _dnde(self, energy):
        a, idx, e1, e2 = (self._pv(n) for n in ("amplitude", "index", "emin", "emax"))
        norm = _pl_integral(1.0, idx, 1.0, e1, e2)
        return a * energy ** (-idx) / norm

    def _integral(self, emin, emax, nodes=None):
        a, idx, e1, e2 = (self._pv(n) for n in ("amplitude", "index", "emin", "emax"))
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

    def _dnde(self, energy):
        x = np.log(energy / self._pv("reference"))
        return self._pv("amplitude") * np.exp(-x * (self._pv("alpha") + self._pv("beta") * x))


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

    def _dnde(self, energy):
        pl = self._pv("amplitude") * (energy / self._pv("reference")) ** (-self._pv("index"))
        return pl * np.exp(-((self._pv("lambda_") * energy) ** self._pv("alpha")))


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

    def _dnde(self, energy):
        eb = self._pv("ebreak")
        idx = np.where(energy < eb, self._pv("index1"), self._pv("index2"))
        return self._pv("amplitude") * (energy / eb) ** (-idx)

    def _integral(self, emin, emax, nodes=None):
        a, i1, i2, eb = (self._pv(n) for n in ("amplitude", "index1", "index2", "ebreak"))
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

    def _dnde(self, energy):
        i1, i2, beta = self._pv("index1"), self._pv("index2"), self._pv("beta")
        pl = self._pv("amplitude") * (energy / self._pv("reference")) ** (-i1)
        return pl * (1 + (energy / self._pv("ebreak")) ** ((i2 - i1) / beta)) ** (-beta)


class ConstantSpectralModel(SpectralModel):
    """``dN/dE = const``; the bin integral is ``const (E2 - E1)``."""

    tag = ("ConstantSpectralModel", "const")
    _parameter_specs = (("const", "1e-12 cm-2 s-1 TeV-1", DNDE_UNIT, {"is_norm": True}),)

    def _dnde(self, energy):
        return np.full(np.shape(energy), self._pv("const"))

    def _integral(self, emin, emax, nodes=None):
        return self._pv("const") * (emax - emin)


class PowerLawNormSpectralModel(SpectralModel):
    """Dimensionless ``norm (E/reference)^-tilt``: the spectral part of a background model
    (Gammapy's ``PowerLawNormSpectralModel``, the default of ``FoVBackgroundModel``)."""

    tag = ("PowerLawNormSpectralModel", "pl-norm")
    _parameter_specs = (
        ("norm", 1.0, u.dimensionless_unscaled, {"is_norm": True}),
        ("tilt", 0.0, u.dimensionless_unscaled, {"frozen": True}),
        ("reference", "1 TeV", ENERGY_UNIT, {"frozen": True}),
    )

    def _dnde(self, energy):
        return self._pv("norm") * (energy / self._pv("reference")) ** (-self._pv("tilt"))

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

    def _dnde(self, energy):
        le = np.log(energy)
        i = np.clip(np.searchsorted(self._log_e, le) - 1, 0, self._log_e.size - 2)
        x0, x1 = self._log_e[i], self._log_e[i + 1]
        y0, y1 = self._log_v[i], self._log_v[i + 1]
        return np.exp(y0 + (le - x0) * (y1 - y0) / (x1 - x0))

    def _integral(self, emin, emax, nodes=None):
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

    def _dnde(self, energy):
        return self._pv("norm") * self._model._dnde(energy)

    def _integral(self, emin, emax, nodes=None):
        return self._pv("norm") * self._model._integral(emin, emax, nodes)

    def to_dict(self, full_output: bool = False) -> dict:
        return {"type": self.tag[0], "parameters": [self._p_norm.to_dict()], "model": self._model.to_dict()}

    @classmethod
    def _from_dict(cls, data):
        model = cls(SpectralModel.from_dict(data["model"]))
        model._update_parameters(data.get("parameters", []))
        return model


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

    def _dnde(self, energy):
        return self.operator(self.model1._dnde(energy), self.model2._dnde(energy))

    def _integral(self, emin, emax, nodes=None):
        if self.operator in (operator.add, operator.sub):
            return self.operator(self.model1._integral(emin, emax, nodes), self.model2._integral(emin, emax, nodes))
        return SpectralModel._integral(self, emin, emax, nodes)

    def to_dict(self, full_output: bool = False) -> dict:
        name = next(k for k, v in _OPERATORS.items() if v is self.operator)
        return {"type": self.tag[0], "model1": self.model1.to_dict(), "model2": self.model2.to_dict(), "operator": name}

    @classmethod
    def _from_dict(cls, data):
        return cls(SpectralModel.from_dict(data["model1"]), SpectralModel.from_dict(data["model2"]), data["operator"])

    def __repr__(self):
        return f"CompoundSpectralModel({self.model1!r}, {self.model2!r}, {self.operator.__name__})"
