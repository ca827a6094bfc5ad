"""Make the README pictures: ``peek()`` and ``plot_fit()`` of the bundled example.

Usage::

    python scripts/make_readme_figures.py [--outdir docs/images]

The bundled example (``xspec_ds/data/example_spectrum.nc``, a simulated IACT-like spectrum, see
`xspec_ds.example`) is fitted with a power law (Cash statistic, scipy backend), then
``docs/images/peek.png`` and ``docs/images/plot_fit.png`` are written (atomically, replacing
older versions). The fitted model's E^2 dN/dE with its covariance band is drawn as an inset-free
third picture ``docs/images/model_sed.png``.
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
