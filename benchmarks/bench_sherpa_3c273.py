"""xspec_ds vs Sherpa on the Chandra spectrum of 3C 273 (power law, WSTAT, 0.5-7 keV).

The common X-ray analysis of ``/work/shared/data/xray/3c273/3c273.pi`` (with the ARF, RMF and
background ``3c273_bg.pi`` its header names): a power law with reference energy 1 keV (Sherpa
``powlaw1d``, amplitude in photons cm-2 s-1 keV-1 at 1 keV; xspec_ds
``PowerLawSpectralModel(reference="1 keV")`` with the amplitude given in ``cm-2 s-1 keV-1``,
the same quantity), WSTAT with the background file, channels noticed in 0.5-7 keV. It is done
twice: with the file's ``GROUPING`` column applied (Sherpa groups by default; xspec_ds
``SpectrumDatasetOnOff.read(path)``, grouped by default since issue 13) and ungrouped (Sherpa
``ui.ungroup()``; xspec_ds ``group=False``).

Selections. Sherpa's ``notice(0.5, 7)`` keeps every channel (or group) whose energy range
overlaps [0.5, 7] keV (the channels containing 0.5 and 7 keV are in); for grouped data it keeps
the groups that contain a noticed channel. xspec_ds gets the same rule through ``mask_fit``
(``energy_max > 0.5 keV`` and ``energy_min < 7 keV``). The script proves the two selections are
identical: it prints the number of bins used by both and checks that the noticed bin indices
(Sherpa's ``data.mask``) equal xspec_ds' ``mask``, and it prints the WSTAT of both libraries
at the same parameter values. Both use the XSPEC form of WSTAT (XSPEC manual, appendix B;
Sherpa's ``WStat``, Gammapy's ``wstat``), which contains the data-only terms
``n (1 - ln n)`` that make it a goodness of fit, so the values should agree to rounding.

Timings (minimum over repeats, ``timeit``):

1. one WSTAT evaluation after a change of the index (so no cache can help): Sherpa
   ``ui.calc_stat()`` and its ``Fit.calc_stat()`` (the session object behind it); xspec_ds
   ``dataset.stat_sum()``;
2. a full power-law fit from the same start values (index 2, amplitude 1e-4): xspec_ds
   ``Fit().run`` (scipy backend, the default, optimisation plus covariance) and
   ``Fit().optimize`` (no errors); Sherpa ``ui.fit()`` with its default method ``levmar`` (its
   printed errors are levmar's approximate ones; the fit itself computes no covariance) and with
   ``neldermead`` (simplex, a likelihood-safe choice; no errors), and ``ui.covar()`` separately;
3. the best-fit values and covariance errors of both.

Sherpa must not become a dependency of xspec_ds, so the two libraries run in separate
processes: this script re-runs itself with ``--sherpa-worker`` under the interpreter given by
``--sherpa-python PATH`` (or the ``SHERPA_PYTHON`` environment variable), which prints its
results as JSON. Without it the Sherpa columns print ``-``. Both processes run with
``OPENBLAS_NUM_THREADS=1`` (set here before numpy is imported, and passed to the worker).

Run::

    .venv/bin/python benchmarks/bench_sherpa_3c273.py --sherpa-python /work/shenv/bin/python \\
        --output benchmarks/results/bench_sherpa_3c273.txt
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before numpy: single-threaded BLAS in both processes

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
E_LO, E_HI = 0.5, 7.0  # keV
START = {"index": 2.0, "amplitude": 1e-4}  # amplitude in photons cm-2 s-1 keV-1 at 1 keV
# parameter points where both libraries evaluate WSTAT (index, amplitude)
POINTS = [(2.0, 1e-4), (1.93, 1.84e-4), (1.5, 3e-4), (2.5, 5e-5)]


# --------------------------------------------------------------------------------------------------
# Sherpa worker (runs under the Sherpa interpreter; imports neither xspec_ds nor anything of ours)
# --------------------------------------------------------------------------------------------------
def sherpa_worker(path: str, repeats: int, fit_repeats: int) -> dict:
    import logging

    from sherpa import __version__ as sherpa_version
    from sherpa.astro import ui

    logging.getLogger("sherpa").setLevel(logging.ERROR)
    out = {"version": sherpa_version, "modes": {}}
    for grouped in (True, False):
        ui.clean()
        ui.load_pha(path)
        data = ui.get_data()
        if not grouped:
            ui.ungroup()
        ui.set_stat("wstat")
        ui.set_source(ui.powlaw1d.p1)
        p1 = ui.get_model_component("p1")
        p1.ref = 1.0
        ui.ignore()
        ui.notice(E_LO, E_HI)
        mask = np.asarray(data.mask, bool)
        res = {"n_bins": int(mask.sum()), "n_total": int(mask.size), "mask": np.flatnonzero(mask).tolist()}

        def set_pars(index, ampl):
            p1.gamma = index
            p1.ampl = ampl

        res["stat"] = []
        for index, ampl in POINTS:
            set_pars(index, ampl)
            res["stat"].append(float(ui.calc_stat()))

        # (1) one statistic after a parameter change
        state = {"k": 0}

        def step():
            state["k"] += 1
            p1.gamma = 1.9 + 1e-3 * (state["k"] % 7)

        def calc_ui():
            step()
            return ui.calc_stat()

        set_pars(*START.values())
        res["t_stat_ui"] = min(timeit.repeat(calc_ui, number=20, repeat=repeats)) / 20
        try:  # the Fit object behind ui.calc_stat (private accessor; skip if it moves)
            fitobj = ui._session._get_fit(1)[1]

            def calc_fit():
                step()
                return fitobj.calc_stat()

            calc_fit()
            res["t_stat_fit"] = min(timeit.repeat(calc_fit, number=20, repeat=repeats)) / 20
        except Exception:  # pragma: no cover - depends on Sherpa internals
            res["t_stat_fit"] = None

        # (2) fits
        for method in ("levmar", "neldermead"):
            ui.set_method(method)
            times = []
            for _ in range(fit_repeats):
                set_pars(*START.values())
                t0 = time.perf_counter()
                ui.fit()
                times.append(time.perf_counter() - t0)
            fr = ui.get_fit_results()
            res[f"fit_{method}"] = {
                "time": min(times),
                "nfev": int(fr.nfev),
                "stat": float(fr.statval),
                "index": float(p1.gamma.val),
                "amplitude": float(p1.ampl.val),
                "succeeded": bool(fr.succeeded),
            }
        # covariance at the levmar best fit
        ui.set_method("levmar")
        set_pars(*START.values())
        ui.fit()
        times = []
        for _ in range(fit_repeats):
            t0 = time.perf_counter()
            ui.covar()
            times.append(time.perf_counter() - t0)
        cov = ui.get_covar_results()
        errs = dict(zip(cov.parnames, cov.parmaxes))
        res["covar"] = {
            "time": min(times),
            "index_err": float(errs["p1.gamma"]),
            "amplitude_err": float(errs["p1.ampl"]),
        }
        out["modes"]["grouped" if grouped else "ungrouped"] = res
    return out


# --------------------------------------------------------------------------------------------------
# xspec_ds side
# --------------------------------------------------------------------------------------------------
def sherpa_notice_mask(ds) -> np.ndarray:
    """Sherpa's ``notice(lo, hi)`` on channel (or group) energy bounds: keep bins overlapping it."""
    e_min = ds.data["energy_min"].values
    e_max = ds.data["energy_max"].values
    assert ds.data["energy_min"].attrs["units"] == "keV"
    return (e_max > E_LO) & (e_min < E_HI)


