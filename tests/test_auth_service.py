"""The real service behind client authentication: which endpoints need the EHR's JWT."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from cds_hooks.app import create_app
from cds_hooks.auth_settings import AuthSettings, TrustedClient
from cds_hooks.settings import Settings
from tests.auth_tokens import ISS, bearer, claims, mint, write_jwks
from tests.auth_tokens import new_ec_key as _ec_key

BASE = "https://cds.example.org"


def _client(tmp_path):  # type: ignore[no-untyped-def]
    key = _ec_key("ehr-key-1")
    jwks = write_jwks(tmp_path / "ehr.jwks.json", key)
    auth = AuthSettings(
        auth_enabled=True, external_base_url=BASE, trusted_clients=(TrustedClient(iss=ISS, jwks_file=jwks),)
    )
    app = create_app(Settings(database_path=tmp_path / "db.sqlite3"), auth_settings=auth)
    return TestClient(app, raise_server_exceptions=False), key


def test_discovery_hooks_and_feedback_need_a_valid_token(tmp_path):
    client, key = _client(tmp_path)
    for method, path, body in (
        ("GET", "/cds-services", None),
        ("POST", "/cds-services/spinecds-patient-view", {}),
        ("POST", "/cds-services/spinecds-patient-view/feedback", {"feedback": []}),
    ):
        response = client.request(method, path, content=json.dumps(body) if body is not None else None)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
    token = mint(key, claims(aud=BASE + "/cds-services"))
    discovery = client.get("/cds-services", headers=bearer(token))
    assert discovery.status_code == 200
    assert {s["hook"] for s in discovery.json()["services"]} == {"patient-view", "order-select", "order-sign"}
    # the same token again is a replay
    assert client.get("/cds-services", headers=bearer(token)).status_code == 401


def test_patient_sheets_open_without_a_token(tmp_path):
    client, _ = _client(tmp_path)
    assert client.get("/patient-sheets/alarm-symptoms").status_code == 200
