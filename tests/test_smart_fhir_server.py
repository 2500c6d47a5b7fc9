"""The local EHR stand-in speaks SMART: discovery, EHR and standalone launch, PKCE, transactions."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

os.environ.setdefault("FHIR_SEQUENCE", "R4B")
pytest.importorskip("fhirstarter")
from fastapi.testclient import TestClient

from fhir_profiles import questionnaire_extract as qx
from sandbox.fhir_server import ResourceStore, build_app
from tests import smart_patient

NOW = datetime.now(UTC).replace(microsecond=0)
APP = "http://127.0.0.1:9999/smart/launch.html"
REDIRECT = "http://127.0.0.1:9999/smart/index.html"
SCOPE = (
    "launch openid fhirUser patient/Condition.read patient/Observation.read patient/Observation.write"
    " patient/Condition.write patient/Provenance.write"
)
VERIFIER = "v" * 64


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@pytest.fixture
def server():
    store = ResourceStore()
    store.load(*smart_patient.chart(NOW))
    app = build_app(store)
    with TestClient(app, base_url="http://fhir.test") as client:
        yield client, store, app


def authorize(client, **extra):
    params = {
        "response_type": "code",
        "client_id": "spinecds-assessment",
        "redirect_uri": REDIRECT,
        "scope": SCOPE,
        "state": "s-123",
        "aud": "http://fhir.test",
        "code_challenge": challenge(VERIFIER),
        "code_challenge_method": "S256",
        **extra,
    }
    answer = client.get(
        "/auth/authorize", params={k: v for k, v in params.items() if v is not None}, follow_redirects=False
    )
    return answer, parse_qs(urlsplit(answer.headers.get("location", "")).query)


def ehr_launch(client) -> str:
    answer = client.get(
        "/auth/launch",
        params={"app": APP, "patient": smart_patient.PATIENT_ID, "appContext": '{"questions":["sins"]}'},
        follow_redirects=False,
    )
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert answer.headers["location"].startswith(APP) and query["iss"] == ["http://fhir.test"]
    return query["launch"][0]


def token(client, code: str, verifier: str = VERIFIER):
    return client.post(
        "/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": "spinecds-assessment",
            "code_verifier": verifier,
        },
    )


def test_smart_configuration_announces_pkce_and_both_launches(server):
    client, _, _ = server
    config = client.get("/.well-known/smart-configuration").json()
    assert config["authorization_endpoint"] == "http://fhir.test/auth/authorize"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert {"launch-ehr", "launch-standalone", "client-public"} <= set(config["capabilities"])


def test_ehr_launch_gives_the_patient_and_the_cards_app_context(server):
    client, _, _ = server
    answer, query = authorize(client, launch=ehr_launch(client))
    assert answer.status_code == 302 and query["state"] == ["s-123"]
    body = token(client, query["code"][0]).json()
    assert body["patient"] == smart_patient.PATIENT_ID
    assert body["appContext"] == '{"questions":["sins"]}'
    assert body["token_type"] == "Bearer" and "id_token" in body


def test_standalone_launch_shows_a_patient_picker_then_issues_the_chosen_patient(server):
    client, _, _ = server
    answer, _ = authorize(client, scope=SCOPE.replace("launch ", "launch/patient "))
    assert answer.status_code == 200 and '<label for="patient">Patient</label>' in answer.text
    assert f'value="{smart_patient.PATIENT_ID}"' in answer.text
    answer, query = authorize(
        client, scope=SCOPE.replace("launch ", "launch/patient "), patient=smart_patient.PATIENT_ID
    )
    assert token(client, query["code"][0]).json()["patient"] == smart_patient.PATIENT_ID


def test_a_wrong_code_verifier_is_refused_and_burns_the_code(server):
    client, _, _ = server
    _, query = authorize(client, launch=ehr_launch(client))
    wrong = token(client, query["code"][0], verifier="w" * 64)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert "code_verifier" in wrong.json()["error_description"]
    again = token(client, query["code"][0])  # the right verifier, too late: codes are single use
    assert again.status_code == 400


def test_authorize_without_pkce_or_with_another_audience_is_refused(server):
    client, _, _ = server
    _, query = authorize(client, code_challenge=None, launch=ehr_launch(client))
    assert query["error"] == ["invalid_request"] and "PKCE" in query["error_description"][0]
    _, query = authorize(client, aud="http://elsewhere.test", launch=ehr_launch(client))
    assert query["error"] == ["invalid_request"] and query["state"] == ["s-123"]


def _access_token(client, scope: str = SCOPE) -> str:
    _, query = authorize(client, launch=ehr_launch(client), scope=scope)
    return token(client, query["code"][0]).json()["access_token"]


def _bundle():
    extraction = qx.extract(smart_patient.answers(), smart_patient.chart(NOW), smart_patient.PATIENT_ID, NOW)
    assert not extraction.problems
    return qx.transaction_bundle(
        extraction,
        smart_patient.PATIENT_ID,
        NOW,
        app_name="test app",
        client_id="spinecds-assessment",
        user_reference="Practitioner/sandbox-clinician",
        user_display="Sandbox Clinician",
    )


def test_a_transaction_writes_every_entry_and_links_the_provenance(server):
    client, store, _ = server
    before = len(store.all("Observation"))
    answer = client.post("/", json=_bundle(), headers={"Authorization": f"Bearer {_access_token(client)}"})
    assert answer.status_code == 200, answer.text
    locations = [e["response"]["location"] for e in answer.json()["entry"]]
    assert [loc.split("/")[0] for loc in locations] == ["Observation", "Observation", "Provenance"]
    assert len(store.all("Observation")) == before + 2
    provenance = store.get("Provenance", locations[-1].split("/")[1])
    assert [t["reference"] for t in provenance["target"]] == locations[:2]
    assert provenance["agent"][0]["who"]["reference"] == "Practitioner/sandbox-clinician"


def test_a_transaction_with_one_bad_entry_writes_nothing(server):
    client, store, _ = server
    bundle = _bundle()
    bundle["entry"][0]["resource"]["component"][0]["valueCodeableConcept"]["coding"][0]["code"] = "loc-nowhere"
    before = {t: len(store.all(t)) for t in ("Observation", "Provenance")}
    answer = client.post("/", json=bundle, headers={"Authorization": f"Bearer {_access_token(client)}"})
    assert answer.status_code == 422 and "entry[0]" in answer.json()["issue"][0]["diagnostics"]
    assert {t: len(store.all(t)) for t in before} == before


def test_a_transaction_needs_a_token_with_write_scopes(server):
    client, store, _ = server
    assert client.post("/", json=_bundle()).status_code == 401
    read_only = _access_token(client, scope="launch patient/Observation.read")
    answer = client.post("/", json=_bundle(), headers={"Authorization": f"Bearer {read_only}"})
    assert answer.status_code == 403 and "scopes" in answer.json()["issue"][0]["diagnostics"]
    assert store.all("Provenance") == []


def test_the_refuse_fault_refuses_the_whole_transaction(server):
    client, store, app = server
    app.state.faults.refuse_transactions = True
    answer = client.post("/", json=_bundle(), headers={"Authorization": f"Bearer {_access_token(client)}"})
    assert answer.status_code == 422 and store.all("Provenance") == []


def test_an_ehr_launch_only_redirects_to_the_launched_apps_origin(server):
    client, _, _ = server
    # Another app on this machine (another port): allowed in general, but not the one launched.
    answer, _ = authorize(client, launch=ehr_launch(client), redirect_uri="http://127.0.0.1:8888/steal")
    assert answer.status_code == 400 and "location" not in answer.headers
    assert "launched app" in answer.text


def test_a_launch_only_opens_apps_on_this_machine_or_listed(server, monkeypatch):
    client, _, _ = server
    for app_url in ("http://attacker.test/launch.html", "https://127.0.0.1.attacker.test/x", "http://u:p@127.0.0.1/x"):
        answer = client.get(
            "/auth/launch", params={"app": app_url, "patient": smart_patient.PATIENT_ID}, follow_redirects=False
        )
        assert answer.status_code == 400 and "location" not in answer.headers, app_url
    monkeypatch.setenv("SPINECDS_SANDBOX_APP_ORIGINS", "http://spinecds:8000, https://apps.example.org")
    answer = client.get(
        "/auth/launch",
        params={"app": "http://spinecds:8000/smart/launch.html", "patient": smart_patient.PATIENT_ID},
        follow_redirects=False,
    )
    assert answer.status_code == 302 and answer.headers["location"].startswith(
        "http://spinecds:8000/smart/launch.html?"
    )


def test_a_standalone_authorize_never_redirects_to_an_unknown_app(server):
    client, _, _ = server
    # Invalid in every other way too: still no error redirect to the stranger's address.
    answer, _ = authorize(client, redirect_uri="http://attacker.test/steal", response_type="token")
    assert answer.status_code == 400 and "location" not in answer.headers
    answer, _ = authorize(client, redirect_uri="http://attacker.test/steal", patient=smart_patient.PATIENT_ID)
    assert answer.status_code == 400 and "location" not in answer.headers


def test_launch_contexts_expire(server, monkeypatch):
    from sandbox.fhir_server import smart_auth

    client, _, _ = server
    launch = ehr_launch(client)
    later = smart_auth.time.time() + smart_auth.LAUNCH_LIFETIME_SECONDS + 1
    monkeypatch.setattr(smart_auth.time, "time", lambda: later)
    _, query = authorize(client, launch=launch)
    assert query["error"] == ["invalid_request"] and "launch" in query["error_description"][0]
    ehr_launch(client)  # a new launch clears the expired one out
    assert launch not in client.app.state.smart.launches


def test_unredeemed_codes_stay_bounded(server, monkeypatch):
    from sandbox.fhir_server import smart_auth

    client, _, app = server
    monkeypatch.setattr(smart_auth, "MAX_GRANTS", 5)
    for _ in range(12):
        answer, query = authorize(client, launch=ehr_launch(client))
        assert answer.status_code == 302 and query["code"]
    assert len(app.state.smart.codes) <= 5
    # the newest code still works
    assert token(client, query["code"][0]).status_code == 200
