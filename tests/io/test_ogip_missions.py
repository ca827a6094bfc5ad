"""OGIP files of other missions (../shared/data/ogip-missions): type II, RSP/RSP2, RATE, explicit links."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import xspec_ds as xs
from xspec_ds.io.ogip import OGIPError, is_pha2, read_pha2_table, read_rmf

from .._requirements import needs_shared

M = Path(__file__).parents[2] / ".." / "shared" / "data" / "ogip-missions"
needs_data = needs_shared
GBM = M / "fermi-gbm"


def _read(pha, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # X-ray grids starting at 0 keV; GBM PHA vs RSP EBOUNDS
        return xs.SpectrumDatasetOnOff.read(pha, **{k: str(v) for k, v in kw.items()})


TYPE_I = {
    "ogip_powerlaw": (M / "ogip_powerlaw.pha", {"bkg": M / "ogip_powerlaw.bak"}),
    "swift-xrt": (
        M / "swift-xrt" / "interval0wtsource.pi",
        {
            "bkg": M / "swift-xrt" / "interval0wtback.pi",
            "arf": M / "swift-xrt" / "xrt.arf",
            "rmf": M / "swift-xrt" / "xrt.rmf",
        },
    ),
    "gbm-nai-one-row": (
        GBM / "gbm_bat_joint_NAI_06.pha",
        {"bkg": GBM / "gbm_bat_joint_NAI_06.bak", "rmf": GBM / "gbm_bat_joint_NAI_06.rsp"},
    ),
    "gbm-bgo-one-row": (
        GBM / "gbm_bat_joint_BGO_00.pha",
        {"bkg": GBM / "gbm_bat_joint_BGO_00.bak", "rmf": GBM / "gbm_bat_joint_BGO_00.rsp"},
    ),
    "gbm-weighted": (
        GBM / "bn090217206_n6_srcspectra.pha",
        {"bkg": GBM / "bn090217206_n6_bkgspectra.bak", "rmf": GBM / "bn090217206_n6_weightedrsp.rsp"},
    ),
}


@needs_data
@pytest.mark.parametrize("key", sorted(TYPE_I))
def test_mission_spectra_read_and_fit(key):
    pha, kw = TYPE_I[key]
    ds = _read(pha, **kw)
    assert isinstance(ds, xs.SpectrumDatasetOnOff)
    with fits.open(pha) as h:
        spec = h["SPECTRUM"]
        col = "COUNTS" if "COUNTS" in spec.columns.names else "RATE"
        raw = np.asarray(spec.data[col], dtype=float).reshape(-1)
        if col == "RATE":
            expo = spec.data["EXPOSURE"][0] if "EXPOSURE" in spec.columns.names else spec.header["EXPOSURE"]
            raw = raw * expo
    np.testing.assert_allclose(ds.counts.values, raw, rtol=1e-6)
    ds.models = xs.PowerLawSpectralModel(index=2, amplitude="1e-2 cm-2 s-1 keV-1", reference="100 keV")
    result = xs.Fit().run(ds)
    assert result.success and np.isfinite(ds.models.parameters["index"].error)


@needs_data
def test_missing_backfile_names_the_argument():
    with pytest.raises(FileNotFoundError, match=r"BACKFILE = 'ogip_powerlaw_bkg\.pha' names a missing file.*bkg="):
        xs.SpectrumDatasetOnOff.read(M / "ogip_powerlaw.pha")


@needs_data
def test_rsp_folds_the_area():
    """An RSP (SPECRESP MATRIX) carries the effective area: exposure = row sums x EXPOSURE."""
    ds = _read(M / "ogip_powerlaw.pha", bkg=M / "ogip_powerlaw.bak")
    with fits.open(M / "ogip_powerlaw.rsp") as h:
        rows = h["SPECRESP MATRIX"].data
        area = np.array([np.sum(np.asarray(m, float)) for m in rows["MATRIX"]])
        exposure = fits.getheader(M / "ogip_powerlaw.pha", "SPECTRUM")["EXPOSURE"]
    np.testing.assert_allclose(ds.exposure.values, area * exposure, rtol=1e-6)


@needs_data
def test_bat_rate_net_spectrum_uses_stat_err():
    ds = xs.SpectrumDataset.read(
        M / "swift-bat" / "gbm_bat_joint_BAT.pha", rmf=str(M / "swift-bat" / "gbm_bat_joint_BAT.rsp")
    )
    assert ds.stat_type == "chi2"
    with fits.open(M / "swift-bat" / "gbm_bat_joint_BAT.pha") as h:
        expo = h["SPECTRUM"].header["EXPOSURE"]
        rate, err = h["SPECTRUM"].data["RATE"], h["SPECTRUM"].data["STAT_ERR"]
    np.testing.assert_allclose(ds.counts.values, rate * expo, rtol=1e-6)
    ds.models = xs.PowerLawSpectralModel(index=1.5, amplitude="1e-2 cm-2 s-1 keV-1", reference="100 keV")
    mu = ds.npred_signal().values
    np.testing.assert_allclose(ds.stat_sum(), np.sum((rate * expo - mu) ** 2 / (err * expo) ** 2), rtol=1e-6)


@needs_data
def test_cspec_type_ii_as_obs_dataset():
    pha, rsp2 = GBM / "glg_cspec_n3_bn080916009_v01.pha", GBM / "glg_cspec_n3_bn080916009_v00.rsp2"
    assert is_pha2(pha) and not is_pha2(M / "ogip_powerlaw.pha")
    ds = xs.open_dataset(pha, rmf=rsp2)
    with fits.open(pha) as h:
        counts = np.asarray(h["SPECTRUM"].data["COUNTS"], float)
        expo = np.asarray(h["SPECTRUM"].data["EXPOSURE"], float)
        quality = np.asarray(h["SPECTRUM"].data["QUALITY"])
    assert ds.sizes["obs"] == 1859 and ds["counts"].dims == ("obs", "energy")
    np.testing.assert_array_equal(ds["counts"].values, counts)
    np.testing.assert_allclose(ds["livetime"].values, expo, rtol=0)
    np.testing.assert_array_equal(ds["mask_safe"].values, np.repeat((quality == 0)[:, None], 128, axis=1))
    # exposure = area of the first matrix x each row's EXPOSURE
    _, _, _, area = read_rmf(rsp2)
    np.testing.assert_allclose(ds["exposure"].values, area[None, :] * expo[:, None], rtol=1e-6)
    # ready for xs.stack: the safe counts are summed
    stacked = xs.stack(ds)
    np.testing.assert_allclose(stacked["counts"].values, np.sum(counts * (quality == 0)[:, None], axis=0))
    one = ds.isel(obs=500).spectrum
    assert one.counts.sum() == counts[500].sum()


@needs_data
def test_rsp2_matrix_index():
    rsp2 = GBM / "glg_cspec_n3_bn080916009_v00.rsp2"
    m0 = read_rmf(rsp2)
    m2 = read_rmf(rsp2, index=2)
    assert not np.allclose(m0[3], m2[3], rtol=1e-6, atol=0)
    with pytest.raises(OGIPError, match="matrix index 3 requested but the file has 3 matrices"):
        read_rmf(rsp2, index=3)


def test_type_ii_rows_with_different_channel_counts(tmp_path):
    path = tmp_path / "bad2.pha"
    counts = np.array([np.arange(5.0), np.arange(4.0)], dtype=object)
    cols = [
        fits.Column("SPEC_NUM", "J", array=[1, 2]),
        fits.Column("COUNTS", "PD()", array=counts),
        fits.Column("EXPOSURE", "D", array=[10.0, 10.0]),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    hdu.header.update({"HDUCLASS": "OGIP", "HDUCLAS1": "SPECTRUM", "HDUCLAS4": "TYPE:II"})
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    with pytest.raises(OGIPError, match=r"bad2\.pha: type II rows differ in channel count .*row 1 has 4"):
        read_pha2_table(path)


@needs_data
def test_type_ii_with_several_rows_is_not_a_single_spectrum():
    with pytest.raises(OGIPError, match="1859 spectra; open it with xs.open_dataset"):
        xs.SpectrumDataset.read(
            GBM / "glg_cspec_n3_bn080916009_v01.pha", rmf=str(GBM / "glg_cspec_n3_bn080916009_v00.rsp2")
        )


# Sherpa 4.19.0, benchmarks/bench_sherpa_missions.py (results/bench_sherpa_missions.txt): powlaw1d
# (gamma 1.8, ampl 0.01, ref 100 keV) folded by DataPHA.eval_model, ungrouped, unfiltered:
# set -> (sum over channels, channel 40, channel 70)
SHERPA_FOLDED = {
    "ogip_powerlaw": (41325.18228385762, 74.16398747973669, 34.95317409563699),
    "swift-xrt": (1856904.055151429, 12787.467870480921, 9846.524066147296),
    "swift-bat": (6.885256493365603, 0.028128309735827927, 0.0023599132415201706),
}
FOLDED_SETS = {
    "ogip_powerlaw": (M / "ogip_powerlaw.pha", {"bkg": M / "ogip_powerlaw.bak"}),
    "swift-xrt": TYPE_I["swift-xrt"],
    "swift-bat": (M / "swift-bat" / "gbm_bat_joint_BAT.pha", {"rmf": M / "swift-bat" / "gbm_bat_joint_BAT.rsp"}),
}


@needs_data
@pytest.mark.parametrize("key", sorted(SHERPA_FOLDED))
def test_folded_counts_match_sherpa(key):
    pha, kw = FOLDED_SETS[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = xs.SpectrumDataset.read(pha, group=False, **{k: str(v) for k, v in kw.items()})
    ds.models = xs.PowerLawSpectralModel(index=1.8, amplitude="0.01 cm-2 s-1 keV-1", reference="100 keV")
    npred = ds.npred_signal().values
    total, ch40, ch70 = SHERPA_FOLDED[key]
    np.testing.assert_allclose([npred.sum(), npred[40], npred[70]], [total, ch40, ch70], rtol=1e-10, atol=0)
