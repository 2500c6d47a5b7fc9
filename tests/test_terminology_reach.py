"""Charts coded the way EHRs and mCODE code them (SNOMED CT descendants, ICD-10-CM symptoms) get the
same cards as charts coded in the spine-findings vocabulary."""

from __future__ import annotations

from typing import Any

from cds_hooks.prefetch_templates import prefetch_templates
from engine.fixtures.resources import ICD10, SNOMED, make_condition, make_kps, make_patient
from tests.service_fixtures import hook_request, searchset

URL = "/cds-services/spinecds-patient-view"


def _prefetch(*resources: dict[str, Any]) -> dict[str, Any]:
    prefetch: dict[str, Any] = {key: None for key in prefetch_templates()}
    prefetch["patient"] = make_patient()
    prefetch["conditions"] = searchset([r for r in resources if r["resourceType"] == "Condition"])
    prefetch["performanceStatus"] = searchset([r for r in resources if r["resourceType"] == "Observation"])
    return prefetch


def _cards(client, *resources: dict[str, Any]) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    response = client.post(URL, json=hook_request(prefetch=_prefetch(*resources)))
    assert response.status_code == 200, response.text
    return {card["extension"]["spinecds"]["ruleId"]: card for card in response.json()["cards"]}


def test_breast_cancer_as_the_mcode_snomed_descendant_is_a_breast_primary(client):
    cards = _cards(
        client,
        make_condition(
            "353431000119107", SNOMED, onset="2024-05-01"
        ),  # Primary malignant neoplasm of female left breast
        make_condition("94222008", SNOMED, onset="2026-01-10"),  # Secondary malignant neoplasm of bone
        make_kps(80, "2026-02-25T10:00:00Z"),
    )
    text = " ".join(card["summary"] + card.get("detail", "") for card in cards.values())
    assert "record primary" not in text.lower()
    survival = cards["survival-estimate"]["extension"]["spinecds"] if "survival-estimate" in cards else None
    merged = [
        item
        for card in cards.values()
        for item in card["extension"]["spinecds"].get("merged", [])
        if item.get("ruleId") == "survival-estimate"
    ]
    assert survival is not None or merged, sorted(cards)


def test_icd10cm_low_back_pain_with_bone_metastases_gives_the_mri_card(client):
    cards = _cards(
        client,
        make_condition("C50.912", ICD10, onset="2024-05-01"),
        make_condition("C79.51", ICD10, onset="2026-01-10"),
        make_condition("M54.50", ICD10, onset="2026-02-25"),  # Low back pain, unspecified
    )
    assert "mri-urgency" in cards, sorted(cards)
    assert cards["mri-urgency"]["extension"]["spinecds"]["outcome"] == 5
    assert "alarm-symptom-education" not in cards
    assert all("without symptoms" not in card["summary"] for card in cards.values())


def test_a_code_near_a_concept_is_reported_in_data_quality_and_on_the_cards(client):
    dorsalgia = make_condition("M54.9", ICD10, id="c-dorsalgia", onset="2026-02-25")
    dorsalgia["code"]["coding"][0]["display"] = "Dorsalgia, unspecified"
    response = client.post(
        URL,
        json=hook_request(
            prefetch=_prefetch(make_condition("C50.912", ICD10), make_condition("C79.51", ICD10), dorsalgia)
        ),
    )
    body = response.json()
    assert {"resource": "Condition/c-dorsalgia", "issue": f"not recognised: {ICD10}|M54.9 Dorsalgia, unspecified"} in (
        body["extension"]["spinecds"]["dataQuality"]
    )
    assert body["cards"], "a card for the bone metastasis"
    for card in body["cards"]:
        assert "Codes not recognised" in card["detail"] and "M54.9" in card["detail"]
