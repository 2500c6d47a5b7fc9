"""Every client error gets its status and an OperationOutcome saying what is wrong; never a 500."""

from __future__ import annotations

import pytest

from cds_hooks.prefetch_templates import prefetch_templates
from tests.service_fixtures import PATIENT_ID, hook_request

NO_DATA = {key: None for key in prefetch_templates()}
URL = "/cds-services/spinecds-patient-view"


def _outcome(response, status: int) -> list[dict]:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"]
    for issue in body["issue"]:
        assert issue["severity"] == "error" and issue["code"] and issue["diagnostics"]
    assert response.headers["x-request-id"]
    return body["issue"]


def _order_bundle(*ids: str) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "ServiceRequest",
                    "id": i,
                    "status": "draft",
                    "intent": "order",
                    "subject": {"reference": f"Patient/{PATIENT_ID}"},
                }
            }
            for i in ids
        ],
    }


def test_service_error_malformed_json_is_400(client) -> None:  # type: ignore[no-untyped-def]
    issues = _outcome(
        client.post(URL, content=b'{"hook": "patient-view",', headers={"Content-Type": "application/json"}), 400
    )
    assert "not valid JSON" in issues[0]["diagnostics"]


def test_service_error_empty_body_is_400(client) -> None:  # type: ignore[no-untyped-def]
    _outcome(client.post(URL, content=b""), 400)


@pytest.mark.parametrize("body", [[], "text", 42, None])
def test_service_error_json_that_is_not_an_object_is_400(client, body) -> None:  # type: ignore[no-untyped-def]
    _outcome(client.post(URL, json=body), 400)


def test_service_error_wrong_hook_for_service_is_400(client) -> None:  # type: ignore[no-untyped-def]
    issues = _outcome(client.post(URL, json=hook_request(hook="order-sign", prefetch=NO_DATA)), 400)
    assert issues[0]["expression"] == ["hook"] and "spinecds-patient-view" in issues[0]["diagnostics"]


@pytest.mark.parametrize("field", ["patientId", "userId"])
def test_service_error_missing_context_field_is_400(client, field) -> None:  # type: ignore[no-untyped-def]
    body = hook_request(prefetch=NO_DATA)
    del body["context"][field]
    issues = _outcome(client.post(URL, json=body), 400)
    assert issues[0]["expression"] == [f"context.{field}"] and issues[0]["code"] == "required"


@pytest.mark.parametrize("field", ["hook", "hookInstance", "context"])
def test_service_error_missing_request_field_is_400(client, field) -> None:  # type: ignore[no-untyped-def]
    body = hook_request(prefetch=NO_DATA)
    del body[field]
    issues = _outcome(client.post(URL, json=body), 400)
    assert [field] in [i["expression"] for i in issues]


def test_service_error_fhir_authorization_without_server_is_400(client) -> None:  # type: ignore[no-untyped-def]
    body = hook_request(
        prefetch=NO_DATA,
        fhirAuthorization={
            "access_token": "t",
            "token_type": "Bearer",
            "expires_in": 60,
            "scope": "patient/*.read",
            "subject": "s",
        },
    )
    issues = _outcome(client.post(URL, json=body), 400)
    assert "fhirAuthorization requires fhirServer" in issues[0]["diagnostics"]


def test_service_error_fhir_authorization_bad_token_type_is_400(client) -> None:  # type: ignore[no-untyped-def]
    body = hook_request(
        prefetch=NO_DATA,
        fhirServer="http://127.0.0.1:1",
        fhirAuthorization={
            "access_token": "t",
            "token_type": "MAC",
            "expires_in": 60,
            "scope": "patient/*.read",
            "subject": "s",
        },
    )
    issues = _outcome(client.post(URL, json=body), 400)
    assert ["fhirAuthorization.token_type"] in [i["expression"] for i in issues]


def test_service_error_patient_id_that_is_not_a_fhir_id_is_400(client) -> None:  # type: ignore[no-untyped-def]
    body = hook_request(prefetch=NO_DATA)
    body["context"]["patientId"] = "p1&_count=100000"
    issues = _outcome(client.post(URL, json=body), 400)
    assert issues[0]["expression"] == ["context.patientId"]


def test_service_error_ids_with_a_trailing_newline_are_400(client) -> None:  # type: ignore[no-untyped-def]
    # `$` in a regex also matches before a final "\n": the ids are checked with fullmatch.
    body = hook_request(prefetch=NO_DATA)
    body["context"]["patientId"] = "p1\n"
    assert _outcome(client.post(URL, json=body), 400)[0]["expression"] == ["context.patientId"]
    body = hook_request(prefetch=NO_DATA, hookInstance="d1577c69-dfbe-44ad-ba6d-3e05e953b2ea\n")
    assert _outcome(client.post(URL, json=body), 400)[0]["expression"] == ["hookInstance"]
    body = hook_request(hook="order-select", prefetch=NO_DATA)
    body["context"].update(draftOrders=_order_bundle("mri-1"), selections=["ServiceRequest/mri-1\n"])
    issues = _outcome(client.post("/cds-services/spinecds-order-select", json=body), 400)
    assert issues[0]["expression"] == ["context.selections"]


def test_service_error_order_sign_needs_draft_orders_bundle(client) -> None:  # type: ignore[no-untyped-def]
    body = hook_request(hook="order-sign", prefetch=NO_DATA)
    issues = _outcome(client.post("/cds-services/spinecds-order-sign", json=body), 400)
    assert issues[0]["expression"] == ["context.draftOrders"]
    body["context"]["draftOrders"] = {"resourceType": "ServiceRequest", "id": "x"}
    issues = _outcome(client.post("/cds-services/spinecds-order-sign", json=body), 400)
    assert "Bundle" in issues[0]["diagnostics"]


