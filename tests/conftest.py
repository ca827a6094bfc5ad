"""Shared fixtures: small spectrum datasets with known exposure, background and model.

The factory builds the arrays directly as `xarray.DataArray`s with the edge coordinates of
API.md (written here, not taken from the package's helpers), so tests compare the package
against an independently built layout.
"""

from __future__ import annotations

import os

# Tiny (2-30 parameter) BLAS calls inside scipy's L-BFGS-B are ~10x slower with OpenBLAS worker
# threads on a loaded 2-core machine; one thread keeps the fit tests fast. Only effective when
# numpy is not yet imported (pytest itself does not import it); users are unaffected.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import astropy.units as u  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

import xspec_ds as xs  # noqa: E402

from ._requirements import STRICT_ENV, require_shared_data, shared_available, shared_root, strict  # noqa: E402, F401


def pytest_report_header(config):
    """Say whether missing Gammapy / real data skip or fail (``XSPEC_DS_REQUIRE_FULL``)."""
    import importlib.util

    gp = "gammapy installed" if importlib.util.find_spec("gammapy") else "gammapy MISSING"
    data = f"real data {'at' if shared_available() else 'MISSING at'} {shared_root()}"
    mode = f"{STRICT_ENV}=1: missing requirements FAIL" if strict() else "missing requirements skip"
    return f"xspec_ds tests: {gp}; {data}; {mode}"


E_MIN_TEV = 0.1
E_MAX_TEV = 100.0


def edges_geom(emin: float, emax: float, nbin: int) -> np.ndarray:
    """Log-spaced edges written independently of MapAxis (exact end points)."""
    edges = emin * (emax / emin) ** (np.arange(nbin + 1) / nbin)
    edges[0], edges[-1] = emin, emax
    return edges


def edge_coords(dim: str, edges: np.ndarray, unit: str = "TeV") -> dict:
    lo, hi = edges[:-1], edges[1:]
    attrs = {"units": unit}
    return {
        dim: (dim, np.sqrt(lo * hi), attrs),
        f"{dim}_min": (dim, lo.copy(), attrs),
        f"{dim}_max": (dim, hi.copy(), attrs),
    }


def exposure_profile(e_true_center_tev: np.ndarray, scale_m2s: float) -> np.ndarray:
    """A known, energy-dependent exposure in m2 s: rises like an effective area then flattens."""
    return scale_m2s * (1.0 - np.exp(-e_true_center_tev / 0.3))


def pl_integral_ref(amplitude: float, index: float, reference: float, e1, e2):
    """Power-law integral written out in the test suite (A in TeV-1 cm-2 s-1, E in TeV)."""
    e1, e2 = np.asarray(e1, float), np.asarray(e2, float)
    if index == 1.0:
        return amplitude * reference * np.log(e2 / e1)
    g = 1.0 - index
    return amplitude * reference / g * ((e2 / reference) ** g - (e1 / reference) ** g)


def skew_kernel(n: int) -> np.ndarray:
    """A square, non-symmetric dispersion matrix (rows: true bins, columns: reco bins): true bin
    ``i`` goes to reco bins ``i``, ``i + 1``, ``i + 2`` with probabilities 0.6, 0.25, 0.1 (cut at
    the last bin), written element by element."""
    m = np.zeros((n, n))
    for i in range(n):
        for shift, p in ((0, 0.6), (1, 0.25), (2, 0.1)):
            if i + shift < n:
                m[i, i + shift] = p
    return m


