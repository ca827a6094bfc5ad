"""Cost of making one dataset: from arrays, from a netCDF file, from an OGIP set (issue 12).

All in one run, minimum over repeats (``timeit.repeat``), N = 100 reco x 200 true bins:

1. ``xs.SpectrumDataset(counts=DataArray, edisp=DataArray, exposure=Quantity, background=array,
   mask_safe=array)`` (the axes come from the DataArrays) and ``xs.SpectrumDataset.create``;
   Gammapy 2.1: ``RegionNDMap``/``EDispKernelMap`` from the same arrays on prebuilt geometries,
   then ``SpectrumDataset(counts=..., ...)``, and its ``create``;
2. reading one netCDF dataset written by ``ds.write``: ``xs.SpectrumDataset.read`` (xarray's scipy
   backend), the same file through `xspec_ds.io.nc3.read_xarray` + ``decode_dataset`` +
   ``from_xarray`` (what ``read_netcdf`` would do with the nc3 reader), and
   ``xarray.open_dataset(p).load()`` for reference;
3. reading one OGIP set (PHA + BKG + ARF + RMF, H.E.S.S. joint-crab ``pha_obs23523.fits``) with
   ``xs.SpectrumDatasetOnOff.read`` and Gammapy's ``SpectrumDatasetOnOff.read``.

Targets: 1. at most 1 ms; 2. at most 2 ms; 3. at least 3x faster than Gammapy.

Run::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_build.py [--output benchmarks/results/bench_build.txt]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import timeit
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import xarray as xr

import xspec_ds as xs
from xspec_ds.io import nc3
from xspec_ds.io.netcdf import decode_dataset

N, N_TRUE = 100, 200
OGIP = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "joint-crab" / "spectra" / "hess"


def best_ms(func, number: int, repeat: int = 40) -> float:
    func()
    return min(timeit.repeat(func, number=number, repeat=repeat)) / number * 1e3


def inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    e = xs.MapAxis.from_energy_bounds(0.1, 100, N, unit="TeV")
    et = xs.MapAxis.from_energy_bounds(0.05, 200, N_TRUE, unit="TeV", name="energy_true")
    template = xs.SpectrumDataset.create(e, et, name="t").data
    m = rng.uniform(0, 1, (N_TRUE, N))
    m /= m.sum(axis=1, keepdims=True) * 1.05
    return {
        "e": e,
        "et": et,
        "counts": template["counts"].copy(data=rng.poisson(5, N).astype(float)),
        "edisp": template["edisp"].copy(data=m),
        "exposure": rng.uniform(1e8, 1e10, N_TRUE) * u.Unit("cm2 s"),
        "background": rng.uniform(0, 2, N),
        "mask_safe": rng.uniform(size=N) < 0.9,
    }


def gammapy_build(a):
    from gammapy.datasets import SpectrumDataset
    from gammapy.irf import EDispKernel, EDispKernelMap
    from gammapy.maps import MapAxis, RegionGeom, RegionNDMap

    e = MapAxis.from_edges(a["e"].edges, name="energy", interp="log")
    et = MapAxis.from_edges(a["et"].edges, name="energy_true", interp="log")
    geom = RegionGeom.create("icrs;circle(83.63,22.01,0.1)", axes=[e])
    geom_true = RegionGeom.create("icrs;circle(83.63,22.01,0.1)", axes=[et])

    def build():
        """Maps from the same arrays (on prebuilt geometries), then the dataset."""
        counts = RegionNDMap.from_geom(geom, data=a["counts"].values[:, None, None])
        background = RegionNDMap.from_geom(geom, data=a["background"][:, None, None])
        mask = RegionNDMap.from_geom(geom, data=a["mask_safe"][:, None, None], dtype=bool)
        exposure = RegionNDMap.from_geom(geom_true, data=a["exposure"].value[:, None, None], unit="cm2 s")
        kernel = EDispKernel(axes=[et, e], data=a["edisp"].values)
        edisp = EDispKernelMap.from_edisp_kernel(kernel, geom=geom_true)
        return SpectrumDataset(
            counts=counts, exposure=exposure, background=background, edisp=edisp, mask_safe=mask, name="g"
        )

    def create():
        return SpectrumDataset.create(geom=geom, energy_axis_true=et, name="c")

    return build, create


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    try:
        import gammapy
    except ImportError:
        gammapy = None
    a = inputs()
    lines = [
        "# bench_build: making one dataset (times in ms, minimum over repeats)",
        f"# python {platform.python_version()}, xspec_ds {xs.__version__}, xarray {xr.__version__}, "
        f"gammapy {getattr(gammapy, '__version__', '-')}, {platform.machine()}, "
        f"load average {os.getloadavg()[0]:.1f}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}",
        "",
        f"## 1. from arrays, N = {N} reco x {N_TRUE} true bins",
    ]

    def ours():
        return xs.SpectrumDataset(
            counts=a["counts"],
            edisp=a["edisp"],
            exposure=a["exposure"],
            background=a["background"],
            mask_safe=a["mask_safe"],
            name="x",
        )

    t_ours = best_ms(ours, 20)
    t_create = best_ms(lambda: xs.SpectrumDataset.create(a["e"], a["et"], name="c"), 5)
    if gammapy is not None:
        g_build, g_create = gammapy_build(a)
        t_g, t_gc = best_ms(g_build, 5), best_ms(g_create, 5)
    else:
        t_g = t_gc = float("nan")
    lines += [
        f"{'':<44}{'xspec_ds':>10}{'Gammapy':>10}{'speed-up':>10}",
        f"{'SpectrumDataset(counts=..., edisp=..., ...)':<44}{t_ours:>10.3f}{t_g:>10.3f}{t_g / t_ours:>9.1f}x",
        f"{'SpectrumDataset.create(e_reco, e_true)':<44}{t_create:>10.3f}{t_gc:>10.3f}{t_gc / t_create:>9.1f}x",
        "(target: from arrays <= 1 ms)",
        "",
        "## 2. one netCDF dataset written by ds.write (N = 100 x 200, 3 GTI rows, models)",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "one.nc"
        ds = ours()
        ds.models = xs.PowerLawSpectralModel()
        ds.write(path)
        t_read = best_ms(lambda: xs.SpectrumDataset.read(path), 5)

        def nc3_read():
            data, models = decode_dataset(nc3.read_xarray(path))
            return xs.SpectrumDataset.from_xarray(data, models=models)

        same = nc3_read()
        xr.testing.assert_identical(same.data, xs.SpectrumDataset.read(path).data)
        t_nc3 = best_ms(nc3_read, 10)
        t_xr = best_ms(lambda: xr.open_dataset(path).load(), 5)
    lines += [
        f"{'xs.SpectrumDataset.read(p) (nc3 reader, verified)':<56}{t_read:>8.3f}",
        f"{'nc3.read_xarray + decode_dataset + from_xarray (same data)':<56}{t_nc3:>8.3f}",
        f"{'xarray.open_dataset(p).load() (reference)':<56}{t_xr:>8.3f}",
        "(target: <= 2 ms; SpectrumDataset.read goes through nc3.read_xarray and verifies the checksums)",
        "",
        "## 3. one OGIP set: H.E.S.S. pha_obs23523.fits with its BKG, ARF and RMF",
    ]
    pha = OGIP / "pha_obs23523.fits"
    if pha.exists():
        t_ogip = best_ms(lambda: xs.SpectrumDatasetOnOff.read(pha), 1, 30)
        if gammapy is not None:
            from gammapy.datasets import SpectrumDatasetOnOff

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t_gogip = best_ms(lambda: SpectrumDatasetOnOff.read(pha), 1, 20)
        else:
            t_gogip = float("nan")
        lines += [
            f"{'':<44}{'xspec_ds':>10}{'Gammapy':>10}{'speed-up':>10}",
            f"{'SpectrumDatasetOnOff.read(pha)':<44}{t_ogip:>10.3f}{t_gogip:>10.3f}{t_gogip / t_ogip:>9.1f}x",
            "(target: >= 3x faster than Gammapy)",
        ]
    else:
        lines.append(f"(skipped: {pha} not found)")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
