"""One hook call, step by step: validate -> resolve prefetch -> decide -> audit -> respond.

Each step is a method that takes what the previous ones produced, so a test can run one alone
(tests/test_hook_pipeline.py). `run` chains them the way the route does; the blocking steps
(first-seen times, the engine, card checks, the audit write) run together where
cds_hooks/evaluation_threads.py puts them: on the event loop with SQLite, on threads with PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from engine.api import EvaluationRequest, EvaluationResult

from . import prefetch
from .auth import VerifiedClient
from .cards import build_cards
from .feedback_memory import Recall
from .fhir_server_policy import FhirServerPolicy, FhirServerRefused
from .first_seen import first_seen_times
from .json_clean import strip_empty
from .operation_outcome import ApiError
from .prefetch import ResolvedPrefetch
from .request_models import CONTEXT_MODELS, HookRequest, OrderSelectContext, OrderSignContext, PatientContext
from .service_parts import RulesEngine, ServiceParts, client_id
from .services import CdsService
from .smart_links import add_smart_links
from .validation import parse_json_body, validate

log = logging.getLogger("spinecds.service")


@dataclass(frozen=True)
class HookCall:
    """A validated call: what the later steps need, read from the request once."""

    service: CdsService
    request: HookRequest
    context: PatientContext
    client: VerifiedClient | None
    now: datetime
    base_url: str
    want_trace: bool = False


@dataclass
class Decision:
    result: EvaluationResult
    cards: list[dict[str, Any]]
    resources: list[dict[str, Any]]
    recall: Recall | None = None


@dataclass
class HookAnswer:
    body: dict[str, Any]
    log_fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class HookPipeline:
    parts: ServiceParts
    engine: RulesEngine

    # ------------------------------------------------------------------ validate

    def validate(
        self,
        service: CdsService,
        body: bytes,
        *,
        client: VerifiedClient | None,
        now: datetime,
        base_url: str,
        want_trace: bool = False,
    ) -> HookCall:
        """Parse and check the request; the fhirServer is checked against the caller's allowlist
        here, before anything could connect to it."""
        hook_request = validate(HookRequest, parse_json_body(body, self.parts.settings.max_json_depth))
        if hook_request.fhirServer is not None:
            self.fhir_server_policy(client).check(hook_request.fhirServer)
        if hook_request.hook != service.hook:
            raise ApiError(
                400,
                "invalid",
                f"hook '{hook_request.hook}' does not match service '{service.id}' (hook '{service.hook}')",
                expression=["hook"],
            )
        context = validate(CONTEXT_MODELS[service.hook], hook_request.context, prefix="context")
        _check_prefetched_patient(hook_request, context.patientId)
        return HookCall(service, hook_request, context, client, now, base_url, want_trace)

    def fhir_server_policy(self, client: VerifiedClient | None) -> FhirServerPolicy:
        settings = self.parts.settings
        if client is None:  # authentication off: development
            return settings.development_fhir_servers()
        trusted = self.parts.auth_settings.client_for(client.iss)
        allowed = trusted.fhir_servers() if trusted is not None else ()
        return FhirServerPolicy(allowed, settings.fhir_allow_http_loopback)

    # ------------------------------------------------------------------ resolve prefetch

    async def resolve_prefetch(self, call: HookCall) -> ResolvedPrefetch:
        """Prefetch as sent, the rest fetched from the FHIR server; 412 when that fails."""
        settings, metrics, service = self.parts.settings, self.parts.metrics, call.service
        try:
            # Fully prefetched (the common case): no FHIR call, so no thread hop either.
            resolved = prefetch.resolve_prefetched(call.request, service.prefetch)
            if resolved is None:
                resolved = await run_in_threadpool(
                    prefetch.resolve,
                    call.request,
                    service.prefetch,
                    budget_seconds=settings.fhir_timeout_seconds,
                    connect_timeout=settings.fhir_connect_timeout_seconds,
                    max_pages=settings.fhir_max_pages,
                    on_call=metrics.observe_fhir_call,
                )
        except ApiError as error:
            if error.status == 412:
                metrics.count_precondition_failed(service.id)
                for key in service.prefetch:
                    if key not in (call.request.prefetch or {}):
                        metrics.count_prefetch(key, "failed")
            raise
        sent = call.request.prefetch or {}
        for key in service.prefetch:
            if key in resolved.fetched:
                metrics.count_prefetch(key, "fetched")
            else:
                metrics.count_prefetch(key, "null" if sent.get(key) is None else "prefetched")
        return resolved

    # ------------------------------------------------------------------ decide (blocking)

    def evaluation_request(self, call: HookCall, resources: list[dict[str, Any]]) -> EvaluationRequest:
        context, settings = call.context, self.parts.settings
        return EvaluationRequest(
            hook=call.service.hook,
            hook_instance=call.request.hookInstance,
            patient_id=context.patientId,
            resources=resources,
            now=call.now,
            draft_orders=context.draft_resources() if isinstance(context, OrderSignContext) else [],
            selections=list(context.selections) if isinstance(context, OrderSelectContext) else [],
            want_trace=call.want_trace,
            base_url=call.base_url,
            timezone=settings.timezone,
            lookback_days=settings.lookback_days,
        )

    def decide(self, call: HookCall, resolved: ResolvedPrefetch) -> Decision:
        """Blocking: first-seen times, what this user set aside, the engine, the card checks."""
        resources = prefetch.flatten(resolved.data)
        fhir_server = str(call.request.fhirServer) if call.request.fhirServer else None
        client = client_id(call.client)
        first_seen = first_seen_times(
            self.parts.store, client, resources, call.context.patientId, fhir_server, call.now
        )
        recall = self.parts.memory.recall(client, call.context.userId, call.context.patientId, call.now)
        evaluation = dataclasses.replace(
            self.evaluation_request(call, resources), first_seen=first_seen, hides=recall.hides if recall else None
        )
        result = self.engine.evaluate(evaluation)
        raw_cards = add_smart_links(result.cards, call.base_url) if self.parts.settings.smart_app else result.cards
        return Decision(result, build_cards(raw_cards, call.base_url), resources, recall)

    # ------------------------------------------------------------------ audit (blocking)

    def audit(self, call: HookCall, decision: Decision) -> None:
        """The audit trail (and the feedback memory's record of the cards). Never raises: the
        clinician still gets the cards; a lost record is logged and counted."""
        result, cards = decision.result, decision.cards
        try:
            # One transaction for the audit row and the feedback memory's rows (all or nothing):
            # three transactions, each with its own BEGIN, COMMIT and (SQLite) PRAGMA, cost more.
            self.parts.store.record_evaluation(
                call.now,
                call.request.hookInstance,
                call.service.id,
                [{k: f[k] for k in ("ruleId", "ruleVersion", "outcome") if k in f} for f in result.fired],
                [card["uuid"] for card in cards],
                card_rules(cards),
                client=client_id(call.client),
                memory=self.memory_rows(call, decision),
            )
        except Exception as error:  # noqa: BLE001 - the clinician still gets the cards
            self.parts.metrics.count_audit_lost()
            log.error(
                "audit record lost", extra={"hookInstance": call.request.hookInstance, "error": type(error).__name__}
            )

    def memory_rows(self, call: HookCall, decision: Decision) -> dict[str, list[tuple[Any, ...]]] | None:
        """The feedback memory's rows of this call. Should building them fail, the audit row is still
        written without them: a card the memory does not know is shown again (the safe direction)."""
        if decision.recall is None:
            return None
        try:
            return decision.recall.rows(call.request.hookInstance, decision.result)
        except Exception as error:  # noqa: BLE001 - the audit row matters more than the memory
            log.error(
                "feedback memory rows lost",
                extra={"hookInstance": call.request.hookInstance, "error": type(error).__name__},
            )
            return None

    def decide_and_audit(self, call: HookCall, resolved: ResolvedPrefetch) -> Decision:
        decision = self.decide(call, resolved)
        self.audit(call, decision)
        return decision

    # ------------------------------------------------------------------ respond

    def respond(self, resolved: ResolvedPrefetch, decision: Decision, want_trace: bool = False) -> dict[str, Any]:
        """The CDS Hooks response body. Card-independent information (data quality, the rule trace,
        advice set aside) goes to the response's extension.spinecds: CDS Hooks 2.0 allows an
        `extension` on every object it defines, the top-level response included."""
        result = decision.result
        body: dict[str, Any] = {"cards": decision.cards}  # stays even when empty: {"cards": []}
        spinecds: dict[str, Any] = {}
        data_quality = list(resolved.notes) + list(result.data_quality)
        if data_quality:
            spinecds["dataQuality"] = data_quality
        if want_trace and result.trace:
            spinecds["trace"] = result.trace
        if result.hidden:  # feedback memory: say which advice this user set aside, never silently
            spinecds["setAside"] = [item.rule_id for item in result.hidden]
        if spinecds:
            body["extension"] = {"spinecds": strip_empty(spinecds)}
        return body

    # ------------------------------------------------------------------ the whole call

    async def run(self, call: HookCall) -> HookAnswer:
        started = time.perf_counter()
        resolved = await self.resolve_prefetch(call)
        fetched_at = time.perf_counter()
        with self.parts.metrics.track_evaluation():
            decision = await self.parts.evaluation.run(self.decide_and_audit, call, resolved)
        evaluated_at = time.perf_counter()
        self.parts.metrics.count_cards(decision.cards)
        body = self.respond(resolved, decision, call.want_trace)
        result = decision.result
        return HookAnswer(
            body,
            {
                "prefetchKeysSent": len(call.request.prefetch or {}),
                "prefetchKeysFetched": len(resolved.fetched),
                "resources": len(decision.resources),
                "draftOrders": len(call.context.draft_resources()) if isinstance(call.context, OrderSignContext) else 0,
                "cards": len(decision.cards),
                "rulesFired": len(result.fired),
                "dataQualityItems": len(resolved.notes) + len(result.data_quality),
                "fetchMs": round((fetched_at - started) * 1000, 1),
                "evaluateMs": round((evaluated_at - fetched_at) * 1000, 1),
            },
        )


def card_rules(cards: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(card uuid, rule id, rule version) for the audit trail: which rule version produced each card."""
    rows = []
    for card in cards:
        outcome = (card.get("extension") or {}).get("spinecds") or {}
        if outcome.get("ruleId") and outcome.get("ruleVersion"):
            rows.append((card["uuid"], str(outcome["ruleId"]), str(outcome["ruleVersion"])))
    return rows


def _check_prefetched_patient(hook_request: HookRequest, patient_id: str) -> None:
    """A prefetched Patient of another id means the client mixed up patients: refuse, never evaluate."""
    patient = (hook_request.prefetch or {}).get("patient")
    if (
        isinstance(patient, dict)
        and patient.get("resourceType") == "Patient"
        and patient.get("id") not in (None, patient_id)
    ):
        raise ApiError(
            400, "invalid", "prefetch.patient.id does not match context.patientId", expression=["prefetch.patient.id"]
        )


__all__ = ["Decision", "FhirServerRefused", "HookAnswer", "HookCall", "HookPipeline", "card_rules"]
