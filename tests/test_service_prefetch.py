"""Prefetch resolution: present / null / absent / OperationOutcome, pagination, fault handling.

The fallback tests talk to a real FHIR server (fhirstarter + uvicorn) on 127.0.0.1.
"""

from __future__ import annotations

import time

import pytest
import requests

from cds_hooks.prefetch import render_template
from cds_hooks.prefetch_templates import prefetch_templates
from tests.service_fixtures import (
    LOINC,
    PATIENT_ID,
    closed_port,
    hook_request,
    observation,
    patient_resources,
    searchset,
)

TEMPLATE_KEYS = set(prefetch_templates())
AUTH = {
    "access_token": "secret-token-123",
    "token_type": "Bearer",
    "expires_in": 300,
    "scope": "patient/Patient.read patient/Condition.read patient/Observation.read",
    "subject": "spinecds",
}


def _identity(resources):  # type: ignore[no-untyped-def]
    return sorted((r["resourceType"], r["id"]) for r in resources)


def full_prefetch_from(server) -> dict:  # type: ignore[no-untyped-def]
    """What a conforming CDS client would send: each template run against its FHIR server."""
    context = {"patientId": PATIENT_ID, "userId": "Practitioner/dr-1"}
    return {
        key: requests.get(f"{server.base_url}/{render_template(t, context)}", timeout=5).json()
        for key, t in prefetch_templates().items()
    }


def test_service_prefetch_present_is_used_without_fetching(client, engine_spy, fhir_server) -> None:  # type: ignore[no-untyped-def]
    prefetch = {key: None for key in TEMPLATE_KEYS}
    prefetch["patient"] = {"resourceType": "Patient", "id": PATIENT_ID}
    prefetch["pain"] = searchset([observation("o-nrs", LOINC, "72514-3", "2026-03-01", valueInteger=8)])
    response = client.post(
        "/cds-services/spinecds-patient-view", json=hook_request(prefetch=prefetch, fhirServer=fhir_server.base_url)
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"cards": []}
    (request,) = engine_spy.requests
    assert _identity(request.resources) == [("Observation", "o-nrs"), ("Patient", PATIENT_ID)]
    assert fhir_server.store.requests == []  # nothing fetched: the client sent everything


def test_service_prefetch_null_means_no_data_and_is_not_refetched(client, engine_spy, fhir_server) -> None:  # type: ignore[no-untyped-def]
    prefetch = {key: None for key in TEMPLATE_KEYS}
    response = client.post(
        "/cds-services/spinecds-patient-view", json=hook_request(prefetch=prefetch, fhirServer=fhir_server.base_url)
    )
    assert response.status_code == 200, response.text
    assert engine_spy.requests[0].resources == []
    assert fhir_server.store.requests == []


def test_service_prefetch_absent_key_is_fetched_from_fhir_server(client, engine_spy, fhir_server) -> None:  # type: ignore[no-untyped-def]
    prefetch = {key: None for key in TEMPLATE_KEYS if key != "pain"}
    response = client.post(
        "/cds-services/spinecds-patient-view",
        json=hook_request(prefetch=prefetch, fhirServer=fhir_server.base_url, fhirAuthorization=AUTH),
    )
    assert response.status_code == 200, response.text
    # Only this patient's pain scores, fetched with the template's code filter.
    assert _identity(engine_spy.requests[0].resources) == [("Observation", "o-nrs-1"), ("Observation", "o-nrs-2")]
    (call,) = fhir_server.store.requests
    assert call["path"] == "/Observation" and "72514-3" in requests.utils.unquote(call["query"])


def test_service_prefetch_fetch_forwards_bearer_token(client, engine_spy, fhir_server) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        "/cds-services/spinecds-patient-view",
        json=hook_request(fhirServer=fhir_server.base_url, fhirAuthorization=AUTH),
    )
    assert response.status_code == 200, response.text
    calls = fhir_server.store.requests
    assert len(calls) == len(TEMPLATE_KEYS)  # every key fetched, concurrently
    assert {c["authorization"] for c in calls} == {"Bearer secret-token-123"}


