"""The synthetic chart the SMART assessment tests complete: breast cancer with a T12 lesion whose SINS
lacks pain, alignment and posterolateral involvement (7-17: the SINS card is incomplete and surgery
eligibility is asked), a KPS of 80 and no staging (visceral status unknown)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.relative_time import resolve
from tools import fhir_build as fb

PATIENT_ID = "smart-p1"


def chart(now: datetime, patient_id: str = PATIENT_ID) -> list[dict[str, Any]]:
    resources = [
        fb.condition("smart-breast", "breast", onset="$now-400d"),
        fb.condition("smart-bone", "bone-metastasis", onset="$now-10d"),
        fb.kps("smart-kps", 80, when="$now-5d"),
        fb.sins(
            "smart-sins-t12",
            "T12",
            {"location": "loc-junctional", "lesion": "lesion-lytic", "collapse": "collapse-lt50"},
            when="$now-5d",
        ),
    ]
    for resource in resources:
        resource["subject"] = {"reference": f"Patient/{patient_id}"}
    return [fb.patient(patient_id), *resolve(resources, now)]


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
