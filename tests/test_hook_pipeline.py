"""The hook pipeline's steps one at a time: validate -> resolve prefetch -> decide -> audit -> respond."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from cds_hooks.app import create_app
from cds_hooks.auth_settings import AuthSettings
from cds_hooks.fhir_server_policy import FhirServerRefused
from cds_hooks.hook_pipeline import Decision, HookPipeline
from cds_hooks.operation_outcome import ApiError
from cds_hooks.prefetch import ResolvedPrefetch
from cds_hooks.prefetch_templates import prefetch_templates
from cds_hooks.service_parts import RulesEngine
from cds_hooks.services import SERVICES
from cds_hooks.settings import Settings
from cds_hooks.store import StoreError
from engine.api import EvaluationResult
from tests.service_fixtures import FIXED_NOW, PATIENT_ID, hook_request

SERVICE = SERVICES["spinecds-patient-view"]
CARD_UUID = "5b1f3e9a-4c0d-4d6e-9a57-0e6f2b3c8d41"
CARD = {
    "summary": "Order MRI",
    "indicator": "warning",
    "source": {"label": "spinecds"},
    "extension": {"spinecds": {"ruleId": "mri-urgency", "ruleVersion": "1.0.0", "outcome": 2}},
}


class FixedEngine(RulesEngine):
    def __init__(self, result: EvaluationResult) -> None:
        self.result = result
        self.requests: list[Any] = []

    def evaluate(self, request: Any) -> EvaluationResult:
        self.requests.append(request)
        return self.result


@pytest.fixture
def pipeline(tmp_path) -> HookPipeline:  # type: ignore[no-untyped-def]
    app = create_app(Settings(database_path=tmp_path / "db.sqlite3"), auth_settings=AuthSettings(auth_enabled=False))
    engine = FixedEngine(EvaluationResult(cards=[CARD], fired=[{"ruleId": "mri-urgency", "ruleVersion": "1.0.0"}]))
    yield HookPipeline(app.state.parts, engine)
    app.state.store.close()


def _body(**extra: Any) -> bytes:
    body = hook_request(prefetch={key: None for key in prefetch_templates()}, **extra)
    body["hookInstance"] = str(uuid.uuid4())
    return json.dumps(body).encode()


def _call(pipeline: HookPipeline, body: bytes):  # type: ignore[no-untyped-def]
    return pipeline.validate(SERVICE, body, client=None, now=FIXED_NOW, base_url="https://cds.example.org/")


def test_validate_reads_the_call_once(pipeline: HookPipeline) -> None:
    call = _call(pipeline, _body())
    assert (call.service, call.context.patientId, call.now, call.client) == (SERVICE, PATIENT_ID, FIXED_NOW, None)


def test_validate_refuses_a_fhir_server_outside_the_allowlist_and_a_wrong_hook(pipeline: HookPipeline) -> None:
    with pytest.raises(FhirServerRefused):
        _call(pipeline, _body(fhirServer="https://elsewhere.example.org/fhir"))
    with pytest.raises(ApiError) as wrong_hook:
        pipeline.validate(
            SERVICES["spinecds-order-sign"], _body(), client=None, now=FIXED_NOW, base_url="https://cds.example.org/"
        )
    assert wrong_hook.value.status == 400


def test_resolve_prefetch_uses_what_was_sent_and_counts_it(pipeline: HookPipeline) -> None:
    resolved = asyncio.run(pipeline.resolve_prefetch(_call(pipeline, _body())))
    assert resolved.fetched == [] and set(resolved.data) == set(prefetch_templates())
    assert (
        'spinecds_prefetch_keys_total{key="conditions",outcome="null"} 1.0'
        in pipeline.parts.metrics.exposition().decode()
    )


def test_decide_asks_the_engine_and_checks_the_cards(pipeline: HookPipeline) -> None:
    call = _call(pipeline, _body())
    decision = pipeline.decide(call, ResolvedPrefetch(data={}))
    (request,) = pipeline.engine.requests  # type: ignore[attr-defined]
    assert (request.patient_id, request.now, request.hook) == (PATIENT_ID, FIXED_NOW, "patient-view")
    (card,) = decision.cards
    assert uuid.UUID(card["uuid"]).version == 4 and card["summary"] == "Order MRI"


def test_audit_records_the_call_and_never_raises(pipeline: HookPipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    call = _call(pipeline, _body())
    decision = pipeline.decide(call, ResolvedPrefetch(data={}))
    pipeline.audit(call, decision)
    (row,) = pipeline.parts.store.list_evaluations(call.request.hookInstance)
    assert row["cardUuids"] == [decision.cards[0]["uuid"]] and row["client"] == {"iss": "", "tenant": None}

    def database_down(*args: Any, **kwargs: Any) -> None:
        raise StoreError("SQLite store unavailable: OperationalError")

    monkeypatch.setattr(pipeline.parts.store, "record_evaluation", database_down)
    pipeline.audit(call, decision)  # the clinician still gets the cards: the loss is counted instead
    assert "spinecds_audit_records_lost_total 1.0" in pipeline.parts.metrics.exposition().decode()


def _memory_card(card_uuid: str) -> tuple[Any, ...]:
    return (card_uuid, "mri-urgency", "patient-key", "user-key", "identity-key", "warning", None, "2026-03-10")


def test_audit_writes_the_memory_rows_with_the_audit_row_or_neither(
    pipeline: HookPipeline, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store, metrics = pipeline.parts.store, pipeline.parts.metrics

    def audited(rows: Any) -> tuple[Any, Decision]:
        call = _call(pipeline, _body())
        decision = pipeline.decide(call, ResolvedPrefetch(data={}))
        assert decision.recall is not None  # the call names a user: feedback memory is on
        monkeypatch.setattr(decision.recall, "rows", rows)
        pipeline.audit(call, decision)
        return call, decision

    call, _ = audited(lambda *_: {"card": [_memory_card(CARD_UUID)]})
    assert len(store.list_evaluations(call.request.hookInstance)) == 1
    assert [row["card_uuid"] for row in store.memory_read("cards", (CARD_UUID,))] == [CARD_UUID]

    # The database refuses a memory row: the audit row is not written either, and the loss is counted.
    call, _ = audited(lambda *_: {"card": [(*_memory_card("other-card")[:-1], None)]})
    assert store.list_evaluations(call.request.hookInstance) == []
    assert "spinecds_audit_records_lost_total 1.0" in metrics.exposition().decode()

    # Building the memory rows fails (a bug): the audit row is still written, without them.
    def broken(*_: Any) -> Any:
        raise KeyError("dueBy")

    call, _ = audited(broken)
    assert len(store.list_evaluations(call.request.hookInstance)) == 1
    assert "feedback memory rows lost" in caplog.text
    assert "spinecds_audit_records_lost_total 1.0" in metrics.exposition().decode()


def test_respond_puts_data_quality_in_the_response_extension(pipeline: HookPipeline) -> None:
    note = {"resource": "prefetch/sins", "issue": "search truncated after 10 pages; older data not read"}
    decision = Decision(EvaluationResult(cards=[]), [], [])
    assert pipeline.respond(ResolvedPrefetch(data={}), decision) == {"cards": []}
    body = pipeline.respond(ResolvedPrefetch(data={}, notes=[note]), decision)
    assert body == {"cards": [], "extension": {"spinecds": {"dataQuality": [note]}}}
