"""Shared pytest fixtures, and the `slow` marker.

`make test` runs everything; `make test-fast` (`pytest -m "not slow"`) leaves out the modules below,
which start servers or browsers, fuzz, soak or run the linters. Mark a new long test with
`@pytest.mark.slow`, or list it (or its whole module) here.
"""

from __future__ import annotations

import os

import pytest

# With authentication on the service refuses to start without a pseudonym key of 32+ bytes; tests
# that start it (in-process or as a subprocess inheriting the environment) get this one. The tests
# of that refusal remove it.
os.environ.setdefault("SPINECDS_PSEUDONYM_KEY", "test-only-pseudonym-key-0123456789abcdef")

# CDS Hooks service fixtures (test FHIR server, app factory, engine spy).
from tests.service_fixtures import (  # noqa: F401
    client,
    engine_seat,
    engine_spy,
    fhir_server,
    fhir_server_session,
    make_client,
)

SLOW_MODULES = {
    "test_load.py": "50 clients against a live service (about a minute)",
    "test_facts_properties.py": "property tests over random charts",
    "test_hostile_input_api.py": "schema-driven fuzzing of every operation",
    "test_try_page_browser.py": "a real browser",
    "test_store_postgres.py": "starts a PostgreSQL server",
    "test_engine_concurrency.py": "8 threads x 2,000 evaluations",
    "test_sandbox_end_to_end.py": "live service + FHIR server for every synthetic patient",
    "test_sandbox_fhir_server_command.py": "starts the FHIR server command as a subprocess",
    "test_code_quality.py": "ruff and mypy over the whole tree",
    "test_no_patient_data_in_logs.py": "live service with debug logging for every patient",
    "test_security_attacks.py": "attacks over HTTP against the production entry points (both started)",
    "test_mri_mescc_http.py": "live service + FHIR server for the revision-2 MRI and MESCC patients",
}

SLOW_TESTS = {
    "test_feedback_memory.py::test_memory_survives_a_restart_on_postgres": "restarts a real service on PostgreSQL",
    "test_feedback_memory.py::test_memory_survives_a_restart_on_sqlite": "restarts a real service on SQLite",
    "test_metrics.py::test_multiprocess_mode_sums_all_workers": "starts worker processes",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SLOW_MODULES or f"{item.path.name}::{item.originalname}" in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
