"""Multiplicative absorption models: photoelectric absorption (XSPEC ``wabs``) and EBL tables.

Both are dimensionless factors ``A(E)`` in ``[0, 1]`` used as ``absorption * continuum``
(``xs.WabsNormSpectralModel(nh=0.1) * xs.PowerLawSpectralModel(...)``): the product is a
spectral model whose bin integrals use the quadrature of `xspec_ds.models.quadrature`, with the
derivative with respect to the absorber's parameters computed analytically on the same nodes.

- `WabsNormSpectralModel`: ``A(E) = exp(-N_H sigma(E))`` with the Morrison & McCammon (1983,
  ApJ 270, 119, Table 2) cross section per hydrogen atom,
  ``sigma(E) = (c0 + c1 E + c2 E^2) E^-3 x 1e-24 cm^2`` (E in keV, piecewise between the
  absorption edges, valid 0.03-10 keV; the first and last rows are used below and above it).
  ``nh`` is in units of 1e22 cm-2, XSPEC's convention for ``wabs``.
- `EBLAbsorptionNormSpectralModel`: a tabulated ``A(E, z)`` read from an XSPEC table-model FITS
  file in Gammapy's layout (``PARAMETERS`` with the redshift grid in ``VALUE``, ``ENERGIES`` with
  ``ENERG_LO``/``ENERG_HI`` in keV, ``SPECTRA`` with ``INTPSPEC``), evaluated as Gammapy 2.1's
  ``EBLAbsorptionNormSpectralModel``: linear interpolation of ``ln A`` in redshift (linear) and
  ``ln E`` (extrapolated linearly in ``ln E`` outside the energy nodes), clipped to ``[0, 1]``
  and raised to ``alpha_norm``. Unlike Gammapy, a redshift outside the table's grid raises.
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits

from .quadrature import QuadratureNodes, quadrature_nodes
from .spectral import CompoundSpectralModel, SpectralModel, _energy_tev, _expand

__all__ = [
    "MM83_EDGES_KEV",
    "MM83_COEFFICIENTS",
    "mm83_cross_section",
    "WabsNormSpectralModel",
    "EBLAbsorptionNormSpectralModel",
    "AbsorbedSpectralModel",
]

_KEV_PER_TEV = 1e9

MM83_EDGES_KEV = np.array(
    [0.030, 0.100, 0.284, 0.400, 0.532, 0.707, 0.867, 1.303, 1.840, 2.471, 3.210, 4.038, 7.111, 8.331, 10.0]
)
"""Energy ranges (keV) of Morrison & McCammon (1983) Table 2."""

MM83_COEFFICIENTS = np.array(
    [
        [17.3, 608.1, -2150.0],
        [34.6, 267.9, -476.1],
        [78.1, 18.8, 4.3],
        [71.4, 66.8, -51.4],
        [95.5, 145.8, -61.1],
        [308.9, -380.6, 294.0],
        [120.6, 169.3, -47.7],
        [141.3, 146.8, -31.5],
        [202.7, 104.7, -17.0],
        [342.7, 18.7, 0.0],
        [352.2, 18.7, 0.0],
        [433.9, -2.4, 0.75],
        [629.0, 30.9, 0.0],
        [701.2, 25.2, 0.0],
    ]
)
"""``(c0, c1, c2)`` per range of Morrison & McCammon (1983) Table 2 (sigma E^3 in 1e-24 cm2 keV^3)."""


def mm83_cross_section(energy_kev) -> np.ndarray:
    """Photoelectric cross section per H atom (cm2) of Morrison & McCammon (1983) at ``energy_kev``."""
    e = np.asarray(energy_kev, dtype=np.float64)
    k = np.clip(np.searchsorted(MM83_EDGES_KEV, e, side="right") - 1, 0, len(MM83_COEFFICIENTS) - 1)
    c = MM83_COEFFICIENTS[k]
    return (c[..., 0] + c[..., 1] * e + c[..., 2] * e * e) / (e * e * e) * 1e-24


def edge_split_nodes(emin, emax, breaks) -> QuadratureNodes:
    """Quadrature nodes for the bins ``[emin, emax]`` with every bin split at the ``breaks`` inside
    it (discontinuities of the integrand, e.g. absorption edges), so that each Gauss-Legendre
    piece integrates a smooth function. Vectorised: each bin gets ``m + 1`` pieces, ``m`` the
    largest number of breaks in one bin, unused pieces having zero width (zero weights)."""
    emin = np.asarray(emin, dtype=np.float64)
    emax = np.asarray(emax, dtype=np.float64)
    breaks = np.asarray(breaks, dtype=np.float64)
    inside = (breaks > emin[..., None]) & (breaks < emax[..., None])
    m = int(inside.sum(-1).max(initial=0))
    if m == 0:
        return quadrature_nodes(emin, emax)
    cand = np.sort(np.where(inside, breaks, np.inf), axis=-1)[..., :m]
    cand = np.where(np.isfinite(cand), cand, emax[..., None])
    pts = np.concatenate([emin[..., None], cand, emax[..., None]], axis=-1)
    nodes = quadrature_nodes(pts[..., :-1], pts[..., 1:])
    shape = emin.shape + (-1,)
    return QuadratureNodes(energy=nodes.energy.reshape(shape), weights=nodes.weights.reshape(shape))


class _AbsorptionMixin:
    """Dimensionless factors; products with them get analytic absorber derivatives."""

    _breaks_tev = np.zeros(0)
    """Energies (TeV) where the factor is discontinuous: product integrals split bins there."""

    def __call__(self, energy) -> u.Quantity:
        return self._dnde(_energy_tev(energy)) * u.dimensionless_unscaled

    def __mul__(self, other):
        if isinstance(other, SpectralModel):
            return AbsorbedSpectralModel(self, other)
        return NotImplemented

    def __rmul__(self, other):
        if isinstance(other, SpectralModel):
            return AbsorbedSpectralModel(self, other, absorber_first=False)
        return NotImplemented


class WabsNormSpectralModel(_AbsorptionMixin, SpectralModel):
    """Photoelectric absorption ``exp(-nh sigma_MM83(E))`` (XSPEC ``wabs``), ``nh`` in 1e22 cm-2.

    Parameters
    ----------
    nh : float
        Equivalent hydrogen column in units of 1e22 cm-2 (XSPEC's convention).

    Examples
    --------
    >>> import xspec_ds as xs
    >>> model = xs.WabsNormSpectralModel(nh=0.1) * xs.PowerLawSpectralModel(
    ...     index=2, amplitude="1e-3 cm-2 s-1 keV-1", reference="1 keV")
    >>> float(xs.WabsNormSpectralModel(nh=0)("1 keV"))
    1.0
    """

    tag = ("WabsNormSpectralModel", "wabs")
    _parameter_specs = (("nh", 0.1, u.dimensionless_unscaled, {"min": 0.0}),)
    _breaks_tev = MM83_EDGES_KEV[1:-1] / _KEV_PER_TEV  # the absorption edges

    def _sigma22(self, energy_tev):
        return mm83_cross_section(np.asarray(energy_tev) * _KEV_PER_TEV) * 1e22

    def _dnde_t(self, t, energy):
        (nh,) = t
        return np.exp(-nh * self._sigma22(energy))

    def _dnde_jac_t(self, t, energy):
        """``d/d nh exp(-nh sigma) = -sigma exp(-nh sigma)`` (analytic)."""
        (nh,) = t
        sigma = self._sigma22(energy)
        return [-sigma * np.exp(-nh * sigma)]


class EBLAbsorptionNormSpectralModel(_AbsorptionMixin, SpectralModel):
    """Tabulated EBL absorption ``A(E, z) ** alpha_norm`` (Gammapy's model; see the module notes).

    Parameters
    ----------
    energy : Quantity
        Energy nodes (Gammapy: the log centres of the table's bins).
    param : array_like
        Redshift nodes (increasing).
    data : array_like, shape (len(param), len(energy))
        Absorption factors.
    redshift, alpha_norm : float
        Parameters (frozen by default, as Gammapy).
    """

    tag = ("EBLAbsorptionNormSpectralModel", "ebl-norm")
    _parameter_specs = (
        ("redshift", 0.1, u.dimensionless_unscaled, {"frozen": True}),
        ("alpha_norm", 1.0, u.dimensionless_unscaled, {"frozen": True}),
    )

    def __init__(self, energy, param, data, redshift=0.1, alpha_norm=1.0, filename=None):
        param = np.asarray(param, dtype=np.float64)
        data = np.asarray(data)
        energy_kev = u.Quantity(energy).to_value(u.keV)
        where = filename or "EBL table"
        if data.shape != (param.size, energy_kev.size):
            raise ValueError(
                f"{where}: table has shape {data.shape}, expected (n_redshift, n_energy) = "
                f"({param.size}, {energy_kev.size})"
            )
        if param.size < 2 or np.any(np.diff(param) <= 0):
            raise ValueError(f"{where}: redshift nodes must be at least two, strictly increasing")
        if energy_kev.size < 2 or np.any(np.diff(energy_kev) <= 0) or energy_kev[0] <= 0:
            raise ValueError(f"{where}: energy nodes must be positive and strictly increasing")
        super().__init__(redshift=redshift, alpha_norm=alpha_norm)
        self.filename = None if filename is None else str(filename)
        self.param = param
        self.energy = energy_kev * u.keV
        # ln of the values, clipped at the smallest normal number of their dtype (Gammapy's LogScale)
        tiny = np.finfo(data.dtype).tiny if np.issubdtype(data.dtype, np.floating) else np.finfo(np.float32).tiny
        self._log_values = np.log(np.clip(data, tiny, np.inf)).astype(np.float64)
        self._log_energy = np.log(energy_kev)
        self._check_redshift(float(self.parameters["redshift"].value))

    @classmethod
    def read(cls, filename, redshift=0.1, alpha_norm=1.0) -> "EBLAbsorptionNormSpectralModel":
        """Read an EBL table in Gammapy's XSPEC table-model layout (see the module notes)."""
        path = Path(filename)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file")
        with fits.open(path, memmap=False) as hdul:
            names = [h.name for h in hdul]
            for ext in ("PARAMETERS", "ENERGIES", "SPECTRA"):
                if ext not in names:
                    raise ValueError(f"{path}: no {ext} extension (extensions: {names}); not an EBL table model")
            values = np.asarray(hdul["PARAMETERS"].data["VALUE"][0], dtype=np.float64)
            param, idx = np.unique(values, return_index=True)  # Gammapy: tables repeat values
            lo = np.asarray(hdul["ENERGIES"].data["ENERG_LO"], dtype=np.float64)
            hi = np.asarray(hdul["ENERGIES"].data["ENERG_HI"], dtype=np.float64)
            spectra = np.asarray(hdul["SPECTRA"].data["INTPSPEC"])[idx, :]
        energy = np.sqrt(lo * hi) * u.keV  # keV: the unit is not stored in these files
        return cls(energy, param, spectra, redshift=redshift, alpha_norm=alpha_norm, filename=path)

    def _check_redshift(self, z: float) -> None:
        if not (self.param[0] <= z <= self.param[-1]):
            raise ValueError(
                f"{self.filename or 'EBL table'}: redshift {z} is outside the table's grid "
                f"[{self.param[0]}, {self.param[-1]}]"
            )

    def _log_absorption_t(self, z, energy_tev) -> np.ndarray:
        """ln A at ``energy_tev`` for redshift(s) ``z`` (any shape broadcasting with the energies).

        Bilinear interpolation of the tabulated ln A: linear in ln E between energy nodes (clamped
        at the ends), linear in z between redshift nodes, written with hat-function weights in z
        so that arrays of redshifts (one per spectrum) broadcast like every other kernel.
        """
        z = np.asarray(z, dtype=np.float64)
        self._check_redshift(float(np.min(z)))
        self._check_redshift(float(np.max(z)))
        le = np.log(np.asarray(energy_tev, dtype=np.float64) * _KEV_PER_TEV)
        x = self._log_energy
        j = np.clip(np.searchsorted(x, le, side="right") - 1, 0, x.size - 2)
        s = (le - x[j]) / (x[j + 1] - x[j])
        p = self.param
        i = np.clip(np.searchsorted(p, z, side="right") - 1, 0, p.size - 2)
        out = 0.0
        for k in np.unique(np.concatenate([i.ravel(), i.ravel() + 1])):  # the (few) bracketing nodes
            d = z - p[k]
            width = np.where(d > 0, p[min(k + 1, p.size - 1)] - p[k], p[k] - p[max(k - 1, 0)])
            w = np.clip(1.0 - np.abs(d) / np.where(width > 0, width, np.inf), 0.0, None)
            row = self._log_values[k]
            out = out + w * (row[j] + s * (row[j + 1] - row[j]))
        return out

    def _dnde_t(self, t, energy):
        z, alpha_norm = t
        a = np.exp(self._log_absorption_t(z, energy))
        tiny = np.finfo(np.float64).tiny
        a = np.where(np.abs(a) - tiny <= tiny, 0.0, a)
        return np.clip(a, 0.0, 1.0) ** alpha_norm

    def to_dict(self, full_output: bool = False) -> dict:
        data = super().to_dict(full_output)
        if self.filename is not None:
            data["filename"] = self.filename
        return data

    @classmethod
    def _from_dict(cls, data):
        if "filename" not in data:
            raise ValueError("EBLAbsorptionNormSpectralModel can only be rebuilt from a dict naming its table file")
        values = {p["name"]: p["value"] for p in data.get("parameters", [])}
        model = cls.read(data["filename"], redshift=values.get("redshift", 0.1), alpha_norm=values.get("alpha_norm", 1))
        model._update_parameters(data.get("parameters", []))
        return model


class AbsorbedSpectralModel(CompoundSpectralModel):
    """``absorber * continuum``: a `CompoundSpectralModel` product whose bin integrals use the
    quadrature nodes, with ``d/d p`` of the absorber's parameters computed analytically on them
    (``integral of f dA/dp = integral of f A d ln A / dp``); the continuum's parameters fall back to
    the base class derivative (finite differences of the integral)."""

    tag = ("AbsorbedSpectralModel",)

    def __init__(self, absorber, continuum, absorber_first: bool = True):
        import operator

        first, second = (absorber, continuum) if absorber_first else (continuum, absorber)
        super().__init__(first, second, operator.mul)
        self.absorber = absorber

    def _split_nodes(self, emin, emax) -> QuadratureNodes:
        """Nodes split at the absorber's edges, cached per energy grid."""
        emin = np.asarray(emin, dtype=np.float64)
        emax = np.asarray(emax, dtype=np.float64)
        key = (emin.shape, hash(emin.tobytes()), hash(emax.tobytes()))
        cache = self.__dict__.setdefault("_node_cache", {})
        if key not in cache:
            if len(cache) > 8:
                cache.clear()
            cache[key] = edge_split_nodes(emin, emax, self.absorber._breaks_tev)
        return cache[key]

    def _integral_t(self, t, emin, emax, nodes=None):
        """Bin integrals of the product on nodes split at the absorption edges (the ``nodes``
        of a plain grid are not used: they straddle the edges, where the integrand jumps)."""
        nodes = self._split_nodes(emin, emax)
        return nodes.integrate(self._dnde_t(_expand(t, 1), nodes.energy))

    def _integral_jac_t(self, t, emin, emax, nodes=None):
        """Quadrature, on the same split nodes, of the product rule's Jacobian (analytic for
        ``wabs`` and for continua with analytic ``dnde`` derivatives)."""
        nodes = self._split_nodes(emin, emax)
        return [nodes.integrate(j) for j in self._dnde_jac_t(_expand(t, 1), nodes.energy)]

    @classmethod
    def _from_dict(cls, data):
        m1, m2 = SpectralModel.from_dict(data["model1"]), SpectralModel.from_dict(data["model2"])
        if isinstance(m1, _AbsorptionMixin):
            return cls(m1, m2, absorber_first=True)
        return cls(m2, m1, absorber_first=False)
