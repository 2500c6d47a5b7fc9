"""No card carries text meant for developers.

Over every synthetic patient on every hook (and every sample draft order), each rule's complete
card (also when it is merged into another) is scanned for internal text: seed numbers, fact names
("source: kps", `lesion.sins_min`), raw resource ids (`Condition/...`), empty assumption lines and
UTC ISO timestamps. The text a clinician reads says things in clinical words and local time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.api import get_engine
from engine.card_merge import RULE_PRIORITY, flatten_merged
from engine.cases import request_from_hook_call
from engine.vocabulary import load_vocabulary
from tests.synthetic_requests import every_hook_call

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
RESOURCE_TYPES = (
    "Patient|Condition|Observation|Procedure|ServiceRequest|ImagingStudy|DiagnosticReport|MedicationRequest"
)
INTERNAL = {
    "seed number": re.compile(r"\bseed \d+", re.I),
    "fact source name": re.compile(r"source: [a-z_.]+\b|\((?:kps|ecog)\)"),
    "raw resource id": re.compile(rf"\b(?:{RESOURCE_TYPES})/[A-Za-z0-9\-.]+"),
    "empty assumptions line": re.compile(r"Assumptions[^\n]*: none", re.I),
    "missing data: none": re.compile(r"Missing data[^\n]*: none", re.I),
    "UTC ISO timestamp": re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}"),
    "developer note": re.compile(r"card's extension|extension\.spinecds", re.I),
}


# Rules whose card wording is owned by the revision 2 rewrite still in progress.
def _fact_names() -> list[str]:
    # Dotted names only: single words such as `cancer` are also plain English.
    return sorted((name for name in load_vocabulary().facts if "." in name), key=len, reverse=True)


def _texts(card: dict[str, Any]) -> list[str]:
    texts = [card["summary"], card.get("detail", "")]
    for suggestion in card.get("suggestions") or []:
        texts.append(suggestion.get("label", ""))
        texts.extend(action.get("description", "") for action in suggestion.get("actions") or [])
    texts.extend(link.get("label", "") for link in card.get("links") or [])
    return texts


@pytest.fixture(scope="module")
def rule_cards() -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """rule id -> (call label, that rule's complete card) over the whole sweep."""
    engine = get_engine()
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for label, body in every_hook_call(NOW):
        result = engine.evaluate(request_from_hook_call(body, NOW))
        for item in result.shown:
            for rule_card in [item, *flatten_merged(item)]:
                found.setdefault(rule_card.rule_id, []).append((label, rule_card.card))
    return found


def _problems(cards: list[tuple[str, dict[str, Any]]]) -> list[str]:
    problems = []
    facts = _fact_names()
    for label, card in cards:
        for text in _texts(card):
            for name, pattern in INTERNAL.items():
                match = pattern.search(text)
                if match:
                    problems.append(f"{label}: {name}: {match.group(0)!r} in {text[:80]!r}")
            problems.extend(f"{label}: fact name {fact!r}" for fact in facts if fact in text)
    return sorted(set(problems))


@pytest.mark.parametrize("rule_id", RULE_PRIORITY)
def test_no_card_of_the_rule_carries_internal_text(rule_id, rule_cards):
    cards = rule_cards.get(rule_id, [])
    assert cards, f"no synthetic patient gives a {rule_id} card: the scan would prove nothing"
    problems = _problems(cards)
    assert not problems, "\n".join(problems[:20])


def test_the_scan_catches_each_kind_of_internal_text():
    samples = [
        "Why: seed 000 says so",
        "KPS 40 (source: kps)",
        "see Condition/spinecds-p13-cond-primary",
        "Assumptions taken: none.",
        "Missing data - Van der Linden: none",
        "by 2026-03-24T09:00:00Z",
        "hours left in the card's extension",
        "uses lesion.sins_min",
    ]
    for sample in samples:
        assert _problems([("sample", {"summary": sample})]), sample
    assert _problems([("ok", {"summary": "MRI whole spine by 14:00 today (11 h left)"})]) == []


def test_the_data_not_used_note_names_the_kind_of_resource_not_its_id():
    from tests.synthetic_requests import hook_request_for

    body, _ = hook_request_for("spinecds-p13", "patient-view", NOW)
    broken = {
        "resourceType": "Observation",
        "id": "spinecds-p13-obs-broken",
        "status": "not-a-status",
        "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
        "subject": {"reference": "Patient/spinecds-p13"},
        "valueInteger": 9,
    }
    body["prefetch"]["pain"]["entry"].append({"resource": broken})
    result = get_engine().evaluate(request_from_hook_call(body, NOW))
    assert result.data_quality, "the broken Observation must be reported"
    for card in result.cards:
        note = card["detail"].split("**Data not used**", 1)[1]
        assert note.startswith(" (failed validation, so it did not count): an Observation (")
        assert "spinecds-p13-obs-broken" not in note and "Observation/" not in note
