"""`SpectrumDatasetOnOff` and WSTAT (`xspec_ds.onoff`, `xspec_ds.stats.wstat`)."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xspec_ds as xs
from xspec_ds import forward, onoff, stats
from xspec_ds.axes import MapAxis
from xspec_ds.onoff import wstat_gradient_weights

from ._requirements import require_gammapy, shared_data

HESS_PARTS = ("joint-crab", "spectra", "hess", "pha_obs23523.fits")


def xspec_wstat(n_on, n_off, alpha, mu_sig):
    """WSTAT written from the XSPEC manual (appendix B), bin by bin with its special cases.

    ``t_s m = mu_sig``, ``t_s / t_b = alpha``; ``f`` is the profiled background rate so that the
    off-region expectation is ``t_b f``. Includes the saturated-model terms (as Gammapy).
    """
    out = []
    for s, b, a, mu in zip(n_on, n_off, alpha, mu_sig, strict=True):
        ts, tb = 1.0, 1.0 / a
        m = mu / ts
        if s == 0:  # XSPEC: f = B / (t_s + t_b)
            f = b / (ts + tb)
        elif b == 0:  # XSPEC: f = S / (t_s + t_b) - m if positive, else 0
            f = max(s / (ts + tb) - m, 0.0)
        else:
            aa = ts + tb
            bb = aa * m - s - b
            f = (-bb + np.sqrt(bb * bb + 4 * aa * b * m)) / (2 * aa)
        w = ts * m + (ts + tb) * f
        if s > 0:
            w += -s * np.log(ts * m + ts * f) + s * np.log(s) - s
        if b > 0:
            w += -b * np.log(tb * f) + b * np.log(b) - b
        out.append(2 * w)
    return np.array(out)


counts = st.integers(0, 60).map(float)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(counts, counts, st.floats(0.01, 5.0), st.floats(1e-3, 80.0)), min_size=1, max_size=20))
def test_wstat_matches_xspec_formula(rows):
    n_on, n_off, alpha, mu = (np.array(c) for c in zip(*rows, strict=True))
    got = stats.wstat(n_on, n_off, alpha, mu)
    np.testing.assert_allclose(got, xspec_wstat(n_on, n_off, alpha, mu), rtol=1e-9, atol=1e-9)
    mu_bkg = stats.get_wstat_mu_bkg(n_on, n_off, alpha, mu)
    assert np.all(mu_bkg >= 0)  # the fitted background is never negative
    gstats = require_gammapy("gammapy.stats")
    np.testing.assert_allclose(got, gstats.wstat(n_on, n_off, alpha, mu), rtol=1e-12, atol=1e-10)


@settings(max_examples=100, deadline=None)
@given(counts, counts, st.floats(0.01, 5.0), st.floats(1e-3, 80.0))
def test_profiled_background_minimises_wstat(n_on, n_off, alpha, mu_sig):
    b = float(stats.get_wstat_mu_bkg(n_on, n_off, alpha, mu_sig))
    w0 = float(stats.wstat(n_on, n_off, alpha, mu_sig, mu_bkg=b))
    for trial in (b * 1.01 + 1e-6, b * 0.99, b + 0.1, max(b - 0.1, 0.0)):
        assert float(stats.wstat(n_on, n_off, alpha, mu_sig, mu_bkg=trial)) >= w0 - 1e-9


@settings(max_examples=100, deadline=None)
@given(counts, counts, st.floats(0.01, 5.0), st.floats(1e-2, 80.0))
def test_gradient_weight_is_derivative_of_profiled_wstat(n_on, n_off, alpha, mu):
    h = 1e-6 * max(mu, 1.0)
    fd = (stats.wstat(n_on, n_off, alpha, mu + h) - stats.wstat(n_on, n_off, alpha, mu - h)) / (2 * h)
    w = wstat_gradient_weights(np.array([n_on]), np.array([n_off]), np.array([alpha]), np.array([mu]))
    np.testing.assert_allclose(w[0], fd, rtol=1e-4, atol=1e-5)


def make_dataset(seed=0, nbin=20) -> xs.SpectrumDatasetOnOff:
    e_reco = MapAxis.from_energy_bounds("0.1 TeV", "30 TeV", nbin)
    e_true = MapAxis.from_energy_bounds("0.05 TeV", "60 TeV", nbin + 6, name="energy_true")
    ds = xs.SpectrumDatasetOnOff.create(e_reco, e_true, name=f"sim{seed}")
    ds.exposure = np.full(e_true.nbin, 3e9) * u.Unit("cm2 s")
    ds.acceptance = np.ones(nbin)
    ds.acceptance_off = np.full(nbin, 5.0)
    ds.mask_safe = np.ones(nbin, bool)
    ds.models = xs.SkyModel(
        spectral_model=xs.LogParabolaSpectralModel.from_log10(
            amplitude="4e-11 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.5, beta=0.24
        ),
        name="src",
    )
    ds.fake(random_state=seed, npred_background=np.full(nbin, 4.0))
    ds.counts.values[3] = 0.0  # exercise the n_on = 0 branch
    ds.counts_off.values[5] = 0.0  # and n_off = 0
    ds.reset_data_cache()
    return ds


def test_basic_properties():
    ds = make_dataset()
    assert ds.stat_type == "wstat" and ds.tag == "SpectrumDatasetOnOff"
    np.testing.assert_allclose(ds.alpha.values, 0.2)
    np.testing.assert_allclose(ds.background.values, 0.2 * ds.counts_off.values)
    assert "background" not in ds.data.variables
    with pytest.raises(AttributeError, match="alpha \\* counts_off"):
        ds.background = np.zeros(20)
    assert isinstance(ds.data.spectrum, xs.SpectrumDatasetOnOff)
    np.testing.assert_allclose(
        ds.stat_sum(),
        np.sum(xspec_wstat(ds.counts.values, ds.counts_off.values, ds.alpha.values, ds.npred_signal().values)),
        rtol=1e-12,
    )
    npred_bkg = ds.npred_background().values
    assert np.all(npred_bkg >= 0)
    np.testing.assert_allclose(ds.npred().values, ds.npred_signal().values + npred_bkg)


def test_stat_gradient_matches_finite_differences():
    ds = make_dataset(seed=3)
    params = [p for p in ds.models.parameters if not p.frozen]
    stat, grad = ds._stat_gradient(params)
    assert stat == pytest.approx(ds.stat_sum(), rel=1e-12, abs=0)
    for k, p in enumerate(params):
        v0 = p.value
        h = 1e-6 * abs(v0)
        p.value = v0 + h
        sp = ds.stat_sum()
        p.value = v0 - h
        sm = ds.stat_sum()
        p.value = v0
        np.testing.assert_allclose(grad[k], (sp - sm) / (2 * h), rtol=1e-4, atol=1e-6 / abs(v0))


def test_fake_draws_on_and_off_like_gammapy():
    ds = make_dataset()
    bkg = np.linspace(1, 5, 20)
    ds.fake(random_state=42, npred_background=bkg)
    rng = np.random.RandomState(42)  # Gammapy's order: signal, background, off
    sig = ds.npred_signal().values
    expected_on = rng.poisson(sig) + rng.poisson(bkg)
    expected_off = rng.poisson(bkg / ds.alpha.values)
    np.testing.assert_array_equal(ds.counts.values, expected_on)
    np.testing.assert_array_equal(ds.counts_off.values, expected_off)
    other = make_dataset()
    other.fake(bkg, random_state=42)  # Gammapy's argument order
    np.testing.assert_array_equal(other.counts.values, expected_on)


def test_to_spectrum_dataset_and_info_dict():
    ds = make_dataset()
    sd = ds.to_spectrum_dataset(name="cash")
    assert type(sd) is xs.SpectrumDataset and sd.name == "cash"
    np.testing.assert_allclose(sd.background.values, ds.background.values)
    np.testing.assert_array_equal(sd.counts.values, ds.counts.values)
    info = ds.info_dict()
    n_on, n_off = ds.counts.values.sum(), ds.counts_off.values.sum()
    assert info["counts_off"] == n_off
    assert info["alpha"] == pytest.approx(0.2, rel=1e-12, abs=0)
    assert info["excess"] == pytest.approx(n_on - 0.2 * n_off, rel=1e-12, abs=0)
    # Li & Ma (1983) eq. 17, written out here
    a = 0.2
    ts = 2 * (n_on * np.log((1 + a) / a * n_on / (n_on + n_off)) + n_off * np.log((1 + a) * n_off / (n_on + n_off)))
    assert info["sqrt_ts"] == pytest.approx(np.sign(n_on - a * n_off) * np.sqrt(ts), rel=1e-12, abs=0)
    gstats = require_gammapy("gammapy.stats")
    assert info["sqrt_ts"] == pytest.approx(float(gstats.WStatCountsStatistic(n_on, n_off, a).sqrt_ts), rel=1e-9, abs=0)


def test_stat_sum_matches_gammapy_on_real_data():
    HESS = shared_data(*HESS_PARTS)
    gd = require_gammapy("gammapy.datasets")
    gm = require_gammapy("gammapy.modeling.models")
    ds = xs.SpectrumDatasetOnOff.read(HESS)
    g = gd.SpectrumDatasetOnOff.read(HESS)
    ds.models = xs.SkyModel(
        spectral_model=xs.PowerLawSpectralModel(index=2.6, amplitude="3e-11 cm-2 s-1 TeV-1", reference="1 TeV"),
        name="pl",
    )
    g.models = gm.SkyModel(
        spectral_model=gm.PowerLawSpectralModel(index=2.6, amplitude="3e-11 cm-2 s-1 TeV-1", reference="1 TeV"),
        name="pl",
    )
    # power laws integrate analytically in both: agreement to float precision
    assert ds.stat_sum() == pytest.approx(g.stat_sum(), rel=1e-10, abs=0)
    np.testing.assert_allclose(ds.npred_background().values, g.npred_background().data.ravel(), rtol=1e-9, atol=1e-12)


def test_read_write_via_class(tmp_path):
    ds = make_dataset()
    ds.write(tmp_path / "pha_sim0.fits")
    back = xs.SpectrumDatasetOnOff.read(tmp_path / "pha_sim0.fits")
    np.testing.assert_array_equal(back.counts_off.values, ds.counts_off.values)
    np.testing.assert_allclose(back.alpha.values, ds.alpha.values)
    with pytest.raises(TypeError, match="no background argument"):
        xs.SpectrumDatasetOnOff(background=np.ones(3))


def test_stack_matches_gammapy():
    HESS = shared_data(*HESS_PARTS)
    gd = require_gammapy("gammapy.datasets")
    files = sorted(HESS.parent.glob("pha_*.fits"))
    ours = xs.Datasets([xs.SpectrumDatasetOnOff.read(f) for f in files]).stack_reduce(name="stacked")
    theirs = gd.Datasets([gd.SpectrumDatasetOnOff.read(f) for f in files]).stack_reduce(name="stacked")
    assert isinstance(ours, xs.SpectrumDatasetOnOff)
    np.testing.assert_array_equal(ours.counts.values, theirs.counts.data.ravel())
    np.testing.assert_array_equal(ours.counts_off.values, theirs.counts_off.data.ravel())
    # Gammapy keeps the stacked acceptance_off in float32: agreement to its precision
    np.testing.assert_allclose(ours.alpha.values, theirs.alpha.data.ravel(), rtol=3e-7)
    np.testing.assert_allclose(ours.background.values, theirs.background.data.ravel(), rtol=3e-7, atol=1e-12)
    # background alpha * n_off is conserved over the safe bins
    singles = [xs.SpectrumDatasetOnOff.read(f) for f in files]
    total = sum(np.where(d.mask_safe.values, d.background.values, 0.0) for d in singles)
    np.testing.assert_allclose(ours.background.values, total, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("factor", [2, 4, 5])
def test_resample_conserves_safe_on_off_counts_and_background(factor):
    """Merging reco bins sums safe on and off counts and keeps the background alpha*n_off
    of the safe bins; npred_signal of merged bins is the sum over their safe bins."""
    ds = make_dataset(seed=3, nbin=20)
    ds.acceptance_off = np.linspace(2.0, 8.0, 20)  # alpha varies from bin to bin
    safe = np.asarray(ds.mask_safe.values, bool).copy()
    safe[:3] = False
    ds.mask_safe = safe
    ds.models = xs.PowerLawSpectralModel(index=2.3, amplitude="2e-11 cm-2 s-1 TeV-1")
    edges = ds._energy_axis.edges
    new_axis = MapAxis.from_energy_edges(edges[::factor], name="energy")
    res = ds.resample_energy_axis(new_axis)
    assert isinstance(res, xs.SpectrumDatasetOnOff)
    np.testing.assert_array_equal(res._energy_axis.edges.value, edges[::factor].value)
    group = np.arange(20) // factor
    for name in ("counts", "counts_off"):
        expected = np.bincount(group, weights=np.where(safe, ds.data[name].values, 0.0))
        np.testing.assert_allclose(res.data[name].values, expected, rtol=1e-12)
    bkg = np.bincount(group, weights=np.where(safe, ds.background.values, 0.0))
    np.testing.assert_allclose(res.background.values, bkg, rtol=1e-12, atol=1e-12)
    npred = np.bincount(group, weights=np.where(safe, ds.npred_signal().values, 0.0))
    np.testing.assert_allclose(res.npred_signal().values, npred, rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# fits restricted to the masked bins (`_FitRestriction`): same statistic and gradient
# ---------------------------------------------------------------------------------------------
def make_sparse_dataset(nbin=200) -> xs.SpectrumDatasetOnOff:
    """On-off dataset with a large, mostly-zero dispersion matrix (stored as a sparse kernel)."""
    from scipy.special import ndtr

    e_reco = MapAxis.from_energy_bounds("0.1 TeV", "30 TeV", nbin)
    e_true = MapAxis.from_energy_bounds("0.05 TeV", "60 TeV", nbin + 40, name="energy_true")
    ds = xs.SpectrumDatasetOnOff.create(e_reco, e_true, name="sparse")
    ds.exposure = np.linspace(1e9, 4e9, e_true.nbin) * u.Unit("cm2 s")
    ln_true = np.log(e_true.center.to_value("TeV"))
    cdf = ndtr((np.log(e_reco.edges.to_value("TeV"))[None, :] - ln_true[:, None]) / 0.05)
    matrix = np.diff(cdf, axis=1)
    matrix[matrix < 1e-6] = 0.0
    ds.edisp = matrix
    ds.acceptance = np.ones(nbin)
    ds.acceptance_off = np.linspace(3.0, 8.0, nbin)
    ds.mask_safe = np.ones(nbin, bool)
    ds.models = [
        xs.SkyModel(
            spectral_model=xs.LogParabolaSpectralModel.from_log10(
                amplitude="4e-11 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.5, beta=0.24
            ),
            name="src",
        ),
        xs.SkyModel(spectral_model=xs.PowerLawSpectralModel(index=2.2, amplitude="1e-12 cm-2 s-1 TeV-1"), name="pl"),
    ]
    ds.fake(random_state=5, npred_background=np.full(nbin, 2.0))
    ds.counts.values[[10, 40, 41]] = 0.0  # n_on = 0 bins
    ds.counts_off.values[[12, 60]] = 0.0  # n_off = 0 bins
    ds.reset_data_cache()
    return ds


@pytest.fixture(scope="module")
def sparse_ds():
    ds = make_sparse_dataset()
    assert isinstance(ds._hot().edisp, forward.SparseKernel)
    return ds


def _full_stat_gradient(ds, params):
    """The unrestricted computation (every reco and true bin, masked sum)."""
    saved = onoff.RESTRICT_TO_MASK
    onoff.RESTRICT_TO_MASK = False
    try:
        return ds._stat_gradient(params)
    finally:
        onoff.RESTRICT_TO_MASK = saved


def _assert_restricted_equals_full(ds):
    params = [p for p in ds.models.parameters if not p.frozen]
    stat, grad = ds._stat_gradient(params)
    stat_full, grad_full = _full_stat_gradient(ds, params)
    assert stat == pytest.approx(stat_full, rel=1e-12, abs=1e-300)
    if ds.mask.values.any():
        assert stat == pytest.approx(ds.stat_sum(), rel=1e-12, abs=1e-300)
    else:  # no fit bin: stat_sum refuses to return a number (xspec_ds.validation)
        with pytest.raises(ValueError, match="no fit bins"):
            ds.stat_sum()
    scale = np.abs(grad_full) + 1e-300
    np.testing.assert_array_less(np.abs(grad - grad_full), 1e-12 * scale + 1e-12 * np.max(scale))
    return stat


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), density=st.floats(0.0, 1.0), contiguous=st.booleans())
def test_restricted_fit_statistic_equals_full(sparse_ds, seed, density, contiguous):
    ds = sparse_ds
    rng = np.random.default_rng(seed)
    n = ds.data.sizes["energy"]
    if contiguous:  # an energy range, as a fit range usually is
        lo, hi = np.sort(rng.integers(0, n + 1, 2))
        mask = np.zeros(n, bool)
        mask[lo:hi] = True
    else:
        mask = rng.random(n) < density
    ds.mask_fit = mask
    ds.mask_safe = rng.random(n) < 0.9
    ds.models.parameters["index"].value = rng.uniform(1.5, 3.0)
    _assert_restricted_equals_full(ds)
    if (ds.mask.values).any():
        r = ds._restriction
        assert r is not None and np.array_equal(r.cols, np.flatnonzero(ds.mask.values))
        assert r.useful == (r.edisp.transposed.nnz <= onoff.RESTRICT_MAX_FRACTION * ds._hot().edisp.transposed.nnz)
        # only true bins with a non-zero response in a masked reco bin are kept
        keep = np.any(ds.edisp.values[:, ds.mask.values] != 0, axis=1)
        np.testing.assert_array_equal(r.rows, np.flatnonzero(keep))


def test_restricted_fit_sees_in_place_mask_edits():
    ds = make_sparse_dataset()
    n = ds.data.sizes["energy"]
    ds.mask_fit = np.ones(n, bool)
    full_range = _assert_restricted_equals_full(ds)
    ds.mask_fit.values[:120] = False  # in place: same variable, same buffer
    narrow = _assert_restricted_equals_full(ds)
    assert narrow < full_range
    assert ds._restriction.rows.size < ds.data.sizes["energy_true"]
    ds.mask_safe.values[150:] = False
    _assert_restricted_equals_full(ds)
    np.testing.assert_array_equal(ds._restriction.cols, np.arange(120, 150))
    assert ds._restriction.useful  # a narrow range: the cut kernel is used
    ds.exposure.values *= 2.0  # in-place exposure edits stay visible too
    _assert_restricted_equals_full(ds)
    ds.mask_fit.values[:] = False  # empty mask: zero statistic and gradient
    params = [p for p in ds.models.parameters if not p.frozen]
    stat, grad = ds._stat_gradient(params)
    assert stat == 0.0 and not grad.any()


def test_restricted_fit_gives_same_best_fit():
    ds = make_sparse_dataset()
    n = ds.data.sizes["energy"]
    ds.mask_fit = np.arange(n) >= 60
    ds.models = xs.SkyModel(spectral_model=xs.PowerLawSpectralModel(index=2.0, amplitude="1e-11 cm-2 s-1 TeV-1"))
    pars = ds.models.parameters
    start = {p.name: p.value for p in pars}
    results = {}
    for flag in (True, False):
        onoff.RESTRICT_TO_MASK = flag
        try:
            for p in pars:
                p.value = start[p.name]
            res = xs.Fit().run(ds)
        finally:
            onoff.RESTRICT_TO_MASK = True
        assert res.success
        results[flag] = (res.total_stat, pars["index"].value, pars["amplitude"].value, pars["index"].error)
    np.testing.assert_allclose(results[True], results[False], rtol=1e-9)
