"""Command line: ``xspec-ds demo`` fits the bundled example; ``xspec-ds info FILE`` summarises a file."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

__all__ = ["main", "run_demo"]


def run_demo(backend: str = "scipy", out=sys.stdout) -> int:
    """Load the bundled example, fit a power law with Cash, print a summary; return 0 on success."""
    import xspec_ds as xs
    from xspec_ds.example import EXAMPLE_TRUTH, load_example

    ds = load_example()
    model = xs.PowerLawSpectralModel(index=2.0, amplitude="1e-11 cm-2 s-1 TeV-1", reference="1 TeV")
    ds.models = xs.SkyModel(model, name="source")
    t0 = time.perf_counter()
    result = xs.Fit(backend=backend).run(ds)
    elapsed = time.perf_counter() - t0
    info = ds.info_dict()
    lo, hi = ds.energy_range
    n_safe = int(ds.mask_safe.values.sum())
    print(f"xspec_ds {xs.__version__} demo: bundled simulated spectrum '{ds.name}'", file=out)
    print(f"  safe energy range : {lo:.3g} - {hi:.3g} ({n_safe} of {ds.data.sizes['energy']} bins)", file=out)
    print(f"  livetime          : {info['livetime']:.4g}", file=out)
    print(
        f"  counts            : {info['counts']:.0f}   background: {info['background']:.1f}   "
        f"excess: {info['excess']:.1f}   sqrt(TS): {info['sqrt_ts']:.1f}",
        file=out,
    )
    print(
        f"\nPower-law fit (Cash statistic, {backend} backend, {elapsed * 1e3:.1f} ms): "
        f"{'converged' if result.success else 'FAILED'}",
        file=out,
    )
    print(f"  {'parameter':<10} {'value':>12} {'error':>11}  {'unit':<18} {'truth':>10}", file=out)
    for p in model.parameters:
        truth = EXAMPLE_TRUTH.get(p.name)
        err = "frozen" if p.frozen else f"{p.error:.3g}"
        print(f"  {p.name:<10} {p.value:>12.4g} {err:>11}  {p.unit.to_string():<18} {truth:>10.4g}", file=out)
    print(f"  total stat (Cash) : {result.total_stat:.3f}   fit bins: {info['n_fit_bins']}", file=out)
    npred = float(np.sum(ds.npred().values[np.asarray(ds.mask.values)]))
    print(f"  predicted counts  : {npred:.1f} (observed {info['counts']:.0f})", file=out)
    return 0 if result.success else 1


def _info(path: str, out=sys.stdout) -> int:
    import xspec_ds as xs

    ds = xs.SpectrumDataset.read(path)
    print(ds, file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    import xspec_ds as xs

    parser = argparse.ArgumentParser(prog="xspec-ds", description="xarray-native 1-D spectral likelihood analysis")
    parser.add_argument("--version", action="version", version=f"xspec_ds {xs.__version__}")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="fit a power law to the bundled example spectrum and print a summary")
    demo.add_argument("--backend", choices=["scipy", "minuit"], default="scipy")
    info = sub.add_parser("info", help="print the summary of a dataset file (FITS, OGIP PHA or netCDF)")
    info.add_argument("path")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return run_demo(backend=args.backend)
    if args.command == "info":
        return _info(args.path)
    parser.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
