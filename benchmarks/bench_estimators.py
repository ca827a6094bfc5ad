"""Estimators benchmark: flux points and light curves, xspec_ds vs Gammapy 2.1 (one run, one script).

1. Flux points on the four H.E.S.S. Crab runs of ``../shared/data/joint-crab`` (WSTAT), a
   log-parabola reference model, 8 log-spaced bins in 0.66-30 TeV, with errors, asymmetric
   errors, upper limits and likelihood scans (``selection_optional=["errn-errp", "ul", "scan"]``;
   Gammapy 2.1's ``"all"`` adds its sensitivity estimate, timed too). Reports the time ratio and
   the largest relative difference of dnde, dnde_err/errn/errp/ul and of ts.
2. A light curve of 1,000 simulated runs (Cash, 20 reco bins, one energy bin, GTIs), with errors
   and upper limits: xspec_ds on the list of datasets and on one ``obs``-dimensioned
   `xarray.Dataset`; Gammapy on the first ``--gammapy-runs`` runs, scaled to 1,000 per run.

Run::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_estimators.py [--quick]

xspec_ds times are the best of several repeats; Gammapy's one run (it takes tens of seconds).
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import xarray as xr

import xspec_ds as xs

HESS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "joint-crab" / "spectra" / "hess"
RUNS = (23523, 23526, 23559, 23592)
LP = {"amplitude": "4.4751e-11 cm-2 s-1 TeV-1", "reference": "1 TeV", "alpha": 2.3938, "beta": 0.16147}
EDGES = np.geomspace(0.66, 30, 9) * u.TeV
SEL = ["errn-errp", "ul", "scan"]


def best_of(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def hess_ours():
    ds = []
    for n in RUNS:
        d = xs.SpectrumDatasetOnOff.read(HESS / f"pha_obs{n}.fits")
        e = d._energy_axis
        d.mask_fit = (e.edges_min.to_value("TeV") >= 0.66 * (1 - 1e-6)) & (
            e.edges_max.to_value("TeV") <= 30 * (1 + 1e-6)
        )
        ds.append(d)
    sky = xs.SkyModel(xs.LogParabolaSpectralModel(**LP), name="crab")
    for d in ds:
        d.models = [sky]
    return ds


def hess_gammapy():
    from gammapy.datasets import Datasets, SpectrumDatasetOnOff
    from gammapy.modeling.models import LogParabolaSpectralModel, SkyModel

    ds = []
    for n in RUNS:
        d = SpectrumDatasetOnOff.read(HESS / f"pha_obs{n}.fits")
        d.mask_fit = d.counts.geom.energy_mask(0.66 * u.TeV, 30 * u.TeV)
        ds.append(d)
    ds = Datasets(ds)
    ds.models = SkyModel(LogParabolaSpectralModel(**LP), name="crab")
    return ds


def simulated_runs(n_runs, n_bins=20, seed=0):
    rng = np.random.default_rng(seed)
    e_reco = xs.MapAxis.from_energy_bounds("0.1 TeV", "100 TeV", n_bins)
    e_true = xs.MapAxis.from_energy_bounds("0.05 TeV", "200 TeV", 2 * n_bins, name="energy_true")
    template = xs.SpectrumDataset.create(e_reco, e_true, name="t", reference_time="2020-01-01")
    centers = e_true.center.to_value("TeV")
    template.exposure = 1e9 * (1 - np.exp(-centers / 0.3)) * u.Unit("m2 s")
    template.background = np.full(n_bins, 2.0)
    template.mask_safe = np.ones(n_bins, bool)
    amps = 2e-12 * (1 + 0.3 * np.sin(np.arange(n_runs) / 7.0))
    out = []
    for k in range(n_runs):
        d = template.copy(name=f"run{k:04d}")
        d.models = xs.SkyModel(xs.PowerLawSpectralModel(index=2.5, amplitude=f"{amps[k]} cm-2 s-1 TeV-1"), name="src")
        d.fake(random_state=int(rng.integers(1 << 30)))
        d.gti = xs.GTI.create([k * 3600.0] * u.s, [k * 3600.0 + 1800.0] * u.s, reference_time="2020-01-01")
        out.append(d)
    ref = xs.SkyModel(xs.PowerLawSpectralModel(index=2.5, amplitude="2e-12 cm-2 s-1 TeV-1"), name="src")
    for d in out:
        d.models = [ref]
    return out, e_reco, e_true


def to_gammapy(d, e_reco, e_true):
    from astropy.time import Time
    from gammapy.data import GTI
    from gammapy.datasets import SpectrumDataset
    from gammapy.maps import MapAxis, RegionGeom

    er = MapAxis.from_energy_edges(e_reco.edges, name="energy")
    et = MapAxis.from_energy_edges(e_true.edges, name="energy_true")
    geom = RegionGeom.create("icrs;circle(83.63,22.01,0.1)", axes=[er])
    g = SpectrumDataset.create(geom=geom, energy_axis_true=et, name=d.name)
    shape = g.counts.data.shape
    g.counts.data = d.counts.values.reshape(shape)
    g.background.data = d.background.values.reshape(shape)
    g.exposure.quantity = (d.exposure.values * u.Unit(d.exposure.attrs["units"])).reshape(g.exposure.data.shape)
    g.edisp.edisp_map.data = d.edisp.values.reshape(g.edisp.edisp_map.data.shape)
    g.mask_safe.data = d.mask_safe.values.reshape(shape)
    gti = d.gti
    g.gti = GTI.create(gti.met_start, gti.met_stop, reference_time=Time(gti.time_ref.isot, scale="tt"))
    return g


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--gammapy-runs", type=int, default=10)
    args = parser.parse_args()
    logging.getLogger("gammapy").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    repeats = 3 if args.quick else 7
    print(f"# bench_estimators  python {platform.python_version()}  numpy {np.__version__}  xarray {xr.__version__}")
    try:
        import gammapy

        has_gp = True
        print(f"# gammapy {gammapy.__version__}")
    except ImportError:  # pragma: no cover
        has_gp = False

    # 1) flux points ----------------------------------------------------------------------------
    ds = hess_ours()
    fpe = xs.FluxPointsEstimator(energy_edges=EDGES, source="crab", selection_optional=SEL)
    t_ours, fp = best_of(lambda: fpe.run(ds), repeats)
    print("\nFlux points, 4 H.E.S.S. runs (WSTAT), log-parabola, 8 bins 0.66-30 TeV, errn-errp + ul + scan")
    print(f"{'library':<28}{'time [s]':>12}")
    print(f"{'xspec_ds':<28}{t_ours:>12.4f}")
    if has_gp:
        from gammapy.estimators import FluxPointsEstimator as GFPE

        gds = hess_gammapy()
        t0 = time.perf_counter()
        gfp = GFPE(energy_edges=EDGES, source="crab", selection_optional=SEL).run(gds)
        t_gp = time.perf_counter() - t0
        t0 = time.perf_counter()
        GFPE(energy_edges=EDGES, source="crab", selection_optional="all").run(gds)
        t_gp_all = time.perf_counter() - t0
        print(f"{'gammapy (same selection)':<28}{t_gp:>12.4f}")
        print(f"{'gammapy (selection all)':<28}{t_gp_all:>12.4f}")
        print(
            f"speed-up (Gammapy / xspec_ds): {t_gp / t_ours:.0f}x (same selection), {t_gp_all / t_ours:.0f}x (Gammapy 'all')"
        )
        g, o = gfp.to_table(sed_type="dnde"), fp.to_table(sed_type="dnde")
        for name in ("dnde", "dnde_err", "dnde_errn", "dnde_errp", "dnde_ul"):
            rel = np.max(np.abs(o[name].quantity / g[name].quantity - 1))
            print(f"  max |rel diff| {name:<10} {rel:.2e}")
        print(f"  max |diff| ts         {np.max(np.abs(np.asarray(o['ts']) - np.asarray(g['ts']))):.2e}")

    # 2) light curve ------------------------------------------------------------------------------
    n_runs = 1000
    runs, e_reco, e_true = simulated_runs(n_runs)
    edges = [0.3, 30.0] * u.TeV
    lce = xs.LightCurveEstimator(energy_edges=edges, source="src", selection_optional=["errn-errp", "ul"])
    t_list, lc = best_of(lambda: lce.run(runs), max(2, repeats // 2))
    obs = xr.concat([d.data for d in runs], dim="obs", coords="minimal", compat="override", join="override")
    obs = obs.assign_coords(obs=[d.name for d in runs])
    sky = runs[0].models["src"]
    t_obs, lc_obs = best_of(lambda: lce.run(obs, models=[sky]), max(2, repeats // 2))
    assert np.allclose(lc_obs.data["norm"].values, lc.data["norm"].values, rtol=1e-9, atol=0)
    print(f"\nLight curve, {n_runs} simulated runs (Cash, 20 reco bins), 1 energy bin, errors + errn-errp + ul")
    print(f"{'library':<36}{'time [s]':>12}")
    print(f"{'xspec_ds (list of datasets)':<36}{t_list:>12.3f}")
    print(f"{'xspec_ds (obs-dimensioned Dataset)':<36}{t_obs:>12.3f}")
    if has_gp:
        from gammapy.datasets import Datasets
        from gammapy.estimators import LightCurveEstimator as GLCE
        from gammapy.modeling.models import PowerLawSpectralModel, SkyModel

        k = args.gammapy_runs
        gds = Datasets([to_gammapy(d, e_reco, e_true) for d in runs[:k]])
        gds.models = SkyModel(PowerLawSpectralModel(index=2.5, amplitude="2e-12 cm-2 s-1 TeV-1"), name="src")
        t0 = time.perf_counter()
        glc = GLCE(energy_edges=edges, source="src", selection_optional=["errn-errp", "ul"]).run(gds)
        t_gp = (time.perf_counter() - t0) / k
        print(f"{'gammapy (per run x 1000)':<36}{t_gp * n_runs:>12.1f}   ({t_gp:.3f} s per run, {k} runs timed)")
        print(f"speed-up (Gammapy scaled / xspec_ds list): {t_gp * n_runs / t_list:.0f}x")
        gflux = glc.to_table(format="lightcurve", sed_type="flux")["flux"].quantity.to_value("cm-2 s-1").ravel()
        oflux = lc.to_table(format="lightcurve", sed_type="flux")["flux"].quantity.to_value("cm-2 s-1")[:k].ravel()
        print(f"  max |rel diff| flux (first {k} runs) {np.max(np.abs(oflux / gflux - 1)):.2e}")


if __name__ == "__main__":
    main()
