"""Random spectrum datasets for the I/O tests, built directly as DataArrays (not via package helpers)."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import xarray as xr
from hypothesis import strategies as st

import xspec_ds as xs
from xspec_ds.gti import GTI

NAME_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."


def _coords(dim, edges, unit):
    lo, hi = edges[:-1].copy(), edges[1:].copy()
    attrs = {"units": unit}
    return {dim: (dim, np.sqrt(lo * hi), attrs), f"{dim}_min": (dim, lo, attrs), f"{dim}_max": (dim, hi, attrs)}


def random_edges(rng, n, lo=0.01, hi=100.0):
    """Strictly increasing random edges (not log-spaced, arbitrary float64 values)."""
    while True:
        e = np.sort(rng.uniform(np.log(lo), np.log(hi), n + 1))
        e = np.exp(e)
        if np.all(np.diff(e) > 0):
            return e


def random_dataset(
    seed: int,
    n: int = 7,
    n_true: int = 9,
    reco_unit="TeV",
    true_unit="TeV",
    exposure_unit="m2 s",
    mask_fit: bool = True,
    n_gti: int = 2,
    livetime: bool = True,
    meta: bool = False,
    name: str = "obs-1",
    models: bool = False,
):
    """A SpectrumDataset whose every array has random float64 values (and random masks)."""
    rng = np.random.default_rng(seed)
    er, et = random_edges(rng, n), random_edges(rng, n_true)
    creco, ctrue = _coords("energy", er, reco_unit), _coords("energy_true", et, true_unit)
    m = rng.uniform(0, 1, (n_true, n)) * (rng.uniform(size=(n_true, n)) < 0.6)
    rows = m.sum(axis=1, keepdims=True)
    m = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0) * rng.uniform(0.5, 1.0, (n_true, 1))
    arrays = {
        "counts": xr.DataArray(
            rng.poisson(5.0, n).astype(float) + rng.uniform(0, 1, n) * (rng.uniform(size=n) < 0.3),
            dims="energy",
            coords=creco,
            attrs={"units": ""},
        ),
        "background": xr.DataArray(rng.uniform(0, 3, n), dims="energy", coords=creco, attrs={"units": ""}),
        "mask_safe": xr.DataArray(rng.uniform(size=n) < 0.7, dims="energy", coords=creco),
        "exposure": xr.DataArray(
            rng.uniform(1e6, 1e10, n_true), dims="energy_true", coords=ctrue, attrs={"units": exposure_unit}
        ),
        "edisp": xr.DataArray(m, dims=("energy_true", "energy"), coords={**ctrue, **creco}, attrs={"units": ""}),
    }
    if mask_fit:
        arrays["mask_fit"] = xr.DataArray(rng.uniform(size=n) < 0.8, dims="energy", coords=creco)
    start = np.sort(rng.uniform(0, 1e5, n_gti))
    gti = GTI(start * u.s, (start + rng.uniform(1, 1e3, n_gti)) * u.s, reference_time="2011-03-04T05:06:07.891")
    meta_table = None
    if meta:
        from astropy.table import Table

        meta_table = Table({"OBS_ID": [int(rng.integers(1, 10**6))], "RA_PNT": [rng.uniform(0, 360)] * u.deg})
    model = None
    if models:
        model = xs.SkyModel(
            spectral_model=xs.PowerLawSpectralModel(
                index=float(rng.uniform(1.5, 3.5)), amplitude=f"{rng.uniform(1, 9):.6g}e-12 cm-2 s-1 TeV-1"
            ),
            name="src",
        )
    return xs.SpectrumDataset(
        models=model,
        name=name,
        gti=gti,
        meta_table=meta_table,
        livetime=rng.uniform(10, 1e5) * u.s if livetime else None,
        **arrays,
    )


@st.composite
def dataset_params(draw):
    """Keyword arguments of `random_dataset`: sizes, units, optional parts, name."""
    return {
        "seed": draw(st.integers(0, 2**32 - 1)),
        "n": draw(st.integers(1, 40)),
        "n_true": draw(st.integers(1, 40)),
        "reco_unit": draw(st.sampled_from(["TeV", "GeV", "keV"])),
        "true_unit": draw(st.sampled_from(["TeV", "GeV", "MeV"])),
        "exposure_unit": draw(st.sampled_from(["m2 s", "cm2 s", "cm2 h"])),
        "mask_fit": draw(st.booleans()),
        "n_gti": draw(st.integers(0, 4)),
        "livetime": draw(st.booleans()),
        "name": draw(st.text(NAME_ALPHABET, min_size=1, max_size=20)),
    }
