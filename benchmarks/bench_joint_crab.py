"""Joint log-parabola fit of the five joint-crab instruments: xspec_ds vs Gammapy.

Same files (../shared/data/joint-crab/spectra), same fit ranges, same model and starting values
(Nigro et al. 2019). Each library reads with its own OGIP reader (Gammapy's
``SpectrumDatasetOnOff.read``); the fit is timed alone (best of N) and read + fit once.
Run: ``.venv/bin/python benchmarks/bench_joint_crab.py``; the table goes to
``benchmarks/results/bench_joint_crab.txt``.
"""

from __future__ import annotations

import os

# One BLAS thread for both libraries (set before numpy loads): on this 2-core shared machine
# scipy 1.17's L-BFGS-B spends ~7 ms per iteration in multi-threaded BLAS start-up otherwise.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import xspec_ds as xs  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "joint-crab" / "spectra"
OUT = Path(__file__).resolve().parent / "results" / "bench_joint_crab.txt"
RANGES = {
    "fermi": (0.03, 2.0),
    "magic": (0.08, 30.0),
    "veritas": (0.15, 30.0),
    "fact": (0.4, 30.0),
    "hess": (0.66, 30.0),
}
START = {"amplitude": "3.8e-11 cm-2 s-1 TeV-1", "reference": "1 TeV", "alpha": 2.47, "beta": 0.24}


def files():
    return [(inst, p) for inst in RANGES for p in sorted((DATA / inst).glob("pha_*.fits"))]


def fit_mask(e_min_tev, e_max_tev, inst):
    lo, hi = RANGES[inst]
    return (e_min_tev >= lo * (1 - 1e-6)) & (e_max_tev <= hi * (1 + 1e-6))


def ours_read():
    out = []
    for inst, p in files():
        ds = xs.SpectrumDatasetOnOff.read(p, name=f"{inst}-{p.stem}")
        ax = ds._energy_axis
        ds.mask_fit = fit_mask(ax.edges_min.to_value("TeV"), ax.edges_max.to_value("TeV"), inst)
        out.append(ds)
    return out


def ours_fit(dsets):
    model = xs.LogParabolaSpectralModel.from_log10(**START)
    sky = xs.SkyModel(spectral_model=model, name="crab")
    for d in dsets:
        d.models = [sky]
    result = xs.Fit().run(xs.Datasets(dsets))
    p = model.parameters
    return result, (p["amplitude"].quantity.to_value("cm-2 s-1 TeV-1"), p["alpha"].value, p["beta"].value)


def gammapy_read():
    from gammapy.datasets import SpectrumDatasetOnOff

    out = []
    for inst, p in files():
        ds = SpectrumDatasetOnOff.read(p, name=f"{inst}-{p.stem}")
        ax = ds.counts.geom.axes["energy"]
        mask = fit_mask(ax.edges_min.to_value("TeV"), ax.edges_max.to_value("TeV"), inst)
        ds.mask_fit = ds.counts.copy(data=mask.reshape(ds.counts.data.shape))
        out.append(ds)
    return out


def gammapy_fit(dsets):
    from gammapy.datasets import Datasets
    from gammapy.modeling import Fit
    from gammapy.modeling.models import LogParabolaSpectralModel, SkyModel

    model = LogParabolaSpectralModel.from_log10(**START)
    sky = SkyModel(spectral_model=model, name="crab")
    d = Datasets(dsets)
    d.models = [sky]
    result = Fit().run(d)
    p = model.parameters
    return result, (p["amplitude"].quantity.to_value("cm-2 s-1 TeV-1"), p["alpha"].value, p["beta"].value)


def best_of(fn, n):
    times, out = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(n_ours: int = 5, n_gammapy: int = 2) -> str:
    if not DATA.exists():
        raise SystemExit(f"joint-crab data not found at {DATA}")
    warnings.simplefilter("ignore")
    t_read_ours, dsets = best_of(ours_read, 3)
    t_fit_ours, (res_ours, best_ours) = best_of(lambda: ours_fit(dsets), n_ours)
    rows = [("xspec_ds", t_read_ours, t_fit_ours, res_ours.total_stat, best_ours)]
    try:
        import gammapy  # noqa: F401
    except ImportError:
        gammapy_ok = False
    else:
        gammapy_ok = True
    if gammapy_ok:
        t_read_g, gsets = best_of(gammapy_read, 1)
        t_fit_g, (res_g, best_g) = best_of(lambda: gammapy_fit(gsets), n_gammapy)
        rows.append(("gammapy 2.1", t_read_g, t_fit_g, res_g.total_stat, best_g))
    lines = [
        "Joint log-parabola fit, five joint-crab instruments (10 OGIP spectra), WSTAT",
        f"{'library':<12} {'read [s]':>9} {'fit [s]':>9} {'total_stat':>12} {'amplitude':>12} {'alpha':>8} {'beta_ln':>8}",
    ]
    for name, tr, tf, stat, (a, al, b) in rows:
        lines.append(f"{name:<12} {tr:9.3f} {tf:9.3f} {stat:12.4f} {a:12.5e} {al:8.5f} {b:8.5f}")
    if gammapy_ok:
        rel = np.abs(np.array(best_ours) / np.array(best_g) - 1)
        lines.append(
            f"fit speed-up (Gammapy / xspec_ds): {t_fit_g / t_fit_ours:.1f}x; "
            f"read + fit: {(t_read_g + t_fit_g) / (t_read_ours + t_fit_ours):.1f}x"
        )
        lines.append(
            f"max relative difference of best-fit parameters: {rel.max():.2e} "
            f"(amplitude {rel[0]:.1e}, alpha {rel[1]:.1e}, beta {rel[2]:.1e})"
        )
        lines.append(f"total_stat difference: {res_ours.total_stat - res_g.total_stat:+.2e}")
    lines.append(f"(fit: best of {n_ours} runs for xspec_ds, {n_gammapy} for Gammapy; one process, 2 shared cores)")
    text = "\n".join(lines)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text + "\n")
    return text


if __name__ == "__main__":
    print(main())
