"""`FluxPoints`: flux points (an SED or a light curve) as an `xarray.Dataset`.

The stored quantities are Gammapy's "likelihood" SED type (``norm``, ``norm_err``, ``norm_errn``,
``norm_errp``, ``norm_ul``, ``ts``, ``sqrt_ts``, ``stat``, ``stat_null``, ``stat_scan``, ``counts``,
``npred``, ``npred_excess``, ``success``, ``is_ul``) plus the reference fluxes ``ref_dnde``,
``ref_flux``, ``ref_eflux`` and ``ref_e2dnde`` of the reference model in every bin. Every other SED
type is ``norm`` times a reference flux (Gammapy's ``FluxMaps``: ``dnde = norm * dnde_ref``, ...),
see the GADF flux-points specification (gamma-astro-data-formats, "Flux points").

Dimensions: ``energy`` (index coordinate ``energy`` and coordinate ``e_ref``: the reference energy,
the log bin centre as in Gammapy; ``energy_min``, ``energy_max``: the bin edges; all in TeV), optionally a leading ``time`` (light curves; ``time_min``/``time_max`` in
MJD) or ``obs`` (light curve of observations without times), ``dataset`` (per-dataset ``counts``,
``npred``, ``npred_excess``) and ``norm_scan`` (the likelihood scan).
"""

from __future__ import annotations

import html

import astropy.units as u
import numpy as np
import scipy.stats
import xarray as xr
import yaml
from astropy.table import Table

from ..io.atomic import atomic_path
from ..models import SpectralModel

__all__ = ["FluxPoints", "SED_TYPES", "DEFAULT_UNIT"]

#: Gammapy's default units of the SED types (``gammapy.estimators.map.core.DEFAULT_UNIT``).
DEFAULT_UNIT = {
    "dnde": u.Unit("cm-2 s-1 TeV-1"),
    "e2dnde": u.Unit("erg cm-2 s-1"),
    "flux": u.Unit("cm-2 s-1"),
    "eflux": u.Unit("erg cm-2 s-1"),
    "norm": u.dimensionless_unscaled,
}
SED_TYPES = ("likelihood", "dnde", "e2dnde", "flux", "eflux")
_REF = {"dnde": "ref_dnde", "e2dnde": "ref_e2dnde", "flux": "ref_flux", "eflux": "ref_eflux"}
_SUFFIXES = ("", "_err", "_errn", "_errp", "_ul")
_COMMON = ("ts", "sqrt_ts", "npred", "npred_excess", "stat", "stat_null", "is_ul", "counts", "success")
_ENERGY_UNIT = "TeV"


def _units(da) -> u.UnitBase:
    return u.Unit(da.attrs.get("units", ""))


def _n_sigma_from_conf(conf: float) -> float:
    """``UL_CONF`` (two-sided Gaussian probability) to a number of sigma, as Gammapy rounds it."""
    return float(np.round(scipy.stats.norm.isf(0.5 * (1 - conf)), 1))


