"""Batched fits: `xs.fit_batch` vs a loop of `xs.Fit`, a hand-written vectorised Newton floor and
Gammapy's loop, on the same K power-law spectra (issue 9).

K spectra of N = 30 reco bins (0.1-100 TeV, log) and 60 true bins (0.05-200 TeV, log), a shared
Gaussian-in-ln(E) dispersion (`xs.irf.edisp_from_gauss`, sigma 0.1), a shared exposure, a flat
background of 1 count per bin, counts drawn from power laws with index 2.0-3.0 and amplitude
0.5-2 x 1e-11 cm-2 s-1 TeV-1 and an exposure of 1e8 m2 s (about 300 counts per spectrum, the
median; ``--exposure`` changes it). All fits
start from index 2, amplitude 1e-12 and free index and amplitude.

Printed (all ratios from this one run; ``OPENBLAS_NUM_THREADS=1`` is set before numpy loads):

1. `xs.fit_batch` on all K (best of ``--repeat``), with its success fraction and iterations;
2. the floor: Fisher-scoring Newton written inline on the same (K, N) arrays (analytic power-law
   integrals, one shared matrix product per step, no step control, masks or flags), which is what
   a user would write by hand for this one model;
3. a loop of `xs.Fit` over ``--loop`` spectra, scaled to K;
4. Gammapy's ``Fit`` loop over ``--gammapy`` spectra, scaled to K (skipped if not installed);
5. agreement of `fit_batch` with the scalar fits (max |difference| / error, error ratios).

Run::

    python benchmarks/bench_batch.py --output benchmarks/results/bench_batch.txt
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import astropy.units as u  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

import xspec_ds as xs  # noqa: E402
from xspec_ds.irf import edisp_from_gauss  # noqa: E402


def simulate(k: int, seed: int = 0, n_reco: int = 30, n_true: int = 60, exposure_m2s: float = 1e8) -> xr.Dataset:
    """K power-law spectra along ``obs`` with shared responses (exposure in m2 s)."""
    rng = np.random.default_rng(seed)
    e_reco = xs.MapAxis.from_energy_bounds("0.1 TeV", "100 TeV", n_reco)
    e_true = xs.MapAxis.from_energy_bounds("0.05 TeV", "200 TeV", n_true, name="energy_true")
    base = xs.SpectrumDataset.create(e_reco, e_true, name="template")
    base.exposure = np.full(n_true, exposure_m2s) * u.Unit("m2 s")
    base.edisp = edisp_from_gauss(e_true, e_reco, sigma=0.1).values
    base.mask_safe = np.ones(n_reco, bool)
    data = base.data.drop_vars(["counts", "background"])
    edges = e_true.edges.to_value("TeV")
    index = rng.uniform(2.0, 3.0, k)
    amp = rng.uniform(0.5, 2.0, k) * 1e-11
    g = 1 - index[:, None]
    flux = amp[:, None] / g * (edges[1:] ** g - edges[:-1] ** g)
    exposure_cm2s = exposure_m2s * 1e4
    mu = flux * exposure_cm2s @ base.edisp.values + 1.0
    counts = rng.poisson(mu).astype(float)
    data["counts"] = (("obs", "energy"), counts)
    data["background"] = (("obs", "energy"), np.ones((k, n_reco)))
    data = data.assign_coords(obs=np.arange(k))
    data.attrs["true_index"] = "uniform(2, 3)"
    return data


def newton_floor(data: xr.Dataset, n_iter: int = 8):
    """Hand-written Fisher-scoring Newton for a power law on (K, N) arrays (the floor)."""
    counts = data["counts"].values
    bkg = data["background"].values
    edisp = data["edisp"].values
    exposure = data["exposure"].values * 1e4  # m2 s -> cm2 s
    e = np.append(data["energy_true_min"].values, data["energy_true_max"].values[-1])
    lo, hi = e[:-1], e[1:]
    k = counts.shape[0]
    index = np.full(k, 2.0)
    amp = np.full(k, 1e-12)
    g = 1 - index[:, None]
    signal = ((amp[:, None] * (hi**g - lo**g) / g * exposure) @ edisp).sum(1)
    amp = amp * np.clip((counts - bkg).sum(1) / signal, 1e-6, 1e6)  # norm matched to the excess
    for _ in range(n_iter):
        g = 1 - index[:, None]
        unit = (hi**g - lo**g) / g
        dunit = -((hi**g * (np.log(hi) - 1 / g)) - (lo**g * (np.log(lo) - 1 / g))) / g
        mu_sig = (amp[:, None] * unit * exposure) @ edisp
        j_amp = (unit * exposure) @ edisp
        j_idx = (amp[:, None] * dunit * exposure) @ edisp
        mu = mu_sig + bkg
        w = 2 * (1 - counts / mu)
        fw = 2 / mu
        grad = np.stack([(w * j_idx).sum(1), (w * j_amp).sum(1)], 1)
        jac = np.stack([j_idx, j_amp], 1)
        fisher = np.einsum("kpn,kn,kqn->kpq", jac, fw, jac)
        step = np.linalg.solve(fisher, grad[..., None])[..., 0]
        index = np.clip(index - step[:, 0], 0.5, 5.0)
        amp = np.abs(amp - step[:, 1])
    cov = 2 * np.linalg.inv(fisher)
    return index, amp, np.sqrt(cov[:, 0, 0]), np.sqrt(cov[:, 1, 1])


def start_model():
    return xs.PowerLawSpectralModel(index=2.0, amplitude="1e-12 cm-2 s-1 TeV-1")


def scalar_loop(data: xr.Dataset, n: int):
    out = []
    t0 = time.perf_counter()
    for i in range(n):
        ds = xs.SpectrumDataset.from_xarray(data.isel(obs=i).drop_vars("obs"), validate=False)
        model = start_model()
        ds.models = xs.SkyModel(model, name="src")
        xs.Fit().run(ds)
        out.append((model.index.value, model.index.error, model.amplitude.value, model.amplitude.error))
    return time.perf_counter() - t0, np.array(out)


def gammapy_loop(data: xr.Dataset, n: int):
    try:
        from gammapy.datasets import SpectrumDataset as GDS
        from gammapy.irf import EDispKernel, EDispKernelMap
        from gammapy.maps import MapAxis, RegionGeom, RegionNDMap
        from gammapy.modeling import Fit as GFit
        from gammapy.modeling.models import PowerLawSpectralModel, SkyModel
    except ImportError:
        return None
    logging.getLogger("gammapy").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    er = np.append(data["energy_min"].values, data["energy_max"].values[-1])
    et = np.append(data["energy_true_min"].values, data["energy_true_max"].values[-1])
    e_reco = MapAxis.from_edges(er, unit="TeV", name="energy", interp="log")
    e_true = MapAxis.from_edges(et, unit="TeV", name="energy_true", interp="log")
    geom = RegionGeom.create("icrs;circle(0, 0, 0.1)", axes=[e_reco])
    geom_t = RegionGeom.create("icrs;circle(0, 0, 0.1)", axes=[e_true])
    exposure = RegionNDMap.from_geom(geom_t, unit="m2 s")
    exposure.data[:, 0, 0] = data["exposure"].values
    kernel = EDispKernel(axes=[e_true, e_reco], data=data["edisp"].values)
    edisp = EDispKernelMap.from_edisp_kernel(kernel, geom=geom.to_image().to_cube([e_true]))
    t0 = time.perf_counter()
    for i in range(n):
        counts = RegionNDMap.from_geom(geom)
        counts.data[:, 0, 0] = data["counts"].values[i]
        bkg = RegionNDMap.from_geom(geom)
        bkg.data[:, 0, 0] = data["background"].values[i]
        ds = GDS(counts=counts, background=bkg, exposure=exposure, edisp=edisp, name=f"g{i}")
        ds.models = SkyModel(PowerLawSpectralModel(index=2.0, amplitude="1e-12 cm-2 s-1 TeV-1"), name="src")
        GFit().run([ds])
    return time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-k", type=int, default=10_000)
    parser.add_argument("--loop", type=int, default=300, help="spectra in the xs.Fit loop (scaled to K)")
    parser.add_argument("--gammapy", type=int, default=100, help="spectra in the Gammapy loop (scaled to K)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--exposure", type=float, default=1e8, help="exposure per spectrum, m2 s")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    lines = []

    def say(s=""):
        print(s)
        lines.append(s)

    data = simulate(args.k, exposure_m2s=args.exposure)
    model = start_model()
    t_batch = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        res = xs.fit_batch(data, model)
        t_batch.append(time.perf_counter() - t0)
    t_batch = min(t_batch)
    t_floor = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        floor = newton_floor(data)
        t_floor.append(time.perf_counter() - t0)
    t_floor = min(t_floor)
    t_loop, loop = scalar_loop(data, args.loop)
    t_loop_k = t_loop * args.k / args.loop
    t_gp = gammapy_loop(data, args.gammapy)
    t_gp_k = None if t_gp is None else t_gp * args.k / args.gammapy

    n = args.loop
    d_idx = np.abs(res["index"].values[:n] - loop[:, 0]) / loop[:, 1]
    d_amp = np.abs(res["amplitude"].values[:n] - loop[:, 2]) / loop[:, 3]
    r_idx = np.abs(res["index_err"].values[:n] / loop[:, 1] - 1)
    r_amp = np.abs(res["amplitude_err"].values[:n] / loop[:, 3] - 1)
    f_idx = np.abs(res["index"].values - floor[0]) / res["index_err"].values

    say(f"Batched power-law fits, K = {args.k} spectra, N = 30 reco / 60 true bins, Cash, shared Gaussian edisp")
    say(f"counts per spectrum: median {np.median(data['counts'].values.sum(1)):.0f}, exposure {args.exposure:g} m2 s")
    say(f"python {platform.python_version()}, numpy {np.__version__}, xspec_ds {xs.__version__}, {platform.machine()}")
    say(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}; one process on a shared 2-core machine")
    say("")
    say(f"{'method':<38}{'time K [s]':>12}{'per spectrum [us]':>20}{'vs fit_batch':>14}")
    rows = [
        ("xs.fit_batch", t_batch),
        ("numpy Newton floor (8 Fisher steps)", t_floor),
        (f"loop of xs.Fit ({args.loop} timed, scaled)", t_loop_k),
    ]
    if t_gp_k is not None:
        rows.append((f"Gammapy Fit loop ({args.gammapy} timed, scaled)", t_gp_k))
    for label, t in rows:
        say(f"{label:<38}{t:>12.3f}{1e6 * t / args.k:>20.1f}{t / t_batch:>13.1f}x")
    say("")
    say(
        f"fit_batch: success {res.success.values.mean():.4f}, refitted {int(res.refit.values.sum())}, "
        f"iterations median {np.median(res.n_iter.values):.0f} max {res.n_iter.values.max()}"
    )
    say(
        f"speed-up over the xs.Fit loop: {t_loop_k / t_batch:.0f}x (target >= 30x); "
        f"time / floor: {t_batch / t_floor:.2f} (target <= 5)"
    )
    say(
        f"agreement with xs.Fit on {n} spectra: max |d index|/err {d_idx.max():.2e}, "
        f"max |d amplitude|/err {d_amp.max():.2e}; max |err ratio - 1| index {r_idx.max():.2e}, "
        f"amplitude {r_amp.max():.2e}"
    )
    say(f"floor vs fit_batch: max |d index|/err {np.nanmax(f_idx):.2e}")
    if args.output:
        with open(args.output, "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