def test_service_prefetch_missing_keys_are_fetched_concurrently(client, engine_spy, fhir_server) -> None:  # type: ignore[no-untyped-def]
    fhir_server.faults.delay_seconds = 0.3
    started = time.monotonic()
    response = client.post("/cds-services/spinecds-patient-view", json=hook_request(fhirServer=fhir_server.base_url))
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    # revision 2 added four keys (procedures, imagingStudies, diagnosticReports, serviceRequests)
    assert len(fhir_server.store.requests) == len(TEMPLATE_KEYS) == 10
    assert elapsed < 3 * 0.3, elapsed  # one after another would take 10 x 0.3 s


def test_service_prefetch_token_never_logged(client, engine_spy, fhir_server, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level("DEBUG")
    client.post(
        "/cds-services/spinecds-patient-view",
        json=hook_request(fhirServer=fhir_server.base_url, fhirAuthorization=AUTH),
    )
    logged = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert "secret-token-123" not in logged and "1960-05-01" not in logged
    assert any(getattr(r, "prefetchKeysFetched", None) == len(TEMPLATE_KEYS) for r in caplog.records)


def test_service_prefetch_operation_outcome_is_treated_as_absent(client, engine_spy, fhir_server, caplog) -> None:  # type: ignore[no-untyped-def]
    prefetch = {key: None for key in TEMPLATE_KEYS}
    prefetch["conditions"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "too-costly", "diagnostics": "Patient p1 Smith has too many results"}],
    }
    response = client.post(
        "/cds-services/spinecds-patient-view", json=hook_request(prefetch=prefetch, fhirServer=fhir_server.base_url)
    )
    assert response.status_code == 200, response.text
    assert _identity(engine_spy.requests[0].resources) == [("Condition", "c-breast"), ("Condition", "c-spine")]
    assert [c["path"] for c in fhir_server.store.requests] == ["/Condition"]
    warning = next(r for r in caplog.records if getattr(r, "prefetch_key", None) == "conditions")
    assert warning.issue_codes == ["too-costly"]
    assert "Smith" not in warning.getMessage() and "Smith" not in str(vars(warning))


def test_service_prefetch_follows_next_links(client, engine_spy, fhir_server) -> None:  # type: ignore[no-untyped-def]
    fhir_server.store.load(
        *(
            observation(f"nrs-{i:03}", LOINC, "72514-3", f"2025-01-01T00:{i % 60:02}:00Z", valueInteger=i % 11)
            for i in range(120)
        )
    )
    prefetch = {key: None for key in TEMPLATE_KEYS if key != "pain"}
    response = client.post(
        "/cds-services/spinecds-patient-view",
        json=hook_request(prefetch=prefetch, fhirServer=fhir_server.base_url, fhirAuthorization=AUTH),
    )
    assert response.status_code == 200, response.text
    observations = engine_spy.requests[0].resources
    assert len(observations) == 122 and len({o["id"] for o in observations}) == 122
    pages = fhir_server.store.requests
    assert len(pages) == 3 and "_offset=50" in pages[1]["query"] and "_offset=100" in pages[2]["query"]
    assert {page["authorization"] for page in pages} == {"Bearer secret-token-123"}  # token on every page
    assert "extension" not in response.json()


def test_service_prefetch_page_cap_reports_truncation(make_client, engine_spy, fhir_server) -> None:  # type: ignore[no-untyped-def]
    client = make_client(fhir_max_pages=2)
    fhir_server.store.load(
        *(observation(f"nrs-{i:03}", LOINC, "72514-3", "2025-01-01T00:00:00Z", valueInteger=1) for i in range(120))
    )
    prefetch = {key: None for key in TEMPLATE_KEYS if key != "pain"}
    response = client.post(
        "/cds-services/spinecds-patient-view", json=hook_request(prefetch=prefetch, fhirServer=fhir_server.base_url)
    )
    assert response.status_code == 200, response.text
    assert len(engine_spy.requests[0].resources) == 100
    (note,) = response.json()["extension"]["spinecds"]["dataQuality"]
    assert note["resource"] == "prefetch/pain" and "truncated after 2 pages" in note["issue"]


