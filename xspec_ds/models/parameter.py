"""Model parameters with units, bounds, frozen flag and error (after astropy.modeling / Gammapy).

A `Parameter` stores its value as a float in its own unit. Models read
``parameter.canonical`` (the value converted to the model's canonical unit, a float) on hot
paths, so no Quantity arithmetic happens during a fit.
"""

from __future__ import annotations

import copy as _copy
import functools

import astropy.units as u
import numpy as np

__all__ = ["Parameter", "Parameters"]


@functools.lru_cache(maxsize=512)
def _parse_unit(text: str) -> u.UnitBase:
    """``astropy.units.Unit(text)``, parsed once per distinct string (astropy's parser costs ~0.1 ms)."""
    return u.Unit(text)


def _as_unit(unit) -> u.UnitBase:
    return unit if isinstance(unit, u.UnitBase) else _parse_unit(str(unit))


def _split_quantity(value, unit):
    """Return (float, Unit) from a float, Quantity or string like ``"1e-12 cm-2 s-1 TeV-1"``."""
    if isinstance(value, str):
        parts = value.strip().split(None, 1)
        try:  # "<number> <unit>": the unit string is parsed once per process
            value = u.Quantity(float(parts[0]), _parse_unit(parts[1]) if len(parts) == 2 else None)
        except (ValueError, IndexError):
            value = u.Quantity(value)
    if isinstance(value, u.Quantity):
        if unit is not None and _as_unit(unit) != value.unit and _as_unit(unit) != u.dimensionless_unscaled:
            return float(value.to_value(_as_unit(unit))), _as_unit(unit)
        return float(value.value), value.unit
    return float(value), _as_unit(unit) if unit is not None else u.dimensionless_unscaled


class Parameter:
    """One model parameter.

    Parameters
    ----------
    name : str
        Parameter name (Gammapy's names: ``index``, ``amplitude``, ``reference``, ...).
    value : float, `~astropy.units.Quantity` or str
        Value; a Quantity or string carries its unit.
    unit : str or Unit, optional
        Unit of ``value`` when it is a float.
    min, max : float
        Bounds in ``unit`` (NaN: unbounded).
    frozen : bool
        Excluded from fits when True.
    error : float
        1-sigma error in ``unit`` (set by the fit from the covariance).
    canonical_unit : str or Unit, optional
        The unit the model's formulas use; the value must be convertible to it.

    Examples
    --------
    >>> p = Parameter("amplitude", "1e-12 cm-2 s-1 TeV-1")
    >>> p.value, str(p.unit)
    (1e-12, '1 / (TeV s cm2)')
    """

    def __init__(
        self,
        name: str,
        value,
        unit=None,
        min: float = np.nan,
        max: float = np.nan,
        frozen: bool = False,
        error: float = 0.0,
        canonical_unit=None,
        scan_n_values: int = 11,
        scan_n_sigma: float = 2.0,
        scan_min: float | None = None,
        scan_max: float | None = None,
        is_norm: bool = False,
    ):
        self.name = name
        self._canonical_unit = u.Unit(canonical_unit) if canonical_unit is not None else None
        self._value = 0.0
        self._unit = u.dimensionless_unscaled
        self._scale_to_canonical = 1.0
        self.set_quantity(value, unit)
        self.min = float(min) if min is not None else np.nan
        self.max = float(max) if max is not None else np.nan
        self.frozen = bool(frozen)
        self.error = float(error)
        self.scan_n_values = scan_n_values
        self.scan_n_sigma = scan_n_sigma
        self.scan_min = scan_min
        self.scan_max = scan_max
        self.is_norm = is_norm
        self.canonical = self._value * self._scale_to_canonical

    # value & unit ------------------------------------------------------------------------
    def set_quantity(self, value, unit=None) -> None:
        v, unit = _split_quantity(value, unit)
        if not np.isfinite(v):
            raise ValueError(f"parameter {self.name!r}: value must be finite, got {v}")
        if self._canonical_unit is not None:
            try:
                scale = unit.to(self._canonical_unit)
            except u.UnitConversionError:
                raise u.UnitsError(
                    f"parameter {self.name!r}: unit {unit} is not convertible to {self._canonical_unit}"
                ) from None
        else:
            scale = 1.0
        self._value = v
        self._unit = unit
        self._scale_to_canonical = float(scale)
        self.canonical = v * self._scale_to_canonical

    @property
    def value(self) -> float:
        return self._value

    @value.setter
    def value(self, v) -> None:
        if isinstance(v, (u.Quantity, str)):
            self.set_quantity(v)
            return
        self._value = float(v)
        self.canonical = self._value * self._scale_to_canonical

    @property
    def unit(self) -> u.UnitBase:
        return self._unit

    @unit.setter
    def unit(self, unit) -> None:
        self.set_quantity(self._value, u.Unit(unit))

    @property
    def quantity(self) -> u.Quantity:
        return self._value * self._unit

    @quantity.setter
    def quantity(self, q) -> None:
        self.set_quantity(q)

    @property
    def factor(self) -> float:
        return self._value

    def check_limits(self) -> bool:
        v = self._value
        return not ((np.isfinite(self.min) and v < self.min) or (np.isfinite(self.max) and v > self.max))

    def to_dict(self) -> dict:
        d = {"name": self.name, "value": self._value, "unit": self._unit.to_string()}
        if self.error:
            d["error"] = self.error
        if np.isfinite(self.min):
            d["min"] = self.min
        if np.isfinite(self.max):
            d["max"] = self.max
        d["frozen"] = self.frozen  # always: a model default may be frozen (e.g. reference)
        return d

    def update_from_dict(self, data: dict) -> None:
        self.set_quantity(data.get("value", self._value), data.get("unit", self._unit.to_string()))
        self.error = float(data.get("error", 0.0))
        self.min = float(data.get("min", np.nan)) if data.get("min") is not None else np.nan
        self.max = float(data.get("max", np.nan)) if data.get("max") is not None else np.nan
        self.frozen = bool(data.get("frozen", self.frozen))

    def copy(self) -> "Parameter":
        return _copy.copy(self)

    def __repr__(self) -> str:
        fr = ", frozen" if self.frozen else ""
        return f"Parameter(name={self.name!r}, value={self._value:.6g}, error={self.error:.3g}, unit={self._unit.to_string()!r}{fr})"


