"""Stacking thousands of real netCDF files: ``xs.open_mfdataset`` + ``xs.stack`` + compute (issue 12).

Writes K = 10,000 datasets of N = 100 reco x 200 true bins with ``ds.write(path.nc)`` (netCDF-3,
about 170 kB each; random counts, background, exposure, safe masks and a dense kernel, a
3-interval GTI and models) into a directory that is reused between runs (default
``$TMPDIR/xspec_ds_bench_files``; written once, ~3-5 min). Then, for K = 1,000 and 10,000, a fresh
Python process (so that its peak RSS is its own) times

- ``xs.stack(xs.open_mfdataset(files)).compute()`` (dask threads; wall time per file), and
- ``xarray.open_dataset(p).load()`` on a sample of the same files (per file, before and after),

and reports the ratio and the peak resident memory (``ru_maxrss``) before and after the stack.
For K = 1,000 it checks the result against an independent numpy accumulation over the files
(each read with ``scipy.io.netcdf_file``): counts exact, everything else to 1e-12 relative.

Targets: at most 1.5 ms per file and at most 0.6x the ``xarray.open_dataset(...).load()`` time;
peak memory independent of K.

Run::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_files.py [--dir DIR] [--output benchmarks/results/bench_files.txt]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_RECO, N_TRUE = 100, 200


def write_files(directory: Path, k: int) -> list[Path]:
    import astropy.units as u

    import xspec_ds as xs
    from xspec_ds.gti import GTI

    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"obs{i:05d}.nc" for i in range(k)]
    todo = [i for i, p in enumerate(paths) if not p.exists()]
    if not todo:
        return paths
    e = xs.MapAxis.from_energy_bounds(0.1, 100, N_RECO, unit="TeV")
    et = xs.MapAxis.from_energy_bounds(0.05, 200, N_TRUE, unit="TeV", name="energy_true")
    ds = xs.SpectrumDataset.create(e, et, name="base")
    ds.gti = GTI([0, 1000, 2000] * u.s, [500, 1500, 2500] * u.s, reference_time="2010-01-01")
    ds.models = xs.PowerLawSpectralModel()
    t0 = time.perf_counter()
    for i in todo:
        rng = np.random.default_rng(i)
        m = rng.uniform(0, 1, (N_TRUE, N_RECO))
        ds.data["edisp"].values[:] = m / m.sum(axis=1, keepdims=True) * 0.95
        ds.data["counts"].values[:] = rng.poisson(20, N_RECO)
        ds.data["background"].values[:] = rng.uniform(0, 5, N_RECO)
        ds.data["exposure"].values[:] = rng.uniform(1e8, 1e10, N_TRUE)
        ds.data["mask_safe"].values[:] = rng.uniform(size=N_RECO) < 0.9
        ds.data.attrs["name"] = f"obs{i:05d}"
        ds.write(paths[i], overwrite=True)
    print(f"wrote {len(todo)} files in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return paths


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def xarray_load_ms(paths) -> float:
    import xarray as xr

    t0 = time.perf_counter()
    for p in paths:
        xr.open_dataset(p).load().close()
    return (time.perf_counter() - t0) / len(paths) * 1e3


def independent_stack(paths) -> dict:
    """Sums over files with scipy's netCDF reader and plain numpy (the module docstring's rules)."""
    from scipy.io import netcdf_file

    acc = {}
    for p in paths:
        with netcdf_file(p, "r", mmap=False) as f:
            v = {k: np.array(f.variables[k][:], dtype=float) for k in ("counts", "background", "exposure", "edisp")}
            m = np.array(f.variables["mask_safe"][:]) != 0
        any_safe = float(m.any())
        parts = {
            "counts": np.where(m, v["counts"], 0),
            "background": np.where(m, v["background"], 0),
            "exposure": v["exposure"] * any_safe,
            "num": v["exposure"][:, None] * v["edisp"] * m[None, :],
            "mask_safe": m,
        }
        for k, a in parts.items():
            acc[k] = a if k not in acc else (acc[k] | a if k == "mask_safe" else acc[k] + a)
    den = acc.pop("exposure")
    num = acc.pop("num")
    acc["exposure"] = den
    acc["edisp"] = np.where(den[:, None] > 0, num / np.where(den > 0, den, 1)[:, None], 0)
    return acc


def measure(directory: Path, k: int, sample: int, check: bool) -> dict:
    import xspec_ds as xs

    paths = sorted(directory.glob("obs*.nc"))[:k]
    sample_paths = paths[:: max(1, len(paths) // sample)][:sample]
    xarray_load_ms(sample_paths[:10])  # warm-up (imports)
    before = xarray_load_ms(sample_paths)
    rss0 = rss_mb()
    t0 = time.perf_counter()
    obs = xs.open_mfdataset(paths)
    t_open = time.perf_counter() - t0
    stacked = xs.stack(obs).compute()
    t_total = time.perf_counter() - t0
    peak = rss_mb()
    after = xarray_load_ms(sample_paths)
    out = {
        "k": len(paths),
        "open_s": t_open,
        "total_s": t_total,
        "ms_per_file": t_total / len(paths) * 1e3,
        "xarray_ms": min(before, after),
        "xarray_ms_before_after": [before, after],
        "rss_before_mb": rss0,
        "peak_rss_mb": peak,
        "files_per_task": obs["counts"].data.chunks[0][0],
    }
    if check:
        ref = independent_stack(paths)
        counts_equal = bool(np.array_equal(stacked["counts"].values, ref["counts"]))
        rel = max(
            float(np.max(np.abs(stacked[v].values - ref[v]) / np.maximum(np.abs(ref[v]), 1e-300)))
            for v in ("background", "exposure", "edisp")
        )
        out["check"] = {
            "counts_exact": counts_equal,
            "mask_equal": bool(np.array_equal(stacked["mask_safe"].values, ref["mask_safe"])),
            "max_rel_diff": rel,
        }
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "xspec_ds_bench_files")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--sample", type=int, default=300, help="files timed with xarray.open_dataset().load()")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.dir, args.measure, args.sample, args.check)))
        return
    write_files(args.dir, max(args.sizes))
    import dask

    import xspec_ds as xs

    lines = [
        "# bench_files: xs.open_mfdataset + xs.stack + compute on netCDF files written by ds.write",
        f"# python {platform.python_version()}, xspec_ds {xs.__version__}, dask {dask.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} cores, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}",
        f"# files: N = {N_RECO} reco x {N_TRUE} true bins, {args.dir} (each process measured on its own)",
        "",
        f"{'K':>6} {'files/task':>10} {'open [s]':>9} {'total [s]':>9} {'ms/file':>8} "
        f"{'xr load ms/file':>15} {'ratio':>6} {'RSS before':>10} {'peak RSS':>9}  check vs numpy",
    ]
    for k in args.sizes:
        cmd = [sys.executable, __file__, "--dir", str(args.dir), "--measure", str(k), "--sample", str(args.sample)]
        if k == min(args.sizes):
            cmd.append("--check")
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        check = r.get("check")
        note = (
            f"counts exact: {check['counts_exact']}, masks equal: {check['mask_equal']}, "
            f"max rel diff {check['max_rel_diff']:.1e}"
            if check
            else "-"
        )
        lines.append(
            f"{r['k']:>6} {r['files_per_task']:>10} {r['open_s']:>9.2f} {r['total_s']:>9.2f} {r['ms_per_file']:>8.3f} "
            f"{r['xarray_ms']:>15.3f} {r['ms_per_file'] / r['xarray_ms']:>6.2f} "
            f"{r['rss_before_mb']:>8.0f}MB {r['peak_rss_mb']:>7.0f}MB  {note}"
        )
        print(lines[-1], file=sys.stderr)
    lines += [
        "",
        "xr load: xarray.open_dataset(p).load() per file on a sample (the lower of before/after the stack);",
        "ratio = ms/file / xr load. Targets: <= 1.5 ms/file, ratio <= 0.6, peak RSS independent of K.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
