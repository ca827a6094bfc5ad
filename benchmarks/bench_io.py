"""I/O benchmark: write and read one spectrum dataset, and open 1,000 files lazily.

For one dataset of N = 100 reco bins (0.1-100 TeV, log) and 200 true bins, with a dense
random energy dispersion, random counts/background/exposure, masks and a 3-interval GTI, it
times (minimum and median over repeats, each a full file write or a full read into a dataset):

- Gammapy 2.1 ``SpectrumDataset.write`` / ``SpectrumDataset.read`` (its FITS layout);
- xspec_ds FITS (Gammapy's layout) ``write`` / ``read``;
- xspec_ds netCDF ``write`` / ``read`` with the default engine (netCDF-3 via ``scipy``) and,
  for comparison, the ``netcdf4`` engine (netCDF-4/HDF5); ``h5netcdf`` is listed when installed.

Ratios are Gammapy time / xspec_ds time from the minima of the same run. Then it writes
1,000 small netCDF datasets (N = 100) and times ``xs.open_mfdataset`` (lazy: the dask graph is
built, no data computed), and, separately, computing one reduction (the summed counts).

Run::

    python benchmarks/bench_io.py                    # full run (~1 min)
    python benchmarks/bench_io.py --quick            # fewer repeats, 200 files
    python benchmarks/bench_io.py --output benchmarks/results/bench_io.txt
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np

import xspec_ds as xs
from xspec_ds.gti import GTI
from xspec_ds.io.netcdf import read_netcdf, write_netcdf


def make_dataset(n: int = 100, seed: int = 0, name: str = "bench") -> xs.SpectrumDataset:
    rng = np.random.default_rng(seed)
    e = xs.MapAxis.from_energy_bounds(0.1, 100, n, unit="TeV")
    et = xs.MapAxis.from_energy_bounds(0.05, 200, 2 * n, unit="TeV", name="energy_true")
    ds = xs.SpectrumDataset.create(e, et, name=name)
    m = rng.uniform(0, 1, (2 * n, n))
    ds.data["edisp"].values[:] = m / m.sum(axis=1, keepdims=True) * 0.95
    ds.data["counts"].values[:] = rng.poisson(20, n)
    ds.data["background"].values[:] = rng.uniform(0, 5, n)
    ds.data["exposure"].values[:] = rng.uniform(1e8, 1e10, 2 * n)
    ds.data["mask_safe"].values[:] = rng.uniform(size=n) < 0.9
    ds.gti = GTI([0, 1000, 2000] * u.s, [500, 1500, 2500] * u.s, reference_time="2010-01-01")
    ds.models = xs.PowerLawSpectralModel()
    return ds


def to_gammapy(ds: xs.SpectrumDataset):
    from astropy.time import Time
    from gammapy.data import GTI as GGTI
    from gammapy.datasets import SpectrumDataset as GSD
    from gammapy.maps import MapAxis, RegionGeom

    e = MapAxis.from_edges(ds._energy_axis.edges, name="energy", interp="log")
    et = MapAxis.from_edges(ds._energy_axis_true.edges, name="energy_true", interp="log")
    geom = RegionGeom.create("icrs;circle(83.63,22.01,0.1)", axes=[e])
    g = GSD.create(geom=geom, energy_axis_true=et, name=ds.name)
    g.counts.data[:] = ds.counts.values[:, None, None]
    g.background.data[:] = ds.background.values[:, None, None]
    g.exposure.data[:] = ds.exposure.values[:, None, None]
    g.edisp.edisp_map.data[:] = ds.edisp.values[:, :, None, None]
    g.mask_safe.data[:] = ds.mask_safe.values[:, None, None]
    g.gti = GGTI.create([0, 1000, 2000] * u.s, [500, 1500, 2500] * u.s, reference_time=Time("2010-01-01"))
    return g


def timeit(func, repeat: int) -> tuple[float, float]:
    func()  # warm-up (imports, caches)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--files", type=int, default=None, help="number of files for open_mfdataset (1000)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    repeat = 7 if args.quick else 25
    nfiles = args.files or (200 if args.quick else 1000)
    warnings.simplefilter("ignore")

    lines = [f"# bench_io  python {platform.python_version()}  {platform.machine()}  repeats={repeat}"]
    work = Path(tempfile.mkdtemp(prefix="bench_io_"))
    try:
        ds = make_dataset()
        rows = []  # (label, write_min, write_med, read_min, read_med)
        try:
            from gammapy.datasets import SpectrumDataset as GSD

            g = to_gammapy(ds)
            gp = work / "gammapy.fits"
            w = timeit(lambda: g.write(gp, overwrite=True), repeat)
            r = timeit(lambda: GSD.read(gp), repeat)
            rows.append(("Gammapy 2.1 FITS", *w, *r))
        except ImportError:
            lines.append("# Gammapy not installed: no reference timings")
        fp = work / "ours.fits"
        w = timeit(lambda: ds.write(fp, overwrite=True), repeat)
        r = timeit(lambda: xs.SpectrumDataset.read(fp), repeat)
        rows.append(("xspec_ds FITS (Gammapy layout)", *w, *r))
        engines = [("scipy", "netCDF-3, default")]
        for mod, eng in (("netCDF4", "netcdf4"), ("h5netcdf", "h5netcdf")):
            try:
                __import__(mod)
                if eng == "h5netcdf":
                    __import__("h5py")
                engines.append((eng, "netCDF-4/HDF5"))
            except ImportError:
                lines.append(f"# engine {eng}: not available ({mod}/h5py missing)")
        for eng, label in engines:
            np_ = work / f"ours_{eng}.nc"
            w = timeit(lambda: write_netcdf(ds, np_, overwrite=True, engine=eng), repeat)
            r = timeit(lambda: read_netcdf(xs.SpectrumDataset, np_, engine=eng), repeat)
            rows.append((f"xspec_ds netCDF [{eng}] ({label})", *w, *r))
            if eng == "scipy":
                # the cost of the checksums: reads with and without verification, interleaved
                # (alternating calls, so that load changes on a shared machine hit both alike)
                import xspec_ds.io.netcdf as ncmod

                verify = ncmod.verify_netcdf
                t_on, t_off = [], []
                for _ in range(4 * repeat):
                    for flag, store in ((True, t_on), (False, t_off)):
                        ncmod.verify_netcdf = verify if flag else (lambda d, path, variables=None: d)
                        t0 = time.perf_counter()
                        read_netcdf(xs.SpectrumDataset, np_, engine=eng)
                        store.append(time.perf_counter() - t0)
                ncmod.verify_netcdf = verify
                r0 = (min(t_off), statistics.median(t_off))
                r1 = (min(t_on), statistics.median(t_on))
                rows.append(("  same, interleaved: read with verification", float("nan"), float("nan"), *r1))
                rows.append(("  same, read without checksum verification", float("nan"), float("nan"), *r0))

        lines.append("")
        lines.append("## one dataset, N = 100 reco x 200 true bins (times in ms: min / median)")
        gw = rows[0][1] if rows[0][0].startswith("Gammapy") else None
        gr = rows[0][3] if gw is not None else None
        header = (
            f"{'format':<42} {'write min':>10} {'write med':>10} {'read min':>10} {'read med':>10} "
            f"{'write x':>8} {'read x':>8}"
        )
        lines.append(header)
        lines.append("-" * len(header))
        for label, wmin, wmed, rmin, rmed in rows:
            wx = f"{gw / wmin:8.1f}" if gw else f"{'-':>8}"
            rx = f"{gr / rmin:8.1f}" if gr else f"{'-':>8}"
            lines.append(
                f"{label:<42} {wmin * 1e3:10.2f} {wmed * 1e3:10.2f} {rmin * 1e3:10.2f} {rmed * 1e3:10.2f} {wx} {rx}"
            )
        lines.append("(write x / read x: Gammapy FITS time / this time, from the minima; target for netCDF >= 20)")
        lines.append("(netCDF reads verify a CRC-32 per variable; target: one netCDF read <= 2 ms)")

        # many files, opened lazily
        many = work / "many"
        many.mkdir()
        t0 = time.perf_counter()
        paths = []
        for i in range(nfiles):
            d = make_dataset(seed=i, name=f"obs{i:04d}")
            p = many / f"obs{i:04d}.nc"
            d.write(p)
            paths.append(p)
        t_write_all = time.perf_counter() - t0
        lines.append("")
        lines.append(f"## {nfiles} netCDF files (N = 100), xs.open_mfdataset")
        lines.append(
            f"write all files (serial, each atomic): {t_write_all:.2f} s ({t_write_all / nfiles * 1e3:.2f} ms/file)"
        )
        for parallel in (True, False):
            t0 = time.perf_counter()
            obs = xs.open_mfdataset(paths, parallel=parallel)
            t_open = time.perf_counter() - t0
            lazy = type(obs["counts"].data).__module__.startswith("dask")
            t0 = time.perf_counter()
            total = float(obs["counts"].sum().compute())
            t_sum = time.perf_counter() - t0
            lines.append(
                f"open_mfdataset(parallel={parallel}): {t_open:.2f} s (lazy={lazy}, obs={obs.sizes['obs']}); "
                f"then counts.sum().compute(): {t_sum:.2f} s (total {total:.0f})"
            )
        lines.append("(target: 1,000 files opened lazily in < 10 s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(lines)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
