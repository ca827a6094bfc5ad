"""3C 273 grouped fits against Sherpa: file grouping / group_counts(20), WSTAT / chi2 (issue 13).

Four configurations of ``/work/shared/data/xray/3c273/3c273.pi`` (power law, reference 1 keV,
channels noticed in 0.5-7 keV):

==========  =================  ==============================================================
name        grouping           statistic
==========  =================  ==============================================================
file-wstat  the file's         WSTAT with the background file
file-chi2   the file's         chi2datavar, background subtracted (Sherpa ``subtract()``)
gc20-wstat  group_counts(20)   WSTAT
gc20-chi2   group_counts(20)   chi2gehrels, background subtracted
==========  =================  ==============================================================

Sherpa order of calls (and ours): load, ``ignore(); notice(0.5, 7)``, then ``group_counts(20)``
(Sherpa >= 4.16 groups only the noticed channels, PR #1855; ``xs`` does the same), then the
statistic. For each configuration the script prints the number of noticed groups, the statistic
at Sherpa's best fit (xspec_ds evaluated at Sherpa's parameter values), both best fits and
covariance errors, and the acceptance checks of issue 13: statistic within 1e-6 relative, best
fit within 0.01 of the error, errors within 2 %. The time of one statistic evaluation and of a
fit with errors are printed for xspec_ds (and Sherpa when it runs).

Sherpa is not a dependency: it runs in its own interpreter (``--sherpa-python PATH`` or
``SHERPA_PYTHON``), see ``bench_sherpa_3c273.py``. Without it the Sherpa columns print ``-``.
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import timeit  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

DATA = "/work/shared/data/xray/3c273/3c273.pi"
CONFIGS = {
    "file-wstat": (None, "wstat"),
    "file-chi2": (None, "chi2datavar"),
    "gc20-wstat": (20, "wstat"),
    "gc20-chi2": (20, "chi2gehrels"),
}
START = (2.0, 1e-4)


def sherpa_worker(path: str) -> dict:
    import logging

    from sherpa import __version__ as version
    from sherpa.astro import ui

    logging.getLogger("sherpa").setLevel(logging.ERROR)
    out = {"version": version, "configs": {}}
    for name, (n_group, stat) in CONFIGS.items():
        ui.clean()
        ui.load_pha(path)
        ui.set_source(ui.powlaw1d.p1)
        p1 = ui.get_model_component("p1")
        p1.ref = 1.0
        ui.ignore()
        ui.notice(0.5, 7.0)
        if n_group:
            ui.group_counts(n_group)
        ui.set_stat(stat)
        if stat.startswith("chi2"):
            ui.subtract()
        p1.gamma, p1.ampl = START
        t0 = time.perf_counter()
        ui.fit()
        ui.covar()
        t_fit = time.perf_counter() - t0
        fr, cov = ui.get_fit_results(), ui.get_covar_results()
        errs = dict(zip(cov.parnames, cov.parmaxes, strict=True))
        t_stat = min(timeit.repeat(ui.calc_stat, number=20, repeat=7)) / 20
        out["configs"][name] = {
            "n_bins": int(np.sum(ui.get_data().mask)),
            "stat": float(fr.statval),
            "dof": int(fr.dof),
            "index": float(p1.gamma.val),
            "amplitude": float(p1.ampl.val),
            "index_err": float(errs["p1.gamma"]),
            "amplitude_err": float(errs["p1.ampl"]),
            "t_stat": t_stat,
            "t_fit": t_fit,
        }
    return out


def xspec_part(path: str, sherpa: dict | None) -> dict:
    import xspec_ds as xs
    from xspec_ds.xrayfit import n_fit_bins

    out = {"configs": {}}
    for name, (n_group, stat) in CONFIGS.items():
        ds = xs.SpectrumDatasetOnOff.read(path)
        ds.notice(0.5, 7)
        if n_group:
            ds.group_counts(n_group)
        ds.stat_type = stat
        model = xs.PowerLawSpectralModel(index=START[0], amplitude=f"{START[1]} cm-2 s-1 keV-1", reference="1 keV")
        ds.models = model
        pi, pa = model.parameters["index"], model.parameters["amplitude"]
        res = {"n_bins": n_fit_bins(ds)}
        if sherpa is not None:
            s = sherpa["configs"][name]
            pi.value, pa.value = s["index"], s["amplitude"]
            res["stat_at_sherpa"] = ds.stat_sum()

        def calc():
            pi.value = 1.9 + 1e-3 * np.random.rand()
            return ds.stat_sum()

        calc()
        res["t_stat"] = min(timeit.repeat(calc, number=20, repeat=7)) / 20
        times = []
        for _ in range(5):
            pi.value, pa.value = START
            t0 = time.perf_counter()
            result = xs.Fit().run(ds)
            times.append(time.perf_counter() - t0)
        res.update(
            t_fit=min(times),
            stat=result.total_stat,
            dof=result.dof,
            success=result.success,
            index=pi.value,
            amplitude=pa.quantity.to_value("cm-2 s-1 keV-1"),
            index_err=pi.error,
            amplitude_err=(pa.error * pa.unit).to("cm-2 s-1 keV-1").value,
        )
        out["configs"][name] = res
    return out


def report(x: dict, s: dict | None) -> str:
    import xspec_ds as xs

    lines = [
        "xspec_ds vs Sherpa: 3C 273 grouped fits (power law, ref 1 keV, notice 0.5-7 keV)",
        f"python {platform.python_version()}, numpy {np.__version__}, xspec_ds {xs.__version__}, "
        f"Sherpa {s['version'] if s else '- (not run: no Sherpa interpreter on this machine)'}; "
        "OPENBLAS_NUM_THREADS=1",
        f"machine: {platform.machine()}, {os.cpu_count()} cores (shared); times = min over repeats",
        "",
        f"{'config':11} {'who':8} {'groups':>6} {'stat':>14} {'dof':>4} {'index':>10} {'+-':>9} "
        f"{'amplitude':>12} {'+-':>10} {'t_stat':>9} {'t_fit':>9}",
    ]
    for name in CONFIGS:
        a = x["configs"][name]
        lines.append(
            f"{name:11} {'xspec_ds':8} {a['n_bins']:6d} {a['stat']:14.8f} {a['dof']:4d} {a['index']:10.6f} "
            f"{a['index_err']:9.6f} {a['amplitude']:12.6e} {a['amplitude_err']:10.4e} "
            f"{a['t_stat'] * 1e3:7.3f}ms {a['t_fit'] * 1e3:7.2f}ms"
        )
        if s is None:
            lines.append(f"{'':11} {'Sherpa':8} {'-':>6} {'-':>14}")
            continue
        b = s["configs"][name]
        lines.append(
            f"{'':11} {'Sherpa':8} {b['n_bins']:6d} {b['stat']:14.8f} {b['dof']:4d} {b['index']:10.6f} "
            f"{b['index_err']:9.6f} {b['amplitude']:12.6e} {b['amplitude_err']:10.4e} "
            f"{b['t_stat'] * 1e3:7.3f}ms {b['t_fit'] * 1e3:7.2f}ms"
        )
        checks = {
            "groups equal": a["n_bins"] == b["n_bins"],
            "stat at Sherpa best fit (rel)": abs(a["stat_at_sherpa"] / b["stat"] - 1),
            "index within 0.01 sigma": abs(a["index"] - b["index"]) / b["index_err"],
            "amplitude within 0.01 sigma": abs(a["amplitude"] - b["amplitude"]) / b["amplitude_err"],
            "index err (rel)": abs(a["index_err"] / b["index_err"] - 1),
            "amplitude err (rel)": abs(a["amplitude_err"] / b["amplitude_err"] - 1),
        }
        lines.append(
            "    " + ", ".join(f"{k}: {v:.2g}" if not isinstance(v, bool) else f"{k}: {v}" for k, v in checks.items())
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--sherpa-python", default=os.environ.get("SHERPA_PYTHON"))
    parser.add_argument("--output", default=None)
    parser.add_argument("--sherpa-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sherpa_worker:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            print(json.dumps(sherpa_worker(args.data)))
        return 0
    sherpa = None
    if args.sherpa_python:
        cmd = [args.sherpa_python, os.path.abspath(__file__), "--sherpa-worker", "--data", args.data]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        if proc.returncode == 0:
            sherpa = json.loads(proc.stdout.strip().splitlines()[-1])
        else:
            print(f"Sherpa worker failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = xspec_part(args.data, sherpa)
    text = report(x, sherpa)
    print(text)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