def test_service_prefetch_full_and_fetched_reach_engine_alike(client, engine_spy, fhir_server) -> None:  # type: ignore[no-untyped-def]
    full = client.post(
        "/cds-services/spinecds-patient-view", json=hook_request(prefetch=full_prefetch_from(fhir_server))
    )
    fhir_server.store.requests.clear()
    fetched = client.post(
        "/cds-services/spinecds-patient-view",
        json=hook_request(fhirServer=fhir_server.base_url, fhirAuthorization=AUTH),
    )
    assert full.status_code == fetched.status_code == 200
    first, second = engine_spy.requests
    assert len(fhir_server.store.requests) == len(TEMPLATE_KEYS)
    key = lambda r: (r["resourceType"], r["id"])  # noqa: E731
    assert sorted(first.resources, key=key) == sorted(second.resources, key=key)
    expected = [r for r in patient_resources() if r["id"] != "o-other"]
    assert _identity(first.resources) == _identity(expected)
    assert (first.hook, first.patient_id, first.now) == (second.hook, second.patient_id, second.now)


def test_service_prefetch_missing_without_fhir_server_is_412(client, engine_spy) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        "/cds-services/spinecds-patient-view",
        json=hook_request(prefetch={"patient": {"resourceType": "Patient", "id": PATIENT_ID}}),
    )
    assert response.status_code == 412
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "prefetch.conditions" in outcome["issue"][0]["expression"]
    assert engine_spy.requests == []


def test_service_prefetch_unreachable_server_is_412(client, engine_spy, caplog) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    response = client.post(
        "/cds-services/spinecds-patient-view", json=hook_request(fhirServer=f"http://127.0.0.1:{closed_port()}")
    )
    assert response.status_code == 412
    assert response.json()["resourceType"] == "OperationOutcome"
    _assert_neutral_412(response, caplog, "unreachable")
    assert time.monotonic() - started < 2.5
    assert engine_spy.requests == []


def test_service_prefetch_slow_server_is_412_within_budget(make_client, engine_spy, fhir_server, caplog) -> None:  # type: ignore[no-untyped-def]
    client = make_client(fhir_timeout_seconds=0.6)
    fhir_server.faults.delay_seconds = 5
    started = time.monotonic()
    response = client.post("/cds-services/spinecds-patient-view", json=hook_request(fhirServer=fhir_server.base_url))
    elapsed = time.monotonic() - started
    assert response.status_code == 412, response.text
    assert "timed out" in _fetch_failure_reasons(caplog) or "budget" in _fetch_failure_reasons(caplog)
    _assert_neutral_412(response, caplog, "")
    assert 0.5 < elapsed < 0.6 + 0.4, elapsed  # answered when the budget ran out, not at the server's pace
    assert engine_spy.requests == []


