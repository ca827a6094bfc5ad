"""Import layering: the lower layers never import the object layer, and no import cycle runs
through the dataset classes (the former circle dataset -> io -> ogip -> onoff -> dataset).

Every ``import`` statement of the package is read from the source with `ast`, including the ones
inside functions (deferred imports still make a circle). Imports of a module's own ancestor
packages (``from .. import __version__``, ``from . import DatasetFileError``) are left out:
Python initialises a parent package before its children, so they cannot start a circle.
"""

import ast
from pathlib import Path

import pytest

import xspec_ds

ROOT = Path(xspec_ds.__file__).parent
OBJECT_LAYER = {"xspec_ds.dataset", "xspec_ds.onoff", "xspec_ds.accessor", "xspec_ds.objects"}
LOWER_LAYERS = (
    "xspec_ds.io",
    "xspec_ds.ops",
    "xspec_ds.models",
    "xspec_ds.forward",
    "xspec_ds.stats",
    "xspec_ds.likelihood",
    "xspec_ds.batch",
    "xspec_ds.axes",
    "xspec_ds.containers",
    "xspec_ds.gti",
    "xspec_ds.irf",
    "xspec_ds.fit",
)


def _module_name(path: Path) -> str:
    parts = ("xspec_ds",) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1]) if parts[-1] == "__init__" else ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _resolve(name: str, modules) -> str | None:
    """The longest known module prefix of ``name``."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path, modules) -> set[str]:
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = ".".join(base[: len(base) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" for a in node.names] + [mod]
        else:
            continue
        for t in targets:
            if not t.startswith("xspec_ds"):
                continue
            r = _resolve(t, modules)
            # a module's own ancestor packages are initialised before it: not a circle
            if r and r != me and not me.startswith(r + "."):
                out.add(r)
    return out


@pytest.fixture(scope="module")
def graph():
    modules = _modules()
    return {m: _imports(p, modules) for m, p in modules.items()}


def test_graph_sees_known_edges(graph):
    """The scanner is not blind: known imports (top level and deferred) are found."""
    assert "xspec_ds.forward" in graph["xspec_ds.dataset"]
    assert "xspec_ds.dataset" in graph["xspec_ds.onoff"]
    assert "xspec_ds.io.ogip" in graph["xspec_ds.io"]  # deferred, inside read_dataset


def test_lower_layers_do_not_import_object_layer(graph):
    bad = {
        (m, t)
        for m, targets in graph.items()
        if m.startswith(LOWER_LAYERS) and m not in OBJECT_LAYER
        for t in targets
        if t in OBJECT_LAYER
    }
    assert not bad, f"lower layers import the object layer: {sorted(bad)}"


def test_no_cycle_through_dataset_classes(graph):
    def reachable(start):
        seen, todo = set(), [start]
        while todo:
            for t in graph.get(todo.pop(), ()):
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        return seen

    for m in ("xspec_ds.dataset", "xspec_ds.onoff", "xspec_ds.likelihood", "xspec_ds.stats", "xspec_ds.io.ogip"):
        assert m not in reachable(m), f"import cycle through {m}"


def test_no_module_level_cache():
    """No module keeps a mutable cache at module level (the former ``onoff._FLUX_CACHE``):
    caches live on the objects whose data they reflect, or for one likelihood call."""
    found = []
    for path in ROOT.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            for t in targets:
                if isinstance(t, ast.Name) and "CACHE" in t.id.upper():
                    found.append(f"{_module_name(path)}.{t.id}")
    assert not found, f"module-level caches: {found}"
