"""The test FHIR server is a genuine FHIR REST server: read, search by patient/code, paging, create/update."""

from __future__ import annotations

import requests

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def test_service_fhir_server_read_and_not_found(fhir_server) -> None:  # type: ignore[no-untyped-def]
    ok = requests.get(f"{fhir_server.base_url}/Patient/p1", timeout=5)
    assert ok.status_code == 200 and ok.json()["birthDate"] == "1960-05-01"
    missing = requests.get(f"{fhir_server.base_url}/Patient/nobody", timeout=5)
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"


def test_service_fhir_server_search_by_patient_and_code(fhir_server) -> None:  # type: ignore[no-untyped-def]
    bundle = requests.get(
        f"{fhir_server.base_url}/Observation",
        timeout=5,
        params={"patient": "p1", "code": "http://loinc.org|72514-3,http://loinc.org|89243-0", "_sort": "-date"},
    ).json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    ids = [e["resource"]["id"] for e in bundle["entry"]]
    assert ids[0] == "o-nrs-2" and sorted(ids) == ["o-kps", "o-nrs-1", "o-nrs-2"]  # newest first
    assert {e["resource"]["subject"]["reference"] for e in bundle["entry"]} == {"Patient/p1"}
    conditions = requests.get(f"{fhir_server.base_url}/Condition", params={"patient": "Patient/p1"}, timeout=5).json()
    assert conditions["total"] == 2


def test_service_fhir_server_pages_with_next_links(fhir_server) -> None:  # type: ignore[no-untyped-def]
    url, ids = f"{fhir_server.base_url}/Observation?patient=p1&_count=2", []
    while url:
        page = requests.get(url, timeout=5).json()
        ids += [e["resource"]["id"] for e in page.get("entry", [])]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert len(ids) == len(set(ids)) == 5


def test_service_fhir_server_create_and_update(fhir_server) -> None:  # type: ignore[no-untyped-def]
    created = requests.post(
        f"{fhir_server.base_url}/Condition",
        headers=FHIR_JSON,
        timeout=5,
        json={
            "resourceType": "Condition",
            "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://spinecds.org/fhir/CodeSystem/spine-findings", "code": "mescc"}]},
        },
    )
    assert created.status_code == 201
    new_id = created.headers["location"].split("/")[2]
    assert fhir_server.store.get("Condition", new_id)["code"]["coding"][0]["code"] == "mescc"
    updated = requests.put(
        f"{fhir_server.base_url}/Patient/p9",
        headers=FHIR_JSON,
        timeout=5,
        json={"resourceType": "Patient", "id": "p9", "gender": "male"},
    )
    assert updated.status_code in (200, 201)
    assert requests.get(f"{fhir_server.base_url}/Patient/p9", timeout=5).json()["gender"] == "male"


def test_service_fhir_server_rejects_invalid_resources(fhir_server) -> None:  # type: ignore[no-untyped-def]
    response = requests.post(
        f"{fhir_server.base_url}/Observation",
        headers=FHIR_JSON,
        timeout=5,
        json={"resourceType": "Observation", "status": "final"},
    )  # code is required
    assert 400 <= response.status_code < 500
    assert response.json()["resourceType"] == "OperationOutcome"
