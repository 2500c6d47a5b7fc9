"""`spinecds sandbox check` and the expectation comparison behind it."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox import cli, expectations, patients
from tests.sandbox_stub_servers import StubCdsService, TinyFhirServer, running


def card(rule: str, outcome: Any, indicator: str = "info", **ext: Any) -> dict[str, Any]:
    return {
        "summary": rule,
        "indicator": indicator,
        "source": {"label": "x"},
        "extension": {"spinecds": {"ruleId": rule, "ruleVersion": "1.0.0", "outcome": outcome, **ext}},
    }


def cards_meeting(expect: dict[str, Any]) -> list[dict[str, Any]]:
    """What a service that honours the expectation would answer."""
    out = []
    for want in expect.get("cards") or []:
        ext = {k: want[k] for k in ("deadlineHours", "hoursLeft", "sins", "survival") if k in want}
        out.append(card(want["ruleId"], want["outcome"], want.get("indicator", "info"), **ext))
    out += [card(rule, "advise") for rule in expect.get("presentRules") or []]
    return out


P06 = patients.description("p06")["expect"]


def test_cards_meeting_the_expectation_pass():
    assert expectations.compare(P06, cards_meeting(P06)) == []
    # A card the patient does not promise is a failure now (at most three cards: each one counts).
    extra = expectations.compare(P06, cards_meeting(P06) + [card("mdt-consultation", "advise")])
    assert extra == ["mdt-consultation: unexpected extra card (outcome advise)"]


def test_a_rule_merged_into_another_card_counts_as_present():
    cards = cards_meeting(P06)
    dialogue = next(c for c in cards if c["extension"]["spinecds"]["ruleId"] == "expectations-dialogue")
    host = {
        **cards[0],
        "extension": {"spinecds": {**cards[0]["extension"]["spinecds"], "merged": [dialogue["extension"]["spinecds"]]}},
    }
    assert expectations.compare(P06, [host, *[c for c in cards[1:] if c is not dialogue]]) == []


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda cs: cs[1:], "mescc-treatment: no card (expected outcome within-window)"),
        (
            lambda cs: [{**cs[0], "indicator": "warning"}, *cs[1:]],
            "mescc-treatment: indicator 'warning', expected 'critical'",
        ),
        (
            lambda cs: [card("mescc-treatment", "overdue", "critical", hoursLeft=18), *cs[1:]],
            "outcome 'overdue', expected 'within-window'",
        ),
        (
            lambda cs: [card("mescc-treatment", "within-window", "critical", hoursLeft=16.5), *cs[1:]],
            "hoursLeft 16.5, expected 18",
        ),
        (
            lambda cs: [
                cs[0],
                card("surgery-eligibility", "eligible", survival=[{"model": "van-der-linden", "group": "A"}]),
                *cs[2:],
            ],
            "survival van-der-linden group B missing",
        ),
        (lambda cs: cs + [card("mri-urgency", 1, "critical")], "mri-urgency: unexpected card (outcome 1)"),
        (
            lambda cs: [c for c in cs if c["extension"]["spinecds"]["ruleId"] != "expectations-dialogue"],
            "expectations-dialogue: no card",
        ),
    ],
)
def test_each_kind_of_difference_is_reported(mutate, message):
    problems = expectations.compare(P06, mutate(cards_meeting(P06)))
    assert any(message in p for p in problems), problems


def test_hours_left_allows_the_clock_to_run_for_an_hour():
    late = [card("mescc-treatment", "within-window", "critical", hoursLeft=17.2), *cards_meeting(P06)[1:]]
    assert expectations.compare(P06, late) == []


def test_check_command_passes_and_fails_per_patient(capsys):
    def answer(request: dict[str, Any]) -> list[dict[str, Any]]:
        pid = request["context"]["patientId"]
        cards = cards_meeting(patients.description(pid).get("expect") or {})
        return cards[1:] if pid == "spinecds-p06" else cards  # the service "forgets" p06's MESCC card

    with running(TinyFhirServer()) as fhir, running(StubCdsService(cards_for=answer)) as cds:
        rc = cli.main(
            [
                "sandbox",
                "check",
                "--fhir-server",
                fhir.base,
                "--service",
                cds.url,
                "--patient",
                "p04",
                "p06",
                "p18",
                "--no-prefetch",
            ]
        )
        assert [r["context"]["patientId"] for r in cds.hook_requests()] == [
            "spinecds-p04",
            "spinecds-p06",
            "spinecds-p18",
        ]
    out = capsys.readouterr().out
    assert rc == 1
    assert "PASS  spinecds-p04" in out and "PASS  spinecds-p18" in out
    assert "FAIL  spinecds-p06" in out and "mescc-treatment: no card" in out
    assert "2 of 3 patients give the expected cards" in out
