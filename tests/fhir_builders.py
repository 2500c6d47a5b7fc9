"""Small builders for FHIR R4 JSON test resources.

Every builder returns a plain dict (what the EHR sends), valid FHIR R4 unless you pass junk on
purpose. Times may be given as aware datetimes or ISO strings. Ids are generated when omitted
(``cond-1``, ``obs-2`` ...), and every resource points at ``Patient/p1`` unless told otherwise.

    now = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    resources = [
        make_patient(),
        make_condition("C50.9", system=ICD10),                          # breast cancer
        make_condition("radicular-deficit", laterality="left", course="progressive",
                       onset=now - timedelta(days=3)),
        make_kps(70, when=now - timedelta(days=1)),
        make_sins("T12", {"location": "loc-junctional", "pain": "pain-mechanical"}, total=9),
    ]
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

SF = "http://spinecds.org/fhir/CodeSystem/spine-findings"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
COURSE_URL = "http://spinecds.org/fhir/StructureDefinition/symptom-course"
LATERALITY = {"left": "7771000", "right": "24028007", "bilateral": "51440002"}
LOINC_CODES = {"kps": "89243-0", "ecog": "89247-1", "nrs": "72514-3"}

_ids = itertools.count(1)


def iso(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


def next_id(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def coding(code: str, system: str = SF, display: str | None = None) -> dict[str, Any]:
    result = {"system": system, "code": code}
    if display:
        result["display"] = display
    return result


def concept(code: str, system: str = SF) -> dict[str, Any]:
    return {"coding": [coding(code, system)]}


def make_patient(id: str = "p1") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": id}


def make_condition(
    code: str,
    system: str = SF,
    *,
    id: str | None = None,
    patient: str = "p1",
    clinical: str | None = "active",
    verification: str | None = "confirmed",
    onset: datetime | str | None = None,
    recorded: datetime | str | None = None,
    laterality: str | list[str] | None = None,
    course: str | None = None,
    extra_codings: list[dict] | None = None,
) -> dict[str, Any]:
    """A Condition. ``clinical`` / ``verification`` None leaves the status out; ``laterality`` is
    left / right / bilateral (or a list) as a SNOMED bodySite; ``course`` the symptom-course extension."""
    res: dict[str, Any] = {
        "resourceType": "Condition",
        "id": id or next_id("cond"),
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"coding": [coding(code, system)] + list(extra_codings or [])},
    }
    if clinical:
        res["clinicalStatus"] = concept(clinical, "http://terminology.hl7.org/CodeSystem/condition-clinical")
    if verification:
        res["verificationStatus"] = concept(verification, "http://terminology.hl7.org/CodeSystem/condition-ver-status")
    if onset is not None:
        res["onsetDateTime"] = iso(onset)
    if recorded is not None:
        res["recordedDate"] = iso(recorded)
    if laterality:
        sides = [laterality] if isinstance(laterality, str) else laterality
        res["bodySite"] = [{"coding": [coding(LATERALITY[s], SNOMED, s)]} for s in sides]
    if course:
        res["extension"] = [{"url": COURSE_URL, "valueCode": course}]
    return res


def make_observation(
    code: str,
    system: str = LOINC,
    *,
    value: Any = None,
    id: str | None = None,
    patient: str = "p1",
    status: str = "final",
    when: datetime | str | None = None,
    issued: datetime | str | None = None,
    body_site: str | None = None,
    components: dict[str, str] | None = None,
    has_member: list[str] | None = None,
    category: str | None = None,
) -> dict[str, Any]:
    """An Observation. ``value``: int -> valueInteger, bool -> valueBoolean, float -> valueQuantity,
    str -> valueCodeableConcept with that SF code. ``components``: SF component code -> SF answer code."""
    res: dict[str, Any] = {
        "resourceType": "Observation",
        "id": id or next_id("obs"),
        "status": status,
        "code": concept(code, system),
        "subject": {"reference": f"Patient/{patient}"},
    }
    if category:
        res["category"] = [concept(category, "http://terminology.hl7.org/CodeSystem/observation-category")]
    if when is not None:
        res["effectiveDateTime"] = iso(when)
    if issued is not None:
        res["issued"] = iso(issued)
    if isinstance(value, bool):
        res["valueBoolean"] = value
    elif isinstance(value, int):
        res["valueInteger"] = value
    elif isinstance(value, float):
        res["valueQuantity"] = {"value": value}
    elif isinstance(value, str):
        res["valueCodeableConcept"] = concept(value)
    if body_site:
        res["bodySite"] = {"text": body_site}
    if components:
        res["component"] = [
            {"code": concept(name), "valueCodeableConcept": concept(answer)} for name, answer in components.items()
        ]
    if has_member:
        res["hasMember"] = [{"reference": ref} for ref in has_member]
    return res


def make_kps(value: int | float, when: datetime | str | None = None, **kw: Any) -> dict[str, Any]:
    return make_observation(LOINC_CODES["kps"], value=value, when=when, **kw)


def make_ecog(value: int, when: datetime | str | None = None, **kw: Any) -> dict[str, Any]:
    return make_observation(LOINC_CODES["ecog"], value=value, when=when, **kw)


def make_nrs(value: int, when: datetime | str | None = None, **kw: Any) -> dict[str, Any]:
    return make_observation(LOINC_CODES["nrs"], value=value, when=when, **kw)


def make_vital(when: datetime | str | None = None, **kw: Any) -> dict[str, Any]:
    """An unrelated vital sign (heart rate): the filter must drop it before validation."""
    res = make_observation("8867-4", value=72.0, when=when, category="vital-signs", **kw)
    res["valueQuantity"] = {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}
    return res


SINS_COMPONENT = {
    "location": "sins-location",
    "pain": "sins-pain",
    "bone-lesion": "sins-bone-lesion",
    "alignment": "sins-alignment",
    "collapse": "sins-collapse",
    "posterolateral": "sins-posterolateral",
}


def make_sins(
    level: str | None, answers: dict[str, str], total: int | None = None, when: datetime | str | None = None, **kw: Any
) -> dict[str, Any]:
    """A SINS Observation for one lesion. ``answers`` use short component names
    (location, pain, bone-lesion, alignment, collapse, posterolateral) -> SF answer code."""
    components = {SINS_COMPONENT[name]: answer for name, answer in answers.items()}
    return make_observation("sins", SF, value=total, when=when, body_site=level, components=components, **kw)


SINS_ANSWERS_18 = {
    "location": "loc-junctional",
    "pain": "pain-mechanical",
    "bone-lesion": "lesion-lytic",
    "alignment": "align-subluxation",
    "collapse": "collapse-gt50",
    "posterolateral": "postero-bilateral",
}
SINS_ANSWERS_0 = {
    "location": "loc-rigid",
    "pain": "pain-free",
    "bone-lesion": "lesion-blastic",
    "alignment": "align-normal",
    "collapse": "collapse-none",
    "posterolateral": "postero-none",
}


def make_service_request(
    code: str = "mri-whole-spine",
    system: str = SF,
    *,
    id: str | None = None,
    patient: str = "p1",
    status: str = "draft",
    priority: str | None = "routine",
    due: datetime | str | None = None,
    due_field: str = "occurrencePeriod",
) -> dict[str, Any]:
    """A (draft) ServiceRequest; ``due`` goes to occurrencePeriod.end or occurrenceDateTime."""
    res: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": id or next_id("sr"),
        "status": status,
        "intent": "order",
        "code": concept(code, system),
        "subject": {"reference": f"Patient/{patient}"},
    }
    if priority:
        res["priority"] = priority
    if due is not None:
        if due_field == "occurrencePeriod":
            res["occurrencePeriod"] = {"end": iso(due)}
        else:
            res["occurrenceDateTime"] = iso(due)
    return res


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}
