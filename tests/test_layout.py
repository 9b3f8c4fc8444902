"""The layout README's Architecture section promises: no import circle, each conformance package
importing only the packages below it, no source file over 400 lines.

Read from the source with ``ast`` (every import: top level, TYPE_CHECKING, inside functions),
so a circle hidden in a function-level import is caught too.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "actiongate": ROOT / "reference" / "actiongate",
    "actiongate_conformance": ROOT / "conformance" / "actiongate_conformance",
}
MAX_LINES = 400

# conformance package -> what it may import besides itself and the root package's constants
# (``actiongate_conformance/__init__.py``: the versions, which imports nothing).
ALLOWED = {
    "data": set(),
    "checkers": set(),
    "targets": {"actiongate", "data"},
    "layers": {"actiongate", "data", "checkers", "targets"},
    "reports": {"data", "checkers", "layers"},
}
# The root package re-exports the Python API (api.py) lazily, by PEP 562 ``__getattr__`` (and the
# same names under TYPE_CHECKING). That import runs on the first use of ``run``, not while the
# root loads, so it closes no circle at import time as long as no module of ours imports those
# names from the root (test_no_module_imports_the_api_from_the_root); it is the one edge the root
# may have. The top-level modules (api, cli, the plugin) are in no package, so need no row above.
ROOT_PACKAGE = "actiongate_conformance"
LAZY_API = {"actiongate_conformance.api"}


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's __init__)."""
    found = {}
    for top, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            parts = [top, *path.relative_to(root).with_suffix("").parts]
            is_package = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """The modules of ours that module ``name`` imports, by dotted name."""
    path, is_package = MODULES[name]
    package = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            candidates = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        # The deepest module of ours each candidate names (``a.b.c`` where ``c`` is a function).
        for candidate in candidates:
            ours = candidate
            while ours and ours not in MODULES:
                ours = ours.rpartition(".")[0]
            if ours and ours != name:
                targets.add(ours)
    return targets


GRAPH = {name: _imports(name) for name in MODULES}


def test_no_module_import_circle() -> None:
    # A package importing its own submodules is not a circle by itself: __init__ re-exports.
    graph = {
        name: {target for target in targets if not target.startswith(name + ".")}
        - (LAZY_API if name == ROOT_PACKAGE else set())
        for name, targets in GRAPH.items()
    }
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        pytest.fail(f"import circle: {' -> '.join(error.args[1])}")


def _conformance_package(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if parts[0] == "actiongate_conformance" and len(parts) > 1 else None


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_conformance_package_imports_only_what_is_below_it(package: str) -> None:
    wrong = []
    for name, targets in GRAPH.items():
        if _conformance_package(name) != package:
            continue
        for target in sorted(targets):
            used = "actiongate" if target.split(".")[0] == "actiongate" else None
            used = used or _conformance_package(target) or target
            if target == "actiongate_conformance":
                continue
            if used != package and used not in ALLOWED[package]:
                wrong.append(f"{name} imports {target}")
    assert not wrong, f"{package}/ may import only {sorted(ALLOWED[package])}: {wrong}"


def test_every_conformance_package_is_placed() -> None:
    subpackages = {
        name.split(".")[1]
        for name, (_, is_package) in MODULES.items()
        if is_package and _conformance_package(name) and name.count(".") == 1
    }
    assert subpackages == set(ALLOWED), "a new package needs its row in ALLOWED and README"
    assert GRAPH[ROOT_PACKAGE] <= LAZY_API, "the root package is constants every package reads"
    # ... and the API only lazily: no import of it runs while the root loads.
    root = ast.parse(MODULES[ROOT_PACKAGE][0].read_text(encoding="utf-8"))
    eager = [
        ast.unparse(node) for node in root.body if isinstance(node, (ast.Import, ast.ImportFrom))
    ]
    assert not [line for line in eager if "api" in line], eager


def test_no_module_imports_the_api_from_the_root() -> None:
    import actiongate_conformance

    lazy = actiongate_conformance._API
    wrong = []
    for name, (path, is_package) in MODULES.items():
        package = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = ".".join([*base, *([node.module] if node.module else [])])
            if (module if node.level else node.module) == ROOT_PACKAGE:
                wrong += [f"{name} imports {a.name}" for a in node.names if a.name in lazy]
    assert not wrong, f"import these from actiongate_conformance.api, not the root: {wrong}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_source_file_is_short(name: str) -> None:
    path = MODULES[name][0]
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines; split it by job"
