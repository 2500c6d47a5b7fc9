"""The synthetic chart the SMART assessment tests complete: lung cancer with a T12 lesion whose SINS
lacks pain, alignment and posterolateral involvement (7-17: the SINS card is incomplete and surgery
eligibility is asked), a KPS of 80 and no staging (visceral status unknown)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from engine.fixtures.resources import ICD10, make_condition, make_kps, make_sins

PATIENT_ID = "smart-p1"


def chart(now: datetime, patient_id: str = PATIENT_ID) -> list[dict[str, Any]]:
    def ago(days: int) -> str:
        return (now - timedelta(days=days)).isoformat(timespec="seconds")

    patient = {
        "resourceType": "Patient",
        "id": patient_id,
        "gender": "female",
        "birthDate": "1958-04-12",
        "name": [{"family": "Test", "given": ["Case"]}],
    }
    return [
        patient,
        make_condition("C34.11", ICD10, id="smart-lung", patient=patient_id, onset=ago(400), recorded=ago(400)),
        make_condition("C79.51", ICD10, id="smart-bone", patient=patient_id, onset=ago(10), recorded=ago(10)),
        make_kps(80, when=ago(5), id="smart-kps", patient=patient_id, category="survey"),
        make_sins(
            "T12",
            {"location": "loc-junctional", "bone-lesion": "lesion-lytic", "collapse": "collapse-lt50"},
            when=ago(5),
            id="smart-sins-t12",
            patient=patient_id,
            category="imaging",
        ),
    ]


def answers(patient_id: str = PATIENT_ID) -> dict[str, dict[str, Any]]:
    """What the clinician answers: the three missing SINS components, and no visceral or brain metastases."""
    sf = "http://spinecds.org/fhir/CodeSystem/spine-findings"

    def coding(system: str, code: str) -> dict[str, Any]:
        return {"valueCoding": {"system": system, "code": code}}

    lesion = [
        {"linkId": "level", "answer": [{"valueString": "T12"}]},
        {"linkId": "location", "answer": [coding(sf, "loc-junctional")]},
        {"linkId": "pain", "answer": [coding(sf, "pain-mechanical")]},
        {"linkId": "bone-lesion", "answer": [coding(sf, "lesion-lytic")]},
        {"linkId": "alignment", "answer": [coding(sf, "align-normal")]},
        {"linkId": "collapse", "answer": [coding(sf, "collapse-lt50")]},
        {"linkId": "posterolateral", "answer": [coding(sf, "postero-none")]},
    ]
    no = "http://terminology.hl7.org/CodeSystem/v2-0136"
    return {
        "spinecds-sins": {
            "resourceType": "QuestionnaireResponse",
            "status": "completed",
            "subject": {"reference": f"Patient/{patient_id}"},
            "item": [{"linkId": "lesion", "item": lesion}],
        },
        "spinecds-staging": {
            "resourceType": "QuestionnaireResponse",
            "status": "completed",
            "item": [
                {"linkId": "visceral", "answer": [coding(no, "N")]},
                {"linkId": "brain", "answer": [coding(no, "N")]},
            ],
        },
    }
