"""The import layering, read from the source (AST), lazy imports inside functions included.

    fhir_profiles  <  engine  <  cds_hooks  <  sandbox        (bench and tests sit on top)

A package may import only the packages below it; nothing but tests imports tests; the engine's
modules import each other without cycles.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("fhir_profiles", "engine", "cds_hooks", "sandbox", "bench")
MAY_IMPORT = {
    "fhir_profiles": set(),
    "engine": {"fhir_profiles"},
    "cds_hooks": {"engine", "fhir_profiles"},
    "sandbox": {"cds_hooks", "engine", "fhir_profiles"},
    "bench": {"cds_hooks", "engine", "fhir_profiles", "sandbox"},
}
# (file, package) pairs allowed against the order above, each with its reason. Keep it empty.
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()


@functools.cache
def imports_of(path: Path) -> set[str]:
    """Top-level-relative module names imported anywhere in a file (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_the_layers_below_it(package):
    wrong = []
    for path in files(package):
        for module in imports_of(path):
            top = module.split(".")[0]
            allowed = top == package or top in MAY_IMPORT[package] or top not in (*PACKAGES, "tests")
            if not allowed and (str(path.relative_to(ROOT)), top) not in KNOWN_EXCEPTIONS:
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not wrong, "\n".join(sorted(set(wrong)))


def _module_graph(package: str) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    names = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__") for p in files(package)}
    for path in files(package):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        imported = imports_of(path)
        # `from pkg import submodule` names the submodule, not the package's __init__.
        graph[name] = {
            m
            for m in imported
            if m in names and m != name and not any(i.startswith(m + ".") and i in names for i in imported)
        }
    return graph


@pytest.mark.parametrize("package", ["engine", "fhir_profiles"])
def test_no_import_cycles_inside_a_package(package):
    graph = _module_graph(package)
    cycles = set()

    def visit(node: str, trail: tuple[str, ...]) -> None:
        for nxt in graph.get(node, ()):
            if nxt in trail:
                cycle = trail[trail.index(nxt) :]
                start = cycle.index(min(cycle))
                cycles.add(" -> ".join((*cycle[start:], *cycle[:start], min(cycle))))
            elif len(trail) < 12:
                visit(nxt, (*trail, nxt))

    for module in graph:
        visit(module, (module,))
    assert not cycles, "\n".join(sorted(cycles))


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    # The test above is only worth something if a lazy import inside a function counts.
    probe = ROOT / "engine" / "cases.py"
    assert "engine.case_file" in imports_of(probe)
    assert "engine.cases" in imports_of(ROOT / "engine" / "api.py")  # imported inside build_engine
    assert "sandbox.codes" in imports_of(ROOT / "sandbox" / "patients.py")  # from . import codes


def test_no_test_module_imports_another_test_module():
    # Shared helpers live in non-test modules (tests/auth_tokens.py, tests/service_fixtures.py ...)
    # or conftest.py, so running one test file never collects another's tests.
    wrong = [
        f"{path.name} imports {module}"
        for path in sorted((ROOT / "tests").glob("*.py"))
        for module in imports_of(path)
        if module.split(".")[:2][-1].startswith("test_") and module.startswith("tests.")
    ]
    assert not wrong, "\n".join(sorted(set(wrong)))
