"""The package's shape: every import (inside functions too) forms no cycle, and no
infrastructure module imports a method.

Imports are read from the source with ``ast``: ``import a.b``, ``from a import b`` (an edge to
the module ``a.b`` when it is one, else to ``a``) and ``importlib.import_module("a.b")`` with a
literal name. ``methods/`` is installed as ``i2ibench.methods``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORE = "core"  # the top-level modules of i2ibench (config, registry, method, names, ...)


def _module_files() -> dict[str, Path]:
    files = {}
    for path in sorted((REPO / "i2ibench").rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    for path in sorted((REPO / "methods").glob("*.py")):
        name = "i2ibench.methods" + ("" if path.stem == "__init__" else f".{path.stem}")
        files[name] = path
    return files


MODULES = _module_files()


def _resolve(name: str) -> str | None:
    """The longest prefix of ``name`` that is one of our modules."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        cand = ".".join(parts[:i])
        if cand in MODULES:
            return cand
    return None


def imports_of(module: str) -> set[str]:
    """Every module of ours that ``module`` imports, anywhere in its source."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    is_pkg = MODULES[module].name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                pkg = module.split(".") if is_pkg else module.split(".")[:-1]
                pkg = pkg[:len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            targets = [node.args[0].value]
        for t in targets:
            resolved = _resolve(t)
            if resolved is not None and resolved != module:
                out.add(resolved)
    return out


GRAPH = {m: imports_of(m) for m in MODULES}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def package_of(module: str) -> str:
    parts = module.split(".")
    if parts[:2] == ["i2ibench", "methods"]:
        return "methods"
    return parts[1] if len(parts) > 2 else CORE


def test_the_walker_sees_imports_inside_functions_and_the_cycle_finder_finds_cycles():
    assert "i2ibench.data.fashion" in GRAPH["i2ibench.data.catalog"]  # imported inside _loader()
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_import_cycle():
    assert strongly_connected(GRAPH) == []


def test_no_package_import_cycle():
    """The sub-packages form layers: core <- data, nets, metrics, ... <- train <- evaluation <- pipeline <- cli."""
    packages: dict[str, set[str]] = {}
    for m, deps in GRAPH.items():
        packages.setdefault(package_of(m), set()).update(package_of(d) for d in deps if package_of(d) != package_of(m))
    assert strongly_connected(packages) == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if package_of(m) != "methods"))
def test_infrastructure_never_imports_a_method(module):
    assert not {d for d in GRAPH[module] if package_of(d) == "methods"}


def test_sub_package_inits_import_nothing():
    # Importing a module imports its package's __init__ first: an empty one cannot add a cycle.
    for name, path in MODULES.items():
        if path.name == "__init__.py" and name.startswith("i2ibench."):
            assert not GRAPH[name], name


# The README's layout lists the sub-packages in this order: each may import only earlier ones.
LAYERS = ["core", "data", "nets", "features", "metrics", "vlm", "report", "train", "evaluation", "pipeline", "cli"]


@pytest.mark.parametrize("package", LAYERS)
def test_packages_import_only_lower_layers(package):
    deps = {package_of(d) for m, ds in GRAPH.items() if package_of(m) == package for d in ds} - {package}
    assert deps <= set(LAYERS[:LAYERS.index(package)]), deps - set(LAYERS[:LAYERS.index(package)])


def test_every_package_has_a_layer():
    assert {package_of(m) for m in MODULES} == set(LAYERS) | {"methods"}
