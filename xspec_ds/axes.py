"""Energy axes with exact bin edges, and their xarray coordinates.

Every energy dimension ``d`` (``"energy"`` for reconstructed, ``"energy_true"`` for true
energy) of an :class:`xarray.Dataset` carries three coordinates:

- ``d``: the index coordinate, log bin centres ``sqrt(e_min * e_max)``;
- ``d_min`` and ``d_max``: the bin edges, stored exactly as given.

All three carry the unit in ``attrs["units"]``. Edges are the truth; centres are derived.

Which unit? One rule: **a dataset's energy coordinates keep the unit of the source they came
from**, written in ``attrs["units"]`` of ``d``, ``d_min`` and ``d_max``: keV for OGIP PHA/ARF/RMF
files (the OGIP standard), the file's ``TUNIT`` for Gammapy's FITS layout (TeV when Gammapy wrote
it), the stored unit for netCDF, the axis' unit for `MapAxis`-built datasets. Nothing is
converted on reading, so edges round-trip bit for bit. Never select by bare numbers
(``ds.sel(energy=slice(0.66, 30))`` means keV on one file and TeV on another); select by value
with units instead: ``dataset.energy_mask("0.66 TeV", "30 TeV")`` or
``xr_ds.spectrum.sel(energy=slice("1 TeV", "10 TeV"))`` (`xspec_ds.ops.select`). Summaries
show energies with their unit, in a readable one (`display_unit`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
import xarray as xr

__all__ = [
    "MapAxis",
    "SpectrumGeom",
    "ENERGY_DIMS",
    "axis_from_dataset",
    "edges_from_coords",
    "check_same_axis",
    "overlap_matrix",
    "display_unit",
]

ENERGY_DIMS = ("energy", "energy_true")


def _to_unit(unit) -> u.UnitBase:
    return u.Unit(unit) if not isinstance(unit, u.UnitBase) else unit


class MapAxis:
    """A binned energy axis defined by its edges.

    Parameters
    ----------
    edges : `~astropy.units.Quantity`
        Strictly increasing bin edges (``nbin + 1`` values), an energy unit.
    name : {"energy", "energy_true"}
        Axis name; also the xarray dimension name.

    Examples
    --------
    >>> axis = MapAxis.from_energy_bounds(0.1, 100, 3, unit="TeV")
    >>> axis.nbin
    3
    """

    def __init__(self, edges: u.Quantity, name: str = "energy", interp: str = "log"):
        if name == "energy-true":  # Gammapy's old spelling
            name = "energy_true"
        if name not in ENERGY_DIMS:
            raise ValueError(f"MapAxis name must be one of {ENERGY_DIMS}, got {name!r}")
        edges = u.Quantity(edges)
        if edges.unit.physical_type != "energy":
            raise u.UnitsError(f"MapAxis {name!r}: edges must be an energy, got unit {edges.unit}")
        values = np.asarray(edges.value, dtype=np.float64)
        if values.ndim != 1 or values.size < 2:
            raise ValueError(f"MapAxis {name!r}: need at least two edges, got {values.size}")
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ValueError(f"MapAxis {name!r}: edges must be finite and positive")
        if np.any(np.diff(values) <= 0):
            raise ValueError(f"MapAxis {name!r}: edges must be strictly increasing")
        self._edges = values
        self._unit = edges.unit
        self.name = name
        self.interp = interp

    # constructors -------------------------------------------------------------------------
    @classmethod
    def from_energy_bounds(
        cls, energy_min, energy_max, nbin: int, unit=None, per_decade: bool = False, name: str = "energy"
    ) -> "MapAxis":
        """Log-spaced axis between two energies (Gammapy's ``MapAxis.from_energy_bounds``).

        ``energy_min``/``energy_max`` are Quantities, strings such as ``"1 TeV"`` or floats in
        ``unit`` (default TeV). With ``per_decade=True``, ``nbin`` is bins per decade.
        """
        unit = _to_unit(unit) if unit is not None else None
        emin = u.Quantity(energy_min, unit) if unit is not None else u.Quantity(energy_min)
        emax = u.Quantity(energy_max, unit) if unit is not None else u.Quantity(energy_max)
        if emin.unit == u.dimensionless_unscaled:
            emin = emin * u.TeV
        if emax.unit == u.dimensionless_unscaled:
            emax = emax * u.TeV
        unit = unit or emin.unit
        emin, emax = emin.to_value(unit), emax.to_value(unit)
        if per_decade:
            nbin = int(np.ceil(np.log10(emax / emin) * nbin))
        if int(nbin) < 1:
            raise ValueError(f"nbin must be >= 1, got {nbin}")
        edges = np.geomspace(emin, emax, int(nbin) + 1)
        edges[0], edges[-1] = emin, emax
        return cls(edges * unit, name=name)

    @classmethod
    def from_energy_edges(cls, edges, unit=None, name: str = "energy") -> "MapAxis":
        """Axis from explicit edges (Quantity, or array with ``unit``)."""
        q = u.Quantity(edges, unit) if unit is not None else u.Quantity(edges)
        return cls(q, name=name)

    @classmethod
    def from_edges(cls, edges, unit=None, name: str = "energy", interp: str = "log") -> "MapAxis":
        """Alias of :meth:`from_energy_edges` (Gammapy name)."""
        return cls.from_energy_edges(edges, unit=unit, name=name)

    # properties ---------------------------------------------------------------------------
    @property
    def edges(self) -> u.Quantity:
        return self._edges * self._unit

    @property
    def edges_min(self) -> u.Quantity:
        return self._edges[:-1] * self._unit

    @property
    def edges_max(self) -> u.Quantity:
        return self._edges[1:] * self._unit

    @property
    def center(self) -> u.Quantity:
        """Log bin centres."""
        return np.sqrt(self._edges[:-1] * self._edges[1:]) * self._unit

    @property
    def bin_width(self) -> u.Quantity:
        return np.diff(self._edges) * self._unit

    @property
    def nbin(self) -> int:
        return self._edges.size - 1

    @property
    def unit(self) -> u.UnitBase:
        return self._unit

    @property
    def bounds(self) -> u.Quantity:
        return u.Quantity([self._edges[0], self._edges[-1]], self._unit)

    def copy(self, name: str | None = None) -> "MapAxis":
        return MapAxis(self.edges.copy(), name=name or self.name)

    def rename(self, name: str) -> "MapAxis":
        return self.copy(name=name)

    def coords(self) -> dict[str, xr.Variable]:
        """The three xarray coordinates (centre index, ``_min`` and ``_max`` edges)."""
        unit = self._unit.to_string()
        n = self.name
        return {
            n: xr.Variable(
                n, np.sqrt(self._edges[:-1] * self._edges[1:]), {"units": unit, "long_name": f"{n} bin centre (log)"}
            ),
            f"{n}_min": xr.Variable(n, self._edges[:-1].copy(), {"units": unit, "long_name": f"{n} lower bin edge"}),
            f"{n}_max": xr.Variable(n, self._edges[1:].copy(), {"units": unit, "long_name": f"{n} upper bin edge"}),
        }

    def __eq__(self, other) -> bool:
        if not isinstance(other, MapAxis):
            return NotImplemented
        return (
            self.name == other.name
            and self.nbin == other.nbin
            and np.array_equal(self._edges, other.edges.to_value(self._unit))
        )

    def is_allclose(self, other: "MapAxis", rtol: float = 1e-6) -> bool:
        return self.nbin == other.nbin and np.allclose(self._edges, other.edges.to_value(self._unit), rtol=rtol, atol=0)

    def __repr__(self) -> str:
        e = self.edges
        return f"MapAxis(name={self.name!r}, nbin={self.nbin}, range=[{e[0]:.4g}, {e[-1]:.4g}])"


def edges_from_coords(obj: xr.Dataset | xr.DataArray, dim: str) -> u.Quantity:
    """Exact edges of dimension ``dim`` from its ``_min``/``_max`` coordinates."""
    try:
        lo = obj.coords[f"{dim}_min"]
        hi = obj.coords[f"{dim}_max"]
    except KeyError:
        raise ValueError(f"energy dimension {dim!r} has no '{dim}_min'/'{dim}_max' edge coordinates") from None
    unit = u.Unit(lo.attrs.get("units", "TeV"))
    hi_unit = u.Unit(hi.attrs.get("units", lo.attrs.get("units", "TeV")))
    lo_v = np.asarray(lo.values, dtype=np.float64)
    hi_v = np.asarray(hi.values, dtype=np.float64)
    if hi_unit != unit:
        hi_v = (hi_v * hi_unit).to_value(unit)
    if lo_v.ndim != 1:
        raise ValueError(f"edge coordinates of {dim!r} must be 1-D")
    if lo_v.size and not np.array_equal(lo_v[1:], hi_v[:-1]):
        raise ValueError(f"energy dimension {dim!r}: bins are not contiguous (gaps between edges)")
    return np.append(lo_v, hi_v[-1:]) * unit


def axis_from_dataset(obj: xr.Dataset | xr.DataArray, dim: str) -> MapAxis:
    """The `MapAxis` of dimension ``dim`` of a Dataset or DataArray."""
    return MapAxis(edges_from_coords(obj, dim), name=dim)


def check_same_axis(a: MapAxis, b: MapAxis, what: str, rtol: float = 1e-10) -> None:
    """Raise a clear ValueError if two axes differ."""
    if a.nbin != b.nbin or not a.is_allclose(b, rtol=rtol):
        raise ValueError(f"mismatched {a.name!r} axes for {what}: {a!r} vs {b!r}")


def overlap_matrix(true_edges: u.Quantity, reco_edges: u.Quantity) -> np.ndarray:
    """Diagonal energy dispersion: fraction of each true bin's width inside each reco bin.

    This is the kernel Gammapy uses when a dataset has no measured energy dispersion
    (``EDispKernel.from_diagonal_response``): row ``i`` gives the linear-energy overlap of
    true bin ``i`` with every reco bin, divided by the true bin width. Rows sum to the fraction of
    the true bin covered by the reco axis (1 inside it, less at the ends).
    """
    t = np.asarray(true_edges.to_value(reco_edges.unit), dtype=np.float64)
    r = np.asarray(reco_edges.value, dtype=np.float64)
    lo = np.maximum(t[:-1, None], r[None, :-1])
    hi = np.minimum(t[1:, None], r[None, 1:])
    overlap = np.clip(hi - lo, 0.0, None)
    frac = overlap / np.diff(t)[:, None]
    # identical edges give exactly the identity
    frac[np.isclose(frac, 1.0, rtol=1e-12, atol=0)] = 1.0
    return frac


@dataclass
class SpectrumGeom:
    """Geometry of a 1-D spectrum: its energy axes (the analogue of Gammapy's ``RegionGeom``).

    ``axes`` is a list of `MapAxis`; ``data_shape`` the shape of an array on this geometry.
    """

    axes: list = field(default_factory=list)
    region: object = None

    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(ax.nbin for ax in self.axes)

    @property
    def axes_names(self) -> list[str]:
        return [ax.name for ax in self.axes]

    def axis(self, name: str) -> MapAxis:
        for ax in self.axes:
            if ax.name == name:
                return ax
        raise KeyError(f"geometry has no axis {name!r}; axes are {self.axes_names}")

    def energy_mask(self, energy_min=None, energy_max=None, round_to_edge: bool = False) -> xr.DataArray:
        """Boolean ``DataArray("energy")``: bins fully inside the range (Gammapy's
        ``geom.energy_mask``); bounds are Quantities or strings in any energy unit
        (`xspec_ds.ops.select.energy_mask`)."""
        from .ops.select import energy_mask

        name = "energy" if "energy" in self.axes_names else self.axes_names[0]
        coords = xr.Dataset(coords=self.axis(name).coords())
        return energy_mask(coords, energy_min, energy_max, dim=name, round_to_edge=round_to_edge)


_ENERGY_UNITS = [u.Unit(n) for n in ("eV", "keV", "MeV", "GeV", "TeV", "PeV")]


def display_unit(lo: np.ndarray, hi: np.ndarray, unit: u.UnitBase) -> u.UnitBase:
    """The file's energy unit if it reads well (geometric mean of the range in [0.01, 10^4)),
    else the first of eV ... PeV in which that mean lies in [1, 1000) (OGIP files of gamma-ray
    instruments store keV: 1e7-1e11 keV is shown as 0.01-100 TeV)."""
    mean = np.sqrt(np.min(lo[lo > 0], initial=np.inf) * np.max(hi, initial=0.0)) if (lo > 0).any() else np.nan
    if not np.isfinite(mean) or not unit.is_equivalent(u.TeV) or 1e-2 <= mean < 1e4:
        return unit
    for candidate in _ENERGY_UNITS:
        if 1 <= (mean * unit).to_value(candidate) < 1000:
            return candidate
    return unit
