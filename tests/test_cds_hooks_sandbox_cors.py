"""The public CDS Hooks Sandbox runs in the browser: its calls are cross-origin, so CORS must let
its preflights through (without a token: browsers never send one on OPTIONS) and let it read the
answers, even the 401 of a call without a JWT, once its origin is configured
(SPINECDS_ALLOWED_ORIGINS). Without configured origins there is no CORS at all."""

from __future__ import annotations

import pytest
import requests
from fastapi.testclient import TestClient

from cds_hooks.app import create_app
from cds_hooks.auth_settings import AuthSettings
from cds_hooks.settings import Settings

SANDBOX_ORIGIN = "https://sandbox.cds-hooks.org"


@pytest.fixture(params=[False, True], ids=["auth-off", "auth-on"])
def browser_client(request, tmp_path) -> TestClient:  # type: ignore[no-untyped-def]
    app = create_app(
        Settings(database_path=tmp_path / "db.sqlite3", allowed_origins=[SANDBOX_ORIGIN]),
        auth_settings=AuthSettings(auth_enabled=request.param),
    )
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize(
    "path, method",
    [
        ("/cds-services", "GET"),
        ("/cds-services/spinecds-patient-view", "POST"),
        ("/cds-services/spinecds-order-sign", "POST"),
        ("/cds-services/spinecds-patient-view/feedback", "POST"),
    ],
)
def test_preflight_allows_the_sandbox_with_authorization_and_content_type(browser_client, path, method):
    response = browser_client.options(
        path,
        headers={
            "Origin": SANDBOX_ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", SANDBOX_ORIGIN)
    assert method in response.headers["access-control-allow-methods"]
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed


def test_answers_are_readable_cross_origin_even_when_refused(tmp_path):
    app = create_app(
        Settings(database_path=tmp_path / "db.sqlite3", allowed_origins=[SANDBOX_ORIGIN]),
        auth_settings=AuthSettings(auth_enabled=True),
    )
    with TestClient(app) as client:
        refused = client.get("/cds-services", headers={"Origin": SANDBOX_ORIGIN})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] in ("*", SANDBOX_ORIGIN)
    assert "x-request-id" in refused.headers["access-control-expose-headers"].lower()


def test_no_cors_unless_origins_are_configured(tmp_path):
    app = create_app(Settings(database_path=tmp_path / "db.sqlite3"), auth_settings=AuthSettings(auth_enabled=False))
    with TestClient(app) as client:
        answer = client.get("/cds-services", headers={"Origin": SANDBOX_ORIGIN})
        preflight = client.options(
            "/cds-services", headers={"Origin": SANDBOX_ORIGIN, "Access-Control-Request-Method": "GET"}
        )
    assert answer.status_code == 200
    assert not any(name.startswith("access-control-") for name in answer.headers)
    assert not any(name.startswith("access-control-") for name in preflight.headers)


def test_local_fhir_server_is_readable_from_the_sandbox_page(fhir_server):
    # The CDS Hooks Sandbox checks /metadata and prefetches from the browser: cross-origin reads.
    metadata = requests.get(f"{fhir_server.base_url}/metadata", headers={"Origin": SANDBOX_ORIGIN}, timeout=5)
    assert metadata.status_code == 200 and metadata.headers["access-control-allow-origin"] == "*"
    preflight = requests.options(
        f"{fhir_server.base_url}/Patient/p1",
        timeout=5,
        headers={
            "Origin": SANDBOX_ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200 and "authorization" in preflight.headers["access-control-allow-headers"].lower()
