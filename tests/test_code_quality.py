"""Lint, format and type checks as tests, so CI fails on a finding like on any other regression.

The tools read their configuration from pyproject.toml ([tool.ruff], [tool.mypy]); mypy keeps its
incremental cache in .mypy_cache so a repeat run takes seconds.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_SECONDS = 180  # a cold mypy run takes ~20 s on two cores; this only stops a hung tool


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]')")
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


def _assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        findings = (result.stdout + result.stderr).strip()
        pytest.fail(f"{' '.join(result.args[2:])} (exit {result.returncode}):\n{findings}", pytrace=False)


def test_ruff_check_reports_nothing() -> None:
    _assert_clean(_run("ruff", "check", "--no-cache", "--output-format", "concise", "."))


def test_ruff_format_leaves_every_file_unchanged() -> None:
    _assert_clean(_run("ruff", "format", "--no-cache", "--check", "."))


def test_mypy_reports_nothing() -> None:
    _assert_clean(_run("mypy", "--cache-dir", str(REPO_ROOT / ".mypy_cache")))
