"""The package's layers depend one way only (README, "Architecture").

The import graph is read from the source, imports inside functions included,
so a lazy import cannot hide a cycle.
"""

import ast
from pathlib import Path

import pytest

import emformula

# The package that is imported (the source tree, or an installed wheel).
PACKAGE = Path(emformula.__file__).resolve().parent

#: The layers from the bottom up; a module may import from its own layer and
#: the layers below it. Prefixes of dotted module names (longest match wins).
LAYERS = [
    (
        "foundations",
        [
            "emformula.warnings",
            "emformula._runtime",
            "emformula.datasets",
            "emformula._typing",
            "emformula.specification",
        ],
    ),
    ("families", ["emformula.families"]),
    ("formula", ["emformula.formula"]),
    ("engine", ["emformula.engine"]),
    ("covariance", ["emformula.covariance"]),
    ("backends", ["emformula.backends"]),
    ("results", ["emformula.results"]),
    ("model", ["emformula.model", "emformula.dask_model"]),
    ("postestimation", ["emformula.postestimation"]),
    ("report", ["emformula.report"]),
    (
        "entry points",
        [
            "emformula.api",
            "emformula.selection",
            "emformula.cli",
            "emformula.__main__",
            "emformula",
        ],
    ),
    # Where 0.1.0 kept the classes its pickles name; nothing imports them.
    (
        "pickle compatibility",
        [
            "emformula._em",
            "emformula._design",
            "emformula._starts",
            "emformula.inference",
            "emformula._gram",
        ],
    ),
]

#: Upward imports that are allowed because they are inside the results'
#: convenience methods (``res.summary()``, ``res.residuals()``,
#: ``res.plot_params()``...) and the layer they call never imports back.
CONVENIENCE = {
    ("emformula.results", "emformula.postestimation"),
    ("emformula.results", "emformula.report"),
}


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules():
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name, path, modules):
    """``(target, lazy)`` for every import of a package module in ``path``."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    package = name.split(".") if is_package else name.split(".")[:-1]
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        lazy = id(node) not in top_level
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # "from . import x" names a submodule when x is one.
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == "emformula" or target.startswith("emformula."):
                found.append((target, lazy))
    return found


def _graph():
    modules = _modules()
    edges = {}
    for name, path in modules.items():
        for target, lazy in _imports(name, path, modules):
            # A module importing from a package depends on its __init__ only.
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target != name:
                edges.setdefault(name, {})[target] = edges.get(name, {}).get(target, True) and lazy
    return modules, edges


def _layer(module):
    best, rank = -1, None
    for position, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), position
    return rank


def _find_cycle(edges):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges.get(node, {})):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_graph_is_read_from_the_source():
    modules, edges = _graph()
    # Sanity of the reader itself: it sees lazy and relative imports.
    assert "emformula.engine.em" in modules and "emformula.model" in modules
    assert "emformula.engine.em" in edges["emformula.model"]
    assert edges["emformula.results"]["emformula.report.summary"] is True  # a lazy import


def test_no_import_cycles_counting_imports_inside_functions():
    _, edges = _graph()
    cycle = _find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_module_belongs_to_a_layer():
    modules, _ = _graph()
    assert [m for m in modules if _layer(m) is None] == []


@pytest.mark.parametrize("layer", [name for name, _ in LAYERS])
def test_layers_import_only_from_below(layer):
    _, edges = _graph()
    upward = []
    for source, targets in edges.items():
        if LAYERS[_layer(source)][0] != layer:
            continue
        for target, lazy in targets.items():
            if _layer(target) <= _layer(source):
                continue
            allowed = lazy and any(
                source == a and (target == b or target.startswith(b + ".")) for a, b in CONVENIENCE
            )
            if not allowed:
                upward.append(f"{source} -> {target}{' (inside a function)' if lazy else ''}")
    assert upward == []


def test_the_engine_uses_neither_formulas_nor_pandas_nor_dask():
    modules, _ = _graph()
    for name, path in modules.items():
        if not name.startswith(("emformula.engine", "emformula.families", "emformula.covariance")):
            continue
        text = path.read_text()
        for library in ("formulaic", "pandas", "dask"):
            assert f"import {library}" not in text and f"from {library}" not in text, (
                name,
                library,
            )
