"""The manual (docs/) builds with Sphinx, warnings as errors (skipped only without Sphinx/myst-nb).

The notebooks are rendered, not executed (tests/test_notebooks.py executes them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ._requirements import require

require("sphinx", allow_module_level=True)  # in the 'test' and 'docs' extras
require("myst_nb", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_without_warnings(tmp_path):
    out = tmp_path / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(ROOT / "docs"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout}\n{proc.stderr}"
    index = (out / "index.html").read_text()
    assert "xspec_ds" in index
    api = (out / "api.html").read_text()
    for name in ("SpectrumDataset", "energy_mask", "DatasetValidationError", "correlation_dataarray"):
        assert name in api, name
    for nb in ("quickstart", "real_data", "joint_crab", "stacking_dask", "archive_netcdf"):
        page = out / "notebooks" / f"{nb}.html"
        assert page.exists(), nb
    assert "energy_mask" in (out / "notebooks" / "joint_crab.html").read_text()