def test_service_prefetch_default_budget_is_2_5_seconds(client, engine_spy, fhir_server) -> None:  # type: ignore[no-untyped-def]
    fhir_server.faults.delay_seconds = 3.5
    prefetch = {key: None for key in TEMPLATE_KEYS if key != "patient"}
    started = time.monotonic()
    response = client.post(
        "/cds-services/spinecds-patient-view", json=hook_request(prefetch=prefetch, fhirServer=fhir_server.base_url)
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 412
    assert 2.4 < elapsed < 3.0, elapsed


@pytest.mark.parametrize("status", [401, 404, 500, 503])
def test_service_prefetch_fhir_error_status_is_412(client, engine_spy, fhir_server, status, caplog) -> None:  # type: ignore[no-untyped-def]
    fhir_server.faults.status = status
    response = client.post("/cds-services/spinecds-patient-view", json=hook_request(fhirServer=fhir_server.base_url))
    assert response.status_code == 412
    _assert_neutral_412(response, caplog, f"HTTP {status}")
    assert engine_spy.requests == []


def test_service_prefetch_garbage_json_is_412(client, engine_spy, fhir_server, caplog) -> None:  # type: ignore[no-untyped-def]
    fhir_server.faults.garbage = True
    response = client.post("/cds-services/spinecds-patient-view", json=hook_request(fhirServer=fhir_server.base_url))
    assert response.status_code == 412
    _assert_neutral_412(response, caplog, "not JSON")


def test_service_prefetch_unknown_patient_on_server_is_412(client, engine_spy, fhir_server) -> None:  # type: ignore[no-untyped-def]
    body = hook_request(fhirServer=fhir_server.base_url)
    body["context"]["patientId"] = "nobody"
    response = client.post("/cds-services/spinecds-patient-view", json=body)
    assert response.status_code == 412
    assert "prefetch.patient" in response.text


def test_service_prefetch_malformed_value_is_400(client, engine_spy) -> None:  # type: ignore[no-untyped-def]
    prefetch = {key: None for key in TEMPLATE_KEYS}
    prefetch["conditions"] = ["not", "a", "bundle"]
    response = client.post("/cds-services/spinecds-patient-view", json=hook_request(prefetch=prefetch))
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["prefetch.conditions"]


def test_service_prefetch_patient_mismatch_is_400(client, engine_spy) -> None:  # type: ignore[no-untyped-def]
    prefetch = {key: None for key in TEMPLATE_KEYS}
    prefetch["patient"] = {"resourceType": "Patient", "id": "someone-else"}
    response = client.post("/cds-services/spinecds-patient-view", json=hook_request(prefetch=prefetch))
    assert response.status_code == 400
    assert engine_spy.requests == []


def test_service_prefetch_template_tokens() -> None:
    context = {"patientId": "p1", "userId": "Practitioner/dr-1", "selections": ["a"]}
    assert render_template("Patient/{{context.patientId}}", context) == "Patient/p1"
    assert render_template("Practitioner/{{userPractitionerId}}", context) == "Practitioner/dr-1"
    with pytest.raises(ValueError, match="primitive"):
        render_template("X?y={{context.selections}}", context)
    with pytest.raises(ValueError, match="unknown prefetch token"):
        render_template("X?y={{patientId}}", context)


def test_service_prefetch_next_link_to_other_origin_is_refused() -> None:
    # The bearer token must never travel to a host other than the client's FHIR server.
    from cds_hooks.fhir_client import FhirClient, FhirFetchError

    client = FhirClient(base_url="https://ehr.example.org/fhir", access_token="t", deadline=time.monotonic() + 1)
    client._check_same_origin("https://ehr.example.org/fhir/Observation?_offset=50")
    with pytest.raises(FhirFetchError, match="outside the FHIR server"):
        client._check_same_origin("https://attacker.example.com/fhir/Observation?_offset=50")


def _fetch_failure_reasons(caplog) -> str:  # type: ignore[no-untyped-def]
    return " ".join(
        " ".join(getattr(record, "reasons", [])) for record in caplog.records if record.name == "spinecds.prefetch"
    )


def _assert_neutral_412(response, caplog, logged_reason: str) -> None:  # type: ignore[no-untyped-def]
    """The caller gets one wording whatever failed (so answers cannot map open and closed ports);
    the reason is in the service log for operations."""
    assert response.status_code == 412
    diagnostics = {issue["diagnostics"].split(": ", 1)[1] for issue in response.json()["issue"]}
    assert diagnostics == {"could not be fetched from the FHIR server"}, response.text
    for word in ("unreachable", "timed out", "HTTP", "JSON", "refused"):
        assert word not in response.text
    assert logged_reason in _fetch_failure_reasons(caplog)


def test_service_prefetch_tokens_are_url_encoded() -> None:
    from cds_hooks.prefetch import render_template

    context = {"patientId": "a b&c=d/e?f#g", "userId": "Practitioner/x/../y"}
    rendered = render_template("Observation?patient={{context.patientId}}&performer={{userPractitionerId}}", context)
    assert rendered == "Observation?patient=a%20b%26c%3Dd%2Fe%3Ff%23g&performer=x%2F..%2Fy"
    for dots in (".", ".."):
        with pytest.raises(ValueError, match="dots only"):
            render_template("Patient/{{context.patientId}}", {"patientId": dots})
