"""The narrow boundary between the CDS Hooks service and the engine.

The service resolves prefetch (or fetches from the FHIR server) and hands over raw FHIR JSON; the
engine filters, validates, derives facts, evaluates the rules and returns CDS card dicts. Nothing
in here knows about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class EvaluationRequest:
    hook: str                                   # patient-view | order-select | order-sign
    hook_instance: str
    patient_id: str
    resources: list[dict[str, Any]]             # raw FHIR R4 JSON resources (bundles flattened)
    now: datetime                               # timezone-aware; the engine never reads the clock
    draft_orders: list[dict[str, Any]] = field(default_factory=list)  # raw resources of context.draftOrders
    selections: list[str] = field(default_factory=list)               # "ServiceRequest/id" (order-select)
    want_trace: bool = False


@dataclass
class EvaluationResult:
    cards: list[dict[str, Any]]                 # CDS Hooks 2.0 card JSON, spec-shaped, no nulls
    data_quality: list[dict[str, Any]] = field(default_factory=list)  # {"resource": "Observation/x", "issue": "..."}
    fired: list[dict[str, Any]] = field(default_factory=list)         # {"ruleId", "ruleVersion", "outcome"}
    trace: dict[str, Any] | None = None


def evaluate(request: EvaluationRequest) -> EvaluationResult:
    """Evaluate one hook call. Until the rule engine lands this answers honestly with no cards."""
    return EvaluationResult(cards=[])
