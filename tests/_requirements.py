"""Optional requirements of the test suite: Gammapy (the ``validate`` extra), the ``test`` extra's
packages and the real data of ``../shared/data``.

Without them a user sees clean skips naming what is missing. CI sets ``XSPEC_DS_REQUIRE_FULL=1``
(see ``.ci/run``): then a missing requirement FAILS the tests that need it, so a broken Gammapy
install or an absent data folder cannot turn ~60 validation tests into silent skips.

Every test uses these helpers instead of bare ``pytest.importorskip`` / ``skipif`` (enforced by
``tests/test_suite_rules.py``).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

STRICT_ENV = "XSPEC_DS_REQUIRE_FULL"
SHARED_ENV = "XSPEC_DS_SHARED_DATA"
REPO = Path(__file__).resolve().parents[1]


def strict() -> bool:
    """True when ``XSPEC_DS_REQUIRE_FULL`` is set to anything but ``""``/``"0"``."""
    return os.environ.get(STRICT_ENV, "").strip() not in ("", "0")


def missing(reason: str, allow_module_level: bool = False):
    """Skip (default) or, in strict mode, fail with ``reason``."""
    if strict():
        pytest.fail(f"{reason} [{STRICT_ENV} is set: CI requires it]", pytrace=False)
    pytest.skip(reason, allow_module_level=allow_module_level)


def require(module: str, extra: str = "test", allow_module_level: bool = False):
    """Import and return ``module``; skip (or fail in strict mode) if it cannot be imported."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # also catches a broken install (ImportError deep inside)
        missing(f"{module} is not importable ({exc}); install the '{extra}' extra", allow_module_level)


def require_gammapy(module: str = "gammapy", allow_module_level: bool = False):
    """Import Gammapy (or one of its submodules) for a validation test."""
    return require(module, extra="validate", allow_module_level=allow_module_level)


def shared_root() -> Path:
    """The real-data folder: ``$XSPEC_DS_SHARED_DATA`` if set, else ``../shared/data`` beside the repo."""
    env = os.environ.get(SHARED_ENV, "").strip()
    return Path(env) if env else REPO.parent / "shared" / "data"


def shared_available() -> bool:
    return (shared_root() / "joint-crab").is_dir()


def shared_data(*parts: str) -> Path:
    """``shared_root() / parts``; skip (or fail in strict mode) if it does not exist."""
    path = shared_root().joinpath(*parts)
    if not path.exists():
        missing(f"real data not found: {path} (clone ../shared beside the repo or set {SHARED_ENV})")
    return path


MISSING_SHARED = shared_root() / "joint-crab" / "spectra" / "missing" / "missing.fits"


def shared_glob(pattern: str) -> list[Path]:
    """Sorted files matching ``pattern`` under the data folder. When the folder is absent, one
    placeholder path, so that a parametrised test still runs once and skips (or fails in strict
    mode) through `shared_data` instead of being dropped with an empty parameter set."""
    if not shared_available():
        return [MISSING_SHARED]
    return sorted(shared_root().glob(pattern))


@pytest.fixture
def require_shared_data() -> Path:
    """Fixture form of `shared_data` (use ``pytest.mark.usefixtures("require_shared_data")``)."""
    return shared_data("joint-crab")


needs_shared = pytest.mark.usefixtures("require_shared_data")
