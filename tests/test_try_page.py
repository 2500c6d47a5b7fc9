"""The try-it page's routes: off by default, unauthenticated when on, requests that the service answers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_hooks.app import create_app
from cds_hooks.auth_settings import AuthSettings
from cds_hooks.clock import get_now
from cds_hooks.services import SERVICES
from cds_hooks.settings import Settings
from tests.service_fixtures import FIXED_NOW


@pytest.fixture
def try_client(make_client) -> TestClient:  # type: ignore[no-untyped-def]
    return make_client(try_page=True)


def _spinecds(card: dict[str, Any]) -> dict[str, Any]:
    return card["extension"]["spinecds"]


def test_try_page_is_off_unless_enabled(client):
    assert Settings().try_page is False
    for path in ("/", "/try/patients", "/try/orders", "/try/patients/spinecds-p05/request", "/static/try.js"):
        assert client.get(path).status_code == 404, path


def test_page_and_its_files_are_served_with_a_strict_content_security_policy(try_client):
    page = try_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/try.js"' in page.text and '<label for="patient">' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "://" not in page.text  # no external assets, no CDN
    script = try_client.get("/static/try.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert try_client.get("/static/try.css").status_code == 200


def test_patients_are_listed_with_their_story_and_expected_cards(try_client):
    listed = try_client.get("/try/patients").json()["patients"]
    assert len(listed) == 26  # p21-p26 coded as EHRs and mCODE code them
    p05 = next(p for p in listed if p["id"] == "spinecds-p05")
    assert "suspected spinal cord compression" in p05["story"]
    assert p05["expectedCards"] == ["mri-urgency: tier 1 (critical, 12 h)"]
    orders = {o["id"] for o in try_client.get("/try/orders").json()["orders"]}
    assert {"mri-routine-2-weeks", "spinal-surgery"} <= orders


def test_built_request_carries_the_prefetch_the_service_asks_for_and_gets_the_expected_card(try_client):
    built = try_client.get("/try/patients/p05/request", params={"hook": "patient-view"})
    assert built.status_code == 200
    service_id = built.headers["x-spinecds-service-id"]
    assert service_id == "spinecds-patient-view"
    request = built.json()
    assert request["context"]["patientId"] == "spinecds-p05" and "fhirServer" not in request
    assert set(request["prefetch"]) == set(SERVICES[service_id].prefetch)
    assert request["prefetch"]["patient"]["id"] == "spinecds-p05"
    # Only the codes the template names: no vital signs or labs in the pain key.
    pain = request["prefetch"]["pain"]["entry"]
    assert pain and all(e["resource"]["code"]["coding"][0]["code"] == "72514-3" for e in pain)

    cards = try_client.post(f"/cds-services/{service_id}", json=request).json()["cards"]
    mri = next(c for c in cards if _spinecds(c)["ruleId"] == "mri-urgency")
    assert mri["indicator"] == "critical" and _spinecds(mri)["deadlineHours"] == 12


def test_order_hooks_get_a_draft_order_sample_or_the_default_mri(try_client):
    chosen = try_client.get(
        "/try/patients/spinecds-p04/request", params={"hook": "order-select", "order": "mri-routine-2-weeks"}
    ).json()
    (entry,) = chosen["context"]["draftOrders"]["entry"]
    assert entry["resource"]["id"] == "sandbox-draft-mri-routine"
    assert entry["resource"]["subject"] == {"reference": "Patient/spinecds-p04"}
    assert chosen["context"]["selections"] == ["ServiceRequest/sandbox-draft-mri-routine"]
    cards = try_client.post("/cds-services/spinecds-order-select", json=chosen).json()["cards"]
    mri = next(c for c in cards if _spinecds(c)["ruleId"] == "mri-urgency")
    assert mri["indicator"] == "critical" and _spinecds(mri)["outcome"] == 2  # too slow for tier 2

    default = try_client.get("/try/patients/spinecds-p04/request", params={"hook": "order-sign"})
    assert default.headers["x-spinecds-service-id"] == "spinecds-order-sign"
    (default_entry,) = default.json()["context"]["draftOrders"]["entry"]
    assert default_entry["resource"]["code"]["coding"][0]["code"] == "mri-whole-spine"


@pytest.mark.parametrize(
    "path, params, status, message",
    [
        ("/try/patients/p99/request", {}, 404, "unknown synthetic patient 'p99'"),
        ("/try/patients/p05/request", {"hook": "encounter-start"}, 400, "unknown hook 'encounter-start'"),
        ("/try/patients/p05/request", {"hook": "order-sign", "order": "../../etc/passwd"}, 400, "unknown draft order"),
        (
            "/try/patients/p05/request",
            {"hook": "patient-view", "order": "spinal-surgery"},
            400,
            "applies to order-select",
        ),
    ],
)
def test_bad_try_requests_get_an_operation_outcome(try_client, path, params, status, message):
    response = try_client.get(path, params=params)
    assert response.status_code == status
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and message in body["issue"][0]["diagnostics"]


def test_try_routes_need_no_token_while_the_hooks_do(tmp_path):
    app = create_app(
        Settings(try_page=True, database_path=tmp_path / "db.sqlite3"), auth_settings=AuthSettings(auth_enabled=True)
    )
    app.dependency_overrides[get_now] = lambda: FIXED_NOW
    with TestClient(app) as client:
        assert client.get("/").status_code == 200
        assert client.get("/try/patients").status_code == 200
        request = client.get("/try/patients/p05/request").json()
        assert client.post("/cds-services/spinecds-patient-view", json=request).status_code == 401


SERVICE_WITHOUT_SANDBOX = """
import importlib.abc, sys

class NoSandbox(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "sandbox" or name.startswith("sandbox."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoSandbox())
from fastapi.testclient import TestClient
from cds_hooks.app import create_app
from cds_hooks.auth_settings import AuthSettings
from cds_hooks.settings import Settings

auth = AuthSettings(auth_enabled=False)
with TestClient(create_app(Settings(database_path=sys.argv[1]), auth_settings=auth)) as client:
    assert client.get("/cds-services").status_code == 200
    assert client.get("/").status_code == 404
try:
    create_app(Settings(database_path=sys.argv[1], try_page=True), auth_settings=auth)
except RuntimeError as error:
    print("refused:", error)
assert not [name for name in sys.modules if name == "sandbox" or name.startswith("sandbox.")]
print("ok")
"""


def test_the_service_runs_without_the_sandbox_kit_and_says_why_the_page_cannot(tmp_path):
    """What the production image is: no sandbox/ package. Nothing in cds_hooks imports it."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", SERVICE_WITHOUT_SANDBOX, str(tmp_path / "db.sqlite3")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused: SPINECDS_TRY_PAGE=true, but this build has no sandbox kit" in done.stdout
    assert done.stdout.strip().endswith("ok")
