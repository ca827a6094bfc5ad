"""Make the README pictures: ``peek()`` and ``plot_fit()`` of the bundled example.

Usage::

    python scripts/make_readme_figures.py [--outdir docs/images]

The bundled example (``xspec_ds/data/example_spectrum.nc``, a simulated IACT-like spectrum, see
`xspec_ds.example`) is fitted with a power law (Cash statistic, scipy backend), then
``docs/images/peek.png`` and ``docs/images/plot_fit.png`` are written (atomically, replacing
older versions). The fitted model's E^2 dN/dE with its covariance band is drawn as an inset-free
third picture ``docs/images/model_sed.png``. When the shared data (``../shared/data``) is there, the
H.E.S.S. Crab SED (joint log-parabola fit of four runs, butterfly, flux points with upper limits,
`xspec_ds.FluxPointsEstimator`) is drawn as ``docs/images/crab_sed.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import astropy.units as u  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

import xspec_ds as xs  # noqa: E402
from xspec_ds.example import EXAMPLE_TRUTH, load_example  # noqa: E402
from xspec_ds.io.atomic import atomic_path  # noqa: E402

DPI = 110


def _save(fig, path: Path) -> None:
    with atomic_path(path, overwrite=True, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=DPI, format="png", bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", default=Path(__file__).resolve().parents[1] / "docs" / "images", type=Path)
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)

    ds = load_example()
    model = xs.PowerLawSpectralModel(index=2.0, amplitude="1e-11 cm-2 s-1 TeV-1", reference="1 TeV")
    ds.models = xs.SkyModel(model, name="source")
    result = xs.Fit().run(ds)
    if not result.success:
        raise RuntimeError(f"the fit of the example failed: {result}")
    idx = model.parameters["index"]
    print(f"index = {idx.value:.3f} +- {idx.error:.3f} (truth {EXAMPLE_TRUTH['index']})")

    ax1, _, _ = ds.peek()
    _save(ax1.figure, args.outdir / "peek.png")

    ax_spec, ax_res = ds.plot_fit()
    ax_spec.set_title(
        f"plot_fit(): power law, index {idx.value:.2f} $\\pm$ {idx.error:.2f} (Cash, {int(ds.mask.sum())} fit bins)"
    )
    _save(ax_spec.figure, args.outdir / "plot_fit.png")

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    emin, emax = ds.energy_range
    model.plot(u.Quantity([emin, emax]), ax=ax, sed_type="e2dnde", label="fit, 1 sigma band")
    truth = xs.PowerLawSpectralModel(
        index=EXAMPLE_TRUTH["index"], amplitude=f"{EXAMPLE_TRUTH['amplitude']} cm-2 s-1 TeV-1", reference="1 TeV"
    )
    truth.plot(u.Quantity([emin, emax]), ax=ax, sed_type="e2dnde", show_error=False, ls="--", color="k", label="truth")
    ax.legend()
    _save(fig, args.outdir / "model_sed.png")
    crab_sed(args.outdir)
    return 0


def crab_sed(outdir: Path) -> None:
    """The H.E.S.S. Crab SED from the four joint-crab runs (skipped without the shared data)."""
    import numpy as np

    hess = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "joint-crab" / "spectra" / "hess"
    if not hess.is_dir():
        print(f"skipping crab_sed.png: no data at {hess}")
        return
    datasets = []
    for pha in sorted(hess.glob("pha_obs*.fits")):
        ds = xs.SpectrumDatasetOnOff.read(pha, name=pha.stem[4:])
        e = ds._energy_axis
        ds.mask_fit = (e.edges_min.to_value("TeV") >= 0.66 * (1 - 1e-6)) & (
            e.edges_max.to_value("TeV") <= 30 * (1 + 1e-6)
        )
        datasets.append(ds)
    model = xs.LogParabolaSpectralModel.from_log10(
        amplitude="4e-11 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.4, beta=0.2
    )
    for ds in datasets:
        ds.models = xs.SkyModel(model, name="crab")
    if not xs.Fit().run(xs.Datasets(datasets)).success:
        raise RuntimeError("the H.E.S.S. Crab fit failed")
    fpe = xs.FluxPointsEstimator(
        energy_edges=np.geomspace(0.66, 30, 9) * u.TeV, source="crab", selection_optional="all"
    )
    fp = fpe.run(datasets)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    fp.plot_ts_profiles(ax=ax, sed_type="e2dnde", add_cbar=True, alpha=0.6)
    bounds = [0.6, 35] * u.TeV
    model.plot_error(bounds, ax=ax, sed_type="e2dnde", color="C0")
    model.plot(bounds, ax=ax, sed_type="e2dnde", color="C0", show_error=False, label="log-parabola fit")
    fp.plot(ax=ax, sed_type="e2dnde", color="C1", label="flux points (2 sigma UL)")
    ax.legend(loc="lower left")
    ax.set_title("H.E.S.S. Crab, 4 runs: FluxPointsEstimator (WSTAT)")
    _save(fig, outdir / "crab_sed.png")


if __name__ == "__main__":
    raise SystemExit(main())
