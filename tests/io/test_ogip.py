"""OGIP PHA/ARF/RMF reading and writing (`xspec_ds.io.ogip`).

Real files under ``../shared/data`` are read and checked against their own tables, read here
independently with astropy.io.fits, and against Gammapy's reader where Gammapy is installed.
"""

from __future__ import annotations

import shutil

import astropy.units as u
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st

import xspec_ds as xs
from xspec_ds.axes import MapAxis
from xspec_ds.io.ogip import OGIPError, read_pha, read_rmf, write_ogip, write_rmf

from .._requirements import (
    needs_shared,
    require_gammapy,
    shared_available,
    shared_data,
    shared_glob,
    shared_root,
)

DATA = shared_root()
JOINT = DATA / "joint-crab" / "spectra"
XRAY = DATA / "xray" / "3c273"
needs_data = needs_shared  # skips without ../shared, fails under XSPEC_DS_REQUIRE_FULL=1
PHA_FILES = shared_glob("joint-crab/spectra/*/pha_*.fits")


def _table(path, ext="SPECTRUM"):
    with fits.open(path) as h:
        return h[ext].header.copy(), h[ext].data.copy()


@needs_data
@pytest.mark.parametrize("pha", PHA_FILES, ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_read_joint_crab_against_tables(pha):
    ds = read_pha(pha)
    assert isinstance(ds, xs.SpectrumDatasetOnOff)
    hdr, tab = _table(pha)
    bkg_hdr, bkg = _table(pha.parent / hdr["BACKFILE"])
    _, arf = _table(pha.parent / hdr["ANCRFILE"], "SPECRESP")
    _, eb = _table(pha, "EBOUNDS")
    assert ds.name == str(hdr["OBS_ID"])
    np.testing.assert_array_equal(ds.counts.values, tab["COUNTS"])
    np.testing.assert_array_equal(ds.counts_off.values, bkg["COUNTS"])
    np.testing.assert_allclose(ds.alpha.values, tab["BACKSCAL"] / bkg["BACKSCAL"], rtol=1e-15)
    assert u.Unit(ds.exposure.attrs["units"]) == u.Unit("cm2 s")
    np.testing.assert_allclose(ds.exposure.values, arf["SPECRESP"] * hdr["EXPOSURE"], rtol=1e-15)
    assert ds.livetime == hdr["EXPOSURE"] * u.s
    np.testing.assert_array_equal(ds.data["energy_min"].values, eb["E_MIN"])
    np.testing.assert_array_equal(ds.data["energy_max"].values, eb["E_MAX"])
    # safe range: QUALITY == 0, and the LO_THRES/HI_THRES keywords (TeV) say the same thing
    quality_ok = tab["QUALITY"] == 0
    np.testing.assert_array_equal(ds.mask_safe.values, quality_ok)
    e_lo, e_hi = ds.energy_range
    np.testing.assert_allclose(e_lo.to_value("TeV"), hdr["LO_THRES"], rtol=1e-6)
    assert e_hi.to_value("TeV") <= hdr["HI_THRES"] * (1 + 1e-6)


@needs_data
@pytest.mark.parametrize("pha", PHA_FILES[:3] + PHA_FILES[-2:], ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_read_matches_gammapy(pha):
    gp = require_gammapy("gammapy.datasets")
    g = gp.SpectrumDatasetOnOff.read(pha)
    ds = read_pha(pha)
    np.testing.assert_array_equal(ds.counts.values, g.counts.data.ravel())
    np.testing.assert_array_equal(ds.counts_off.values, g.counts_off.data.ravel())
    np.testing.assert_allclose(ds.alpha.values, g.alpha.data.ravel(), rtol=1e-14)
    np.testing.assert_array_equal(ds.mask_safe.values, g.mask_safe.data.ravel())
    np.testing.assert_allclose(ds.exposure.values, g.exposure.quantity.to_value("cm2 s").ravel(), rtol=1e-14)
    # dense matrix from the compressed RMF, vs Gammapy's own decompression
    np.testing.assert_allclose(ds.edisp.values, g.edisp.get_edisp_kernel().pdf_matrix, rtol=1e-6, atol=1e-12)


@needs_data
def test_read_3c273():
    pha = XRAY / "3c273.pi"
    ds = read_pha(pha, group=False)
    hdr, tab = _table(pha)
    bhdr, btab = _table(XRAY / "3c273_bg.pi")
    np.testing.assert_array_equal(ds.counts.values, tab["COUNTS"])
    np.testing.assert_array_equal(ds.counts_off.values, btab["COUNTS"])
    # XSPEC's scaling: BACKSCAL and EXPOSURE ratios (AREASCAL = 1 here)
    expected_alpha = (hdr["BACKSCAL"] * hdr["EXPOSURE"]) / (bhdr["BACKSCAL"] * bhdr["EXPOSURE"])
    np.testing.assert_allclose(ds.alpha.values, expected_alpha, rtol=1e-12)
    assert ds.data.sizes["energy"] == 1024 and ds.data.sizes["gti"] > 0
    with fits.open(XRAY / "3c273.rmf") as h:
        assert ds.data.sizes["energy_true"] == len(h["MATRIX"].data)
    # GROUPING (read by default): a group label on the channels; the fit runs on its reduction,
    # where +1 starts a group and counts are conserved
    from xspec_ds.grouping import group_reduce

    labelled = read_pha(pha)
    assert labelled.data.sizes["energy"] == 1024
    np.testing.assert_array_equal(labelled.data.coords["group"].values, np.cumsum(tab["GROUPING"] == 1) - 1)
    grouped = xs.SpectrumDatasetOnOff.from_xarray(group_reduce(labelled.data))
    assert grouped.data.sizes["energy"] == int(np.sum(tab["GROUPING"] == 1))
    assert grouped.counts.values.sum() == tab["COUNTS"].sum()
    assert grouped.counts_off.values.sum() == btab["COUNTS"].sum()
    np.testing.assert_allclose(grouped.edisp.values.sum(axis=1), ds.edisp.values.sum(axis=1), rtol=1e-12)


def _onoff_dataset(nbin=12, ntrue=15, seed=1):
    rng = np.random.default_rng(seed)
    e_reco = MapAxis.from_energy_bounds("0.1 TeV", "50 TeV", nbin)
    e_true = MapAxis.from_energy_bounds("0.05 TeV", "100 TeV", ntrue, name="energy_true")
    ds = xs.SpectrumDatasetOnOff.create(e_reco, e_true, name="sim")
    ds.counts = rng.poisson(20, nbin).astype(float)
    ds.counts_off = rng.poisson(50, nbin).astype(float)
    ds.acceptance = np.ones(nbin)
    ds.acceptance_off = rng.uniform(3, 12, nbin)
    ds.exposure = rng.uniform(1e8, 1e9, ntrue) * u.Unit("cm2 s")
    m = rng.uniform(0, 1, (ntrue, nbin)) * (rng.uniform(0, 1, (ntrue, nbin)) > 0.6)
    ds.edisp = m / np.maximum(m.sum(axis=1, keepdims=True), 1e-9) * 0.9
    mask = np.ones(nbin, bool)
    mask[:2] = False
    ds.mask_safe = mask
    return ds


def test_write_read_roundtrip(tmp_path):
    ds = _onoff_dataset()
    ds.data["livetime"] = xr.Variable((), 1800.0, {"units": "s"})
    paths = write_ogip(ds, tmp_path / "pha_sim.fits")
    assert {p.name for p in paths.values()} == {"pha_sim.fits", "arf_sim.fits", "rmf_sim.fits", "bkg_sim.fits"}
    back = read_pha(tmp_path / "pha_sim.fits")
    assert back.name == "sim"
    for var in ("counts", "counts_off", "mask_safe"):
        np.testing.assert_array_equal(back.data[var].values, ds.data[var].values)
    np.testing.assert_allclose(back.alpha.values, ds.alpha.values, rtol=1e-15)
    scale = u.Unit(ds.exposure.attrs["units"]).to(back.exposure.attrs["units"])
    np.testing.assert_allclose(back.exposure.values, ds.exposure.values * scale, rtol=1e-14)
    # MATRIX is written as float32 (the usual RMF precision)
    np.testing.assert_allclose(back.edisp.values, ds.edisp.values.astype(np.float32), rtol=0, atol=0)
    np.testing.assert_allclose(
        back._energy_axis.edges.to_value("TeV"), ds._energy_axis.edges.to_value("TeV"), rtol=1e-15
    )
    with pytest.raises(FileExistsError):
        write_ogip(ds, tmp_path / "pha_sim.fits")


ALL_PHA = PHA_FILES + (shared_glob("xray/3c273/3c273.pi") if shared_available() else [])


@needs_data
@pytest.mark.parametrize("pha", ALL_PHA, ids=lambda p: f"{p.parent.name}/{p.name}")
@pytest.mark.parametrize("suffix", [".fits", ".nc"])
def test_every_real_spectrum_roundtrips(tmp_path, pha, suffix):
    """Every shared spectrum (all five instruments and the X-ray one) survives OGIP and netCDF."""
    ds = read_pha(pha)
    out = tmp_path / (pha.stem + suffix)
    ds.write(out)
    back = xs.SpectrumDatasetOnOff.read(out)
    assert isinstance(back, xs.SpectrumDatasetOnOff)
    xr.testing.assert_identical(back.data, ds.data)


@settings(max_examples=25, deadline=None)
@given(
    n_true=st.integers(1, 30),
    n_chan=st.integers(1, 40),
    density=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31),
    first=st.sampled_from([0, 1]),
)
def test_compressed_rmf_equals_dense(tmp_path_factory, n_true, n_chan, density, seed, first):
    """A compressed RMF (write_rmf) and an uncompressed one (one group per row, written here by
    hand) reconstruct the same matrix."""
    rng = np.random.default_rng(seed)
    m = (rng.uniform(0, 1, (n_true, n_chan)) * (rng.uniform(0, 1, (n_true, n_chan)) < density)).astype(np.float32)
    m = m / np.maximum(m.sum(axis=1, keepdims=True), 1) * np.float32(0.99)
    e_true = MapAxis.from_energy_bounds(1, 10, n_true, unit="keV", name="energy_true")
    e_reco = MapAxis.from_energy_bounds(1, 10, n_chan, unit="keV")
    d = tmp_path_factory.mktemp("rmf")
    write_rmf(d / "c.fits", e_true, e_reco, m, first_channel=first)
    cols = [
        fits.Column("ENERG_LO", "D", unit="keV", array=e_true.edges_min.value),
        fits.Column("ENERG_HI", "D", unit="keV", array=e_true.edges_max.value),
        fits.Column("N_GRP", "I", array=np.ones(n_true)),
        fits.Column("F_CHAN", "I", array=np.full(n_true, first)),
        fits.Column("N_CHAN", "I", array=np.full(n_true, n_chan)),
        fits.Column("MATRIX", f"{n_chan}E", array=m),
    ]
    mat = fits.BinTableHDU.from_columns(cols, name="MATRIX")
    mat.header["TLMIN4"] = first
    eb = fits.BinTableHDU.from_columns(
        [
            fits.Column("CHANNEL", "J", array=np.arange(n_chan) + first),
            fits.Column("E_MIN", "D", unit="keV", array=e_reco.edges_min.value),
            fits.Column("E_MAX", "D", unit="keV", array=e_reco.edges_max.value),
        ],
        name="EBOUNDS",
    )
    fits.HDUList([fits.PrimaryHDU(), mat, eb]).writeto(d / "dense.fits")
    _, _, compressed, _ = read_rmf(d / "c.fits")
    _, _, dense, _ = read_rmf(d / "dense.fits")
    np.testing.assert_array_equal(compressed, dense)
    np.testing.assert_array_equal(dense, m.astype(np.float64))
    with fits.open(d / "c.fits") as h:
        assert h["MATRIX"].header["NUMELT"] == np.count_nonzero(m)


# bad input --------------------------------------------------------------------------------------
@pytest.fixture
def hess_copy(tmp_path):
    shared_data("joint-crab", "spectra", "hess")
    for f in (JOINT / "hess").glob("*_obs23523.fits"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path / "pha_obs23523.fits"


@pytest.mark.parametrize("kind", ["bkg", "arf", "rmf"])
def test_missing_linked_file(hess_copy, kind):
    (hess_copy.parent / f"{kind}_obs23523.fits").unlink()
    with pytest.raises(FileNotFoundError, match=rf"pha_obs23523.fits.*{kind}_obs23523.fits"):
        read_pha(hess_copy)


def test_rmf_channel_mismatch(hess_copy):
    shutil.copy(JOINT / "fermi" / "rmf_obs0.fits", hess_copy.parent / "rmf_obs23523.fits")
    with pytest.raises(OGIPError, match=r"rmf_obs23523.fits.*36 channels.*80"):
        read_pha(hess_copy)


def test_zero_acceptance_off(hess_copy):
    bkg = hess_copy.parent / "bkg_obs23523.fits"
    with fits.open(bkg, mode="update") as h:
        h["SPECTRUM"].data["BACKSCAL"][:] = 0.0
    with pytest.raises(OGIPError, match=r"bkg_obs23523.fits.*acceptance_off"):
        read_pha(hess_copy)


def test_truncated_file(hess_copy):
    data = hess_copy.read_bytes()
    hess_copy.write_bytes(data[: len(data) // 2 + 100])
    with pytest.raises((OGIPError, OSError), match="pha_obs23523.fits"):
        read_pha(hess_copy)


def test_not_a_pha(hess_copy):
    with pytest.raises(OGIPError, match=r"arf_obs23523.fits.*no SPECTRUM"):
        read_pha(hess_copy.parent / "arf_obs23523.fits")