def xspec_part(path: str, repeats: int, fit_repeats: int) -> dict:
    import xspec_ds as xs

    out = {"version": getattr(xs, "__version__", "dev"), "modes": {}}
    for grouped in (True, False):
        ds = xs.SpectrumDatasetOnOff.read(path, group=grouped)
        ds.mask_fit = sherpa_notice_mask(ds)
        model = xs.PowerLawSpectralModel(
            index=START["index"], amplitude=f"{START['amplitude']} cm-2 s-1 keV-1", reference="1 keV"
        )
        ds.models = model
        pi, pa = model.parameters["index"], model.parameters["amplitude"]
        from xspec_ds.xrayfit import grouped_view  # grouped files are fitted on their groups

        mask = np.asarray(grouped_view(ds).mask.values, bool)
        res = {"n_bins": int(mask.sum()), "n_total": int(mask.size), "mask": np.flatnonzero(mask).tolist()}

        def set_pars(index, ampl):
            pi.value = index
            pa.value = ampl

        res["stat"] = []
        for index, ampl in POINTS:
            set_pars(index, ampl)
            res["stat"].append(ds.stat_sum())

        state = {"k": 0}

        def calc():
            state["k"] += 1
            pi.value = 1.9 + 1e-3 * (state["k"] % 7)
            return ds.stat_sum()

        set_pars(*START.values())
        calc()
        res["t_stat"] = min(timeit.repeat(calc, number=20, repeat=repeats)) / 20

        fit = xs.Fit()
        times = []
        for _ in range(fit_repeats):
            set_pars(*START.values())
            t0 = time.perf_counter()
            result = fit.optimize(ds)
            times.append(time.perf_counter() - t0)
        res["fit_optimize"] = {"time": min(times), "nfev": int(getattr(result, "nfev", -1))}
        # the same, with the fit restricted to the masked bins switched off (xspec_ds.onoff)
        from xspec_ds import onoff

        if hasattr(onoff, "RESTRICT_TO_MASK"):
            times = []
            onoff.RESTRICT_TO_MASK = False
            try:
                for _ in range(fit_repeats):
                    set_pars(*START.values())
                    t0 = time.perf_counter()
                    fit.optimize(ds)
                    times.append(time.perf_counter() - t0)
            finally:
                onoff.RESTRICT_TO_MASK = True
            res["fit_optimize_unrestricted"] = {"time": min(times)}
        times = []
        for _ in range(fit_repeats):
            set_pars(*START.values())
            t0 = time.perf_counter()
            result = fit.run(ds)
            times.append(time.perf_counter() - t0)
        res["fit_run"] = {
            "time": min(times),
            "nfev": int(result.nfev),
            "stat": float(result.total_stat),
            "success": bool(result.success),
            "index": float(pi.value),
            "amplitude": float(pa.quantity.to_value("cm-2 s-1 keV-1")),
            "index_err": float(pi.error),
            "amplitude_err": float((pa.error * pa.unit).to_value("cm-2 s-1 keV-1")),
        }
        out["modes"]["grouped" if grouped else "ungrouped"] = res
    return out


