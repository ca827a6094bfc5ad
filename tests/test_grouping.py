"""Grouping, notice/ignore and the chi-square statistics (xspec_ds.grouping, xspec_ds.xrayfit).

Sherpa's figures for 3C 273 are constants copied from ``benchmarks/results/bench_sherpa_3c273.txt`` and
``bench_sherpa_xray.txt`` (Sherpa 4.19.0, produced by the scripts of the same names); Sherpa is never
imported here.
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st

import xspec_ds as xs
from xspec_ds import grouping, stats, xrayfit
from xspec_ds.io.ogip import OGIPError, read_pha

from ._requirements import needs_shared

DATA = Path(__file__).parents[1] / ".." / "shared" / "data"
PHA = DATA / "xray" / "3c273" / "3c273.pi"
needs_data = needs_shared

# Sherpa 4.19.0, benchmarks/bench_sherpa_3c273.py (results/bench_sherpa_3c273.txt): the file's own
# grouping, notice(0.5, 7), powlaw1d (ref 1 keV), WSTAT.
SHERPA_GROUPED_NBINS = 42
SHERPA_GROUPED_WSTAT = [  # (index, amplitude [cm-2 s-1 keV-1]) -> WSTAT
    (2.0, 1.0e-4, 256.14123559328095),
    (1.93, 1.84e-4, 37.38210547441783),
    (1.5, 3.0e-4, 626.9667479551384),
    (2.5, 5.0e-5, 1011.6026804335933),
]
SHERPA_GROUPED_BEST = {"index": (1.929437, 0.056736), "amplitude": (1.841572e-04, 9.4754e-06)}  # levmar + covar

# Sherpa 4.19.0 (built from its sdist in a separate venv), benchmarks/bench_sherpa_xray.py
# (results/bench_sherpa_xray.txt): load_pha; ignore(); notice(0.5, 7); [group_counts(20)];
# set_stat(...); [subtract() for chi2]; powlaw1d ref 1 keV; fit() (levmar) + covar().
# name -> (group_counts n, stat_type, noticed groups, statistic at best fit, index, index error,
#          amplitude [cm-2 s-1 keV-1], amplitude error)
SHERPA_419 = {
    "file-wstat": (None, "wstat", 42, 37.38111142856732, 1.9294365211811466, 0.056735822516164824,
                   0.0001841572313245993, 9.475351343861672e-06),
    "file-chi2datavar": (None, "chi2datavar", 42, 36.483185127716155, 1.9297809595382005, 0.05594194203545104,
                         0.00017386011331120424, 9.050087613923022e-06),
    "gc20-wstat": (20, "wstat", 32, 33.327836641149055, 1.9272262928866686, 0.056719382324726335,
                   0.00018389061812956693, 9.470149465545207e-06),
    "gc20-chi2gehrels": (20, "chi2gehrels", 32, 21.64432153036003, 1.92764214746548, 0.06903354316035931,
                         0.00017500353752602753, 1.1197200764432807e-05),
}  # fmt: skip
# Sherpa's group starts (0-based channels) inside the noticed range after group_counts(20), and its
# incomplete last group (QUALITY = 2): channels 463-675
SHERPA_GC20_STARTS = [32, 41, 47, 51, 55, 58, 61, 66, 70, 75, 79, 87, 96, 104, 113, 123, 131, 137, 143, 152,
                      159, 177, 191, 206, 232, 253, 272, 292, 329, 363, 404, 463]  # fmt: skip
SHERPA_GC20_QUALITY2 = (463, 675)


# ------------------------------------------------------------------------------------------------
# OGIP flags <-> labels
# ------------------------------------------------------------------------------------------------
def test_grouping_to_labels_examples():
    np.testing.assert_array_equal(grouping.grouping_to_labels([1, -1, -1, 1, 0, 1, -1]), [0, 0, 0, 1, 2, 3, 3])
    np.testing.assert_array_equal(grouping.labels_to_grouping([0, 0, 0, 1, 2, 3, 3]), [1, -1, -1, 1, 1, 1, -1])


@pytest.mark.parametrize(
    ("flags", "n", "match"),
    [
        ([1, -1, 2], 3, "invalid GROUPING value 2 at channel index 2"),
        ([1, -1], 3, "GROUPING has 2 values but the spectrum has 3 channels"),
        ([-1, 1, 1], 3, "starts with -1"),
    ],
)
def test_grouping_bad_values(flags, n, match):
    with pytest.raises(ValueError, match=match):
        grouping.grouping_to_labels(flags, n)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=60))
def test_labels_flags_roundtrip(sizes):
    labels = np.repeat(np.arange(len(sizes)), np.asarray(sizes) + 1)
    np.testing.assert_array_equal(grouping.grouping_to_labels(grouping.labels_to_grouping(labels)), labels)


# ------------------------------------------------------------------------------------------------
# group_counts: Sherpa/grplib rule vs a channel-by-channel reference written here
# ------------------------------------------------------------------------------------------------
def _reference_group_counts(counts, n, stops):
    flags = np.full(len(counts), -1)
    quality = np.zeros(len(counts), int)
    acc, start = None, None
    for i, c in enumerate(counts):
        if stops[i]:
            if acc is not None:  # an interrupted group is incomplete
                quality[start:i] = 2
            flags[i], acc = 1, None
            continue
        if acc is None:
            flags[i], acc, start = 1, 0.0, i
        acc += c
        if acc >= n:
            acc = None
    if acc is not None:
        quality[start:] = 2
    return flags, quality


@settings(max_examples=100, deadline=None)
@given(
    counts=st.lists(st.integers(0, 30), min_size=1, max_size=80),
    n=st.integers(1, 50),
    stop_seed=st.integers(0, 2**16),
    with_stops=st.booleans(),
)
def test_group_counts_matches_sequential_rule(counts, n, stop_seed, with_stops):
    counts = np.asarray(counts, float)
    rng = np.random.default_rng(stop_seed)
    stops = (rng.uniform(size=counts.size) < 0.15) if with_stops else np.zeros(counts.size, bool)
    flags, quality = grouping.group_counts_flags(counts, n, stops)
    ref_flags, ref_quality = _reference_group_counts(counts, n, stops)
    np.testing.assert_array_equal(flags, ref_flags)
    np.testing.assert_array_equal(quality, ref_quality)
    # every complete group reaches n
    labels = grouping.grouping_to_labels(flags)
    sums = np.bincount(labels, weights=counts)
    complete = np.bincount(labels, weights=(quality == 0) & ~stops) > 0
    assert np.all(sums[complete] >= n)


def test_group_counts_bad_n():
    with pytest.raises(ValueError, match="must be positive"):
        grouping.group_counts_flags(np.ones(4), 0)


# ------------------------------------------------------------------------------------------------
# a small synthetic on-off spectrum
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def onoff():
    return synthetic_onoff()


def synthetic_onoff():
    """24 reco x 40 true bins, random sparse kernel, on/off Poisson counts, a power law."""
    rng = np.random.default_rng(3)
    e_reco = xs.MapAxis.from_energy_bounds("0.3 keV", "10 keV", 24, unit="keV")
    e_true = xs.MapAxis.from_energy_bounds("0.2 keV", "12 keV", 40, unit="keV", name="energy_true")
    ds = xs.SpectrumDatasetOnOff.create(e_reco, e_true, name="syn")
    ds.exposure = rng.uniform(100, 300, 40) * u.Unit("cm2 s") * 1e3
    m = rng.uniform(0, 1, (40, 24)) * (rng.uniform(0, 1, (40, 24)) > 0.5)
    ds.edisp = m / np.maximum(m.sum(axis=1, keepdims=True), 1e-9) * 0.95
    ds.counts = rng.poisson(30, 24).astype(float)
    ds.counts_off = rng.poisson(40, 24).astype(float)
    ds.acceptance = np.ones(24)
    ds.acceptance_off = np.full(24, 4.0)
    ds.mask_safe = np.ones(24, bool)
    ds.models = xs.PowerLawSpectralModel(index=2, amplitude="1e-3 cm-2 s-1 keV-1", reference="1 keV")
    return ds


def test_grouped_stat_equals_reduced_dataset(onoff):
    flags = np.array([1, -1, -1, 1, -1, 1, 1, -1, -1, -1] + [1, -1] * 7)
    grouping.set_grouping(onoff.data, flags)
    onoff.reset_data_cache()
    # independent reduction: sum the arrays with the flags here
    starts = np.flatnonzero(flags == 1)
    n_on = np.add.reduceat(onoff.counts.values, starts)
    n_off = np.add.reduceat(onoff.counts_off.values, starts)
    mu_ch = onoff.copy().data  # channel-level prediction from an ungrouped copy
    plain = xs.SpectrumDatasetOnOff.from_xarray(grouping.remove_grouping(mu_ch))
    plain.models = onoff.models
    mu = np.add.reduceat(plain.npred_signal().values, starts)
    expected = stats.wstat(n_on, n_off, 0.25, mu).sum()
    np.testing.assert_allclose(onoff.stat_sum(), expected, rtol=1e-13)
    assert onoff.stat_array().sizes["energy"] == starts.size
    assert onoff.counts.sizes["energy"] == 24  # the channels stay


def test_grouped_gradient_matches_finite_differences(onoff):
    onoff.group_counts(60)
    params = [p for p in onoff.models.parameters if not p.frozen]
    for st_type in ("wstat", "chi2datavar", "chi2gehrels"):
        onoff.stat_type = st_type
        _, grad = onoff._stat_gradient(params)
        for k, p in enumerate(params):
            v = p.value
            h = 1e-6 * abs(v)
            p.value = v + h
            up = onoff.stat_sum()
            p.value = v - h
            down = onoff.stat_sum()
            p.value = v
            np.testing.assert_allclose(grad[k], (up - down) / (2 * h), rtol=1e-5)


def test_notice_ignore_sherpa_rules(onoff):
    e_min = onoff.data["energy_min"].values
    e_max = onoff.data["energy_max"].values
    onoff.notice("1 keV", "3 keV")  # first notice: the selection replaces "everything"
    expect = (e_max > 1) & (e_min < 3)
    np.testing.assert_array_equal(onoff.mask_fit.values, expect)
    onoff.notice(5, 6)  # numbers are keV; later notices add
    expect |= (e_max > 5) & (e_min < 6)
    np.testing.assert_array_equal(onoff.mask_fit.values, expect)
    onoff.ignore("2 keV", None)  # ignore removes, open upper end
    expect &= ~(e_max > 2)
    np.testing.assert_array_equal(onoff.mask_fit.values, expect)
    onoff.notice()
    assert onoff.mask_fit.values.all()
    onoff.ignore()
    assert not onoff.mask_fit.values.any()


def test_notice_selects_whole_groups(onoff):
    flags = np.array([1, -1, -1, -1] * 6)
    grouping.set_grouping(onoff.data, flags)
    e_max = onoff.data["energy_max"].values
    e_min = onoff.data["energy_min"].values
    onoff.notice(e_min[5] * 1.0001, e_max[5] * 0.9999)  # inside channel 5 (group 1)
    np.testing.assert_array_equal(np.flatnonzero(onoff.mask_fit.values), [4, 5, 6, 7])
    assert xrayfit.n_fit_bins(onoff) == 1


@pytest.mark.parametrize(("lo", "hi"), [("20 keV", "30 keV"), ("0.01 keV", "0.1 keV"), ("5 keV", "2 keV")])
def test_notice_outside_data_raises(onoff, lo, hi):
    with pytest.raises(ValueError, match="outside the data|empty or reversed"):
        onoff.notice(lo, hi)


def test_stat_type_settable(onoff):
    assert xs.SpectrumDatasetOnOff.stat_type == "wstat" and xs.SpectrumDataset.stat_type == "cash"
    onoff.stat_type = "chi2gehrels"
    assert onoff.stat_type == "chi2gehrels"
    with pytest.raises(ValueError, match="unknown stat_type 'cash'"):
        onoff.stat_type = "cash"
    onoff.stat_type = "wstat"
    assert "stat_type" not in onoff.data.attrs


def test_chi2_values_by_hand(onoff):
    """chi2 of background-subtracted data (Sherpa's definitions), computed here from the arrays."""
    n, b = onoff.counts.values, onoff.counts_off.values
    mu = onoff.npred_signal().values
    d = n - 0.25 * b
    for st_type, var in (
        ("chi2datavar", n + 0.25**2 * b),
        ("chi2gehrels", (1 + np.sqrt(n + 0.75)) ** 2 + 0.25**2 * (1 + np.sqrt(b + 0.75)) ** 2),
    ):
        onoff.stat_type = st_type
        np.testing.assert_allclose(onoff.stat_array().values, (d - mu) ** 2 / var, rtol=1e-13)
        np.testing.assert_allclose(onoff.stat_sum(), np.sum((d - mu) ** 2 / var), rtol=1e-13)


def test_chi2_zero_variance_raises(onoff):
    onoff.counts = np.zeros(24)
    onoff.counts_off = np.zeros(24)
    onoff.stat_type = "chi2datavar"
    with pytest.raises(ValueError, match="zero variance"):
        onoff.stat_sum()


def test_fit_result_dof(onoff):
    onoff.group_counts(50)
    onoff.stat_type = "chi2gehrels"
    result = xs.Fit().run(onoff)
    n_groups = xrayfit.n_fit_bins(onoff)
    assert result.n_bins == n_groups and result.dof == n_groups - 2
    np.testing.assert_allclose(result.reduced_stat, result.total_stat / (n_groups - 2), rtol=1e-15)


def test_ungroup_and_netcdf_roundtrip(onoff, tmp_path):
    onoff.group_counts(45)
    grouped_stat = onoff.stat_sum()
    onoff.write(tmp_path / "g.nc")
    back = xs.SpectrumDatasetOnOff.read(tmp_path / "g.nc")
    xr.testing.assert_identical(back.data.coords["group"], onoff.data.coords["group"])
    back.models = onoff.models
    np.testing.assert_allclose(back.stat_sum(), grouped_stat, rtol=1e-15)
    onoff.ungroup()
    assert "group" not in onoff.data.coords
    assert onoff.stat_array().sizes["energy"] == 24


def test_ogip_roundtrip_keeps_grouping(onoff, tmp_path):
    onoff.data["livetime"] = xr.Variable((), 1000.0, {"units": "s"})
    grouping.set_grouping(onoff.data, np.array([1, -1, -1] * 8))
    onoff.reset_data_cache()
    onoff.write(tmp_path / "pha_g.fits")
    back = xs.SpectrumDatasetOnOff.read(tmp_path / "pha_g.fits")
    np.testing.assert_array_equal(back.data.coords["group"].values, onoff.data.coords["group"].values)


def test_bad_grouping_column_names_file(onoff, tmp_path):
    onoff.data["livetime"] = xr.Variable((), 1000.0, {"units": "s"})
    grouping.set_grouping(onoff.data, np.array([1, -1, -1] * 8))
    onoff.write(tmp_path / "pha_b.fits")
    with fits.open(tmp_path / "pha_b.fits", mode="update") as h:
        h["SPECTRUM"].data["GROUPING"][3] = 7
    with pytest.raises(OGIPError, match=r"pha_b\.fits.*invalid GROUPING value 7 at channel index 3"):
        read_pha(tmp_path / "pha_b.fits")


# ------------------------------------------------------------------------------------------------
# 3C 273 against Sherpa 4.19 (figures recorded above)
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def c273():
    ds = xs.SpectrumDatasetOnOff.read(PHA)
    ds.notice(0.5, 7)
    ds.models = xs.PowerLawSpectralModel(index=2, amplitude="1e-4 cm-2 s-1 keV-1", reference="1 keV")
    return ds


@needs_data
def test_3c273_file_grouping_wstat_matches_sherpa(c273):
    assert xrayfit.n_fit_bins(c273) == SHERPA_GROUPED_NBINS
    pars = c273.models.parameters
    for index, ampl, sherpa in SHERPA_GROUPED_WSTAT:
        pars["index"].value, pars["amplitude"].value = index, ampl
        np.testing.assert_allclose(c273.stat_sum(), sherpa, rtol=1e-6, atol=0)
    pars["index"].value, pars["amplitude"].value = 2.0, 1e-4
    result = xs.Fit().run(c273)
    assert result.success and result.dof == SHERPA_GROUPED_NBINS - 2
    for name, (value, error) in SHERPA_GROUPED_BEST.items():
        p = pars[name]
        assert abs(p.value - value) <= 0.01 * error
        np.testing.assert_allclose(p.error, error, rtol=0.02)


@needs_data
def test_3c273_chi2_on_file_groups_by_hand(c273):
    """chi2datavar on the file's groups, data and variance assembled here from the FITS columns."""
    with fits.open(PHA) as h, fits.open(PHA.parent / "3c273_bg.pi") as hb:
        flags, n = h[1].data["GROUPING"], h[1].data["COUNTS"].astype(float)
        b = hb[1].data["COUNTS"].astype(float)
        alpha = (h[1].header["BACKSCAL"] * h[1].header["EXPOSURE"]) / (
            hb[1].header["BACKSCAL"] * hb[1].header["EXPOSURE"]
        )
    starts = np.flatnonzero(flags == 1)
    n_g, b_g = np.add.reduceat(n, starts), np.add.reduceat(b, starts)
    c273.stat_type = "chi2datavar"
    mu = c273.npred_signal().values  # per group
    view = xrayfit.grouped_view(c273)
    mask = view.mask.values
    expected = np.sum(((n_g - alpha * b_g - mu) ** 2 / (n_g + alpha**2 * b_g))[mask])
    np.testing.assert_allclose(c273.stat_sum(), expected, rtol=1e-12)


@needs_data
def test_3c273_group_counts_and_absorbed_fit(c273):
    c273.group_counts(20)
    view = xrayfit.grouped_view(c273)
    counts = view.counts.values[view.mask.values]
    assert np.all(counts[:-1] >= 20)  # only the last noticed group may be incomplete
    for st_type in ("wstat", "chi2gehrels"):
        c273.stat_type = st_type
        result = xs.Fit().run(c273)
        assert result.success and np.isfinite(c273.models.parameters["index"].error)
    c273.stat_type = "wstat"
    c273.models = xs.WabsNormSpectralModel(nh=0.05) * xs.PowerLawSpectralModel(
        index=2, amplitude="2e-4 cm-2 s-1 keV-1", reference="1 keV"
    )
    result = xs.Fit().run(c273)
    nh = c273.models.parameters["nh"]
    assert result.success and np.isfinite(nh.value) and np.isfinite(nh.error) and nh.error > 0


def test_group_snr_is_group_counts_of_the_square(onoff):
    other = onoff.copy()
    onoff.group_snr(7)
    other.group_counts(49)
    np.testing.assert_array_equal(onoff.data.coords["group"].values, other.data.coords["group"].values)
    with pytest.raises(ValueError, match="must be positive"):
        onoff.group_snr(-1)


@needs_data
@pytest.mark.parametrize("name", sorted(SHERPA_419))
def test_3c273_matches_sherpa_419(name):
    n_group, stat_type, n_bins, stat, index, index_err, ampl, ampl_err = SHERPA_419[name]
    ds = xs.SpectrumDatasetOnOff.read(PHA)
    ds.notice(0.5, 7)
    if n_group:
        ds.group_counts(n_group)
    ds.stat_type = stat_type
    ds.models = xs.PowerLawSpectralModel(index=index, amplitude=f"{ampl} cm-2 s-1 keV-1", reference="1 keV")
    assert xrayfit.n_fit_bins(ds) == n_bins
    np.testing.assert_allclose(ds.stat_sum(), stat, rtol=1e-6, atol=0)  # at Sherpa's best fit
    pars = ds.models.parameters
    pars["index"].value, pars["amplitude"].value = 2.0, 1e-4
    result = xs.Fit().run(ds)
    assert result.success and result.dof == n_bins - 2
    assert abs(pars["index"].value - index) <= 0.01 * index_err
    assert abs(pars["amplitude"].value - ampl) <= 0.01 * ampl_err
    np.testing.assert_allclose(pars["index"].error, index_err, rtol=0.02)
    np.testing.assert_allclose(pars["amplitude"].error, ampl_err, rtol=0.02)


@needs_data
def test_3c273_group_counts_equals_sherpa_grouping():
    ds = xs.SpectrumDatasetOnOff.read(PHA)
    ds.notice(0.5, 7)
    ds.group_counts(20)
    labels = ds.data.coords["group"].values
    starts = np.flatnonzero(np.r_[True, np.diff(labels) != 0])
    noticed = ds.mask_fit.values
    assert [int(s) for s in starts if noticed[s]] == SHERPA_GC20_STARTS
    q2 = np.flatnonzero(ds.data.coords["quality"].values == 2)
    assert (q2[0], q2[-1]) == SHERPA_GC20_QUALITY2 and q2.size == q2[-1] - q2[0] + 1
