"""Joint fit of K datasets (N = 30 reco / 60 true bins) sharing one power law (issue 9).

`xs.Fit().run(datasets)` evaluates same-binning datasets in one vectorised pass
(`xspec_ds.fit.joint.JointLikelihood`); the reference is the per-dataset loop it replaced (the
same Fit with each dataset's ``_stat_gradient`` summed in Python). Both in this one run, each
timed cold (first fit: the datasets' cached arrays are built) and warm (best of ``--repeat``),
with ``OPENBLAS_NUM_THREADS=1``.

Run::

    python benchmarks/bench_joint_many.py --output benchmarks/results/bench_joint_many.txt
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import astropy.units as u  # noqa: E402
import numpy as np  # noqa: E402

import xspec_ds as xs  # noqa: E402
from xspec_ds.fit import fit as fit_module  # noqa: E402
from xspec_ds.irf import edisp_from_gauss  # noqa: E402


class PerDatasetLoop:
    """The evaluation before the vectorised pass: one `_stat_gradient` per dataset."""

    def __init__(self, datasets):
        self.datasets = datasets

    def stat_gradient(self, params):
        return self.datasets._stat_gradient(params)


def make(k: int):
    e_reco = xs.MapAxis.from_energy_bounds("0.1 TeV", "100 TeV", 30)
    e_true = xs.MapAxis.from_energy_bounds("0.05 TeV", "200 TeV", 60, name="energy_true")
    pl = xs.PowerLawSpectralModel(index=2.5, amplitude="1e-11 cm-2 s-1 TeV-1")
    sky = xs.SkyModel(pl, name="src")
    edisp = edisp_from_gauss(e_true, e_reco, sigma=0.1).values
    dss = []
    for i in range(k):
        ds = xs.SpectrumDataset.create(e_reco, e_true, name=f"run{i}")
        ds.exposure = np.full(60, 1e10) * u.Unit("cm2 s")
        ds.edisp = edisp
        ds.mask_safe = np.ones(30, bool)
        ds.background = np.full(30, 0.5)
        ds.models = [sky]
        ds.fake(random_state=i)
        dss.append(ds)
    return xs.Datasets(dss), pl


def run(datasets, pl, evaluator, repeat):
    original = fit_module.JointLikelihood
    fit_module.JointLikelihood = evaluator
    times = []
    try:
        for _ in range(repeat + 1):
            if not times:  # cold: the datasets' cached arrays are rebuilt
                for d in datasets:
                    d.reset_data_cache()
            pl.index.value, pl.amplitude.value = 2.0, 2e-11
            t0 = time.perf_counter()
            result = xs.Fit().run(datasets)
            times.append(time.perf_counter() - t0)
    finally:
        fit_module.JointLikelihood = original
    return times[0], min(times[1:]), result, (pl.index.value, pl.index.error, pl.amplitude.value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-k", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    datasets, pl = make(args.k)
    cold_v, warm_v, res_v, par_v = run(datasets, pl, fit_module.JointLikelihood, args.repeat)
    cold_l, warm_l, res_l, par_l = run(datasets, pl, PerDatasetLoop, args.repeat)
    lines = [
        f"Joint fit of K = {args.k} datasets (N = 30 / 60 true bins, Cash) sharing one power law",
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}; one process on a shared 2-core machine",
        "",
        f"{'evaluation':<34}{'cold [s]':>10}{'warm [s]':>10}{'nfev':>6}{'total_stat':>18}",
        f"{'vectorised pass (JointLikelihood)':<34}{cold_v:>10.3f}{warm_v:>10.3f}{res_v.nfev:>6}{res_v.total_stat:>18.6f}",
        f"{'per-dataset loop (before)':<34}{cold_l:>10.3f}{warm_l:>10.3f}{res_l.nfev:>6}{res_l.total_stat:>18.6f}",
        "",
        f"speed-up warm {warm_l / warm_v:.1f}x, cold {cold_l / cold_v:.1f}x (target >= 10x); "
        f"total_stat difference {res_v.total_stat - res_l.total_stat:.2e} (target 1e-6)",
        f"per likelihood evaluation (warm time / nfev): {warm_l / res_l.nfev * 1e3:.2f} ms vs "
        f"{warm_v / res_v.nfev * 1e3:.2f} ms ({warm_l / res_l.nfev / (warm_v / res_v.nfev):.0f}x); the loop took "
        f"{res_l.nfev} L-BFGS-B evaluations to the same optimum",
        f"index {par_v[0]:.6f} +- {par_v[1]:.6f} (loop {par_l[0]:.6f} +- {par_l[1]:.6f}); "
        f"amplitude {par_v[2]:.6e} (loop {par_l[2]:.6e})",
    ]
    print("\n".join(lines))
    if args.output:
        with open(args.output, "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