def build_arrays(
    n: int = 10,
    n_true: int | None = None,
    emin: float = E_MIN_TEV,
    emax: float = E_MAX_TEV,
    exposure_scale_m2s: float = 1e9,
    background_level: float = 0.5,
    edisp: str = "diagonal",
    counts=None,
):
    """DataArrays of a spectrum dataset: counts, background, mask_safe (reco), exposure (true), edisp."""
    n_true = 2 * n if n_true is None else n_true
    er = edges_geom(emin, emax, n)
    et = edges_geom(emin, emax, n_true)
    creco = edge_coords("energy", er)
    ctrue = edge_coords("energy_true", et)
    if edisp == "diagonal":
        # true bin i lies inside reco bin floor(i * n / n_true) when n_true is a multiple of n
        assert n_true % n == 0
        m = np.zeros((n_true, n))
        m[np.arange(n_true), np.arange(n_true) * n // n_true] = 1.0
    elif edisp == "identity":
        assert n_true == n
        m = np.eye(n)
    elif edisp == "skew":
        # square and NOT symmetric: true bin i lands in reco bins i (0.6), i + 1 (0.25) and i + 2 (0.1),
        # so a transposed fold (leaking downwards) gives different predictions
        assert n_true == n
        m = skew_kernel(n)
    elif edisp == "smeared":
        # each true bin spreads over its reco bin and the neighbours (rows sum to 0.9)
        m = np.zeros((n_true, n))
        j = np.arange(n_true) * n // n_true
        m[np.arange(n_true), j] = 0.7
        m[np.arange(n_true), np.clip(j - 1, 0, n - 1)] += 0.1
        m[np.arange(n_true), np.clip(j + 1, 0, n - 1)] += 0.1
    else:
        raise ValueError(edisp)
    exposure = exposure_profile(np.sqrt(et[:-1] * et[1:]), exposure_scale_m2s)
    counts = np.zeros(n) if counts is None else np.asarray(counts, float)
    arrays = {
        "counts": xr.DataArray(counts, dims="energy", coords=creco, attrs={"units": ""}),
        "background": xr.DataArray(np.full(n, background_level), dims="energy", coords=creco, attrs={"units": ""}),
        "mask_safe": xr.DataArray(np.ones(n, bool), dims="energy", coords=creco),
        "exposure": xr.DataArray(exposure, dims="energy_true", coords=ctrue, attrs={"units": "m2 s"}),
        "edisp": xr.DataArray(m, dims=("energy_true", "energy"), coords={**ctrue, **creco}, attrs={"units": ""}),
    }
    return arrays, er, et


@pytest.fixture
def pl_model():
    return xs.PowerLawSpectralModel(index=2.3, amplitude="2e-11 cm-2 s-1 TeV-1", reference="1 TeV")


@pytest.fixture
def make_dataset():
    """Factory: ``make_dataset(n=10, model=..., **build_arrays kwargs)`` -> SpectrumDataset."""

    def _make(n=10, model="pl", name=None, **kwargs):
        arrays, _, _ = build_arrays(n=n, **kwargs)
        if model == "pl":
            model = xs.PowerLawSpectralModel(index=2.3, amplitude="2e-11 cm-2 s-1 TeV-1", reference="1 TeV")
        models = None if model is None else xs.SkyModel(spectral_model=model, name="source")
        return xs.SpectrumDataset(models=models, name=name or "ds", **arrays)

    return _make


@pytest.fixture
def dataset(make_dataset):
    """10 reco bins, 20 true bins, diagonal edisp, background 0.5 per bin, power law, faked counts."""
    ds = make_dataset(n=10)
    ds.fake(random_state=42)
    return ds


@pytest.fixture
def energy_units():
    return u.TeV


def gammapy_copy(ds, er, et):
    """The same data as a Gammapy SpectrumDataset (Gammapy must be installed)."""
    from gammapy.datasets import SpectrumDataset as GSpectrumDataset
    from gammapy.maps import MapAxis as GMapAxis
    from gammapy.maps import RegionGeom

    e = GMapAxis.from_energy_edges(er * u.TeV, name="energy")
    e_true = GMapAxis.from_energy_edges(et * u.TeV, name="energy_true")
    geom = RegionGeom.create("icrs;circle(83.63,22.01,0.1)", axes=[e])
    g = GSpectrumDataset.create(geom=geom, energy_axis_true=e_true, name="g")
    g.counts.data = ds.counts.values.reshape(g.counts.data.shape)
    g.background.data = ds.background.values.reshape(g.background.data.shape)
    g.exposure.quantity = (ds.exposure.values * u.Unit(ds.exposure.attrs["units"])).reshape(g.exposure.data.shape)
    g.edisp.edisp_map.data = ds.edisp.values.reshape(g.edisp.edisp_map.data.shape)
    g.mask_safe.data = ds.mask_safe.values.reshape(g.mask_safe.data.shape)
    return g
