"""`spinecds sandbox fire` against a stub CDS service and the tiny FHIR server: what an EHR would send."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import pytest

from sandbox import cli, patients
from tests.sandbox_stub_servers import CANNED_CARD, PREFETCH, StubCdsService, TinyFhirServer, running


@pytest.fixture(scope="module")
def fhir():
    with running(TinyFhirServer()) as server:
        for pid in ("spinecds-p04", "spinecds-p13"):
            for entry in patients.build_bundle(pid)["entry"]:
                server.put(entry["resource"])
        yield server


@pytest.fixture
def cds():
    with running(StubCdsService()) as server:
        yield server


def fire(fhir, cds, *extra: str) -> int:
    return cli.main(["sandbox", "fire", "--fhir-server", fhir.base, "--service", cds.url, *extra])


def test_prefetch_is_resolved_from_the_fhir_server(fhir, cds, capsys):
    fhir.seen.clear()
    assert fire(fhir, cds, "--patient", "p04", "--hook", "patient-view", "--json") == 0
    (request,) = cds.hook_requests()
    assert request["hook"] == "patient-view"
    uuid.UUID(request["hookInstance"])
    assert request["context"] == {"userId": "Practitioner/sandbox", "patientId": "spinecds-p04"}
    assert "fhirServer" not in request and "fhirAuthorization" not in request
    prefetch = request["prefetch"]
    assert set(prefetch) == set(PREFETCH)
    assert prefetch["patient"]["id"] == "spinecds-p04"
    conditions = {e["resource"]["id"] for e in prefetch["conditions"]["entry"]}
    assert "spinecds-p04-cond-radicular-deficit" in conditions
    assert [e["resource"]["valueInteger"] for e in prefetch["performanceStatus"]["entry"]] == [60]
    assert prefetch["sins"]["total"] == 0
    # each template became exactly one GET with the patient filled in
    gets = [s.path for s in fhir.seen if s.method == "GET"]
    assert "/fhir/Patient/spinecds-p04" in gets and len(gets) == len(PREFETCH)
    assert all("{{" not in path for path in gets)
    assert json.loads(capsys.readouterr().out) == {"cards": [CANNED_CARD]}


def test_failed_prefetch_key_is_left_out(fhir, capsys):
    templates = {**PREFETCH, "missing": "Patient/does-not-exist", "unfillable": "Patient/{{context.encounterId}}"}
    with running(StubCdsService(prefetch=templates)) as cds:
        assert fire(fhir, cds, "--patient", "p04", "--hook", "patient-view") == 0
        (request,) = cds.hook_requests()
    assert set(request["prefetch"]) == set(PREFETCH)
    err = capsys.readouterr().err
    assert "prefetch missing left out: HTTP 404" in err and "prefetch unfillable left out" in err


def test_no_prefetch_sends_fhir_server_and_bearer_authorization(fhir, cds):
    fhir.seen.clear()
    assert (
        fire(fhir, cds, "--patient", "spinecds-p13", "--hook", "patient-view", "--no-prefetch", "--token", "tok-123")
        == 0
    )
    (request,) = cds.hook_requests()
    assert "prefetch" not in request
    assert request["fhirServer"] == fhir.base
    auth = request["fhirAuthorization"]
    assert auth["access_token"] == "tok-123" and auth["token_type"] == "Bearer"
    assert auth["expires_in"] > 0 and "patient/Observation.read" in auth["scope"] and auth["subject"]
    assert fhir.seen == []  # the client fetched nothing: the service must


def test_no_prefetch_without_token_sends_a_placeholder_and_says_so(fhir, cds, capsys):
    assert fire(fhir, cds, "--patient", "p13", "--hook", "patient-view", "--no-prefetch") == 0
    (request,) = cds.hook_requests()
    assert request["fhirAuthorization"]["access_token"] == cli.PLACEHOLDER_TOKEN
    assert "no --token" in capsys.readouterr().err


def test_order_select_sends_the_built_in_draft_mri_and_selects_it(fhir, cds):
    before = datetime.now().astimezone()
    assert fire(fhir, cds, "--patient", "p04", "--hook", "order-select") == 0
    (request,) = cds.hook_requests()
    orders = request["context"]["draftOrders"]
    assert orders["resourceType"] == "Bundle"
    (order,) = [e["resource"] for e in orders["entry"]]
    assert order["resourceType"] == "ServiceRequest" and order["status"] == "draft"
    assert order["code"]["coding"][0]["code"] == "mri-whole-spine"
    assert order["subject"] == {"reference": "Patient/spinecds-p04"}
    end = datetime.fromisoformat(order["occurrencePeriod"]["end"].replace("Z", "+00:00"))
    assert timedelta(days=13, hours=23) < end - before < timedelta(days=14, minutes=1)
    assert request["context"]["selections"] == [f"ServiceRequest/{order['id']}"]
    assert [s.path for s in cds.seen if s.method == "POST"] == ["/cds-services/stub-order-select"]


def test_order_sign_with_a_draft_order_file(fhir, cds):
    surgery = patients.PATIENT_DIR.parent / "orders" / "spinal-surgery.json"
    assert fire(fhir, cds, "--patient", "p13", "--hook", "order-sign", "--draft-order", str(surgery)) == 0
    (request,) = cds.hook_requests()
    (order,) = [e["resource"] for e in request["context"]["draftOrders"]["entry"]]
    assert order["code"]["coding"][0]["code"] == "spinal-surgery"
    assert order["subject"] == {"reference": "Patient/spinecds-p13"}
    assert "now" not in json.dumps(order) and " days" not in json.dumps(order)  # relative times were resolved
    assert order["occurrencePeriod"]["end"].endswith("Z")
    assert "selections" not in request["context"]


def test_cards_are_printed_readably(fhir, cds, capsys):
    assert fire(fhir, cds, "--patient", "p04", "--hook", "patient-view") == 0
    out = capsys.readouterr().out
    assert "CRITICAL: MRI whole spine within 24 h" in out
    assert "source: Dutch guideline spinal metastases, Table 3 (rule mri-urgency v1.0.0)" in out
    assert "suggestion 1: Order MRI whole spine within 24 h (recommended)" in out
    assert "create ServiceRequest" in out and "priority asap" in out
    assert "link: Alarm symptom sheet <https://spinecds.org/alarm-symptoms>" in out
    assert "deadlineHours=24" in out and "Radicular deficit (right)" in out


def test_service_error_prints_the_operation_outcome_and_exits_1(fhir, capsys):
    failure = (
        400,
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "required", "diagnostics": "context.patientId is required"}],
        },
    )
    with running(StubCdsService(fail_with=failure)) as cds:
        assert fire(fhir, cds, "--patient", "p04", "--hook", "patient-view") == 1
    err = capsys.readouterr().err
    assert "HTTP 400" in err and "context.patientId is required" in err


def test_unreachable_service_exits_2(fhir, capsys):
    assert (
        cli.main(
            [
                "sandbox",
                "fire",
                "--fhir-server",
                fhir.base,
                "--service",
                "http://127.0.0.1:9",
                "--patient",
                "p04",
                "--hook",
                "patient-view",
            ]
        )
        == 2
    )
    assert "CDS service discovery: cannot connect" in capsys.readouterr().err


def test_draft_order_on_patient_view_is_refused(fhir, cds, capsys):
    assert fire(fhir, cds, "--patient", "p04", "--hook", "patient-view", "--draft-order", "x.json") == 2
    assert "--draft-order applies to order-select / order-sign" in capsys.readouterr().err
    assert cds.seen == []