class FluxPoints:
    """Flux points, backed by an `xarray.Dataset` (``.data``).

    Build them with `xspec_ds.FluxPointsEstimator` / `xspec_ds.LightCurveEstimator`, or read them
    with `FluxPoints.read` (netCDF written by `write`, or a GADF "gadf-sed" FITS table, e.g.
    written by Gammapy).

    Parameters
    ----------
    data : `xarray.Dataset`
        See the module docstring for the layout.
    reference_model : `xspec_ds.SpectralModel`, optional
        The reference model (used for plots; the conversions use the stored ``ref_*`` fluxes).
    """

    def __init__(self, data: xr.Dataset, reference_model: SpectralModel | None = None):
        if "norm" not in data:
            raise ValueError("FluxPoints data needs a 'norm' variable")
        for name in ("energy_min", "energy_max", "ref_dnde", "ref_flux", "ref_eflux"):
            if name not in data.variables:
                raise ValueError(f"FluxPoints data needs {name!r}")
        self._data = data
        if reference_model is None and "reference_model" in data.attrs:
            reference_model = SpectralModel.from_dict(yaml.safe_load(data.attrs["reference_model"]))
        self.reference_model = reference_model

    # basic properties -------------------------------------------------------------------------
    @property
    def data(self) -> xr.Dataset:
        return self._data

    @property
    def sed_type_init(self) -> str:
        return self._data.attrs.get("sed_type_init", "likelihood")

    @property
    def n_sigma(self) -> float:
        return float(self._data.attrs.get("n_sigma", 1.0))

    @property
    def n_sigma_ul(self) -> float:
        return float(self._data.attrs.get("n_sigma_ul", 2.0))

    @property
    def sqrt_ts_threshold_ul(self) -> float:
        return float(self._data.attrs.get("sqrt_ts_threshold_ul", 2.0))

    @property
    def energy_min(self) -> u.Quantity:
        return self._data["energy_min"].values * _units(self._data["energy_min"])

    @property
    def energy_max(self) -> u.Quantity:
        return self._data["energy_max"].values * _units(self._data["energy_max"])

    @property
    def energy_ref(self) -> u.Quantity:
        return self._data["energy"].values * _units(self._data["energy"])

    @property
    def available_quantities(self) -> list[str]:
        return [k for k in self._data.data_vars if not k.startswith("ref_")]

    @property
    def has_ul(self) -> bool:
        return "norm_ul" in self._data

    @property
    def has_stat_profiles(self) -> bool:
        return "stat_scan" in self._data

    @property
    def is_ul(self) -> xr.DataArray:
        """Upper-limit flag: ``sqrt_ts < sqrt_ts_threshold_ul`` when a UL and a TS exist (Gammapy)."""
        if "is_ul" in self._data:
            return self._data["is_ul"]
        if self.has_ul and "sqrt_ts" in self._data:
            return (self._data["sqrt_ts"] < self.sqrt_ts_threshold_ul).rename("is_ul")
        if self.has_ul:
            return np.isfinite(self._data["norm_ul"]).rename("is_ul")
        return np.isnan(self._data["norm"]).rename("is_ul")

    # SED type conversions ------------------------------------------------------------------------
    def get(self, quantity: str) -> xr.DataArray:
        """A quantity of any SED type, e.g. ``"dnde_errn"``, ``"e2dnde_ul"``, ``"flux"``, ``"norm"``.

        ``<sed>[_err|_errn|_errp|_ul] = norm[...] * ref_<sed>`` (Gammapy's ``FluxMaps``); the
        result carries its unit in ``attrs["units"]`` (Gammapy's default units).
        """
        if quantity in self._data:
            return self._data[quantity]
        sed, _, suffix = quantity.partition("_")
        suffix = "_" + suffix if suffix else ""
        if sed in _REF and suffix in _SUFFIXES and ("norm" + suffix) in self._data:
            ref = self._data[_REF[sed]]
            unit = _units(ref)
            factor = unit.to(DEFAULT_UNIT[sed])
            out = self._data["norm" + suffix] * ref * factor
            return out.rename(quantity).assign_attrs(units=DEFAULT_UNIT[sed].to_string())
        raise KeyError(f"unknown or unavailable quantity {quantity!r}; available: {self.available_quantities}")

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.get(name)
        except KeyError:
            raise AttributeError(f"FluxPoints has no attribute or quantity {name!r}") from None

    # tables -------------------------------------------------------------------------------------
    def _quantities(self, sed_type: str) -> list[str]:
        if sed_type not in SED_TYPES:
            raise ValueError(f"invalid sed_type {sed_type!r}; use one of {SED_TYPES}")
        prefix = "norm" if sed_type == "likelihood" else sed_type
        return [prefix + s for s in _SUFFIXES if ("norm" + s) in self._data]

    def _gadf_columns(self, ds: xr.Dataset, sed_type: str) -> dict:
        """Column name -> Quantity/array for one energy-only slice ``ds`` (Gammapy's gadf-sed)."""
        fp = FluxPoints(ds, self.reference_model)
        cols = {
            "e_ref": ds["energy"].values * _units(ds["energy"]),
            "e_min": ds["energy_min"].values * _units(ds["energy_min"]),
            "e_max": ds["energy_max"].values * _units(ds["energy_max"]),
        }
        if sed_type == "likelihood":
            cols["ref_dnde"] = (ds["ref_dnde"].values * _units(ds["ref_dnde"])).to(DEFAULT_UNIT["dnde"])
            cols["ref_flux"] = (ds["ref_flux"].values * _units(ds["ref_flux"])).to(DEFAULT_UNIT["flux"])
            cols["ref_eflux"] = (ds["ref_eflux"].values * _units(ds["ref_eflux"])).to(DEFAULT_UNIT["eflux"])
        for name in self._quantities(sed_type):
            da = fp.get(name)
            cols[name] = da.values * _units(da)
        for name in _COMMON:
            if name == "is_ul":
                if fp.has_ul:
                    cols["is_ul"] = np.asarray(fp.is_ul.values, dtype=bool)
                continue
            if name in ds:
                values = ds[name].transpose("energy", ...).values
                cols[name] = values
        if "stat_scan" in ds:
            scan = ds["norm_scan"].values
            cols["norm_scan"] = np.broadcast_to(scan, (ds.sizes["energy"], scan.size)).copy()
            cols["stat_scan"] = ds["stat_scan"].transpose("energy", "norm_scan").values
        return cols

    def to_table(self, sed_type: str | None = None, format: str | None = None, formatted: bool = False) -> Table:
        """Astropy table with Gammapy's column names.

        Parameters
        ----------
        sed_type : {"likelihood", "dnde", "e2dnde", "flux", "eflux"}, optional
            Default: ``sed_type_init`` ("likelihood").
        format : {"gadf-sed", "lightcurve"}, optional
            Default: "lightcurve" when the points have a ``time`` or ``obs`` dimension.
            Light curves have one row per time bin (``time_min``, ``time_max`` in MJD, or
            ``obs``) and columns of shape ``(n_energy, ...)``, as Gammapy's "lightcurve" format.
        formatted : bool
            Apply Gammapy's display formats (``.3e`` fluxes, ``.3f`` energies, norms, TS).
        """
        sed_type = sed_type or self.sed_type_init
        if sed_type not in SED_TYPES:
            raise ValueError(f"invalid sed_type {sed_type!r}; use one of {SED_TYPES}")
        outer = [d for d in ("time", "obs") if d in self._data.dims]
        if format is None:
            format = "lightcurve" if outer else "gadf-sed"
        meta = {"SED_TYPE": sed_type, "UL_CONF": float(np.round(1 - 2 * scipy.stats.norm.sf(self.n_sigma_ul), 7))}
        if format == "gadf-sed":
            if outer:
                raise ValueError(f"flux points with dimension {outer[0]!r} need format='lightcurve'")
            table = Table(self._gadf_columns(self._data, sed_type), meta=meta)
        elif format == "lightcurve":
            if not outer:
                raise ValueError("format='lightcurve' needs flux points with a 'time' or 'obs' dimension")
            dim = outer[0]
            rows = [self._gadf_columns(self._data.isel({dim: i}), sed_type) for i in range(self._data.sizes[dim])]
            cols = {}
            if dim == "time":
                cols["time_min"] = self._data["time_min"].values
                cols["time_max"] = self._data["time_max"].values
            else:
                cols["obs"] = self._data["obs"].values.astype(str)
            for key in rows[0]:
                cols[key] = (
                    u.Quantity([r[key] for r in rows])
                    if isinstance(rows[0][key], u.Quantity)
                    else np.stack([r[key] for r in rows])
                )
            meta.update({"TIMESYS": "tt", "TIMEUNIT": "d", "MJDREFI": 0, "MJDREFF": 0.0})
            table = Table(cols, meta=meta)
        else:
            raise ValueError(f"unsupported format {format!r}; use 'gadf-sed' or 'lightcurve'")
        if formatted:
            for name in table.colnames:
                if name.startswith(("dnde", "eflux", "flux", "e2dnde", "ref")):
                    table[name].format = ".3e"
                elif name.startswith(("e_min", "e_max", "e_ref", "sqrt_ts", "norm", "ts", "stat")):
                    table[name].format = ".3f"
        return table

    @classmethod
    def from_table(cls, table: Table, sed_type: str | None = None, reference_model=None) -> "FluxPoints":
        """Flux points from a GADF "gadf-sed" table (Gammapy's and ours).

        A "likelihood" table keeps its ``norm`` columns and reference fluxes; a table of another
        SED type (``dnde``, ``e2dnde``, ``flux``, ``eflux``) is converted to norms with
        ``reference_model`` (default: Gammapy's default, a power law of index 2 with amplitude
        1e-12 cm-2 s-1 TeV-1 at 1 TeV).
        """
        from ..models import PowerLawSpectralModel, TemplateSpectralModel

        sed_type = sed_type or table.meta.get("SED_TYPE")
        if sed_type is None:
            guess = [
                s
                for s in ("likelihood", "dnde", "e2dnde", "flux", "eflux")
                if ("norm" if s == "likelihood" else s) in table.colnames
            ]
            if not guess:
                raise ValueError(
                    "cannot tell the SED type of the table: no SED_TYPE keyword and no norm/dnde/flux column"
                )
            sed_type = guess[0]
        if sed_type not in SED_TYPES:
            raise ValueError(f"table SED_TYPE {sed_type!r} is not one of {SED_TYPES}")

        def col(name, unit=None):
            c = table[name]
            q = u.Quantity(c) if c.unit is not None else np.asarray(c)
            if unit is not None:
                if not isinstance(q, u.Quantity):
                    raise ValueError(f"flux points table column {name!r} needs a unit")
                return np.asarray(q.to_value(unit), dtype=np.float64)
            return np.asarray(q.value if isinstance(q, u.Quantity) else q)

        if "e_min" in table.colnames and "e_max" in table.colnames:
            emin, emax = col("e_min", _ENERGY_UNIT), col("e_max", _ENERGY_UNIT)
            eref = col("e_ref", _ENERGY_UNIT) if "e_ref" in table.colnames else np.sqrt(emin * emax)
        elif "e_ref" in table.colnames:
            eref = col("e_ref", _ENERGY_UNIT)
            emin, emax = eref, eref
        else:
            raise ValueError("flux points table needs e_ref or e_min/e_max columns")
        n = len(table)
        coords = {
            "energy": ("energy", eref, {"units": _ENERGY_UNIT}),
            "energy_min": ("energy", emin, {"units": _ENERGY_UNIT}),
            "energy_max": ("energy", emax, {"units": _ENERGY_UNIT}),
            "e_ref": ("energy", eref, {"units": _ENERGY_UNIT}),
        }
        data_vars = {}
        if sed_type == "likelihood":
            ref = {
                "ref_dnde": col("ref_dnde", DEFAULT_UNIT["dnde"]),
                "ref_flux": col("ref_flux", DEFAULT_UNIT["flux"]),
                "ref_eflux": col("ref_eflux", DEFAULT_UNIT["eflux"]),
            }
            if reference_model is None:
                ok = np.isfinite(ref["ref_dnde"]) & (ref["ref_dnde"] > 0)
                if ok.sum() >= 2:
                    reference_model = TemplateSpectralModel(
                        energy=eref[ok] * u.TeV, values=ref["ref_dnde"][ok] * DEFAULT_UNIT["dnde"]
                    )
            for suffix in _SUFFIXES:
                if "norm" + suffix in table.colnames:
                    data_vars["norm" + suffix] = ("energy", col("norm" + suffix).astype(np.float64), {"units": ""})
        else:
            model = reference_model or PowerLawSpectralModel(index=2, amplitude="1e-12 cm-2 s-1 TeV-1")
            reference_model = model
            ref = _reference_fluxes(model, emin, emax, eref)
            unit = DEFAULT_UNIT[sed_type]
            base = ref[_REF[sed_type]] * u.Unit(_REF_UNITS[_REF[sed_type]]).to(unit)
            for suffix in _SUFFIXES:
                name = sed_type + suffix
                if name in table.colnames:
                    values = col(name, unit)
                    data_vars["norm" + suffix] = ("energy", values / base, {"units": ""})
        ref.setdefault(
            "ref_e2dnde", (ref["ref_dnde"] * eref**2 * u.Unit("TeV cm-2 s-1")).to_value(DEFAULT_UNIT["e2dnde"])
        )
        for key, values in ref.items():
            data_vars[key] = ("energy", np.asarray(values, dtype=np.float64), {"units": _REF_UNITS[key]})
        for name in ("ts", "sqrt_ts", "stat", "stat_null"):
            if name in table.colnames:
                data_vars[name] = ("energy", col(name).astype(np.float64), {"units": ""})
        for name in ("is_ul", "success"):
            if name in table.colnames:
                data_vars[name] = ("energy", col(name).astype(bool))
        for name in ("counts", "npred", "npred_excess"):
            if name in table.colnames:
                values = col(name).astype(np.float64).reshape(n, -1)
                data_vars[name] = (("energy", "dataset"), values, {"units": ""})
        if "stat_scan" in table.colnames and "norm_scan" in table.colnames:
            scan = col("norm_scan").reshape(n, -1)[0].astype(np.float64)
            coords["norm_scan"] = ("norm_scan", scan)
            data_vars["stat_scan"] = (("energy", "norm_scan"), col("stat_scan").reshape(n, -1).astype(np.float64))
        attrs = {"sed_type_init": sed_type, "n_sigma": 1.0, "n_sigma_ul": 2.0, "sqrt_ts_threshold_ul": 2.0}
        if "UL_CONF" in table.meta:
            attrs["n_sigma_ul"] = _n_sigma_from_conf(float(table.meta["UL_CONF"]))
        ds = xr.Dataset(data_vars, coords=coords, attrs=attrs)
        if reference_model is not None:
            ds.attrs["reference_model"] = yaml.safe_dump(reference_model.to_dict(), sort_keys=False)
        return cls(ds, reference_model)

    # files --------------------------------------------------------------------------------------
    def write(self, filename, overwrite: bool = False, sed_type: str | None = None, format: str | None = None) -> None:
        """Write to netCDF (``.nc``: loss-free) or FITS (GADF "gadf-sed" table, Gammapy's layout).

        The write is atomic (`xspec_ds.io.atomic`).
        """
        name = str(filename)
        if name.endswith((".nc", ".nc4", ".netcdf")):
            with atomic_path(filename, overwrite=overwrite) as tmp:
                self._data.to_netcdf(tmp)
            return
        if name.endswith((".fits", ".fits.gz", ".fit")):
            table = self.to_table(sed_type=sed_type or "likelihood", format=format)
            from astropy.io import fits

            hdu = fits.table_to_hdu(table)
            hdu.name = "FLUXPOINTS"
            with atomic_path(filename, overwrite=overwrite) as tmp:
                fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp)
            return
        raise ValueError(f"cannot tell the file format of {name!r}: use a .nc or .fits name")

    @classmethod
    def read(cls, filename, reference_model=None, sed_type: str | None = None) -> "FluxPoints":
        """Read flux points from netCDF (written by `write`) or a GADF flux-points FITS table."""
        name = str(filename)
        if name.endswith((".nc", ".nc4", ".netcdf")):
            with xr.open_dataset(filename) as ds:
                data = ds.load()
            return cls(data, reference_model)
        if name.endswith((".fits", ".fits.gz", ".fit")):
            from astropy.io import fits

            with fits.open(filename) as hdul:
                hdu = hdul["FLUXPOINTS"] if "FLUXPOINTS" in hdul else hdul[1]
                table = Table.read(hdu)
            try:
                return cls.from_table(table, sed_type=sed_type, reference_model=reference_model)
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{name}: not a readable flux-points table ({exc})") from exc
        raise ValueError(f"cannot tell the file format of {name!r}: use a .nc or .fits name")

    # plots ----------------------------------------------------------------------------------------
    def plot(self, ax=None, sed_type: str = "dnde", energy_power: int = 0, **kwargs):
        """Points with error bars (asymmetric when available) and upper limits as arrows.

        Energy flux points are drawn at ``e_ref`` with the bin as horizontal bar; light curves
        (``time``/``obs`` dimension) against time (MJD) or observation index, one series per
        energy bin. ``ax`` composes with `xspec_ds.SpectralModel.plot` / ``plot_error``.
        """
        from .plotting import plot_flux_points

        return plot_flux_points(self, ax=ax, sed_type=sed_type, energy_power=energy_power, **kwargs)

    def plot_ts_profiles(self, ax=None, sed_type: str = "dnde", add_cbar: bool = True, **kwargs):
        """The likelihood scans ``stat_scan - stat`` (TS profiles) as a colour map per energy bin."""
        from .plotting import plot_ts_profiles

        return plot_ts_profiles(self, ax=ax, sed_type=sed_type, add_cbar=add_cbar, **kwargs)

    # display ------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        dims = ", ".join(f"{k}: {v}" for k, v in self._data.sizes.items())
        model = type(self.reference_model).__name__ if self.reference_model is not None else None
        return (
            f"FluxPoints\n----------\n  dims        : {dims}\n  quantities  : {self.available_quantities}\n"
            f"  ref. model  : {model}\n  n_sigma     : {self.n_sigma}\n  n_sigma_ul  : {self.n_sigma_ul}\n"
            f"  sed type init: {self.sed_type_init}"
        )

    def _repr_html_(self) -> str:
        head = html.escape(repr(self))
        try:
            table = (
                self.to_table(sed_type="dnde", formatted=True)._repr_html_()
                if "time" not in self._data.dims and "obs" not in self._data.dims
                else ""
            )
        except Exception:  # pragma: no cover - display must never fail
            table = ""
        return f"<pre>{head}</pre>{table}"

    def copy(self) -> "FluxPoints":
        return FluxPoints(self._data.copy(deep=True), self.reference_model.copy() if self.reference_model else None)


