"""The complete local EHR loop, as an integrator runs it: the local FHIR server preloaded with the
synthetic patients, the REAL service under uvicorn, and the sandbox client firing hooks.

For every synthetic patient, patient-view through prefetch and through the fallback (fhirServer +
fhirAuthorization, the service fetching itself) must give the same cards, and those must be the
cards the patient's `expect` block promises. Order hooks run with the draft orders of sandbox/orders/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox import expectations, hook_client, patients
from sandbox.fhir_server import ResourceStore, RunningServer, preload_sandbox_patients, start_server
from sandbox.transport import session
from tests.live_service import live_service

ORDERS = Path(__file__).resolve().parents[1] / "sandbox" / "orders"


@pytest.fixture(scope="module")
def fhir() -> Iterator[RunningServer]:
    store = ResourceStore()
    preload_sandbox_patients(store)
    server = start_server(store)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_service(tmp_path_factory.mktemp("service")) as base:
        yield base


@pytest.fixture(scope="module")
def sessions() -> Iterator[tuple[requests.Session, requests.Session]]:
    cds, fhir_session = session(None, accept="application/json"), session(None)
    yield cds, fhir_session
    cds.close()
    fhir_session.close()


def fire(
    service: str,
    fhir: RunningServer,
    sessions: tuple[requests.Session, requests.Session],
    hook: str,
    patient_id: str,
    *,
    prefetch: bool,
    draft_order: str | None = None,
) -> list[dict[str, Any]]:
    cds, fhir_session = sessions
    entry = hook_client.discover(cds, service, hook)
    call = hook_client.fire(
        cds,
        service,
        entry,
        hook,
        patient_id,
        fhir_session=fhir_session,
        fhir_base=fhir.base_url,
        prefetch=prefetch,
        send_fhir_server=not prefetch,
        fhir_token="sandbox-open-server",
        draft_order_file=draft_order,
    )
    assert call.response.status_code == 200, call.response.text[:500]
    assert call.prefetch_failed == {}
    if prefetch:
        assert "fhirServer" not in call.request and set(call.request["prefetch"]) == set(entry["prefetch"])
    else:
        assert "prefetch" not in call.request and call.request["fhirServer"] == fhir.base_url
    return call.body["cards"]


def signature(cards: list[dict[str, Any]]) -> list[tuple[str, str, str, Any]]:
    """What must not depend on how the data arrived: rule, indicator, outcome, deadline (sorted)."""
    rows = []
    for card in cards:
        ext = card["extension"]["spinecds"]
        rows.append((ext["ruleId"], card["indicator"], str(ext.get("outcome")), ext.get("deadlineHours")))
    return sorted(rows)


@pytest.mark.parametrize("patient_id", patients.patient_ids())
def test_patient_view_prefetch_and_fallback_agree_and_meet_the_expectation(patient_id, fhir, service, sessions):
    via_prefetch = fire(service, fhir, sessions, "patient-view", patient_id, prefetch=True)
    via_fallback = fire(service, fhir, sessions, "patient-view", patient_id, prefetch=False)
    assert signature(via_prefetch) == signature(via_fallback)
    expect = patients.description(patient_id).get("expect") or {}
    assert expectations.compare(expect, via_prefetch) == []
    assert expectations.compare(expect, via_fallback) == []


def _cards_of(cards: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    return [card for card in cards if card["extension"]["spinecds"]["ruleId"] == rule]


def _actions(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [action for suggestion in card.get("suggestions") or [] for action in suggestion.get("actions") or []]


@pytest.mark.parametrize("prefetch", [True, False], ids=["prefetch", "fallback"])
def test_order_select_routine_mri_is_too_late_for_tier_2(prefetch, fhir, service, sessions):
    # p04: progressive radicular deficit over 3 days -> tier 2, MRI within 24 h; the draft says 2 weeks.
    cards = fire(
        service,
        fhir,
        sessions,
        "order-select",
        "spinecds-p04",
        prefetch=prefetch,
        draft_order=str(ORDERS / "mri-routine-2-weeks.json"),
    )
    (mri,) = _cards_of(cards, "mri-urgency")
    # Critical (clinical review): a too-slow draft for a tier 1-2 finding is as urgent as the finding.
    assert mri["indicator"] == "critical"
    assert mri["extension"]["spinecds"]["outcome"] == 2 and mri["extension"]["spinecds"]["deadlineHours"] == 24
    updates = [a for a in _actions(mri) if a["type"] == "update"]
    assert [a["resource"]["id"] for a in updates] == ["sandbox-draft-mri-routine"]
    assert updates[0]["resource"]["priority"] in ("asap", "stat")


@pytest.mark.parametrize("prefetch", [True, False], ids=["prefetch", "fallback"])
def test_order_select_stat_mri_within_the_deadline_gets_no_update(prefetch, fhir, service, sessions):
    cards = fire(
        service,
        fhir,
        sessions,
        "order-select",
        "spinecds-p04",
        prefetch=prefetch,
        draft_order=str(ORDERS / "mri-stat-12h.json"),
    )
    (mri,) = _cards_of(cards, "mri-urgency")
    assert mri["extension"]["spinecds"]["outcome"] == 2
    assert not [a for a in _actions(mri) if a["type"] == "update"]


@pytest.mark.parametrize("prefetch", [True, False], ids=["prefetch", "fallback"])
def test_order_sign_surgery_with_short_survival_is_flagged(prefetch, fhir, service, sessions):
    # p13: Van der Linden group A (about 3 months) -> below the 3-month-plus criterion for surgery.
    cards = fire(
        service,
        fhir,
        sessions,
        "order-sign",
        "spinecds-p13",
        prefetch=prefetch,
        draft_order=str(ORDERS / "spinal-surgery.json"),
    )
    (surgery,) = _cards_of(cards, "surgery-eligibility")
    ext = surgery["extension"]["spinecds"]
    assert surgery["indicator"] == "warning" and ext["outcome"] == "not-eligible"
    assert ("van-der-linden", "A") in {(s.get("model"), s.get("group")) for s in ext["survival"]}


@pytest.mark.parametrize("prefetch", [True, False], ids=["prefetch", "fallback"])
def test_order_sign_combined_surgery_with_mescc_is_discussed(prefetch, fhir, service, sessions):
    # p06: MESCC, Van der Linden group B (9 months) meets the 6-month criterion for combined surgery,
    # but revision 2: with MESCC Van der Linden cannot decide alone and KPS 60 is borderline: discuss.
    cards = fire(
        service,
        fhir,
        sessions,
        "order-sign",
        "spinecds-p06",
        prefetch=prefetch,
        draft_order=str(ORDERS / "spinal-surgery-combined.json"),
    )
    (surgery,) = _cards_of(cards, "surgery-eligibility")
    assert surgery["indicator"] == "warning" and surgery["extension"]["spinecds"]["outcome"] == "discuss"
    assert "6 months" in surgery["detail"] or "6-month" in surgery["detail"]
    (mescc,) = _cards_of(cards, "mescc-treatment")
    assert mescc["indicator"] == "critical"