def run_sherpa(python: str, path: str, repeats: int, fit_repeats: int) -> dict | None:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    cmd = [python, os.path.abspath(__file__), "--sherpa-worker", "--data", path]
    cmd += ["--repeats", str(repeats), "--fit-repeats", str(fit_repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=os.path.dirname(path))
    if proc.returncode != 0:
        print(f"Sherpa worker failed ({python}):\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fmt_t(t) -> str:
    if t is None:
        return "-"
    return f"{t * 1e3:.3f} ms"


def report(xsd: dict, sh: dict | None, args) -> str:
    lines = []
    add = lines.append
    add("xspec_ds vs Sherpa: 3C 273 (Chandra ACIS), power law (ref 1 keV), WSTAT with background, 0.5-7 keV")
    add(f"data: {args.data}")
    add(
        f"python {platform.python_version()}, numpy {np.__version__}, xspec_ds {xsd['version']}, "
        f"Sherpa {sh['version'] if sh else '- (not run)'}; OPENBLAS_NUM_THREADS=1 in both processes"
    )
    add(f"machine: {platform.machine()}, {os.cpu_count()} cores (shared); times = min over repeats")
    add("")
    rows = []
    for mode in ("grouped", "ungrouped"):
        x = xsd["modes"][mode]
        s = sh["modes"][mode] if sh else None
        add(f"== {mode} ({x['n_total']} {'groups' if mode == 'grouped' else 'channels'} in the file) ==")
        same = s is not None and x["mask"] == s["mask"]
        add(
            f"bins used: xspec_ds {x['n_bins']}, Sherpa {s['n_bins'] if s else '-'}; "
            f"identical bin indices: {same if s else '-'}"
        )
        if s is not None and not same:
            add(
                f"  xspec_ds-only {sorted(set(x['mask']) - set(s['mask']))}, Sherpa-only {sorted(set(s['mask']) - set(x['mask']))}"
            )
        add(f"{'index':>7} {'amplitude':>10} {'WSTAT xspec_ds':>20} {'WSTAT Sherpa':>20} {'rel diff':>10}")
        for (index, ampl), wx, k in zip(POINTS, x["stat"], range(len(POINTS))):
            ws = s["stat"][k] if s else None
            rd = f"{abs(wx - ws) / abs(ws):.1e}" if s else "-"
            add(f"{index:7.3f} {ampl:10.3e} {wx:20.10f} {ws if s else '-':>20} {rd:>10}")
        fx = x["fit_run"]
        add("best fit (xspec_ds Fit().run, scipy + covariance; Sherpa levmar + covar):")
        add(f"{'':12} {'index':>10} {'+-':>9} {'amplitude':>12} {'+-':>10} {'WSTAT':>11} {'nfev':>5}")
        add(
            f"{'xspec_ds':12} {fx['index']:10.6f} {fx['index_err']:9.6f} {fx['amplitude']:12.6e} "
            f"{fx['amplitude_err']:10.4e} {fx['stat']:11.6f} {fx['nfev']:5d}"
        )
        if s:
            for method in ("levmar", "neldermead"):
                f = s[f"fit_{method}"]
                err = s["covar"] if method == "levmar" else None
                add(
                    f"{'Sherpa ' + method[:6]:12} {f['index']:10.6f} {err['index_err'] if err else float('nan'):9.6f} "
                    f"{f['amplitude']:12.6e} {err['amplitude_err'] if err else float('nan'):10.4e} "
                    f"{f['stat']:11.6f} {f['nfev']:5d}"
                )
            lev, c = s["fit_levmar"], s["covar"]
            add(
                "rel diff xspec_ds - Sherpa levmar: "
                f"index {abs(fx['index'] - lev['index']) / lev['index']:.1e}, "
                f"amplitude {abs(fx['amplitude'] - lev['amplitude']) / lev['amplitude']:.1e}, "
                f"index err {abs(fx['index_err'] - c['index_err']) / c['index_err']:.1e}, "
                f"amplitude err {abs(fx['amplitude_err'] - c['amplitude_err']) / c['amplitude_err']:.1e}"
            )
        add("")
        rows.append((mode, x, s))

    add("Timings (ms)")
    hdr = f"{'task':58} {'grouped':>11} {'ungrouped':>11}"
    add(hdr)
    add("-" * len(hdr))

    def row(label, get):
        vals = []
        for _, x, s in rows:
            try:
                vals.append(fmt_t(get(x, s)))
            except (TypeError, KeyError):
                vals.append("-")
        add(f"{label:58} {vals[0]:>11} {vals[1]:>11}")

    row("WSTAT after a parameter change: xspec_ds stat_sum()", lambda x, s: x["t_stat"])
    row("WSTAT after a parameter change: Sherpa ui.calc_stat()", lambda x, s: s["t_stat_ui"])
    row("WSTAT after a parameter change: Sherpa Fit.calc_stat()", lambda x, s: s["t_stat_fit"])
    row("fit: xspec_ds Fit().run (scipy, optimise + covariance)", lambda x, s: x["fit_run"]["time"])
    row("fit: xspec_ds Fit().optimize (no errors)", lambda x, s: x["fit_optimize"]["time"])
    row("fit: xspec_ds Fit().optimize, not restricted to the mask", lambda x, s: x["fit_optimize_unrestricted"]["time"])
    row("fit: Sherpa ui.fit() levmar (default; no covariance)", lambda x, s: s["fit_levmar"]["time"])
    row("fit: Sherpa ui.fit() neldermead (no errors)", lambda x, s: s["fit_neldermead"]["time"])
    row("errors: Sherpa ui.covar() at the best fit", lambda x, s: s["covar"]["time"])
    row("fit + errors: Sherpa levmar + covar", lambda x, s: s["fit_levmar"]["time"] + s["covar"]["time"])
    add("")
    add("ratios (Sherpa / xspec_ds, > 1 means xspec_ds is faster):")
    for mode, x, s in rows:
        if s is None:
            continue
        add(
            f"  {mode}: stat {s['t_stat_ui'] / x['t_stat']:.2f} (ui.calc_stat), "
            f"{(s['t_stat_fit'] or float('nan')) / x['t_stat']:.2f} (Fit.calc_stat); "
            f"fit+errors {(s['fit_levmar']['time'] + s['covar']['time']) / x['fit_run']['time']:.2f} "
            f"(levmar+covar vs run), optimise only {s['fit_levmar']['time'] / x['fit_optimize']['time']:.2f} "
            f"(levmar vs optimize)"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--sherpa-python", default=os.environ.get("SHERPA_PYTHON"))
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--fit-repeats", type=int, default=7)
    parser.add_argument("--output", default=None)
    parser.add_argument("--sherpa-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.sherpa_worker:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sherpa_worker(args.data, args.repeats, args.fit_repeats)
        print(json.dumps(res))
        return 0

    sh = None
    if args.sherpa_python:
        sh = run_sherpa(args.sherpa_python, args.data, args.repeats, args.fit_repeats)
    else:
        print("no --sherpa-python / SHERPA_PYTHON: Sherpa skipped", file=sys.stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xsd = xspec_part(args.data, args.repeats, args.fit_repeats)
    text = report(xsd, sh, args)
    print(text)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
