"""The service's release version: one number, from the installed package metadata (pyproject)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    SERVICE_VERSION = version("spinecds")
except PackageNotFoundError:  # running from a source tree that was never installed
    SERVICE_VERSION = "0.0.0+source"
