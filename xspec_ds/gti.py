"""Good time intervals (GTI): start/stop times relative to a reference time.

Stored in an `xarray.Dataset` as ``gti_start`` and ``gti_stop`` along dimension ``gti``, in
seconds since ``attrs["time_reference"]`` (an ISO time, TT scale), as the GADF/OGIP GTI tables
store ``START``/``STOP`` relative to ``MJDREF``.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import xarray as xr
from astropy.time import Time

__all__ = ["GTI"]

DEFAULT_REFERENCE = "2000-01-01T00:00:00"


class GTI:
    """Good time intervals.

    Parameters
    ----------
    start, stop : `~astropy.units.Quantity`
        Interval bounds relative to ``reference_time``.
    reference_time : `~astropy.time.Time` or str

    Examples
    --------
    >>> gti = GTI.create([0, 100] * u.s, [50, 200] * u.s)
    >>> gti.time_sum
    <Quantity 150. s>
    """

    def __init__(self, start, stop, reference_time=DEFAULT_REFERENCE):
        start = u.Quantity(start, u.s).to_value(u.s).astype(np.float64).ravel()
        stop = u.Quantity(stop, u.s).to_value(u.s).astype(np.float64).ravel()
        if start.shape != stop.shape:
            raise ValueError("GTI start and stop must have the same length")
        if np.any(stop < start):
            raise ValueError("GTI intervals must have stop >= start")
        self._start, self._stop = start, stop
        self.time_ref = Time(reference_time, scale="tt") if not isinstance(reference_time, Time) else reference_time

    @classmethod
    def create(cls, start, stop, reference_time=DEFAULT_REFERENCE) -> "GTI":
        return cls(start, stop, reference_time)

    @property
    def met_start(self) -> u.Quantity:
        return self._start * u.s

    @property
    def met_stop(self) -> u.Quantity:
        return self._stop * u.s

    @property
    def time_start(self) -> Time:
        return self.time_ref + self.met_start

    @property
    def time_stop(self) -> Time:
        return self.time_ref + self.met_stop

    @property
    def time_delta(self) -> u.Quantity:
        return (self._stop - self._start) * u.s

    @property
    def time_sum(self) -> u.Quantity:
        return self.time_delta.sum()

    def __len__(self) -> int:
        return self._start.size

    @property
    def table(self):
        from astropy.table import Table

        return Table({"START": self.met_start, "STOP": self.met_stop})

    def stack(self, other: "GTI") -> "GTI":
        """Concatenate intervals (times re-expressed relative to this reference)."""
        shift = (other.time_ref - self.time_ref).to_value(u.s)
        return GTI(
            np.concatenate([self._start, other._start + shift]) * u.s,
            np.concatenate([self._stop, other._stop + shift]) * u.s,
            self.time_ref,
        )

    def union(self) -> "GTI":
        """Merge overlapping intervals (sorted by start)."""
        if len(self) == 0:
            return self
        order = np.argsort(self._start, kind="stable")
        s, e = self._start[order], self._stop[order]
        run_end = np.maximum.accumulate(e)
        new = np.concatenate([[True], s[1:] > run_end[:-1]])
        idx = np.flatnonzero(new)
        starts = s[idx]
        stops = np.maximum.reduceat(e, idx)
        return GTI(starts * u.s, stops * u.s, self.time_ref)

    # xarray representation -------------------------------------------------------------
    def to_xarray(self) -> dict[str, xr.Variable]:
        attrs = {"units": "s", "time_reference": self.time_ref.tt.isot, "time_scale": "tt"}
        return {
            "gti_start": xr.Variable("gti", self._start.copy(), dict(attrs, long_name="GTI start")),
            "gti_stop": xr.Variable("gti", self._stop.copy(), dict(attrs, long_name="GTI stop")),
        }

    @classmethod
    def from_xarray(cls, ds: xr.Dataset) -> "GTI | None":
        if "gti_start" not in ds.variables:
            return None
        attrs = ds["gti_start"].attrs
        return cls(
            np.asarray(ds["gti_start"].values) * u.Unit(attrs.get("units", "s")),
            np.asarray(ds["gti_stop"].values) * u.Unit(attrs.get("units", "s")),
            attrs.get("time_reference", DEFAULT_REFERENCE),
        )

    def __eq__(self, other):
        if not isinstance(other, GTI):
            return NotImplemented
        shift = (other.time_ref - self.time_ref).to_value(u.s)
        return (
            len(self) == len(other)
            and np.allclose(self._start, other._start + shift, rtol=0, atol=1e-6)
            and np.allclose(self._stop, other._stop + shift, rtol=0, atol=1e-6)
        )

    def __repr__(self):
        return f"GTI(n={len(self)}, time_sum={self.time_sum:.6g}, reference={self.time_ref.isot})"
