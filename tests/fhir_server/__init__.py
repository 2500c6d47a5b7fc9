"""A small, genuine FHIR R4 REST server for tests and sandbox tools, built on fhirstarter.

fhirstarter selects its FHIR release from the environment at import time, so FHIR_SEQUENCE is set
to R4B here, before anything imports it.
"""

import os

if os.environ.setdefault("FHIR_SEQUENCE", "R4B") != "R4B":  # pragma: no cover - misconfiguration
    raise RuntimeError("tests.fhir_server needs FHIR_SEQUENCE=R4B (R4B is R4 for our resources)")

from .server import Faults, ResourceStore, build_app  # noqa: E402
from .runner import RunningServer, start_server  # noqa: E402

__all__ = ["Faults", "ResourceStore", "RunningServer", "build_app", "start_server"]
