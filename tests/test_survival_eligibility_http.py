"""Revision 2 survival / eligibility / MDT behaviour end to end over HTTP (prefetch and FHIR fallback)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from engine.fixtures.resources import (
    ICD10,
    SF,
    SNOMED,
    iso,
    make_condition,
    make_ecog,
    make_kps,
    make_nrs,
    make_patient,
    make_service_request,
    make_sins,
)
from tests.service_fixtures import FIXED_NOW, PATIENT_ID, hook_request, searchset

NOW = FIXED_NOW
SINS_7 = {
    "location": "loc-junctional",
    "pain": "pain-occasional",
    "bone-lesion": "lesion-lytic",
    "alignment": "align-normal",
    "collapse": "collapse-none",
    "posterolateral": "postero-unilateral",
}


def _prefetch(*resources: dict[str, Any]) -> dict[str, Any]:
    conditions = [r for r in resources if r["resourceType"] == "Condition"]
    observations = [r for r in resources if r["resourceType"] == "Observation"]

    def obs(code: str) -> dict[str, Any]:
        return searchset([o for o in observations if o["code"]["coding"][0]["code"] in code.split(",")])

    return {
        "patient": make_patient(PATIENT_ID),
        "conditions": searchset(conditions),
        "performanceStatus": obs("89243-0,89247-1"),
        "pain": obs("72514-3"),
        "sins": obs("sins"),
        "staging": obs("visceral-metastases"),
    }


def _cards(client, prefetch: dict[str, Any], hook: str = "patient-view", **extra: Any) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    response = client.post(f"/cds-services/spinecds-{hook}", json=hook_request(hook=hook, prefetch=prefetch, **extra))
    assert response.status_code == 200, response.text
    return by_rule(response.json()["cards"])


def by_rule(cards: list[dict[str, Any]]) -> dict[str, dict]:
    """ruleId -> the card that shows it; a rule merged into a host card gets the host card with the
    merged rule's own extension (7.6: advice merged as one section of the host card)."""
    found: dict[str, dict] = {}
    for card in cards:
        own = card["extension"]["spinecds"]
        found[own["ruleId"]] = card
        for merged in own.get("merged", []):
            found[merged["ruleId"]] = {**card, "extension": {"spinecds": merged}}
    return found


def _breast_with_sins(*more: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        make_condition("C50.9", ICD10, onset=NOW - timedelta(days=400)),
        make_condition("C79.51", ICD10, onset=NOW - timedelta(days=60)),
        make_sins("T12", SINS_7, when=NOW - timedelta(days=2)),
        *more,
    ]


def test_missing_visceral_status_is_decided_when_it_cannot_change_the_verdict(client):
    cards = _cards(client, _prefetch(*_breast_with_sins(make_kps(80, NOW - timedelta(days=1)))))
    card = cards["surgery-eligibility"]
    ext = card["extension"]["spinecds"]
    assert (card["indicator"], ext["outcome"]) == ("info", "eligible")
    assert "Visceral metastases status not recorded: the verdict holds either way." in card["detail"]
    survival = {s["model"]: s for s in ext["survival"]}
    assert survival["van-der-linden"] == {"model": "van-der-linden", "groups": ["B", "C"]}
    assert "medianMonths" not in survival["bollen"]


def test_kps_40_without_a_deficit_fails_the_clinical_condition_gate(client):
    cards = _cards(client, _prefetch(*_breast_with_sins(make_kps(40, NOW - timedelta(days=1)))))
    card = cards["surgery-eligibility"]
    assert (card["indicator"], card["extension"]["spinecds"]["outcome"]) == ("warning", "not-eligible")
    assert "poor clinical condition (service threshold: KPS below 50)" in card["detail"]
    assert "source: kps" not in card["detail"] and "Assumptions: none" not in card["detail"]


def test_ecog_3_never_fails_the_gate_and_asks_for_a_kps(client):
    cards = _cards(client, _prefetch(*_breast_with_sins(make_ecog(3, NOW - timedelta(days=1)))))
    card = cards["surgery-eligibility"]
    assert card["extension"]["spinecds"]["outcome"] == "discuss"
    assert "record a KPS" in card["detail"]


def test_order_sign_with_group_a_reachable_warns_with_override_reasons(client):
    resources = [
        make_condition("C34.90", ICD10, onset=NOW - timedelta(days=300)),
        make_condition("C79.51", ICD10, onset=NOW - timedelta(days=60)),
        make_sins("T12", SINS_7, when=NOW - timedelta(days=2)),  # the indication: an order alone is none
        make_kps(80, NOW - timedelta(days=1)),
    ]
    order = make_service_request("spinal-surgery", id="sr-surg", status="draft")
    context = {
        "userId": "Practitioner/dr-1",
        "patientId": PATIENT_ID,
        "draftOrders": searchset([order]),
    }
    cards = _cards(client, _prefetch(*resources), hook="order-sign", context=context)
    card = cards["surgery-eligibility"]
    ext = card["extension"]["spinecds"]
    assert (card["indicator"], ext["outcome"]) == ("warning", "undetermined")
    assert len(card["overrideReasons"]) >= 3
    assert "about half of these patients live less than three months" in card["detail"]


