"""Prometheus metrics of the CDS Hooks service, served at `GET /metrics` in the Prometheus text format.

Each app instance gets its own `CollectorRegistry` (tests build many apps in one process; the global
default registry would refuse the second registration). Under gunicorn every worker is a separate
process with its own counters, and a scrape reaches only one of them; set PROMETHEUS_MULTIPROC_DIR
(deploy/gunicorn.conf.py and the Dockerfile do) and /metrics aggregates all workers' values instead.

Label values are bounded sets on purpose: service ids, hooks, rule ids and prefetch keys come from the
service's own definitions, indicators and outcomes from the fixed vocabularies below. Never label with
anything a client sends freely (hookInstance, patient ids, card uuids): that floods the time series
database and may leak patient data.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    multiprocess,
)

from cds_hooks.fhir_client import FhirFailure

NAMESPACE = "spinecds"

# The service budget is ~500 ms per hook call; buckets resolve well below and around it and show
# how far past it the slow tail goes. Prometheus measures in seconds: 0.005 s = 5 ms.
LATENCY_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

PrefetchOutcome = Literal["prefetched", "null", "fetched", "failed"]
FeedbackOutcome = Literal["accepted", "overridden"]

PREFETCH_OUTCOMES: frozenset[str] = frozenset({"prefetched", "null", "fetched", "failed"})
FHIR_FAILURES: frozenset[str] = frozenset({"timeout", "connect", "http-status", "bad-json"})
FEEDBACK_OUTCOMES: frozenset[str] = frozenset({"accepted", "overridden"})
INDICATORS: frozenset[str] = frozenset({"info", "warning", "critical"})
UNKNOWN = "unknown"


def multiprocess_dir() -> str | None:
    """The folder shared by all worker processes, if prometheus-client runs in multiprocess mode."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ServiceMetrics:
    """All metrics of one app instance; call the `count_*`/`observe_*` methods from the request path."""

    def __init__(self, registry: CollectorRegistry | None = None, *, process_metrics: bool = True) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        # labels() takes a lock and checks its arguments on every call; the per-request series (hook,
        # cards, prefetch keys) have few label values, so their children are looked up once.
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        if process_metrics and multiprocess_dir() is None:
            # CPU, memory, open files, GC: only meaningful per process, so left out when aggregating workers.
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        reg = self.registry
        self.hook_duration = Histogram(
            "hook_request_duration_seconds",
            "Time to answer one CDS Hooks service call, prefetch and FHIR fetches included.",
            ["service_id", "hook"],
            namespace=NAMESPACE,
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=reg,
        )
        self.cards = self._counter(
            "cards", "Cards returned, by the rule that produced them and their indicator.", ["rule_id", "indicator"]
        )
        self.prefetch_keys = self._counter(
            "prefetch_keys",
            "Prefetch template keys by how their data was obtained: prefetched by the client, "
            "null (client has no data), fetched from the FHIR server, or failed to fetch.",
            ["key", "outcome"],
        )
        self.precondition_failed = self._counter(
            "precondition_failed_responses",
            "412 responses: required data was neither prefetched nor fetchable.",
            ["service_id"],
        )
        self.fhir_duration = Histogram(
            "fhir_request_duration_seconds",
            "Time of one HTTP call to the EHR's FHIR server (prefetch fallback).",
            namespace=NAMESPACE,
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=reg,
        )
        self.fhir_failures = self._counter("fhir_request_failures", "Failed FHIR server calls by reason.", ["reason"])
        self.rule_reloads = self._counter(
            "rule_reloads", "Rule reload attempts; a failed reload keeps the previous rules serving.", ["result"]
        )
        self.feedback = self._counter(
            "feedback", "CDS Hooks feedback items by rule and outcome (accepted or overridden).", ["rule_id", "outcome"]
        )
        self.audit_lost = self._counter(
            "audit_records_lost", "Evaluation audit records that could not be written (database unavailable)."
        )
        self.evaluations_in_flight = Gauge(
            "engine_evaluations_in_flight",
            "Rule engine evaluations running or waiting for the engine lock.",
            namespace=NAMESPACE,
            registry=reg,
            multiprocess_mode="livesum",
        )
        # Pre-create the label combinations that are known in advance, so a dashboard shows 0 instead
        # of "no data" before the first reload, failure or feedback.
        for result in ("ok", "failed"):
            self.rule_reloads.labels(result=result)
        for reason in sorted(FHIR_FAILURES):
            self.fhir_failures.labels(reason=reason)

    def _child(self, metric: Any, *values: str) -> Any:
        """metric.labels(*values), remembered (label values in the metric's label order)."""
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def _counter(self, name: str, documentation: str, labels: list[str] | None = None) -> Counter:
        return Counter(name, documentation, labels or [], namespace=NAMESPACE, registry=self.registry)

    def observe_hook(self, service_id: str, hook: str, seconds: float) -> None:
        self._child(self.hook_duration, service_id, hook).observe(seconds)

    def count_cards(self, cards: Iterable[Mapping[str, Any]]) -> None:
        """Count returned cards by `extension.spinecds.ruleId` and `indicator` (either may be missing)."""
        for card in cards:
            extension = card.get("extension")
            spinecds = extension.get("spinecds") if isinstance(extension, Mapping) else None
            rule_id = spinecds.get("ruleId") if isinstance(spinecds, Mapping) else None
            indicator = card.get("indicator")
            self._child(
                self.cards,
                rule_id if isinstance(rule_id, str) and rule_id else UNKNOWN,
                indicator if indicator in INDICATORS else UNKNOWN,
            ).inc()

    def count_prefetch(self, key: str, outcome: PrefetchOutcome) -> None:
        """`key` must be a prefetch template key of the service, never a key the client invented."""
        _check(outcome, PREFETCH_OUTCOMES, "prefetch outcome")
        self._child(self.prefetch_keys, key, outcome).inc()

    def count_precondition_failed(self, service_id: str) -> None:
        self.precondition_failed.labels(service_id=service_id).inc()

    def observe_fhir_call(self, seconds: float, failure_reason: FhirFailure | None = None) -> None:
        self.fhir_duration.observe(seconds)
        if failure_reason is not None:
            _check(failure_reason, FHIR_FAILURES, "FHIR failure reason")
            self.fhir_failures.labels(reason=failure_reason).inc()

    def count_reload(self, ok: bool) -> None:
        self.rule_reloads.labels(result="ok" if ok else "failed").inc()

    def count_feedback(self, rule_id: str | None, outcome: FeedbackOutcome) -> None:
        """`rule_id` as recorded in the audit trail for the card; None when the card is unknown."""
        _check(outcome, FEEDBACK_OUTCOMES, "feedback outcome")
        self.feedback.labels(rule_id=rule_id or UNKNOWN, outcome=outcome).inc()

    def count_audit_lost(self, records: int = 1) -> None:
        self.audit_lost.inc(records)

    @contextmanager
    def track_evaluation(self) -> Iterator[None]:
        """Wrap one engine evaluation: the in-flight gauge shows queueing in front of the engine lock."""
        with self.evaluations_in_flight.track_inprogress():
            yield

    def exposition(self) -> bytes:
        """The Prometheus text format of this instance, or of all workers in multiprocess mode."""
        path = multiprocess_dir()
        if path is None:
            return generate_latest(self.registry)
        aggregate = CollectorRegistry()
        multiprocess.MultiProcessCollector(aggregate, path=path)
        return generate_latest(aggregate)


def _check(value: str, allowed: frozenset[str], what: str) -> None:
    # A programming error in the caller, not bad client input: fail loudly in tests.
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {sorted(allowed)}")


def metrics_router(metrics: ServiceMetrics) -> APIRouter:
    """`GET /metrics` for Prometheus. Unauthenticated like /health: counts only, no patient data.

    Restrict who can reach it at the ingress if the numbers themselves are sensitive.
    """
    router = APIRouter(tags=["operations"])

    @router.get("/metrics", include_in_schema=False)
    def scrape() -> Response:
        # A plain `def`: FastAPI runs it in the thread pool, so reading the multiprocess files never
        # blocks the event loop.
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    return router
