"""Shared pytest fixtures."""

# CDS Hooks service fixtures (test FHIR server, app factory, engine spy).
from tests.service_fixtures import (  # noqa: F401
    client,
    engine_spy,
    fhir_server,
    fhir_server_session,
    make_client,
)