class Parameters:
    """An ordered collection of `Parameter` objects, indexable by name or position.

    Lookup by an unknown name raises a KeyError listing the known names. The same
    `Parameter` object may appear in several models (shared parameter in a joint fit); the
    collection keeps it once.
    """

    def __init__(self, parameters=()):
        unique = []
        seen = set()
        for p in parameters:
            if id(p) not in seen:
                seen.add(id(p))
                unique.append(p)
        self._parameters = unique

    @property
    def names(self) -> list[str]:
        return [p.name for p in self._parameters]

    @property
    def free_parameters(self) -> "Parameters":
        return Parameters([p for p in self._parameters if not p.frozen])

    @property
    def value(self) -> np.ndarray:
        return np.array([p.value for p in self._parameters])

    @value.setter
    def value(self, values) -> None:
        for p, v in zip(self._parameters, values, strict=True):
            p.value = v

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self._parameters[key]
        if isinstance(key, Parameter):
            return key
        for p in self._parameters:
            if p.name == key:
                return p
        raise KeyError(f"unknown parameter name {key!r}; known parameters: {self.names}")

    def __contains__(self, item) -> bool:
        if isinstance(item, Parameter):
            return any(p is item for p in self._parameters)
        return item in self.names

    def __iter__(self):
        return iter(self._parameters)

    def __len__(self) -> int:
        return len(self._parameters)

    def __add__(self, other: "Parameters") -> "Parameters":
        return Parameters(list(self) + list(other))

    def index(self, par: Parameter) -> int:
        for i, p in enumerate(self._parameters):
            if p is par:
                return i
        raise KeyError(f"parameter {par.name!r} is not in this collection")

    def to_table(self):
        from astropy.table import Table

        return Table(
            {
                "name": self.names,
                "value": [p.value for p in self],
                "error": [p.error for p in self],
                "unit": [p.unit.to_string() for p in self],
                "min": [p.min for p in self],
                "max": [p.max for p in self],
                "frozen": [p.frozen for p in self],
            }
        )

    def __repr__(self) -> str:
        return "Parameters(\n  " + "\n  ".join(repr(p) for p in self) + "\n)"
