"""The command line and the bundled example."""

import io

import numpy as np
import pytest
import xarray as xr

import xspec_ds as xs
from xspec_ds.cli import main, run_demo
from xspec_ds.example import EXAMPLE_TRUTH, load_example, simulate_example


def test_bundled_example_is_the_documented_simulation():
    """The shipped file is exactly what scripts/make_example_data.py produces."""
    bundled = load_example()
    fresh = simulate_example()
    xr.testing.assert_allclose(bundled.data, fresh.data, rtol=1e-14, atol=0)
    assert bundled.name == "example"
    assert bundled.livetime.to_value("s") == pytest.approx(7200, rel=1e-12, abs=0)


@pytest.mark.parametrize("backend", ["scipy", "minuit"])
def test_demo_fits_the_truth(backend):
    out = io.StringIO()
    assert run_demo(backend=backend, out=out) == 0
    text = out.getvalue()
    assert "converged" in text
    # parse the index row and compare with the simulated truth
    row = next(line for line in text.splitlines() if line.strip().startswith("index"))
    value, error = float(row.split()[1]), float(row.split()[2])
    assert abs(value - EXAMPLE_TRUTH["index"]) < 3 * error
    assert 0.02 < error < 0.5


def test_demo_prints_the_safe_bin_count():
    out = io.StringIO()
    run_demo(out=out)
    ds = load_example()
    n_safe = int(ds.mask_safe.values.sum())
    assert 0 < n_safe < ds.data.sizes["energy"]
    assert f"({n_safe} of {ds.data.sizes['energy']} bins)" in out.getvalue()


def test_demo_numbers_match_a_direct_fit():
    ds = load_example()
    model = xs.PowerLawSpectralModel(index=2.0, amplitude="1e-11 cm-2 s-1 TeV-1")
    ds.models = model
    xs.Fit().run(ds)
    out = io.StringIO()
    run_demo(out=out)
    row = next(line for line in out.getvalue().splitlines() if line.strip().startswith("amplitude"))
    assert float(row.split()[1]) == pytest.approx(model.amplitude.value, rel=1e-3, abs=0)


def test_cli_main_help_and_version(capsys):
    assert main([]) == 0
    assert "demo" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert xs.__version__ in capsys.readouterr().out


def test_example_safe_range():
    ds = load_example()
    lo, hi = ds.energy_range
    assert lo.to_value("TeV") >= 0.4 * (1 - 1e-9)
    assert hi.to_value("TeV") <= 40 * (1 + 1e-9)
    assert np.asarray(ds.mask_safe.values).sum() == 19
