"""Comfort-only care documented in the record: each card then asks the clinician to check its fit.

Comfort-only care is a coding in ValueSet ``comfort-care`` (hospice care, care of the dying,
comfort measures) on an order, procedure, goal or care plan that is not withdrawn. ICD-10 Z51.5
("encounter for palliative care") is not enough: most of these patients are palliative and still
need timely imaging and treatment. Nothing is suppressed: the cards stay, with one line added.
The resources are read as raw JSON (only a few fields, no validation needed for a reminder).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from engine.bundles import flatten
from engine.card_merge import merged_section
from engine.parse import codings_of, to_instant
from engine.templates import render_text
from fhir_profiles.terminology import Terminology

CONCEPT = "comfort-care"
WITHDRAWN = frozenset(
    {"entered-in-error", "revoked", "cancelled", "not-done", "stopped", "rejected", "refuted", "inactive"}
)
LINE = "**Goals of care:** comfort care documented ({comfort_care.date}): check that this fits."
_TIME_FIELDS = ("authoredOn", "recordedDate", "performedDateTime", "startDate", "created", "date", "issued")


def _status(raw: dict[str, Any]) -> str | None:
    for name in ("status", "lifecycleStatus"):
        value = raw.get(name)
        if isinstance(value, str):
            return value
    verification = raw.get("verificationStatus")
    codes = [c.get("code") for c in codings_of(verification) if isinstance(c, dict)]
    return codes[0] if codes else None


def _concepts(raw: dict[str, Any]) -> list[Any]:
    found: list[Any] = [raw.get("code"), raw.get("description")]
    category = raw.get("category")
    found.extend(category if isinstance(category, list) else [category])
    for activity in raw.get("activity") or ():
        if isinstance(activity, dict) and isinstance(activity.get("detail"), dict):
            found.append(activity["detail"].get("code"))
    return found


def _coded(raw: dict[str, Any], term: Terminology, systems: frozenset[str]) -> bool:
    """A coding of the resource is in the comfort-care ValueSet (term.has_concept, inlined per resource)."""
    for found in _concepts(raw):
        for coding in codings_of(found):
            system = coding.get("system") if isinstance(coding, dict) else getattr(coding, "system", None)
            if isinstance(system, str) and system in systems and CONCEPT in term.concepts((coding,)):
                return True
    return False


def _time(raw: dict[str, Any]) -> datetime | None:
    for name in _TIME_FIELDS:
        moment = to_instant(raw.get(name)) if isinstance(raw.get(name), str) else None
        if moment is not None:
            return moment
    for name in ("performedPeriod", "period", "occurrencePeriod"):
        period = raw.get(name)
        if isinstance(period, dict) and isinstance(period.get("start"), str):
            moment = to_instant(period["start"])
            if moment is not None:
                return moment
    return None


def comfort_care_facts(resources: Iterable[Any], term: Terminology) -> dict[str, Any]:
    """``comfort_care`` (bool) and ``comfort_care.date`` (the latest such record's day)."""
    times: list[datetime | None] = []
    systems = term.systems_of(CONCEPT)
    for raw in flatten(resources):
        if raw.get("resourceType") in ("Patient", "Bundle"):
            continue
        # The coding test first: most of a prefetch (vitals, labs) has no coding in the concept's systems.
        if _coded(raw, term, systems) and _status(raw) not in WITHDRAWN:
            times.append(_time(raw))
    if not times:
        return {"comfort_care": False}
    dated = [t for t in times if t is not None]
    return {
        "comfort_care": True,
        "comfort_care.date": max(dated).date().isoformat() if dated else "date not recorded",
    }


def add_goals_of_care_line(cards: list[dict[str, Any]], patient: dict[str, Any]) -> None:
    """One line on every card when comfort-only care is documented; no card is removed."""
    if not patient.get("comfort_care"):
        return
    line = render_text(LINE, lambda name: patient.get(name))
    for card in cards:
        card["detail"] = f"{card.get('detail', '')}\n\n{line}".strip()


def expectations_first(
    cards: list[dict[str, Any]], merged_cards: list[dict[str, Any]], patient: dict[str, Any]
) -> None:
    """With comfort-only care documented, the expectations dialogue (merged into a host card) becomes
    the host card's first section: the goals of care come before the rest of the advice."""
    if not patient.get("comfort_care"):
        return
    dialogue = next((c for c in merged_cards if _rule(c) == "expectations-dialogue"), None)
    if dialogue is None:
        return
    for card in cards:
        section = merged_section(dialogue, (card.get("source") or {}).get("label", ""))
        detail = card.get("detail", "")
        if section in detail:
            rest = detail.replace(section, "").strip()
            card["detail"] = f"{section}\n\n{rest}".strip()


def _rule(card: dict[str, Any]) -> str | None:
    return ((card.get("extension") or {}).get("spinecds") or {}).get("ruleId")
