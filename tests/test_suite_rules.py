"""The suite's own float-comparison rule (issue 14), enforced on every test source with `ast`.

``pytest.approx(x, rel=r)`` also accepts anything within its default ``abs=1e-12``,
``np.isclose``/``np.allclose`` anything within ``atol=1e-8`` and ``xarray.testing.assert_allclose``
anything within ``atol=1e-8``: on fluxes of 1e-11 to 1e-16 these assertions cannot fail. Every such
call in ``tests/`` must therefore spell out its absolute tolerance (usually ``abs=0``/``atol=0``;
see ``tests/_asserts.py``).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

TESTS = pathlib.Path(__file__).resolve().parent
SOURCES = sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)

# call name (last attribute) -> (required keyword, receivers that make it a float comparison)
RULES = {
    "approx": ("abs", {"pytest"}),
    "isclose": ("atol", {"np", "numpy"}),
    "allclose": ("atol", {"np", "numpy"}),
    "assert_allclose": ("atol", {"xr.testing", "xarray.testing"}),
}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def violations(source: str, filename: str = "<src>") -> list[str]:
    """Calls of `RULES` lacking their absolute-tolerance keyword, as ``file:line: call`` strings."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        rule = RULES.get(node.func.attr)
        if rule is None:
            continue
        keyword, receivers = rule
        if _dotted(node.func.value) not in receivers:
            continue
        if any(k.arg == keyword or k.arg is None for k in node.keywords):  # k.arg None: **kwargs
            continue
        found.append(f"{filename}:{node.lineno}: {_dotted(node.func)}(...) without {keyword}=")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(TESTS)))
def test_float_comparisons_state_their_absolute_tolerance(path):
    bad = violations(path.read_text(), str(path.relative_to(TESTS)))
    assert not bad, "vacuous float comparisons (add abs=/atol=, usually 0):\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "snippet, n_bad",
    [
        ("assert x == pytest.approx(1e-14, rel=1e-3)", 1),
        ("assert x == pytest.approx(1e-14, rel=1e-3, abs=0)", 0),
        ("assert np.isclose(a, b, rtol=1e-5).all()", 1),
        ("assert numpy.allclose(a, b)", 1),
        ("assert np.allclose(a, b, atol=0)", 0),
        ("xr.testing.assert_allclose(a, b, rtol=1e-13)", 1),
        ("xr.testing.assert_allclose(a, b, rtol=1e-13, atol=0)", 0),
        ("np.testing.assert_allclose(a, b, rtol=1e-13)", 0),  # numpy's default atol is already 0
        ("assert math.isclose(a, b)", 0),  # math.isclose: default abs_tol is 0
    ],
)
def test_rule_checker_itself(snippet, n_bad):
    assert len(violations(snippet)) == n_bad


# optional requirements go through tests/_requirements.py (skip for users, fail in CI) ------------
def bare_skips(source: str, filename: str = "<src>") -> list[str]:
    """``pytest.importorskip(...)`` calls and ``pytest.mark.skipif`` uses outside `_requirements`."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Attribute) and _dotted(node) in ("pytest.importorskip", "pytest.mark.skipif"):
            found.append(f"{filename}:{node.lineno}: {_dotted(node)}")
    return found


@pytest.mark.parametrize(
    "path", [p for p in SOURCES if p.name != "_requirements.py"], ids=lambda p: str(p.relative_to(TESTS))
)
def test_optional_requirements_use_the_strict_helpers(path):
    bad = bare_skips(path.read_text(), str(path.relative_to(TESTS)))
    assert not bad, (
        "use tests/_requirements.py (require, require_gammapy, shared_data, needs_shared) so that "
        "XSPEC_DS_REQUIRE_FULL=1 turns a missing requirement into a failure:\n" + "\n".join(bad)
    )


def test_bare_skip_checker_itself():
    assert len(bare_skips('gp = pytest.importorskip("gammapy")')) == 1
    assert len(bare_skips("@pytest.mark.skipif(True, reason='x')\ndef f(): pass")) == 1
    assert not bare_skips('gp = require_gammapy("gammapy")')


def test_strict_mode_turns_a_missing_requirement_into_a_failure(monkeypatch):
    from _pytest.outcomes import Failed, Skipped

    from ._requirements import STRICT_ENV, require, shared_data

    monkeypatch.delenv(STRICT_ENV, raising=False)
    with pytest.raises(Skipped, match="no_such_module_xyz"):
        require("no_such_module_xyz")
    with pytest.raises(Skipped, match="not found"):
        shared_data("no", "such", "file.fits")
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(Failed, match="no_such_module_xyz.*XSPEC_DS_REQUIRE_FULL"):
        require("no_such_module_xyz")
    with pytest.raises(Failed, match="not found.*XSPEC_DS_REQUIRE_FULL"):
        shared_data("no", "such", "file.fits")
    monkeypatch.setenv(STRICT_ENV, "0")
    with pytest.raises(Skipped):
        require("no_such_module_xyz")
