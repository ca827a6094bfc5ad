"""Plots of `xspec_ds.plotting`, rendered with Agg: artists, data, scales, labels, PNG files.

The expected numbers come from the dataset's own arrays (counts, background, npred, ...) and from
formulas written here (Poisson errors, power-law error propagation), never from earlier plots.
"""

from __future__ import annotations

import types

import matplotlib

matplotlib.use("Agg")

import astropy.units as u  # noqa: E402
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402
from matplotlib.patches import Polygon, Rectangle  # noqa: E402

import xspec_ds as xs  # noqa: E402
from xspec_ds import plotting  # noqa: E402
from xspec_ds.axes import display_unit  # noqa: E402

TEV_TO_ERG = 1.602176634  # 1 TeV = 1.602176634 erg (exact, SI definition of the eV)
METHODS = ["diff", "diff/model", "diff/sqrt(model)"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def fitted(make_dataset):
    """12 bins, smeared edisp, masked bins at both ends and one inside (mask_fit), fitted power law."""
    ds = make_dataset(n=12, exposure_scale_m2s=3e9, background_level=4.0, edisp="smeared")
    ds.fake(random_state=7)
    safe = np.ones(12, bool)
    safe[[0, 1, 11]] = False
    ds.mask_safe = safe
    fit = np.ones(12, bool)
    fit[6] = False
    ds.mask_fit = fit
    result = xs.Fit().run(ds)
    assert result.success
    return ds


def _mask(ds):
    return np.asarray(ds.mask_safe.values, bool) & np.asarray(ds.mask_fit.values, bool)


def _save(fig, tmp_path, name):
    path = tmp_path / name
    fig.savefig(path, dpi=60)
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    # not a blank canvas
    assert np.ptp(image[..., :3]) > 0.5
    return path


def _step_values(line):
    """(edges, values) of a histogram line drawn by plotting._step."""
    x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    return x, y[:-1]


def _lines_by_label(ax):
    return {ln.get_label(): ln for ln in ax.get_lines()}


def _mask_spans(ax):
    return [p for p in ax.patches if isinstance(p, (Rectangle, Polygon)) and "Masked bins" in p.get_label()]


def _n_runs(flags):
    runs, prev = 0, False
    for f in flags:
        if f and not prev:
            runs += 1
        prev = f
    return runs


def _errorbar_y(container):
    """(x, y) of the markers and the (low, high) ends of the vertical error bars."""
    data_line, _, barcols = container.lines
    x, y = np.asarray(data_line.get_xdata()), np.asarray(data_line.get_ydata())
    ybars = barcols[-1].get_segments()
    low = np.array([s[0][1] for s in ybars])
    high = np.array([s[1][1] for s in ybars])
    return x, y, low, high


# plot_counts ------------------------------------------------------------------------------------
def test_plot_counts_lines_scales_labels(fitted, tmp_path):
    ax = fitted.plot_counts()
    lines = _lines_by_label(ax)
    assert {"Counts", "Background"} <= set(lines)
    edges, counts = _step_values(lines["Counts"])
    lo = fitted.data["energy_min"].values
    hi = fitted.data["energy_max"].values
    np.testing.assert_array_equal(edges, np.append(lo, hi[-1]))
    np.testing.assert_array_equal(counts, fitted.counts.values)
    np.testing.assert_allclose(_step_values(lines["Background"])[1], fitted.background.values, rtol=0)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == f"Energy [{u.TeV.to_string('latex_inline')}]"
    assert ax.get_ylabel().startswith("Counts")
    # one grey band per run of bins outside mask_safe AND mask_fit: [0,1], [6], [11]
    assert len(_mask_spans(ax)) == _n_runs(~_mask(fitted)) == 3
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend.count("Masked bins") == 1
    _save(ax.figure, tmp_path, "counts.png")


def test_plot_counts_kwargs_pass_through(fitted):
    ax = fitted.plot_counts(kwargs_counts={"color": "red"}, kwargs_background={"ls": ":"}, lw=3)
    lines = _lines_by_label(ax)
    assert matplotlib.colors.same_color(lines["Counts"].get_color(), "red")
    assert lines["Background"].get_linestyle() == ":"
    assert lines["Counts"].get_linewidth() == lines["Background"].get_linewidth() == 3


def test_no_mask_no_bands(make_dataset):
    ds = make_dataset(n=6)
    ds.fake(1)
    ax = ds.plot_counts()
    assert _mask_spans(ax) == []


# plot_excess ------------------------------------------------------------------------------------
def test_plot_excess_poisson_errors_and_npred_signal(fitted, tmp_path):
    fig, ax = plt.subplots()
    out = fitted.plot_excess(ax=ax)
    assert out is ax
    containers = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(containers) == 2  # bins in the mask, and hollow markers for the masked ones
    main = next(c for c in containers if c.get_label() == "Excess counts")
    masked = next(c for c in containers if c is not main)
    mask = _mask(fitted)
    counts = fitted.counts.values
    excess = counts - fitted.background.values
    x, y, low, high = _errorbar_y(main)
    np.testing.assert_allclose(y, excess[mask], rtol=0, atol=1e-12)
    np.testing.assert_allclose(high - y, np.sqrt(counts[mask]), rtol=1e-12)
    np.testing.assert_allclose(y - low, np.sqrt(counts[mask]), rtol=1e-12)
    lo, hi = fitted.data["energy_min"].values, fitted.data["energy_max"].values
    np.testing.assert_allclose(x, np.sqrt(lo * hi)[mask], rtol=1e-12)
    assert masked.lines[0].get_markerfacecolor() == "none"
    assert len(masked.lines[0].get_xdata()) == (~mask).sum()
    line = _lines_by_label(ax)["Predicted signal counts"]
    np.testing.assert_allclose(_step_values(line)[1], fitted.npred_signal().values, rtol=1e-12)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "TeV" in ax.get_xlabel() and "Excess" in ax.get_ylabel()
    _save(fig, tmp_path, "excess.png")


def test_excess_sigma_onoff_li_ma_eq5():
    """sigma^2(n_on - alpha n_off) = n_on + alpha^2 n_off (Li & Ma 1983 eq. 5)."""
    n_on = np.array([10.0, 0.0, 3.0])
    n_off = np.array([20.0, 5.0, 0.0])
    alpha = np.array([0.2, 0.5, 0.1])
    fake = types.SimpleNamespace(counts_off=xr.DataArray(n_off), alpha=xr.DataArray(alpha))
    sigma = plotting._poisson_sigma_excess(fake, n_on)
    np.testing.assert_allclose(sigma, np.sqrt(n_on + alpha**2 * n_off), rtol=1e-14)
    no_off = types.SimpleNamespace()
    np.testing.assert_allclose(plotting._poisson_sigma_excess(no_off, n_on), np.sqrt(n_on))


# residuals --------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_plot_residuals_values_errors_labels(fitted, method, tmp_path):
    ax = fitted.plot_residuals(method=method)
    mask = _mask(fitted)
    counts = fitted.counts.values
    npred = fitted.npred().values
    expected = {
        "diff": counts - npred,
        "diff/model": (counts - npred) / npred,
        "diff/sqrt(model)": (counts - npred) / np.sqrt(npred),
    }[method]
    norm = {"diff": 1.0, "diff/model": npred, "diff/sqrt(model)": np.sqrt(npred)}[method]
    containers = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(containers) == 2
    _, y, low, high = _errorbar_y(containers[0])
    np.testing.assert_allclose(y, expected[mask], rtol=1e-10)
    np.testing.assert_allclose(high - y, (np.sqrt(counts) / norm)[mask], rtol=1e-10)
    assert ax.get_xscale() == "log"
    assert ax.get_ylabel() == plotting.RESIDUAL_LABELS[method]
    # the zero line
    assert any(np.all(np.asarray(ln.get_ydata()) == 0) for ln in ax.get_lines())
    ylo, yhi = ax.get_ylim()
    assert ylo == pytest.approx(-yhi, rel=1e-12, abs=0)
    _save(ax.figure, tmp_path, f"residuals_{method.replace('/', '_')}.png")


def test_plot_residuals_spectral_equals_plot_residuals(fitted):
    ax = fitted.plot_residuals_spectral(method="diff/sqrt(model)")
    _, y, _, _ = _errorbar_y(ax.containers[0])
    r = fitted.residuals("diff/sqrt(model)").values[_mask(fitted)]
    np.testing.assert_allclose(y, r, rtol=1e-12)
    with pytest.raises(ValueError, match="region"):
        fitted.plot_residuals_spectral(region="icrs;circle(0,0,0.1)")


def test_bad_residual_method(fitted):
    with pytest.raises(ValueError, match="diff/model"):
        fitted.plot_residuals(method="ratio")


def test_plot_residuals_spatial_raises(fitted):
    with pytest.raises(ValueError, match="no spatial axes"):
        fitted.plot_residuals_spatial()


# plot_fit ---------------------------------------------------------------------------------------
def test_plot_fit_structure(fitted, tmp_path):
    ax_spec, ax_res = fitted.plot_fit()
    fig = ax_spec.figure
    assert ax_res.figure is fig and len(fig.axes) == 2
    assert ax_spec.get_shared_x_axes().joined(ax_spec, ax_res)
    # spectrum panel above the residuals panel, touching (shared energy axis)
    bs, br = ax_spec.get_position(), ax_res.get_position()
    assert bs.y0 == pytest.approx(br.y1, rel=1e-12, abs=0) and bs.height > br.height
    assert not any(t.get_visible() and t.get_text() for t in ax_spec.get_xticklabels())
    assert ax_spec.get_xlabel() == "" and "TeV" in ax_res.get_xlabel()
    assert ax_spec.get_xscale() == ax_res.get_xscale() == "log"
    npred_line = _lines_by_label(ax_spec)["Predicted signal counts"]
    np.testing.assert_allclose(_step_values(npred_line)[1], fitted.npred_signal().values, rtol=1e-12)
    # the residual markers: counts - npred in the mask
    mask = _mask(fitted)
    _, y, _, _ = _errorbar_y(ax_res.containers[0])
    np.testing.assert_allclose(y, (fitted.counts.values - fitted.npred().values)[mask], rtol=1e-10)
    _save(fig, tmp_path, "plot_fit.png")


def test_plot_fit_given_axes_and_kwargs(fitted):
    fig, (a1, a2) = plt.subplots(2, 1, sharex=True)
    out = fitted.plot_fit(
        a1, a2, kwargs_spectrum={"kwargs_excess": {"color": "blue"}}, kwargs_residuals={"method": "diff/model"}
    )
    assert out == (a1, a2)
    assert matplotlib.colors.same_color(a1.containers[0].lines[0].get_color(), "blue")
    assert a2.get_ylabel() == plotting.RESIDUAL_LABELS["diff/model"]
    with pytest.raises(ValueError, match="both"):
        fitted.plot_fit(ax_spectrum=a1)


# peek ---------------------------------------------------------------------------------------------
def test_peek_structure(fitted, tmp_path):
    fig = plt.figure(figsize=(12, 4))
    ax1, ax2, ax3 = fitted.peek(fig=fig)
    assert len(fig.axes) == 4  # three panels and the edisp colour bar
    assert [a.get_title() for a in (ax1, ax2, ax3)] == ["Counts", "Exposure", "Energy dispersion"]
    # counts panel: counts, background, excess
    lines = _lines_by_label(ax1)
    np.testing.assert_array_equal(_step_values(lines["Counts"])[1], fitted.counts.values)
    assert any(c.get_label() == "Excess" for c in ax1.containers)
    # exposure against true energy, log-log, unit in the label
    (exp_line,) = ax2.get_lines()
    edges, values = _step_values(exp_line)
    np.testing.assert_array_equal(values, fitted.exposure.values)
    np.testing.assert_array_equal(edges[:-1], fitted.data["energy_true_min"].values)
    assert ax2.get_xscale() == ax2.get_yscale() == "log"
    assert ax2.get_xlabel().startswith("True energy") and u.Unit("m2 s").to_string("latex_inline") in ax2.get_ylabel()
    # edisp as an image on log axes: x true energy, y reco energy, C[j, i] = edisp[i, j]
    meshes = [c for c in ax3.collections if isinstance(c, QuadMesh)]
    assert len(meshes) == 1
    edisp = fitted.edisp.transpose("energy_true", "energy").values
    image = np.ma.filled(meshes[0].get_array(), 0.0).reshape(edisp.T.shape)
    np.testing.assert_allclose(image, edisp.T, rtol=0, atol=1e-6 * edisp.max())
    coords = meshes[0].get_coordinates()
    np.testing.assert_allclose(
        coords[0, :, 0], np.append(fitted.data["energy_true_min"].values, fitted.data["energy_true_max"].values[-1])
    )
    assert ax3.get_xscale() == ax3.get_yscale() == "log"
    assert "True energy" in ax3.get_xlabel() and "TeV" in ax3.get_ylabel()
    _save(fig, tmp_path, "peek.png")


def test_peek_new_figure_and_accessor(fitted):
    view = fitted.data.spectrum
    axes = view.peek()
    assert len(axes) == 3 and axes[0].figure.get_size_inches()[0] == 16


# model plot -----------------------------------------------------------------------------------
def _band(ax):
    (poly,) = [c for c in ax.collections if c.get_label() == "_error band"]
    verts = poly.get_paths()[0].vertices
    return verts


def _pl_sigma(energy, amp, index, ref, cov_aa, cov_ii, cov_ai):
    """Linear error propagation for A (E/E0)^-index, written out: df/dA = f/A, df/dindex = -f ln(E/E0)."""
    f = amp * (energy / ref) ** -index
    da = f / amp
    di = -f * np.log(energy / ref)
    return f, np.sqrt(da**2 * cov_aa + di**2 * cov_ii + 2 * da * di * cov_ai)


def test_fit_stores_model_covariance(fitted):
    model = fitted.models[0].spectral_model
    cov = np.asarray(model.covariance)  # a labelled DataArray (parameter, parameter_j)
    names = model.parameters.names
    assert cov.shape == (len(names), len(names))
    iref = names.index("reference")
    assert np.all(cov[iref] == 0) and np.all(cov[:, iref] == 0)  # frozen
    for k, p in enumerate(model.parameters):
        if not p.frozen:
            assert np.sqrt(cov[k, k]) == pytest.approx(p.error, rel=1e-12, abs=0)
    assert cov[0, 1] == cov[1, 0] and cov[0, 1] != 0  # index and amplitude correlate


@pytest.mark.parametrize("sed_type", ["dnde", "e2dnde"])
def test_plot_spectral_model_line_and_covariance_band(fitted, sed_type, tmp_path):
    model = fitted.models[0].spectral_model
    ax = model.plot([0.2, 50] * u.TeV, sed_type=sed_type, n_points=40, label="fit")
    (line,) = ax.get_lines()
    e = np.asarray(line.get_xdata())
    np.testing.assert_allclose(e, np.geomspace(0.2, 50, 40), rtol=1e-12)
    names = model.parameters.names
    ia, ii = names.index("amplitude"), names.index("index")
    cov = np.asarray(model.covariance)  # a labelled DataArray (parameter, parameter_j)
    amp, index = model.parameters["amplitude"].value, model.parameters["index"].value
    f, sigma = _pl_sigma(e, amp, index, 1.0, cov[ia, ia], cov[ii, ii], cov[ia, ii])
    factor = e**2 * TEV_TO_ERG if sed_type == "e2dnde" else 1.0
    np.testing.assert_allclose(line.get_ydata(), f * factor, rtol=1e-10)
    verts = _band(ax)
    assert verts[:, 1].max() == pytest.approx(((f + sigma) * factor).max(), rel=1e-5, abs=0)
    # every band vertex lies on f - sigma or f + sigma at its energy
    ve, vy = verts[:, 0], verts[:, 1]
    fv, sv = _pl_sigma(ve, amp, index, 1.0, cov[ia, ia], cov[ii, ii], cov[ia, ii])
    fac_v = ve**2 * TEV_TO_ERG if sed_type == "e2dnde" else 1.0
    on_edge = np.isclose(vy, (fv + sv) * fac_v, rtol=1e-5, atol=0) | np.isclose(
        vy, np.clip(fv - sv, 0, None) * fac_v, rtol=1e-5, atol=0
    )
    assert on_edge.all()
    unit = u.Unit("cm-2 s-1 TeV-1" if sed_type == "dnde" else "erg cm-2 s-1").to_string("latex_inline")
    assert unit in ax.get_ylabel()
    assert ax.get_xscale() == ax.get_yscale() == "log" and "TeV" in ax.get_xlabel()
    _save(ax.figure, tmp_path, f"model_{sed_type}.png")


def test_model_band_without_covariance_assumes_independence():
    model = xs.PowerLawSpectralModel(index=2.5, amplitude="1e-11 cm-2 s-1 TeV-1", reference="1 TeV")
    model.parameters["index"].error = 0.1
    model.parameters["amplitude"].error = 1e-12
    ax = plotting.plot_spectral_model(model, ("0.5 TeV", "20 TeV"), n_points=20)
    ve, vy = _band(ax)[:, 0], _band(ax)[:, 1]
    f, s = _pl_sigma(ve, 1e-11, 2.5, 1.0, 1e-24, 0.01, 0.0)
    assert (np.isclose(vy, f + s, rtol=1e-5, atol=0) | np.isclose(vy, f - s, rtol=1e-5, atol=0)).all()
    # no errors: no band
    ax2 = plotting.plot_spectral_model(xs.PowerLawSpectralModel(), ("0.5 TeV", "20 TeV"), ax=plt.figure().gca())
    assert not [c for c in ax2.collections if c.get_label() == "_error band"]


def test_model_plot_units_and_bad_input():
    model = xs.PowerLawSpectralModel(index=2.0, amplitude="1e-11 cm-2 s-1 TeV-1", reference="1 TeV")
    ax = plotting.plot_spectral_model(
        model, [100, 1000] * u.GeV, energy_unit="GeV", flux_unit="m-2 s-1 GeV-1", n_points=5
    )
    (line,) = ax.get_lines()
    e_gev = np.geomspace(100, 1000, 5)
    # 1e-11 cm-2 s-1 TeV-1 = 1e-11 * 1e4 m-2 s-1 * 1e-3 GeV-1
    np.testing.assert_allclose(line.get_ydata(), 1e-11 * 1e4 * 1e-3 * (e_gev / 1000.0) ** -2, rtol=1e-10)
    assert "GeV" in ax.get_xlabel()
    with pytest.raises(ValueError, match="sed_type"):
        model.plot([1, 10] * u.TeV, sed_type="flux_density")
    with pytest.raises(ValueError, match="energy_bounds"):
        model.plot([1, 10, 100] * u.TeV)
    with pytest.raises(ValueError, match="emin < emax"):
        model.plot([10, 1] * u.TeV)
    with pytest.raises(u.UnitsError):
        model.plot([1, 10] * u.m)


# summaries --------------------------------------------------------------------------------------
def test_str_and_html_show_info_above_xarray_repr(fitted):
    text = str(fitted)
    info = fitted.info_dict()
    assert text.index(f"name              : {info['name']}") < text.index("<xarray.Dataset>")
    assert f"{info['counts']:.4g}" in text and "n_fit_bins" in text
    html = fitted._repr_html_()
    assert html.index("stat_sum") < html.index("xr-wrap")
    assert "energy range" in html and "source" in html


def test_kev_files_of_gamma_ray_instruments_shown_in_tev(fitted):
    """OGIP files store keV; a 0.1-100 TeV spectrum is drawn in TeV with the same edges."""
    data = fitted.data.copy(deep=True)
    for dim in ("energy", "energy_true"):
        for name in (dim, f"{dim}_min", f"{dim}_max"):
            data = data.assign_coords({name: (dim, data[name].values * 1e9, {"units": "keV"})})
    view = data.spectrum
    ax = view.plot_counts()
    edges, _ = _step_values(_lines_by_label(ax)["Counts"])
    expected = np.append(fitted.data["energy_min"].values, fitted.data["energy_max"].values[-1])
    np.testing.assert_allclose(edges, expected, rtol=1e-12)
    assert ax.get_xlabel() == f"Energy [{u.TeV.to_string('latex_inline')}]"
    # an X-ray range stays in keV
    assert display_unit(np.array([0.3]), np.array([10.0]), u.keV) == u.keV
