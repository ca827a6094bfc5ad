"""`xs.fit_batch` on a lazily opened, chunked Dataset on a 2-worker dask.distributed LocalCluster.

The spectra of `bench_batch.simulate` (N = 30 reco / 60 true bins, power laws, shared Gaussian
dispersion) are written once to one netCDF file per K, opened lazily with
``xarray.open_dataset(..., chunks={"obs": CHUNK})`` and fitted with `xs.fit_batch` under a
``Client`` of a ``LocalCluster(n_workers=2, threads_per_worker=1)``: one task per chunk. Each K runs
in a fresh subprocess whose peak resident memory (``ru_maxrss``, this process and its worker
threads: ``processes=False``) is reported, so the memory for K = 100,000 can be compared with a
smaller K: it should not grow with K (only the (K, P) results do).

Run::

    python benchmarks/bench_batch_dask.py --output benchmarks/results/bench_batch_dask.txt
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

CHUNK = 10_000


def child(k: int, path: str, chunk: int) -> dict:
    import resource

    import distributed
    import numpy as np
    import xarray as xr

    import xspec_ds as xs

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_batch import simulate

    if not Path(path).exists():
        simulate(k, seed=1).to_netcdf(path)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster,
        distributed.Client(cluster),
    ):
        lazy = xr.open_dataset(path, chunks={"obs": chunk})
        t0 = time.perf_counter()
        res = xs.fit_batch(lazy, xs.PowerLawSpectralModel(index=2.0, amplitude="1e-12 cm-2 s-1 TeV-1"))
        elapsed = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "k": k,
        "chunks": int(np.ceil(k / chunk)),
        "seconds": elapsed,
        "success": float(res.success.values.mean()),
        "refit": int(res.refit.values.sum()),
        "peak_rss_mb": rss / 1024,
        "rss_before_fit_mb": rss0 / 1024,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--chunk", type=int, default=CHUNK)
    parser.add_argument("--output", default=None)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1], int(args.child[2]))))
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in args.sizes:
            path = str(Path(tmp) / f"spectra_{k}.nc")
            # write in one subprocess, fit in a fresh one (so the peak memory is the fit's)
            for _ in range(2):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(k), path, str(args.chunk)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    lines = [
        f"fit_batch on a lazily opened netCDF file (chunks of {args.chunk} along obs), 2-worker LocalCluster",
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}; processes=False; shared 2-core machine",
        "",
        f"{'K':>8}{'tasks':>7}{'time [s]':>10}{'success':>9}{'refit':>7}{'peak RSS [MB]':>15}{'RSS before fit':>16}",
    ]
    for r in rows:
        lines.append(
            f"{r['k']:>8}{r['chunks']:>7}{r['seconds']:>10.2f}{r['success']:>9.4f}{r['refit']:>7}"
            f"{r['peak_rss_mb']:>15.0f}{r['rss_before_fit_mb']:>16.0f}"
        )
    lines.append("")
    lines.append("target: K = 100,000 under 60 s with peak memory independent of K")
    print("\n".join(lines))
    if args.output:
        with open(args.output, "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
