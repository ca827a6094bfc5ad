"""Regenerate xspec_ds/data/example_spectrum.nc (the bundled, simulated example)."""

from pathlib import Path

from xspec_ds.example import simulate_example
from xspec_ds.io.atomic import atomic_path

out = Path(__file__).resolve().parents[1] / "xspec_ds" / "data" / "example_spectrum.nc"
ds = simulate_example()
with atomic_path(out, overwrite=True) as tmp:
    ds.data.to_netcdf(tmp)
print(f"wrote {out} ({out.stat().st_size} bytes)")
