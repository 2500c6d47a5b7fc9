"""A small, genuine FHIR R4 REST server for the sandbox and the tests, built on fhirstarter.

fhirstarter selects its FHIR release from the environment at import time, so FHIR_SEQUENCE is set
to R4B here, before anything imports it.
"""

import os

if os.environ.setdefault("FHIR_SEQUENCE", "R4B") != "R4B":  # pragma: no cover - misconfiguration
    raise RuntimeError("sandbox.fhir_server needs FHIR_SEQUENCE=R4B (R4B is R4 for our resources)")

from .runner import RunningServer, preload_sandbox_patients, start_server
from .server import Faults, ResourceStore, build_app

__all__ = ["Faults", "ResourceStore", "RunningServer", "build_app", "preload_sandbox_patients", "start_server"]
