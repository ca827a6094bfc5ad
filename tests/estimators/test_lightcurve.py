"""LightCurveEstimator: parity with Gammapy 2.1 on simulated datasets with GTIs; obs axis; lazy input."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import xarray as xr
from astropy.time import Time
from numpy.testing import assert_allclose

import xspec_ds as xs

from .._requirements import require_gammapy
from ..conftest import build_arrays, gammapy_copy

REF_TIME = "2020-01-01T00:00:00"
AMPS = [3e-12, 1.5e-12, 4e-12, 0.2e-12]


def lc_datasets(with_gti=True, n=20):
    out = []
    for k, amp in enumerate(AMPS):
        arrays, er, et = build_arrays(n=n, exposure_scale_m2s=2e9, background_level=1.0, edisp="smeared")
        truth = xs.PowerLawSpectralModel(index=2.5, amplitude=f"{amp} cm-2 s-1 TeV-1")
        d = xs.SpectrumDataset(models=xs.SkyModel(truth, name="src"), name=f"run{k}", **arrays)
        d.fake(random_state=100 + k)
        if with_gti:
            d.gti = xs.GTI.create([k * 3600.0] * u.s, [k * 3600.0 + 1800.0] * u.s, reference_time=REF_TIME)
        out.append(d)
    ref = xs.SkyModel(xs.PowerLawSpectralModel(index=2.5, amplitude="2e-12 cm-2 s-1 TeV-1"), name="src")
    for d in out:
        d.models = [ref]
    return out, er, et


SEL = ["errn-errp", "ul"]
EDGES = [0.3, 3.0, 30.0] * u.TeV


@pytest.mark.gammapy
def test_lightcurve_parity_with_gammapy():
    require_gammapy()
    from gammapy.data import GTI as GGTI
    from gammapy.datasets import Datasets
    from gammapy.estimators import LightCurveEstimator
    from gammapy.modeling.models import PowerLawSpectralModel, SkyModel

    ds, er, et = lc_datasets()
    lc = xs.LightCurveEstimator(energy_edges=EDGES, source="src", selection_optional=SEL).run(ds)
    gds = []
    for k, d in enumerate(ds):
        g = gammapy_copy(d, er, et).copy(name=d.name)
        g.gti = GGTI.create([k * 3600.0] * u.s, [k * 3600.0 + 1800.0] * u.s, reference_time=Time(REF_TIME, scale="tt"))
        gds.append(g)
    gds = Datasets(gds)
    gds.models = SkyModel(PowerLawSpectralModel(index=2.5, amplitude="2e-12 cm-2 s-1 TeV-1"), name="src")
    glc = LightCurveEstimator(energy_edges=EDGES, source="src", selection_optional=SEL).run(gds)
    g = glc.to_table(format="lightcurve", sed_type="flux")
    ours = lc.to_table(format="lightcurve", sed_type="flux")
    assert_allclose(ours["time_min"], g["time_min"], rtol=0, atol=1e-9)
    assert_allclose(ours["time_max"], g["time_max"], rtol=0, atol=1e-9)
    gl = glc.to_table(format="lightcurve", sed_type="likelihood")
    norm_err = lc.data["norm_err"].values
    assert np.all(np.abs(lc.data["norm"].values - np.asarray(gl["norm"])) < 0.02 * norm_err)
    bright = np.asarray(g["ts"]) > 4
    for name in ("flux", "flux_err", "flux_errn", "flux_errp", "flux_ul"):
        sel = bright if name == "flux" else np.ones(bright.shape, bool)
        assert_allclose(
            ours[name].quantity.to_value("cm-2 s-1")[sel], g[name].quantity.to_value("cm-2 s-1")[sel], rtol=0.01, atol=0
        )
    assert_allclose(ours["ts"], g["ts"], rtol=0, atol=0.05)


def test_one_point_per_observation_equals_flux_points_per_dataset():
    ds, _, _ = lc_datasets()
    lc = xs.LightCurveEstimator(energy_edges=EDGES, source="src", selection_optional=SEL).run(ds)
    assert lc.data["norm"].dims == ("time", "energy") and lc.data.sizes["time"] == len(ds)
    for k, d in enumerate(ds):
        fp = xs.FluxPointsEstimator(energy_edges=EDGES, source="src", selection_optional=SEL).run(d)
        for name in ("norm", "norm_err", "norm_errn", "norm_errp", "norm_ul", "ts"):
            assert_allclose(lc.data[name].values[k], fp.data[name].values, rtol=1e-9, atol=0)
    t0 = Time(REF_TIME, scale="tt").mjd
    assert_allclose(lc.data["time_min"].values, t0 + np.arange(4) * 3600 / 86400, rtol=0, atol=1e-9)


def test_time_intervals_group_observations():
    ds, _, _ = lc_datasets()
    t0 = Time(REF_TIME, scale="tt")
    intervals = [(t0, t0 + 2 * u.h), (t0 + 2 * u.h, t0 + 4 * u.h), (t0 + 10 * u.h, t0 + 11 * u.h)]
    lc = xs.LightCurveEstimator(energy_edges=EDGES, source="src", time_intervals=intervals).run(ds)
    assert lc.data.sizes["time"] == 2  # the empty third interval is skipped, as Gammapy
    joint = xs.FluxPointsEstimator(energy_edges=EDGES, source="src").run(ds[2:])
    assert_allclose(lc.data["norm"].values[1], joint.data["norm"].values, rtol=1e-9, atol=0)
    assert_allclose(lc.data["counts"].values[1][:, :2], 0.0, rtol=0, atol=0)


def test_observations_without_times_get_an_obs_axis():
    ds, _, _ = lc_datasets(with_gti=False)
    lc = xs.LightCurveEstimator(energy_edges=EDGES, source="src", selection_optional=["ul"]).run(ds)
    assert lc.data["norm"].dims == ("obs", "energy")
    assert lc.data["obs"].values.tolist() == [d.name for d in ds]
    t = lc.to_table(format="lightcurve", sed_type="flux")
    assert t["obs"].tolist() == [d.name for d in ds]
    assert t["flux"].shape == (4, 2) and t["flux"].unit == u.Unit("cm-2 s-1")
    with pytest.raises(ValueError, match="carry no times"):
        t0 = Time(REF_TIME)
        xs.LightCurveEstimator(energy_edges=EDGES, source="src", time_intervals=[(t0, t0 + 1 * u.h)]).run(ds)


def test_obs_dimensioned_lazy_dataset_equals_list(tmp_path):
    ds, _, _ = lc_datasets()
    paths = []
    for d in ds:
        p = tmp_path / f"{d.name}.nc"
        d.write(p)
        paths.append(p)
    obs = xs.open_mfdataset(paths)
    sky = ds[0].models["src"]
    est = xs.LightCurveEstimator(energy_edges=EDGES, source="src", selection_optional=SEL)
    lazy = est.run(obs, models=[sky])
    direct = est.run(ds)
    for name in ("norm", "norm_err", "norm_errn", "norm_errp", "norm_ul", "ts"):
        assert_allclose(lazy.data[name].values, direct.data[name].values, rtol=1e-9, atol=0)
    assert_allclose(lazy.data["time_min"].values, direct.data["time_min"].values, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="models="):
        est.run(obs)


def test_lightcurve_round_trip_and_plot(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds, _, _ = lc_datasets()
    lc = xs.LightCurveEstimator(energy_edges=EDGES, source="src", selection_optional=SEL).run(ds)
    lc.write(tmp_path / "lc.nc")
    xr.testing.assert_identical(xs.FluxPoints.read(tmp_path / "lc.nc").data, lc.data)
    _, ax = plt.subplots()
    lc.plot(ax=ax, sed_type="flux")
    assert ax.get_xlabel() == "Time [MJD]"
    assert len(ax.get_legend_handles_labels()[1]) == 2  # one series per energy bin
    plt.close("all")


def test_stacked_fold_equals_per_dataset_fold_wstat():
    """The one-einsum fold of datasets sharing models (WSTAT, real H.E.S.S. runs) equals the
    per-dataset fold through the dataset API (one SkyModel object per dataset forces that path)."""
    from .test_flux_points import HESS, LP, hess_datasets

    if not HESS.exists():
        pytest.skip("shared data absent")
    shared = hess_datasets()
    sky = xs.SkyModel(xs.LogParabolaSpectralModel(**LP), name="crab")
    for d in shared:
        d.models = [sky]
    separate = hess_datasets()
    spec = xs.LogParabolaSpectralModel(**LP)
    for d in separate:
        d.models = [xs.SkyModel(spec, name="crab")]  # one SkyModel object per dataset
    est = xs.LightCurveEstimator(energy_edges=[0.7, 3, 30] * u.TeV, source="crab", selection_optional=SEL)
    a, b = est.run(shared), est.run(separate)
    assert a.data["norm"].dims == ("obs", "energy")
    for name in ("norm", "norm_err", "norm_errn", "norm_errp", "norm_ul", "ts", "stat", "npred"):
        assert_allclose(a.data[name].values, b.data[name].values, rtol=1e-9, atol=0)
