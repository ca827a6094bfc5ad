"""Stacking benchmark: Gammapy ``Datasets.stack_reduce()`` vs ``xs.stack``, and xs.stack at scale.

Part 1 (side by side, one run): K = 10, 100, 1000 datasets of 100 reco and 100 true energy
bins (0.1-100 TeV), random counts, background, safe masks (a random low-energy threshold per
dataset), exposure, a random dispersion kernel (rows sum to <= 1) and one GTI interval each.
The *same arrays* go to Gammapy 2.1 (``SpectrumDataset`` with an ``EDispKernelMap`` whose
exposure map holds the exposure) and to xspec_ds (a list of ``SpectrumDataset``). Printed: the
time of ``Datasets(...).stack_reduce()`` and of ``xs.stack(list)`` (minimum over repeats;
Gammapy's K = 1000 runs once, ~60 s; ``--quick`` skips it), their ratio, and the largest
relative difference of the stacked counts, exposure and kernel (Gammapy stores the kernel's
exposure map in float32, so ~1e-7 is expected there).

Part 2 (xs.stack alone): K = 10,000 and 100,000 such datasets as ONE ``xarray.Dataset`` with an
``obs`` dimension, dask-backed and chunked along ``obs`` (``--chunk`` datasets per chunk,
default 1000: the edisp chunk is 1000 x 100 x 100 x 8 B = 80 MB). The inputs are generated
lazily inside the dask graph (they would be 8 GB for K = 100,000), so the time includes drawing
the random inputs; the ``inputs only`` column is the time to generate and sum the same inputs
without stacking (a floor). Each K runs in a fresh subprocess and reports the peak resident
memory of that process (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and the resident memory
before the computation; memory bounded by the chunk size means the peak does not grow with K.

Run::

    python benchmarks/bench_stack.py                 # everything (~2-3 min, Gammapy K=1000 ~60 s)
    python benchmarks/bench_stack.py --quick         # without Gammapy K = 1000
    python benchmarks/bench_stack.py --output benchmarks/results/bench_stack.txt

Targets (issue 3): K = 1000 at least 300x faster than Gammapy; K = 100,000 under 60 s with
memory bounded by the chunk size, not by K.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import resource
import subprocess
import sys
import time
import warnings

import numpy as np

N_RECO = 100
N_TRUE = 100


# ------------------------------------------------------------------------------------------------
# inputs
# ------------------------------------------------------------------------------------------------
def edges(n: int) -> np.ndarray:
    return np.geomspace(0.1, 100.0, n + 1)


def base_kernel() -> np.ndarray:
    """A Gaussian-in-log-energy dispersion (15 % resolution) between the true and reco bins."""
    lt = np.log(np.sqrt(edges(N_TRUE)[:-1] * edges(N_TRUE)[1:]))
    lr = np.log(edges(N_RECO))
    from scipy.special import ndtr

    cdf = ndtr((lr[None, :] - lt[:, None]) / 0.15)
    return np.diff(cdf, axis=1)


KERNEL = base_kernel()


def random_arrays(rng, K: int, with_gti: bool = True) -> dict:
    """Arrays with a leading obs axis: the content of K datasets (kernel: the base kernel with
    random per-row efficiencies in [0.5, 1], so every dataset has its own kernel)."""
    threshold = rng.integers(0, 20, K)
    out = {
        "counts": rng.poisson(20, (K, N_RECO)).astype(float),
        "background": rng.uniform(0, 5, (K, N_RECO)),
        "mask_safe": np.arange(N_RECO)[None, :] >= threshold[:, None],
        "exposure": rng.uniform(1e8, 1e10, (K, N_TRUE)),
        "edisp": KERNEL[None, :, :] * rng.uniform(0.5, 1.0, (K, N_TRUE, 1)),
    }
    if with_gti:
        out.update(random_gti(rng, K))
    return out


def random_gti(rng, K: int) -> dict:
    t0 = rng.uniform(0, 1e9, K)
    return {"gti_start": t0, "gti_stop": t0 + rng.uniform(600, 1800, K)}


def xs_datasets(a: dict):
    import astropy.units as u

    import xspec_ds as xs
    from xspec_ds.gti import GTI

    e_reco = xs.MapAxis.from_energy_edges(edges(N_RECO) * u.TeV, name="energy")
    e_true = xs.MapAxis.from_energy_edges(edges(N_TRUE) * u.TeV, name="energy_true")
    template = xs.SpectrumDataset.create(e_reco, e_true, name="template")
    out = []
    for k in range(a["counts"].shape[0]):
        d = template.copy(name=f"obs{k}")
        for v in ("counts", "background", "mask_safe", "exposure", "edisp"):
            d.data[v].values = a[v][k]
        d.gti = GTI([a["gti_start"][k]] * u.s, [a["gti_stop"][k]] * u.s, "2000-01-01")
        out.append(d)
    return out


def gp_datasets(a: dict):
    import astropy.units as u
    from gammapy.data import GTI as GPGTI
    from gammapy.datasets import SpectrumDataset
    from gammapy.irf import EDispKernel, EDispKernelMap
    from gammapy.maps import MapAxis, RegionGeom, RegionNDMap

    ax = MapAxis.from_energy_edges(edges(N_RECO) * u.TeV, name="energy")
    axt = MapAxis.from_energy_edges(edges(N_TRUE) * u.TeV, name="energy_true")
    geom = RegionGeom.create("icrs;circle(83.63,22.01,0.1)", axes=[ax])
    geomt = RegionGeom.create("icrs;circle(83.63,22.01,0.1)", axes=[axt])
    out = []
    for k in range(a["counts"].shape[0]):
        edisp = EDispKernelMap.from_edisp_kernel(EDispKernel(axes=[axt, ax], data=a["edisp"][k]), geom=geom)
        edisp.exposure_map.data = a["exposure"][k].reshape(-1, 1, 1, 1)
        out.append(
            SpectrumDataset(
                counts=RegionNDMap.from_geom(geom, data=a["counts"][k][:, None, None]),
                background=RegionNDMap.from_geom(geom, data=a["background"][k][:, None, None]),
                exposure=RegionNDMap.from_geom(geomt, data=a["exposure"][k][:, None, None], unit="m2 s"),
                edisp=edisp,
                mask_safe=RegionNDMap.from_geom(geom, data=a["mask_safe"][k][:, None, None], dtype=bool),
                gti=GPGTI.create([a["gti_start"][k]] * u.s, [a["gti_stop"][k]] * u.s, reference_time="2000-01-01"),
                name=f"obs{k}",
            )
        )
    return out


def rel(a, b) -> float:
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    scale = np.maximum(np.abs(b), 1e-12 * np.abs(b).max())
    return float(np.max(np.abs(a - b) / scale))


def best_of(fn, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


# ------------------------------------------------------------------------------------------------
# part 1
# ------------------------------------------------------------------------------------------------
def part1(ks, quick: bool) -> list[dict]:
    import xspec_ds as xs

    try:
        import gammapy
        from gammapy.datasets import Datasets as GPDatasets
    except ImportError:
        gammapy = None
    rows = []
    for K in ks:
        a = random_arrays(np.random.default_rng(K), K)
        ours = xs_datasets(a)
        stacked = xs.stack(ours)
        t_xs = best_of(lambda: xs.stack(ours), 7 if K <= 100 else 3)
        row = {"K": K, "xs": t_xs, "gp": None, "diff": None}
        if gammapy is not None and not (quick and K >= 1000):
            gds = GPDatasets(gp_datasets(a))
            t = time.perf_counter()
            g = gds.stack_reduce()
            t_gp = time.perf_counter() - t
            if K < 1000:
                t_gp = min(t_gp, best_of(gds.stack_reduce, 2))
            row["gp"] = t_gp
            row["diff"] = max(
                rel(stacked.counts.values, g.counts.data),
                rel(stacked.exposure.values, g.exposure.data),
                rel(stacked.edisp.values, g.edisp.get_edisp_kernel().data),
            )
        rows.append(row)
        print(f"  K={K}: xs {t_xs:.4f} s, gammapy {row['gp']}", file=sys.stderr, flush=True)
    return rows


# ------------------------------------------------------------------------------------------------
# part 2 (runs in a subprocess per K)
# ------------------------------------------------------------------------------------------------
def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _seeded(fn, seed: int, *args):
    return fn(np.random.default_rng(seed), *args)


def lazy_obs_dataset(K: int, chunk: int):
    """One xarray.Dataset with an obs dimension; each chunk of datasets is drawn lazily by one task."""
    import operator

    import astropy.units as u
    import dask
    import dask.array as da
    import xarray as xr

    import xspec_ds as xs

    sizes = [min(chunk, K - start) for start in range(0, K, chunk)]
    # the big arrays of a chunk come from one task; the GTIs (read separately, as from files) from another
    # (seeds, not Generator objects, go into the graph: every evaluation draws the same numbers)
    blocks = [dask.delayed(_seeded)(random_arrays, i, n, False) for i, n in enumerate(sizes)]
    gtis = [dask.delayed(_seeded)(random_gti, 10**6 + i, n) for i, n in enumerate(sizes)]

    def lazy(what, shape, dtype):
        source = gtis if what.startswith("gti") else blocks
        parts = [
            da.from_delayed(dask.delayed(operator.getitem)(b, what), shape=(n, *shape), dtype=dtype)
            for b, n in zip(source, sizes)
        ]
        return da.concatenate(parts)

    e_reco = xs.MapAxis.from_energy_edges(edges(N_RECO) * u.TeV, name="energy")
    e_true = xs.MapAxis.from_energy_edges(edges(N_TRUE) * u.TeV, name="energy_true")
    coords = {**e_reco.coords(), **e_true.coords()}
    gti_attrs = {"units": "s", "time_reference": "2000-01-01T00:00:00.000"}
    data = {
        "counts": (("obs", "energy"), lazy("counts", (N_RECO,), float), {"units": ""}),
        "background": (("obs", "energy"), lazy("background", (N_RECO,), float), {"units": ""}),
        "mask_safe": (("obs", "energy"), lazy("mask_safe", (N_RECO,), bool), {}),
        "exposure": (("obs", "energy_true"), lazy("exposure", (N_TRUE,), float), {"units": "m2 s"}),
        "edisp": (("obs", "energy_true", "energy"), lazy("edisp", (N_TRUE, N_RECO), float), {"units": ""}),
        "gti_start": (("obs",), lazy("gti_start", (), float), gti_attrs),
        "gti_stop": (("obs",), lazy("gti_stop", (), float), gti_attrs),
    }
    return xr.Dataset({k: xr.Variable(*v) for k, v in data.items()}, coords=coords)


def part2_child(K: int, chunk: int) -> dict:
    import dask

    import xspec_ds as xs

    obs = lazy_obs_dataset(K, chunk)
    dask.config.set(scheduler="threads", num_workers=2)
    rss0 = rss_mb()
    t = time.perf_counter()
    sums = [obs[v].data.sum() for v in ("counts", "background", "exposure", "edisp")]
    floor = dask.compute(*sums, (obs["counts"].data * obs["mask_safe"].data).sum())
    t_floor = time.perf_counter() - t
    t = time.perf_counter()
    out = xs.stack(obs, name="stacked", compute=True)
    t_stack = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "K": K,
        "chunk": chunk,
        "t_stack": t_stack,
        "t_inputs": t_floor,
        "rss0": rss0,
        "peak": peak,
        "chunk_mb": chunk * N_TRUE * N_RECO * 8 / 2**20,
        "safe_counts_check": float(floor[-1]),
        "safe_counts": float(out["counts"].sum()),
        "n_gti": int(out.sizes["gti"]),
    }


def part2(ks, chunk: int) -> list[dict]:
    rows = []
    for K in ks:
        cmd = [sys.executable, __file__, "--child", str(K), "--chunk", str(chunk)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(f"  K={K}: {rows[-1]['t_stack']:.1f} s, peak {rows[-1]['peak']:.0f} MB", file=sys.stderr, flush=True)
    return rows


# ------------------------------------------------------------------------------------------------
def report(rows1, rows2, chunk) -> str:
    import dask

    import xspec_ds as xs

    try:
        import gammapy

        gp_version = gammapy.__version__
    except ImportError:
        gp_version = "not installed"
    lines = [
        "bench_stack: Gammapy Datasets.stack_reduce() vs xs.stack",
        f"python {platform.python_version()}, xspec_ds {xs.__version__}, gammapy {gp_version}, dask {dask.__version__}, "
        f"{platform.machine()}",
        f"datasets of {N_RECO} reco x {N_TRUE} true bins, random masks/exposure/kernels, one GTI each",
        "",
        "Part 1: K datasets in memory (list of SpectrumDataset), same arrays to both libraries",
        f"{'K':>6} {'gammapy [s]':>12} {'xs.stack [s]':>13} {'speed-up':>9} {'max rel diff':>13}",
    ]
    for r in rows1:
        gp = f"{r['gp']:12.3f}" if r["gp"] is not None else f"{'-':>12}"
        ratio = f"{r['gp'] / r['xs']:8.0f}x" if r["gp"] is not None else f"{'-':>9}"
        diff = f"{r['diff']:13.1e}" if r["diff"] is not None else f"{'-':>13}"
        lines.append(f"{r['K']:>6} {gp} {r['xs']:13.4f} {ratio} {diff}")
    lines += [
        "",
        f"Part 2: xs.stack on one lazy obs-Dataset, dask threads (2 workers), {chunk} datasets per chunk",
        f"(edisp chunk {rows2[0]['chunk_mb']:.0f} MB; inputs generated inside the graph; peak = process max RSS)"
        if rows2
        else "",
        f"{'K':>7} {'xs.stack [s]':>13} {'inputs only [s]':>16} {'RSS before [MB]':>16} {'peak RSS [MB]':>14}",
    ]
    for r in rows2:
        check = abs(r["safe_counts"] - r["safe_counts_check"]) / r["safe_counts_check"]
        lines.append(
            f"{r['K']:>7} {r['t_stack']:13.2f} {r['t_inputs']:16.2f} {r['rss0']:16.0f} {r['peak']:14.0f}"
            f"   (safe counts vs direct sum: {check:.1e}; {r['n_gti']} GTI intervals after union)"
        )
    lines += [
        "",
        "Targets: K=1000 >= 300x faster than Gammapy; K=100,000 < 60 s with peak memory independent of K.",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="skip Gammapy at K=1000 (~60 s)")
    p.add_argument("--ks", type=int, nargs="+", default=[10, 100, 1000])
    p.add_argument("--big", type=int, nargs="*", default=[10_000, 100_000])
    p.add_argument("--chunk", type=int, default=1000)
    p.add_argument("--output", default=None)
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        print(json.dumps(part2_child(args.child, args.chunk)))
        return
    logging.getLogger("gammapy").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    rows1 = part1(args.ks, args.quick)
    rows2 = part2(args.big, args.chunk)
    text = report(rows1, rows2, args.chunk)
    print(text)
    if args.output:
        from xspec_ds.io.atomic import atomic_write_text

        atomic_write_text(args.output, text + "\n", overwrite=True)


if __name__ == "__main__":
    main()