def test_mdt_severe_recent_pain_is_ad_hoc_and_bone_metastasis_elsewhere_is_not_spinal(client):
    femur = make_condition("C79.51", ICD10, onset=NOW - timedelta(days=60))
    femur["bodySite"] = [{"coding": [{"system": SNOMED, "code": "71341001", "display": "Bone structure of femur"}]}]
    pain = make_condition("local-back-pain", onset=NOW - timedelta(days=5))
    cancer = make_condition("C50.9", ICD10, onset=NOW - timedelta(days=400))
    cards = _cards(client, _prefetch(cancer, femur, pain, make_nrs(8, NOW - timedelta(hours=3))))
    assert "mdt-consultation" not in cards and "mri-urgency" in cards

    spine = make_condition("C79.51", ICD10, onset=NOW - timedelta(days=60))
    cards = _cards(client, _prefetch(cancer, spine, pain, make_nrs(8, NOW - timedelta(hours=3))))
    card = cards["mdt-consultation"]  # merged into the MRI card (7.6): its section says what to do
    assert card["extension"]["spinecds"]["outcome"] == "ad-hoc"
    assert "severe pain (NRS 8)" in card["detail"] and "Ad hoc MDT today" in card["detail"]


def test_fhir_server_fallback_gives_the_same_survival_cards(client, fhir_server):
    resources = [make_patient(PATIENT_ID), *_breast_with_sins(make_kps(80, NOW - timedelta(days=1)))]
    fhir_server.store.clear()
    fhir_server.store.load(*resources)
    with_prefetch = _cards(client, _prefetch(*resources[1:]))
    fallback = client.post(
        "/cds-services/spinecds-patient-view",
        json=hook_request(
            fhirServer=fhir_server.base_url,
            fhirAuthorization={
                "access_token": "t0k3n",
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": "patient/*.read",
                "subject": "cds-service",
            },
        ),
    )
    assert fallback.status_code == 200
    fetched = by_rule(fallback.json()["cards"])
    for rule in ("surgery-eligibility", "survival-estimate"):
        assert fetched[rule]["extension"] == with_prefetch[rule]["extension"]
        assert fetched[rule]["detail"] == with_prefetch[rule]["detail"]


def _radiotherapy_at(level: str | None, id_: str = "rt-1") -> dict[str, Any]:
    procedure: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": id_,
        "status": "completed",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": {"coding": [{"system": SF, "code": "spine-radiotherapy"}]},
        "performedPeriod": {"start": iso(NOW - timedelta(days=65)), "end": iso(NOW - timedelta(days=60))},
    }
    if level:
        procedure["bodySite"] = [{"text": level}]
    return procedure


def _hospice_order() -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": "hospice-1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": {"coding": [{"system": SNOMED, "code": "385763009", "display": "Hospice care"}]},
        "authoredOn": iso(NOW - timedelta(days=3)),
    }


def _pain_at(level: str) -> dict[str, Any]:
    pain = make_condition("local-back-pain", onset=NOW - timedelta(days=6), recorded=NOW - timedelta(days=5))
    pain["bodySite"] = [{"text": level}]
    return pain


def _fallback(client, fhir_server, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    fhir_server.store.clear()
    fhir_server.store.load(make_patient(PATIENT_ID), *resources)
    response = client.post(
        "/cds-services/spinecds-patient-view",
        json=hook_request(
            fhirServer=fhir_server.base_url,
            fhirAuthorization={
                "access_token": "t0k3n",
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": "patient/*.read",
                "subject": "cds-service",
            },
        ),
    )
    assert response.status_code == 200, response.text
    return response.json()["cards"]


def test_pain_at_the_irradiated_level_is_a_surgical_indication_prefetch_and_fallback(client, fhir_server):
    resources = [
        make_condition("C50.9", ICD10, onset=NOW - timedelta(days=400)),
        make_condition("C79.51", ICD10, onset=NOW - timedelta(days=90)),
        make_kps(90, NOW - timedelta(days=1)),
        _pain_at("T12"),
    ]
    prefetch = {**_prefetch(*resources), "procedures": searchset([_radiotherapy_at("T12")])}
    fetched = by_rule(_fallback(client, fhir_server, [*resources, _radiotherapy_at("T12")]))
    for cards in (_cards(client, prefetch), fetched):
        card = cards["surgery-eligibility"]
        assert card["extension"]["spinecds"]["outcome"] == "eligible"
        assert "recurrence at the irradiated level: Radiotherapy of the spine at T12" in card["detail"]
    # the same pain at L4: not at the irradiated level, no surgical indication, no card
    other = {**_prefetch(*resources[:3], _pain_at("L4")), "procedures": searchset([_radiotherapy_at("T12")])}
    assert "surgery-eligibility" not in _cards(client, other)
    # no level on the radiotherapy: discuss, "if at the irradiated level, surgery is preferred"
    unknown = {**_prefetch(*resources), "procedures": searchset([_radiotherapy_at(None)])}
    card = _cards(client, unknown)["surgery-eligibility"]
    assert card["extension"]["spinecds"]["outcome"] == "discuss"
    assert (
        "if at the irradiated level, surgery is preferred; otherwise radiotherapy remains the first choice"
        in (card["detail"])
    )


def test_comfort_care_order_adds_the_goals_line_to_every_card_prefetch_and_fallback(client, fhir_server):
    resources = _breast_with_sins(make_kps(80, NOW - timedelta(days=1)))
    prefetch = {**_prefetch(*resources), "serviceRequests": searchset([_hospice_order()])}
    plain = client.post("/cds-services/spinecds-patient-view", json=hook_request(prefetch=_prefetch(*resources)))
    with_comfort = client.post("/cds-services/spinecds-patient-view", json=hook_request(prefetch=prefetch))
    fallback = _fallback(client, fhir_server, [*resources, _hospice_order()])
    for cards in (with_comfort.json()["cards"], fallback):
        rules = [c["extension"]["spinecds"]["ruleId"] for c in cards]
        assert sorted(rules) == sorted(c["extension"]["spinecds"]["ruleId"] for c in plain.json()["cards"])
        assert len(cards) >= 2  # nothing suppressed
        for card in cards:
            assert card["detail"].count("Goals of care:") == 1
            assert "comfort care documented (" in card["detail"] and "check that this fits" in card["detail"]
