"""No function over 80 lines in the service, the engine or the profiles: a newcomer reads each one whole."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cds_hooks", "engine", "fhir_profiles")
MAX_LINES = 80
# Known exceptions, listed so any NEW long function fails; an entry that no longer applies fails too.
KNOWN_LONG: set[str] = set()


def test_no_function_is_longer_than_80_lines():
    too_long = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = (node.end_lineno or node.lineno) - node.lineno + 1
                    if lines > MAX_LINES:
                        too_long.append(f"{path.relative_to(ROOT)} {node.name}")
    assert sorted(set(too_long) - KNOWN_LONG) == []
    assert sorted(KNOWN_LONG - set(too_long)) == [], "no longer too long: remove it from KNOWN_LONG"
