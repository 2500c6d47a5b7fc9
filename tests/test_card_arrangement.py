"""At most three cards, ranked as a clinician reads them, with companion and overflow advice merged.

Unit tests drive engine/card_merge.py with hand-made cards; the sweep runs the real engine over
every synthetic patient on every hook (and every sample draft order).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.api import get_engine
from engine.card_merge import RULE_PRIORITY, RuleCard, arrange, finish
from engine.cases import request_from_hook_call
from tests.synthetic_requests import every_hook_call

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def _card(rule: str, indicator: str = "info", *, about_order: bool = False, **extra: Any) -> RuleCard:
    card: dict[str, Any] = {
        "uuid": f"uuid-{rule}",
        "summary": f"{rule} summary",
        "detail": f"**{rule} finding.**\n\n- bullet one\n- bullet two\n\nWhy: background paragraph.",
        "indicator": indicator,
        "source": {"label": f"Guideline - {rule} section"},
        "extension": {"spinecds": {"ruleId": rule, "ruleVersion": "1.0.0", "outcome": f"{rule}-outcome", **extra}},
    }
    return RuleCard(card=card, about_order=about_order)


def _rules(items: list[RuleCard]) -> list[tuple[str, str]]:
    return [(item.rule_id, item.indicator) for item in items]


def test_ranked_by_indicator_then_rule_priority():
    items = [
        _card("survival-estimate"),
        _card("systemic-first", "warning"),
        _card("alarm-symptom-education"),
        _card("mri-urgency", "critical"),
        _card("mdt-consultation"),
    ]
    kept = arrange(items, "patient-view")
    assert _rules(kept) == [
        ("mri-urgency", "critical"),
        ("systemic-first", "warning"),
        ("alarm-symptom-education", "info"),
    ]
    assert [m.rule_id for m in kept[0].merged] == ["mdt-consultation", "survival-estimate"]  # rule priority


def test_without_a_host_companions_are_cards_of_their_own():
    kept = arrange([_card("survival-estimate"), _card("mdt-consultation", "warning")], "patient-view")
    assert _rules(kept) == [("mdt-consultation", "warning"), ("survival-estimate", "info")]


def test_companions_merge_into_a_host_even_with_room_to_spare():
    # Changed on purpose (clinical review): the consultation advice follows the most urgent host, so an
    # "ad hoc MDT today" never sits in an info card; survival and expectations stay with the treatment
    # decision (the first present of the host list), whatever the ranking says.
    items = [
        _card("mdt-consultation", "warning"),
        _card("survival-estimate"),
        _card("sins-referral", "warning"),
        _card("mri-urgency"),
    ]
    kept = arrange(items, "patient-view")
    assert _rules(kept) == [("sins-referral", "warning"), ("mri-urgency", "info")]
    sins, mri = kept
    assert [m.rule_id for m in sins.merged] == ["mdt-consultation"]
    assert [m.rule_id for m in mri.merged] == ["survival-estimate"]


def test_an_urgent_consultation_goes_to_the_critical_card_not_the_info_one():
    items = [_card("mdt-consultation", "warning"), _card("surgery-eligibility"), _card("sins-referral", "critical")]
    kept = arrange(items, "patient-view")
    assert _rules(kept) == [("sins-referral", "critical"), ("surgery-eligibility", "info")]
    assert [m.rule_id for m in kept[0].merged] == ["mdt-consultation"] and kept[1].merged == []


def test_at_most_three_and_overflow_goes_to_the_card_of_the_same_problem():
    items = [
        _card("sins-referral", "warning"),
        _card("surgery-eligibility", "warning"),
        _card("mri-urgency"),
        _card("systemic-first"),
        _card("alarm-symptom-education"),
    ]
    kept = arrange(items, "patient-view")
    assert [k.rule_id for k in kept] == ["sins-referral", "surgery-eligibility", "mri-urgency"]
    by_rule = {k.rule_id: [m.rule_id for m in k.merged] for k in kept}
    assert by_rule["mri-urgency"] == ["alarm-symptom-education"]  # cord compression and its imaging
    assert by_rule["sins-referral"] == ["systemic-first"]  # no treatment-plan card kept: the first card


def test_critical_cards_are_never_merged_or_dropped():
    items = [
        _card("mescc-treatment", "critical"),
        _card("mri-urgency", "critical"),
        _card("sins-referral", "critical"),
        _card("mdt-consultation", "critical"),
        _card("surgery-eligibility", "warning"),
    ]
    kept = arrange(items, "patient-view")
    assert [k.indicator for k in kept] == ["critical"] * 4  # more than three only because all are critical
    assert {k.rule_id for k in kept} == {"mescc-treatment", "mri-urgency", "sins-referral", "mdt-consultation"}
    assert [m.rule_id for k in kept for m in k.merged] == ["surgery-eligibility"]


def test_on_order_hooks_the_card_about_the_order_comes_first():
    items = [_card("mri-urgency", "critical"), _card("surgery-eligibility", "warning", about_order=True)]
    assert arrange(items, "order-sign")[0].rule_id == "surgery-eligibility"
    assert arrange(items, "order-select")[0].rule_id == "surgery-eligibility"
    assert arrange(items, "patient-view")[0].rule_id == "mri-urgency"


def test_a_merged_rule_keeps_its_extension_suggestions_override_reasons_and_links():
    host = _card("surgery-eligibility", "warning", survival=[{"model": "bollen", "group": "D"}])
    host.card["suggestions"] = [{"label": "host", "uuid": "s-host", "actions": []}]
    host.card["selectionBehavior"] = "at-most-one"
    host.card["overrideReasons"] = [{"code": "a", "display": "A"}]
    companion = _card("survival-estimate", survival=[{"model": "van-der-linden", "group": "A", "medianMonths": 3.0}])
    companion.card["suggestions"] = [{"label": "companion", "uuid": "s-comp", "actions": []}]
    companion.card["overrideReasons"] = [{"code": "a", "display": "A"}, {"code": "b", "display": "B"}]
    companion.card["links"] = [{"label": "sheet", "url": "https://x/sheet", "type": "absolute"}]
    (kept,) = arrange([host, companion], "patient-view")
    card = finish(kept, "patient-view")
    spinecds = card["extension"]["spinecds"]
    assert spinecds["merged"] == [companion.card["extension"]["spinecds"]]
    assert spinecds["survival"] == [{"model": "bollen", "group": "D"}]  # the host's own outcome untouched
    assert [s["uuid"] for s in card["suggestions"]] == ["s-host", "s-comp"]
    assert card["selectionBehavior"] == "any"  # suggestions of two rules are not alternatives
    assert [r["code"] for r in card["overrideReasons"]] == ["a", "b"]
    assert card["links"] == companion.card["links"]
    # One short section: the companion's summary, decisive finding and bullets, not its background.
    section = card["detail"].split("**Also: survival-estimate summary**", 1)[1]
    assert "**survival-estimate finding.**" in section and "- bullet two" in section
    assert "background paragraph" not in section
    assert host.card["detail"] in card["detail"]  # the host's own text comes first, unchanged
    assert "merged" not in host.card["extension"]["spinecds"]  # inputs are not modified


@pytest.fixture(scope="module")
def swept() -> list[tuple[str, Any]]:
    engine = get_engine()
    return [(label, engine.evaluate(request_from_hook_call(body, NOW))) for label, body in every_hook_call(NOW)]


def test_every_synthetic_patient_and_hook_gets_at_most_three_cards_unless_all_critical(swept):
    assert len(swept) == 20 * (1 + 2 * 5)  # patient-view; two order hooks x (default + 4 samples)
    for label, result in swept:
        cards = result.cards
        assert len(cards) <= 3 or all(c["indicator"] == "critical" for c in cards), (label, _summary(cards))


def test_every_fired_rule_is_shown_once_as_a_card_or_a_merged_entry(swept):
    for label, result in swept:
        shown = [c["extension"]["spinecds"]["ruleId"] for c in result.cards]
        merged = [m["ruleId"] for c in result.cards for m in c["extension"]["spinecds"].get("merged", [])]
        assert sorted(shown + merged) == sorted(f["ruleId"] for f in result.fired), label
        assert len(set(shown + merged)) == len(shown + merged), label
        ranks = [_rank(c) for c in result.cards]
        if label.split()[1] == "patient-view":
            assert ranks == sorted(ranks), (label, _summary(result.cards))


def test_signing_spinal_surgery_for_p13_puts_the_surgery_card_first(swept):
    result = dict(swept)["spinecds-p13 order-sign spinal-surgery"]
    first = result.cards[0]
    assert first["extension"]["spinecds"]["ruleId"] == "surgery-eligibility"
    assert first["indicator"] == "warning" and first.get("overrideReasons")
    assert len(result.cards) <= 3


def _rank(card: dict[str, Any]) -> tuple[int, int]:
    rule = card["extension"]["spinecds"]["ruleId"]
    return ({"critical": 0, "warning": 1, "info": 2}[card["indicator"]], RULE_PRIORITY.index(rule))


def _summary(cards: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(c["indicator"], c["extension"]["spinecds"]["ruleId"]) for c in cards]