def test_service_error_order_select_needs_selections_in_draft_orders(client) -> None:  # type: ignore[no-untyped-def]
    body = hook_request(hook="order-select", prefetch=NO_DATA)
    body["context"]["draftOrders"] = _order_bundle("mri-1")
    issues = _outcome(client.post("/cds-services/spinecds-order-select", json=body), 400)
    assert issues[0]["expression"] == ["context.selections"]
    body["context"]["selections"] = ["ServiceRequest/other"]
    issues = _outcome(client.post("/cds-services/spinecds-order-select", json=body), 400)
    assert "ServiceRequest/other" in issues[0]["diagnostics"]


def test_service_order_select_passes_drafts_and_selections(client, engine_spy) -> None:  # type: ignore[no-untyped-def]
    body = hook_request(hook="order-select", prefetch=NO_DATA)
    body["context"].update(draftOrders=_order_bundle("mri-1", "rt-1"), selections=["ServiceRequest/mri-1"])
    response = client.post("/cds-services/spinecds-order-select", json=body)
    assert response.status_code == 200, response.text
    (request,) = engine_spy.requests
    assert request.hook == "order-select" and request.selections == ["ServiceRequest/mri-1"]
    assert [r["id"] for r in request.draft_orders] == ["mri-1", "rt-1"]


def test_service_order_sign_passes_drafts(client, engine_spy) -> None:  # type: ignore[no-untyped-def]
    body = hook_request(hook="order-sign", prefetch=NO_DATA)
    body["context"]["draftOrders"] = _order_bundle("surgery-1")
    response = client.post("/cds-services/spinecds-order-sign", json=body)
    assert response.status_code == 200, response.text
    assert [r["id"] for r in engine_spy.requests[0].draft_orders] == ["surgery-1"]
    assert engine_spy.requests[0].selections == []


def test_service_error_unknown_service_is_404(client) -> None:  # type: ignore[no-untyped-def]
    issues = _outcome(client.post("/cds-services/no-such-service", json=hook_request()), 404)
    assert "no-such-service" in issues[0]["diagnostics"]
    _outcome(client.post("/cds-services/no-such-service/feedback", json={"feedback": []}), 404)
    _outcome(client.get("/nothing-here"), 404)


def test_service_error_wrong_method_is_405(client) -> None:  # type: ignore[no-untyped-def]
    _outcome(client.get(URL), 405)


def test_service_error_body_too_large_is_413(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(max_body_bytes=2048)
    body = hook_request(prefetch=NO_DATA, padding="x" * 4096)
    _outcome(client.post(URL, json=body), 413)


def test_service_error_chunked_body_too_large_is_413(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(max_body_bytes=2048)

    def chunks():  # type: ignore[no-untyped-def]  # no Content-Length: the limit must count bytes
        yield b'{"hook": "patient-view", "padding": "'
        for _ in range(10):
            yield b"x" * 512
        yield b'"}'

    _outcome(client.post(URL, content=chunks(), headers={"Content-Type": "application/json"}), 413)


def test_service_default_body_limit_is_5_mb(client, engine_spy) -> None:  # type: ignore[no-untyped-def]
    body = hook_request(prefetch=NO_DATA, padding="x" * (5 * 1024 * 1024))
    _outcome(client.post(URL, json=body), 413)
    assert client.post(URL, json=hook_request(prefetch=NO_DATA, padding="x" * (4 * 1024 * 1024))).status_code == 200


def test_service_error_engine_bug_is_500_without_details(client, engine_seat, caplog) -> None:  # type: ignore[no-untyped-def]
    from cds_hooks.service_parts import RulesEngine

    class Broken(RulesEngine):
        def evaluate(self, request):  # type: ignore[no-untyped-def]
            raise RuntimeError(f"secret detail about {request.patient_id}")

    engine_seat.engine = Broken()
    issues = _outcome(client.post(URL, json=hook_request(prefetch=NO_DATA)), 500)
    assert "secret" not in str(issues) and PATIENT_ID not in str(issues)
    from cds_hooks.logging_json import JsonLinesFormatter

    lines = [JsonLinesFormatter().format(r) for r in caplog.records]
    assert any('"exception": "RuntimeError"' in line for line in lines)
    assert not any("secret detail" in line for line in lines)


def test_service_request_id_is_returned_and_reused(client) -> None:  # type: ignore[no-untyped-def]
    assert len(client.get("/cds-services").headers["x-request-id"]) == 32
    assert client.get("/cds-services", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    # An id that could smuggle log content is replaced.
    assert client.get("/cds-services", headers={"X-Request-ID": 'a b"c'}).headers["x-request-id"] != 'a b"c'


def test_service_caller_that_leaves_before_its_body_is_no_error(client, caplog) -> None:  # type: ignore[no-untyped-def]
    """An EHR that times out and closes the connection mid-request: nothing is answered into the closed
    connection, no error is logged, and the access log says 499."""
    import asyncio
    import logging

    app = client.app
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": URL,
        "raw_path": URL.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    with caplog.at_level(logging.INFO, logger="spinecds"):
        asyncio.run(app(scope, receive, send))
    assert sent == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    [access] = [r for r in caplog.records if r.getMessage() == "request"]
    assert access.status == 499  # type: ignore[attr-defined]
