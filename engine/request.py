"""What the service hands the engine, and what it gets back: plain data, no behaviour.

Its own module so that the case runner (engine.cases) and the service can build requests without
importing engine.api (which runs the cases at start-up): no import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only: the engine's card modules are not needed to build a request
    from engine.card_merge import RuleCard
    from engine.cards import HidePredicate


@dataclass(frozen=True)
class EvaluationRequest:
    hook: str  # patient-view | order-select | order-sign
    hook_instance: str
    patient_id: str
    resources: list[dict[str, Any]]  # raw FHIR R4 JSON resources (bundles flattened)
    now: datetime  # timezone-aware; the engine never reads the clock
    draft_orders: list[dict[str, Any]] = field(default_factory=list)  # raw resources of context.draftOrders
    selections: list[str] = field(default_factory=list)  # "ServiceRequest/id" (order-select)
    want_trace: bool = False
    base_url: str = ""  # the service's external base URL, for absolute links
    # "Condition/<id>" -> when the service first saw it (the presentation time of last resort; the
    # service keeps it in its store, the engine never touches the store). Absent: now.
    first_seen: dict[str, datetime] = field(default_factory=dict)
    timezone: str | None = None  # IANA name for date-only values and card times (SPINECDS_TIMEZONE); None: UTC
    lookback_days: float | None = None  # SPINECDS_LOOKBACK_DAYS; None: rules/definitions.yaml
    # Feedback memory: True for a rule card (its identity) this user set aside; None = show all.
    hides: HidePredicate | None = None


@dataclass
class EvaluationResult:
    cards: list[dict[str, Any]]  # CDS Hooks 2.0 card JSON, spec-shaped, no nulls
    data_quality: list[dict[str, Any]] = field(default_factory=list)  # {"resource": "Observation/x", "issue": "..."}
    fired: list[dict[str, Any]] = field(default_factory=list)  # {"ruleId", "ruleVersion", "outcome"}
    trace: dict[str, Any] | None = None
    merged_cards: list[dict[str, Any]] = field(default_factory=list)  # complete cards of merged rules
    shown: list[RuleCard] = field(default_factory=list)  # per returned card: its rule card + merged ones
    hidden: list[RuleCard] = field(default_factory=list)  # rule cards feedback memory held back
