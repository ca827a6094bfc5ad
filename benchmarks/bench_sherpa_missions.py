"""Folded model counts of the other missions' OGIP spectra: xspec_ds vs Sherpa (issue 13).

For every type I set of ``/work/shared/data/ogip-missions`` that Sherpa 4.19 reads (with the
linked files given explicitly), a power law (``powlaw1d``, reference 100 keV, index 1.8,
amplitude 0.01 photons cm-2 s-1 keV-1) is folded through the response by both libraries, channel
by channel, ungrouped and unfiltered (Sherpa ``ungroup(); notice()``, ``DataPHA.eval_model``;
xspec_ds ``npred_signal`` with ``group=False``). The script prints the largest relative
difference over channels with a prediction above 1e-6 of the maximum, the totals and the
predictions in four channels, which the tests record as constants. The Fermi GBM type II files
are not in the list: Sherpa 4.19 cannot read them ("missing the EXPOSURE keyword").

Run (Sherpa in its own interpreter, never a dependency)::

    .venv/bin/python benchmarks/bench_sherpa_missions.py --sherpa-python /path/to/sherpa/bin/python \\
        --output benchmarks/results/bench_sherpa_missions.txt
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import warnings

import numpy as np

MISSIONS = "/work/shared/data/ogip-missions"
SETS = {
    "ogip_powerlaw": ("ogip_powerlaw.pha", {"bkg": "ogip_powerlaw.bak", "rmf": "ogip_powerlaw.rsp"}),
    "swift-xrt": (
        "swift-xrt/interval0wtsource.pi",
        {"bkg": "swift-xrt/interval0wtback.pi", "arf": "swift-xrt/xrt.arf", "rmf": "swift-xrt/xrt.rmf"},
    ),
    "swift-bat": ("swift-bat/gbm_bat_joint_BAT.pha", {"rmf": "swift-bat/gbm_bat_joint_BAT.rsp"}),
}
CHANNELS = (5, 20, 40, 70)
INDEX, AMPL, REF = 1.8, 0.01, 100.0  # keV


def sherpa_worker(root: str) -> dict:
    import logging

    from sherpa import __version__ as version
    from sherpa.astro import ui

    logging.getLogger("sherpa").setLevel(logging.ERROR)
    out = {"version": version, "sets": {}}
    for name, (pha, links) in SETS.items():
        ui.clean()
        ui.load_pha(os.path.join(root, pha))
        if "rmf" in links:
            ui.load_rmf(os.path.join(root, links["rmf"]))
        if "arf" in links:
            ui.load_arf(os.path.join(root, links["arf"]))
        if "bkg" in links:
            ui.load_bkg(os.path.join(root, links["bkg"]))
        ui.ungroup()
        ui.notice()
        ui.set_source(ui.powlaw1d.p1)
        p1 = ui.get_model_component("p1")
        p1.gamma, p1.ampl, p1.ref = INDEX, AMPL, REF
        d = ui.get_data()
        folded = np.asarray(d.eval_model(ui.get_model()), dtype=float)
        out["sets"][name] = folded.tolist()
    return out


def xspec_part(root: str) -> dict:
    import xspec_ds as xs

    out = {}
    for name, (pha, links) in SETS.items():
        kw = {k: os.path.join(root, v) for k, v in links.items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = xs.SpectrumDatasetOnOff.read(os.path.join(root, pha), group=False, **kw)
        ds.models = xs.PowerLawSpectralModel(index=INDEX, amplitude=f"{AMPL} cm-2 s-1 keV-1", reference=f"{REF} keV")
        out[name] = ds.npred_signal().values
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=MISSIONS)
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
        proc = subprocess.run(
            [args.sherpa_python, os.path.abspath(__file__), "--sherpa-worker", "--data", args.data],
            capture_output=True,
            text=True,
        )
        if proc.returncode == 0:
            sherpa = json.loads(proc.stdout.strip().splitlines()[-1])
        else:
            print(f"Sherpa worker failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
    ours = xspec_part(args.data)
    lines = [
        "Folded power-law counts (index 1.8, 0.01 ph cm-2 s-1 keV-1 at 100 keV), xspec_ds vs "
        f"Sherpa {sherpa['version'] if sherpa else '- (not run)'}",
        f"{'set':14} {'channels':>8} {'total xspec_ds':>16} {'total Sherpa':>16} {'max rel diff':>12}  "
        + "  ".join(f"ch{c} (Sherpa)" for c in CHANNELS),
    ]
    for name, x in ours.items():
        if sherpa is None:
            lines.append(f"{name:14} {x.size:8d} {x.sum():16.10g} {'-':>16}")
            continue
        s = np.asarray(sherpa["sets"][name])
        big = s > 1e-6 * s.max()
        rel = np.max(np.abs(x[big] / s[big] - 1))
        lines.append(
            f"{name:14} {x.size:8d} {x.sum():16.10g} {s.sum():16.10g} {rel:12.2e}  "
            + "  ".join(f"{s[c]:.10g}" for c in CHANNELS)
        )
    text = "\n".join(lines)
    print(text)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