_REF_UNITS = {
    "ref_dnde": DEFAULT_UNIT["dnde"].to_string(),
    "ref_flux": DEFAULT_UNIT["flux"].to_string(),
    "ref_eflux": DEFAULT_UNIT["eflux"].to_string(),
    "ref_e2dnde": DEFAULT_UNIT["e2dnde"].to_string(),
}


def _reference_fluxes(model: SpectralModel, emin, emax, eref) -> dict:
    """``ref_dnde`` (at ``eref``), ``ref_flux``, ``ref_eflux``, ``ref_e2dnde`` in Gammapy's default units
    (Gammapy's ``SpectralModel.reference_fluxes``); edges in TeV."""
    emin, emax, eref = (np.asarray(x, dtype=np.float64) for x in (emin, emax, eref))
    ok = np.isfinite(emin) & np.isfinite(emax) & (emax > emin)
    lo, hi = np.where(ok, emin, 1.0), np.where(ok, emax, 2.0)
    dnde = model(eref * u.TeV).to_value(DEFAULT_UNIT["dnde"])
    flux = np.where(ok, model.integral(lo * u.TeV, hi * u.TeV).to_value(DEFAULT_UNIT["flux"]), np.nan)
    eflux = np.where(ok, model.energy_flux(lo * u.TeV, hi * u.TeV).to_value(DEFAULT_UNIT["eflux"]), np.nan)
    e2dnde = (dnde * eref**2 * u.Unit("TeV cm-2 s-1")).to_value(DEFAULT_UNIT["e2dnde"])
    return {"ref_dnde": dnde, "ref_flux": flux, "ref_eflux": eflux, "ref_e2dnde": e2dnde}
