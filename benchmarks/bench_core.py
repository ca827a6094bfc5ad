"""Core benchmark: xspec_ds vs Gammapy vs a pure-numpy floor on the same 1-D spectrum.

For N = 30, 100, 1000 reco-energy bins (0.1-100 TeV, log) and 2N true-energy bins
(0.05-200 TeV, log) it builds one dataset -- a Gaussian-in-log-energy dispersion matrix
(rows sum to <= 1), an energy-dependent exposure of order 1e10 cm2 s, a smooth background and
counts faked once from a power law -- and gives the *same arrays* to xspec_ds and to Gammapy.
It prints:

1. ``stat_sum`` time after a parameter change (the index is changed before every call, so no
   cache can help) for xspec_ds, Gammapy, and a numpy floor (the same formula written inline:
   analytic power-law bin integrals x exposure, ``@ edisp``, + background, Cash with 1e-25
   truncation, masked sum);
2. the time of a full power-law fit (index and amplitude free, same start values) with xspec_ds
   (scipy backend, the default, and ``backend="minuit"``) and Gammapy (``Fit().run``, MINUIT),
   with best-fit values, errors and their relative differences to Gammapy;
3. the ratios xspec_ds / Gammapy and xspec_ds / numpy floor.

Run::

    python benchmarks/bench_core.py            # full run (N = 30, 100, 1000)
    python benchmarks/bench_core.py --quick    # fewer repeats, quick check

Timings are the minimum over several repeats (``timeit``), to reduce the noise of a shared
machine. Gammapy is skipped (and its columns printed as ``-``) when it is not installed.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
import timeit
import warnings

import numpy as np
from scipy.special import ndtr

import xspec_ds as xs

try:
    import gammapy
    from gammapy.datasets import SpectrumDataset as GPSpectrumDataset
    from gammapy.maps import MapAxis as GPMapAxis
    from gammapy.maps import RegionGeom
    from gammapy.modeling import Fit as GPFit
    from gammapy.modeling.models import PowerLawSpectralModel as GPPowerLaw
    from gammapy.modeling.models import SkyModel as GPSkyModel

    HAS_GAMMAPY = True
except ImportError:  # pragma: no cover - depends on the environment
    HAS_GAMMAPY = False

try:
    import iminuit  # noqa: F401

    HAS_IMINUIT = True
except ImportError:  # pragma: no cover
    HAS_IMINUIT = False

# With an exposure of ~1e10 cm2 s, an amplitude of 1e-8 cm-2 s-1 TeV-1 gives a few thousand signal
# counts (the same counts as a Crab-like 3e-11 source with ~3e12 cm2 s, i.e. ~1 h of a Cherenkov array);
# only the product amplitude x exposure matters for the likelihood.
TRUTH = {"index": 2.6, "amplitude": 1.0e-8}  # cm-2 s-1 TeV-1 at 1 TeV
START = {"index": 2.0, "amplitude": 3.0e-9}
REFERENCE = 1.0  # TeV
TRUNCATION = 1e-25
SEED = 20240601


# --------------------------------------------------------------------------------------------
# the shared arrays
# --------------------------------------------------------------------------------------------
def make_arrays(n_reco: int, seed: int = SEED) -> dict:
    """Edges, exposure (cm2 s), edisp, background and counts for ``n_reco`` reco bins."""
    e_reco = np.geomspace(0.1, 100.0, n_reco + 1)
    e_true = np.geomspace(0.05, 200.0, 2 * n_reco + 1)
    et_lo, et_hi = e_true[:-1], e_true[1:]
    et_c = np.sqrt(et_lo * et_hi)
    er_c = np.sqrt(e_reco[:-1] * e_reco[1:])
    # exposure: effective area rising from threshold to a plateau, x 50 h-ish livetime -> ~1e10 cm2 s
    exposure = 1.0e10 * (1.0 - np.exp(-((et_c / 0.15) ** 1.5))) * (et_c / 1.0) ** 0.1
    # energy dispersion: Gaussian in ln E, resolution 10-20 %, a small bias; rows sum to <= 1
    sigma = 0.10 + 0.10 / (1.0 + et_c)
    mu = np.log(et_c) + 0.02
    z = (np.log(e_reco)[None, :] - mu[:, None]) / sigma[:, None]
    edisp = np.diff(ndtr(z), axis=1)  # (n_true, n_reco)
    # background: smooth, slowly falling, the same total (~300 counts) for every binning
    bkg_dnde = er_c**-0.5
    background = 300.0 * bkg_dnde * np.diff(np.log(e_reco)) / np.sum(bkg_dnde * np.diff(np.log(e_reco)))
    mask = np.ones(n_reco, bool)
    arrays = {
        "e_reco": e_reco,
        "e_true": e_true,
        "exposure": exposure,
        "edisp": edisp,
        "background": background,
        "mask": mask,
    }
    npred = numpy_npred(arrays, TRUTH["index"], TRUTH["amplitude"])
    arrays["counts"] = np.random.RandomState(seed).poisson(npred).astype(np.float64)
    return arrays


# --------------------------------------------------------------------------------------------
# the numpy floor: the same likelihood written inline
# --------------------------------------------------------------------------------------------
def numpy_npred(a: dict, index: float, amplitude: float) -> np.ndarray:
    e = a["e_true"]
    g = 1.0 - index
    flux = amplitude * REFERENCE / g * ((e[1:] / REFERENCE) ** g - (e[:-1] / REFERENCE) ** g)
    return np.clip((flux * a["exposure"]) @ a["edisp"] + a["background"], 0.0, None)


def numpy_stat_sum(a: dict, index: float, amplitude: float) -> float:
    mu = numpy_npred(a, index, amplitude)
    mu = np.where(mu <= TRUNCATION, TRUNCATION, mu)
    return float(np.sum(2.0 * (mu - a["counts"] * np.log(mu)), where=a["mask"]))


class NumpyFloor:
    """Precomputes what does not depend on the parameters (as a hand-written likelihood would)."""

    def __init__(self, a: dict):
        self.a = a
        self.lo = a["e_true"][:-1] / REFERENCE
        self.hi = a["e_true"][1:] / REFERENCE
        self.expo = a["exposure"]
        self.edisp = a["edisp"]
        self.bkg = a["background"]
        self.counts = a["counts"]
        self.mask = a["mask"]

    def stat_sum(self, index: float, amplitude: float) -> float:
        g = 1.0 - index
        flux = (amplitude * REFERENCE / g) * (self.hi**g - self.lo**g)
        mu = (flux * self.expo) @ self.edisp + self.bkg
        mu = np.where(mu <= TRUNCATION, TRUNCATION, mu)
        return float(np.sum(2.0 * (mu - self.counts * np.log(mu)), where=self.mask))


# --------------------------------------------------------------------------------------------
# the two libraries
# --------------------------------------------------------------------------------------------
def make_xspec(a: dict) -> xs.SpectrumDataset:
    import astropy.units as u

    e_reco = xs.MapAxis.from_energy_edges(a["e_reco"] * u.TeV, name="energy")
    e_true = xs.MapAxis.from_energy_edges(a["e_true"] * u.TeV, name="energy_true")
    ds = xs.SpectrumDataset.create(e_reco, e_true, name="xs")
    ds.exposure = a["exposure"] * u.Unit("cm2 s")
    ds.edisp = a["edisp"]
    ds.background = a["background"]
    ds.counts = a["counts"]
    ds.mask_safe = a["mask"]
    pl = xs.PowerLawSpectralModel(
        index=START["index"], amplitude=f"{START['amplitude']} cm-2 s-1 TeV-1", reference=f"{REFERENCE} TeV"
    )
    ds.models = xs.SkyModel(spectral_model=pl, name="src")
    return ds


def make_gammapy(a: dict):
    import astropy.units as u
    from gammapy.maps import RegionNDMap

    energy_axis = GPMapAxis.from_energy_edges(a["e_reco"] * u.TeV, name="energy")
    energy_axis_true = GPMapAxis.from_energy_edges(a["e_true"] * u.TeV, name="energy_true")
    geom = RegionGeom.create(region=None, axes=[energy_axis])
    ds = GPSpectrumDataset.create(geom=geom, energy_axis_true=energy_axis_true, name="gp")
    # float64 maps for every array (Gammapy's defaults are float32 for some of them)
    ds.counts = RegionNDMap.from_geom(geom, data=a["counts"].reshape(-1, 1, 1), unit="", dtype=np.float64)
    ds.background = RegionNDMap.from_geom(geom, data=a["background"].reshape(-1, 1, 1), unit="", dtype=np.float64)
    geom_true = ds.exposure.geom
    ds.exposure = RegionNDMap.from_geom(geom_true, data=a["exposure"].reshape(-1, 1, 1), unit="cm2 s", dtype=np.float64)
    ds.edisp.edisp_map.data = a["edisp"].reshape(a["edisp"].shape + (1, 1)).astype(np.float64)
    ds.mask_safe = RegionNDMap.from_geom(geom, data=a["mask"].reshape(-1, 1, 1), dtype=bool)
    pl = GPPowerLaw(
        index=START["index"], amplitude=f"{START['amplitude']} cm-2 s-1 TeV-1", reference=f"{REFERENCE} TeV"
    )
    ds.models = [GPSkyModel(spectral_model=pl, name="src")]
    return ds


def set_params(model_params, index: float, amplitude: float) -> None:
    model_params["index"].value = index
    model_params["amplitude"].value = amplitude


# --------------------------------------------------------------------------------------------
# timing helpers
# --------------------------------------------------------------------------------------------
def time_stat_sum(call, repeat: int, number: int) -> float:
    """Min over ``repeat`` of the mean time per call of ``number`` calls (seconds)."""
    times = timeit.repeat(call, repeat=repeat, number=number)
    return min(times) / number


def changing_index_call(set_index, stat_sum):
    """A callable that changes the index (alternating between two values) then evaluates."""
    state = {"k": 0}
    values = (2.55, 2.65)

    def call():
        state["k"] ^= 1
        set_index(values[state["k"]])
        return stat_sum()

    return call


def time_fit(run, repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - t0)
    return best, out


# --------------------------------------------------------------------------------------------
def bench_one(n: int, quick: bool) -> dict:
    a = make_arrays(n)
    floor = NumpyFloor(a)
    res: dict = {"n": n, "n_counts": int(a["counts"].sum())}
    repeat = 3 if quick else 7
    number = max(20, 2000 // max(n // 30, 1)) if not quick else 50
    if n >= 1000:
        number //= 2

    # ---- agreement of the statistic at a few parameter points ---------------------------
    xds = make_xspec(a)
    gds = make_gammapy(a) if HAS_GAMMAPY else None
    rel_xs_np, rel_xs_gp = 0.0, np.nan
    rel_gp_np = np.nan
    for idx, amp in ((2.0, 3e-9), (2.6, 1e-8), (3.1, 2e-8)):
        set_params(xds.models.parameters, idx, amp)
        s_xs = xds.stat_sum()
        s_np = numpy_stat_sum(a, idx, amp)
        rel_xs_np = max(rel_xs_np, abs(s_xs - s_np) / abs(s_np))
        if gds is not None:
            set_params(gds.models.parameters, idx, amp)
            s_gp = gds.stat_sum()
            rel_xs_gp = max(0.0 if np.isnan(rel_xs_gp) else rel_xs_gp, abs(s_xs - s_gp) / abs(s_gp))
            rel_gp_np = max(0.0 if np.isnan(rel_gp_np) else rel_gp_np, abs(s_gp - s_np) / abs(s_np))
    res["rel_stat_xs_np"] = rel_xs_np
    res["rel_stat_xs_gp"] = rel_xs_gp
    res["rel_stat_gp_np"] = rel_gp_np

    # ---- 1. stat_sum after a parameter change ------------------------------------------
    set_params(xds.models.parameters, *START.values())
    p_idx = xds.models.parameters["index"]
    res["t_stat_xs"] = time_stat_sum(
        changing_index_call(lambda v: setattr(p_idx, "value", v), xds.stat_sum), repeat, number
    )
    fl_state = {"idx": 2.0}

    def floor_set(v):
        fl_state["idx"] = v

    res["t_stat_np"] = time_stat_sum(
        changing_index_call(floor_set, lambda: floor.stat_sum(fl_state["idx"], START["amplitude"])), repeat, number
    )
    if gds is not None:
        set_params(gds.models.parameters, *START.values())
        g_idx = gds.models.parameters["index"]
        gnum = max(5, number // 20)
        res["t_stat_gp"] = time_stat_sum(
            changing_index_call(lambda v: setattr(g_idx, "value", v), gds.stat_sum), repeat, gnum
        )

    # ---- 2. full power-law fits -----------------------------------------------------------
    fit_repeat = 2 if quick else 5
    fits = {}

    def xs_runner(backend):
        def run():
            set_params(xds.models.parameters, *START.values())
            for p in xds.models.parameters:
                p.error = 0.0
            r = xs.Fit(backend=backend).run(xds)
            pars = xds.models.parameters
            return r, {k: (pars[k].value, pars[k].error) for k in ("index", "amplitude")}

        return run

    backends = ["scipy"] + (["minuit"] if HAS_IMINUIT else [])
    for backend in backends:
        t, (r, vals) = time_fit(xs_runner(backend), fit_repeat)
        fits[f"xs_{backend}"] = {"t": t, "vals": vals, "success": r.success, "stat": r.total_stat, "nfev": r.nfev}
    if gds is not None:

        def gp_run():
            set_params(gds.models.parameters, *START.values())
            for p in gds.models.parameters:
                p.error = 0.0
            r = GPFit().run(gds)
            pars = gds.models.parameters
            return r, {k: (pars[k].value, pars[k].error) for k in ("index", "amplitude")}

        t, (r, vals) = time_fit(gp_run, max(1, fit_repeat - 2) if n >= 1000 else fit_repeat)
        fits["gp"] = {"t": t, "vals": vals, "success": r.success, "stat": r.total_stat, "nfev": r.optimize_result.nfev}
    res["fits"] = fits
    return res


def fmt_t(t) -> str:
    if t is None or not np.isfinite(t):
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.1f} us"
    if t < 1.0:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


def fmt_r(x) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.1f}x"


def report(results: list[dict]) -> str:
    lines = []
    w = lines.append
    w("xspec_ds core benchmark (benchmarks/bench_core.py)")
    w(
        f"python {platform.python_version()}, numpy {np.__version__}, xspec_ds {xs.__version__}, "
        f"gammapy {gammapy.__version__ if HAS_GAMMAPY else 'not installed'}, "
        f"iminuit {iminuit.__version__ if HAS_IMINUIT else 'not installed'}; {platform.machine()}, "
        f"{platform.processor() or 'cpu?'}"
    )
    w(
        f"truth index={TRUTH['index']} amplitude={TRUTH['amplitude']:.3g}; fit start index={START['index']} "
        f"amplitude={START['amplitude']:.3g}; times are min over repeats"
    )
    w("")
    w("1. statistic agreement (max relative difference of stat_sum over 3 parameter points)")
    w(f"{'N':>6} {'counts':>7} {'xs vs numpy':>12} {'xs vs gammapy':>14} {'gammapy vs numpy':>17}")
    for r in results:
        w(
            f"{r['n']:>6} {r['n_counts']:>7} {r['rel_stat_xs_np']:>12.1e} {r['rel_stat_xs_gp']:>14.1e} "
            f"{r['rel_stat_gp_np']:>17.1e}"
        )
    w("")
    w("2. stat_sum after an index change (time per call)")
    w(
        f"{'N':>6} {'numpy floor':>12} {'xspec_ds':>10} {'gammapy':>10} {'xs/floor':>9} {'gammapy/xs':>11}"
        "   targets @N=100: xs/floor<=3, gammapy/xs>=20"
    )
    for r in results:
        tg = r.get("t_stat_gp", np.nan)
        w(
            f"{r['n']:>6} {fmt_t(r['t_stat_np']):>12} {fmt_t(r['t_stat_xs']):>10} {fmt_t(tg):>10} "
            f"{r['t_stat_xs'] / r['t_stat_np']:>8.2f}x {fmt_r(tg / r['t_stat_xs']):>11}"
        )
    w("")
    w("3. power-law fit (index, amplitude free; optimise + covariance) time")
    w(
        f"{'N':>6} {'xs scipy':>10} {'xs minuit':>10} {'gammapy':>10} {'gp/xs scipy':>12} {'gp/xs minuit':>13}"
        f" {'nfev s/m/gp':>13}   target: gammapy/xs>=10"
    )
    for r in results:
        f = r["fits"]
        ts = f["xs_scipy"]["t"]
        tm = f.get("xs_minuit", {}).get("t", np.nan)
        tg = f.get("gp", {}).get("t", np.nan)
        nf = "/".join(str(f[k]["nfev"]) if k in f else "-" for k in ("xs_scipy", "xs_minuit", "gp"))
        w(
            f"{r['n']:>6} {fmt_t(ts):>10} {fmt_t(tm):>10} {fmt_t(tg):>10} {fmt_r(tg / ts):>12} {fmt_r(tg / tm):>13}"
            f" {nf:>13}"
        )
    w("")
    w("4. best fit and errors (relative difference to Gammapy; targets: values 1e-4, errors 2%)")
    w(
        f"{'N':>6} {'fit':>10} {'ok':>3} {'index':>12} {'err':>9} {'amplitude':>12} {'err':>10} {'stat':>12}"
        f" {'d index':>9} {'d amp':>9} {'d err_i':>9} {'d err_a':>9}"
    )
    for r in results:
        f = r["fits"]
        gp = f.get("gp")
        for key in ("xs_scipy", "xs_minuit", "gp"):
            if key not in f:
                continue
            v = f[key]["vals"]
            line = (
                f"{r['n']:>6} {key:>10} {'y' if f[key]['success'] else 'n':>3} {v['index'][0]:>12.7f} "
                f"{v['index'][1]:>9.2e} {v['amplitude'][0]:>12.6e} {v['amplitude'][1]:>10.3e} {f[key]['stat']:>12.4f}"
            )
            if gp is not None and key != "gp":
                g = gp["vals"]
                d = [
                    abs(v[p][i] / g[p][i] - 1)
                    for i, p in ((0, "index"), (0, "amplitude"), (1, "index"), (1, "amplitude"))
                ]
                line += "".join(f" {x:>9.1e}" for x in d)
            w(line)
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a quick check, noisier)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 100, 1000], help="numbers of reco bins")
    parser.add_argument("--output", default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    logging.getLogger("gammapy").setLevel(logging.ERROR)
    results = []
    for n in args.sizes:
        print(f"... N={n}", file=sys.stderr, flush=True)
        results.append(bench_one(n, args.quick))
    text = report(results)
    print(text)
    if args.output:
        from xspec_ds.io.atomic import atomic_write_text

        atomic_write_text(args.output, text + "\n", overwrite=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
