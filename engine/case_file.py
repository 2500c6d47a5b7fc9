"""Read one rule case (rules/<rule-id>/cases/<expected-outcome>.yaml) and turn it into a CDS Hooks call.

A case describes a patient in clinical terms (the sections of engine.fixtures: diagnoses, symptoms,
kps, sins, ... with relative times) plus the hook and the cards its rule must return under
`expect:`. Every key is checked; a problem reads `file:line: message` with a "did you mean". The
format is documented in rules/README.md ("Cases").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.fixtures import FixtureError, PatientBuilder, searchset
from engine.fixtures.builder import SECTIONS, unknown_key_message
from engine.rulefile import LocatedYaml, RuleFileError, read_located_yaml

CASE_PATIENT_ID = "p1"
CASE_USER = "Practitioner/dr-jansen"
HOOKS = ("patient-view", "order-select", "order-sign")

TOP_KEYS = {"title", "hook", "patient", "selections", "expect", "timezone", *SECTIONS}
PATIENT_KEYS = {"gender", "age", "deceased"}
EXPECT_KEYS = {"cards", "absentRules", "presentRules"}
CARD_KEYS = {
    "indicator",
    "outcome",
    "deadlineHours",
    "hoursLeft",
    "dueBy",
    "sins",
    "survival",
    "missing",
    "summaryContains",
    "detailContains",
    "suggestionResource",
    "suggestionAction",
    "suggestionPriority",
    "overrideReasons",
}
SINS_KEYS = {"total", "min", "max", "category"}
SURVIVAL_KEYS = {"model", "group", "groups", "medianMonths"}


class CaseFileError(ValueError):
    """A case file that cannot be read; str() is `file:line: message`."""


@dataclass
class Case:
    path: Path
    title: str
    hook: str
    description: dict[str, Any]
    expect: dict[str, Any]
    selections: list[str] | None = None
    timezone: str | None = None
    located: LocatedYaml | None = field(default=None, repr=False)

    def where(self, path: tuple[Any, ...]) -> str:
        line = self.located.line_of(path) if self.located else None
        return f"{self.path}:{line}" if line else str(self.path)


def read_case(path: Path) -> Case:
    try:
        located = read_located_yaml(path)
    except RuleFileError as error:
        raise CaseFileError(str(error)) from None
    data = located.data

    def fail(where: tuple[Any, ...], message: str) -> CaseFileError:
        line = located.line_of(where)
        return CaseFileError(f"{path}:{line}: {message}" if line else f"{path}: {message}")

    if not isinstance(data, dict):
        raise fail((), "a case is a mapping with title, the patient's facts and expect")
    _check_keys(data, TOP_KEYS, (), fail)
    for key in ("title", "expect"):
        if key not in data:
            raise fail((), f"'{key}' is required")
    hook = data.get("hook", "patient-view")
    if hook not in HOOKS:
        raise fail(("hook",), f"hook {hook!r} - use one of {', '.join(HOOKS)}")
    if isinstance(data.get("patient"), dict):
        _check_keys(data["patient"], PATIENT_KEYS, ("patient",), fail)
    expect = data["expect"]
    if not isinstance(expect, dict):
        raise fail(("expect",), "expect is a mapping: cards (a list, [] for no card), absentRules, presentRules")
    _check_keys(expect, EXPECT_KEYS, ("expect",), fail)
    cards = expect.get("cards")
    if not isinstance(cards, list):
        raise fail(("expect",), "expect needs 'cards:' - a list of the cards this rule returns ([] for none)")
    for i, card in enumerate(cards):
        here = ("expect", "cards", i)
        if not isinstance(card, dict):
            raise fail(here, "a card is a mapping such as {indicator: critical, outcome: 1}")
        if "ruleId" in card:
            raise fail(
                (*here, "ruleId"),
                "no ruleId: the cards are the folder's rule's; other rules go in absentRules/presentRules",
            )
        _check_keys(card, CARD_KEYS, here, fail)
        for key in ("indicator", "outcome"):
            if key not in card:
                raise fail(here, f"an expected card needs '{key}'")
        if isinstance(card.get("sins"), dict):
            _check_keys(card["sins"], SINS_KEYS, (*here, "sins"), fail)
        for j, model in enumerate(card.get("survival") or []):
            if isinstance(model, dict):
                _check_keys(model, SURVIVAL_KEYS, (*here, "survival", j), fail)
    selections = data.get("selections")
    if selections is not None and hook != "order-select":
        raise fail(("selections",), "selections belong to an order-select case")
    description = {key: value for key, value in data.items() if key in SECTIONS or key == "patient"}
    timezone = data.get("timezone")
    if timezone is not None:
        from engine.localtime import zone

        try:
            zone(str(timezone))
        except ValueError as error:
            raise fail(("timezone",), str(error)) from None
    return Case(path, str(data["title"]), hook, description, expect, selections, timezone, located)


def _check_keys(mapping: dict[str, Any], allowed: set[str], where: tuple[Any, ...], fail: Any) -> None:
    for key in mapping:
        if key not in allowed:
            raise fail((*where, key), unknown_key_message(key, allowed))


def hook_call(case: Case, rule_id: str, now: datetime) -> dict[str, Any]:
    """The CDS Hooks request the case stands for, anchored at `now` (what an EHR would send)."""
    builder = PatientBuilder(case.description, now, CASE_PATIENT_ID, case.where)
    try:
        resources = builder.build()
    except FixtureError as error:
        raise CaseFileError(str(error)) from None
    patient, record = resources[0], resources[1:]
    context: dict[str, Any] = {"userId": CASE_USER, "patientId": CASE_PATIENT_ID}
    if case.hook != "patient-view":
        context["draftOrders"] = searchset(builder.orders)
    if case.hook == "order-select":
        chosen = case.selections if case.selections is not None else [o["id"] for o in builder.orders]
        context["selections"] = [s if "/" in s else f"ServiceRequest/{s}" for s in chosen]
    prefetch: dict[str, Any] = {"patient": patient}
    for key, types in (("conditions", {"Condition"}), ("observations", {"Observation"})):
        prefetch[key] = searchset([r for r in record if r["resourceType"] in types])
    others = [r for r in record if r["resourceType"] not in ("Condition", "Observation")]
    if others:
        prefetch["other"] = searchset(others)
    return {
        "hook": case.hook,
        "hookInstance": str(uuid.uuid5(uuid.NAMESPACE_URL, f"spinecds-case:{rule_id}/{case.path.stem}")),
        "context": context,
        "prefetch": prefetch,
    }
