"""Small builders for realistic FHIR R4 test resources used by tools/make_cases.py.

Only the case JSON files under rules/*/cases/ ship; this module exists so that 100 cases share one
spelling of every coding instead of 100 hand-typed copies.
"""

from __future__ import annotations

from typing import Any

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
SF = "http://spinecds.org/fhir/CodeSystem/spine-findings"
COURSE_URL = "http://spinecds.org/fhir/StructureDefinition/symptom-course"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
COND_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

PATIENT_ID = "p1"

# concept -> (system, code, display)
DIAGNOSES: dict[str, tuple[str, str, str]] = {
    "breast": (ICD10, "C50.911", "Malignant neoplasm of unspecified site of right female breast"),
    "breast-snomed": (SNOMED, "254837009", "Malignant neoplasm of breast"),
    "prostate": (ICD10, "C61", "Malignant neoplasm of prostate"),
    "lung": (ICD10, "C34.11", "Malignant neoplasm of upper lobe, right bronchus or lung"),
    "kidney": (ICD10, "C64.1", "Malignant neoplasm of right kidney, except renal pelvis"),
    "thyroid": (ICD10, "C73", "Malignant neoplasm of thyroid gland"),
    "colon": (ICD10, "C18.7", "Malignant neoplasm of sigmoid colon"),
    "unknown-primary": (ICD10, "C80.1", "Malignant (primary) neoplasm, unspecified"),
    "myeloma": (ICD10, "C90.00", "Multiple myeloma not having achieved remission"),
    "lymphoma": (ICD10, "C83.38", "Diffuse large B-cell lymphoma, lymph nodes of multiple sites"),
    "bone-metastasis": (ICD10, "C79.51", "Secondary malignant neoplasm of bone"),
    "bone-metastasis-snomed": (SNOMED, "94222008", "Secondary malignant neoplasm of bone"),
    "liver-metastasis": (ICD10, "C78.7", "Secondary malignant neoplasm of liver and intrahepatic bile duct"),
    "lung-metastasis": (SNOMED, "94391008", "Secondary malignant neoplasm of lung"),
    "brain-metastasis": (ICD10, "C79.31", "Secondary malignant neoplasm of brain"),
    "mescc": (ICD10, "G95.20", "Unspecified cord compression"),
    "mescc-sf": (SF, "mescc", "Metastatic epidural spinal cord compression"),
    "cauda-equina": (ICD10, "G83.4", "Cauda equina syndrome"),
}

SYMPTOMS: dict[str, str] = {
    "local-back-pain": "New or increasing back or neck pain, local only",
    "interscapular-pain": "Pain between or just below the shoulder blades",
    "nocturnal-back-pain": "Back pain lying down that eases sitting up",
    "radiating-pain": "Band-like pain radiating to stomach, chest, arms or legs",
    "radicular-pain": "Radicular pain",
    "radicular-deficit": "Radicular motor or sensory deficit",
    "lhermitte-sign": "Lhermitte's sign",
    "leg-weakness": "Decreased strength in the legs",
    "limb-control-difficulty": "Difficulty controlling the legs",
    "unsteady-gait": "Very wobbly gait",
    "sensory-level": "Numbness or tingling radiating down from chest, abdomen, groin or legs",
    "unable-to-walk": "Unable to walk or stand, legs give way",
}
SNOMED_SYMPTOMS = {"backache": ("161891005", "Backache"), "low-back-pain": ("279039007", "Low back pain")}

SIDES = {
    "left": (SNOMED, "7771000", "Left"),
    "right": (SNOMED, "24028007", "Right"),
    "bilateral": (SNOMED, "51440002", "Right and left"),
}

SINS_COMPONENTS = {
    "location": "sins-location",
    "pain": "sins-pain",
    "lesion": "sins-bone-lesion",
    "alignment": "sins-alignment",
    "collapse": "sins-collapse",
    "posterolateral": "sins-posterolateral",
}
SINS_DISPLAY = {
    "sins-location": "SINS location",
    "sins-pain": "SINS pain",
    "sins-bone-lesion": "SINS bone lesion",
    "sins-alignment": "SINS radiographic spinal alignment",
    "sins-collapse": "SINS vertebral body collapse",
    "sins-posterolateral": "SINS posterolateral involvement of spinal elements",
}
# answer code -> points (Fisher 2010), used only to state the expected total in case titles
SINS_POINTS = {
    "loc-junctional": 3,
    "loc-mobile": 2,
    "loc-semirigid": 1,
    "loc-rigid": 0,
    "pain-mechanical": 3,
    "pain-occasional": 1,
    "pain-free": 0,
    "lesion-lytic": 2,
    "lesion-mixed": 1,
    "lesion-blastic": 0,
    "align-subluxation": 4,
    "align-deformity": 2,
    "align-normal": 0,
    "collapse-gt50": 3,
    "collapse-lt50": 2,
    "collapse-involved-gt50": 1,
    "collapse-none": 0,
    "postero-bilateral": 3,
    "postero-unilateral": 1,
    "postero-none": 0,
}
SINS_ANSWER_DISPLAY = {
    "loc-junctional": "Junctional (occiput-C2, C7-T2, T11-L1, L5-S1)",
    "loc-mobile": "Mobile spine (C3-C6, L2-L4)",
    "loc-semirigid": "Semi-rigid (T3-T10)",
    "loc-rigid": "Rigid (S2-S5)",
    "pain-mechanical": "Mechanical pain",
    "pain-occasional": "Occasional pain, not mechanical",
    "pain-free": "Pain-free lesion",
    "lesion-lytic": "Lytic",
    "lesion-mixed": "Mixed lytic/blastic",
    "lesion-blastic": "Blastic",
    "align-subluxation": "Subluxation or translation present",
    "align-deformity": "De novo deformity (kyphosis or scoliosis)",
    "align-normal": "Normal alignment",
    "collapse-gt50": "More than 50% collapse",
    "collapse-lt50": "Less than 50% collapse",
    "collapse-involved-gt50": "No collapse with more than 50% of the body involved",
    "collapse-none": "None of the above",
    "postero-bilateral": "Bilateral",
    "postero-unilateral": "Unilateral",
    "postero-none": "None of the above",
}

ORDERS = {
    "mri": ("mri-whole-spine", "MRI whole spine"),
    "surgery": ("spinal-surgery", "Spinal surgery (decompression and/or stabilisation)"),
    "combined": ("spinal-surgery-combined", "Combined spinal surgery (decompression and stabilisation)"),
    "referral": ("spine-surgery-referral", "Referral to a spine surgeon"),
    "radiotherapy": ("spine-radiotherapy", "Radiotherapy of the spine"),
}


def patient(pid: str = PATIENT_ID, gender: str = "female", birth: str = "1958-04-12") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "gender": gender,
        "birthDate": birth,
        "name": [{"family": "Test", "given": ["Case"]}],
    }


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def condition(
    rid: str,
    concept: str | tuple[str, str, str],
    *,
    onset: str | None = None,
    recorded: str | None = "$now-30d",
    clinical: str | None = "active",
    verification: str | None = "confirmed",
    side: str | None = None,
    course: str | None = None,
    category: str = "problem-list-item",
) -> dict[str, Any]:
    system, code, display = DIAGNOSES[concept] if isinstance(concept, str) else concept
    res: dict[str, Any] = {"resourceType": "Condition", "id": rid}
    if verification == "entered-in-error":
        clinical = None  # FHIR invariant con-5: no clinicalStatus on an entered-in-error Condition
    if course:
        res["extension"] = [{"url": COURSE_URL, "valueCode": course}]
    if clinical:
        res["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": clinical}]}
    if verification:
        res["verificationStatus"] = {"coding": [{"system": VERIFICATION, "code": verification}]}
    res["category"] = [{"coding": [{"system": COND_CATEGORY, "code": category}]}]
    res["code"] = _concept(system, code, display)
    if side:
        res["bodySite"] = [_concept(*SIDES[side])]
    res["subject"] = {"reference": f"Patient/{PATIENT_ID}"}
    if onset:
        res["onsetDateTime"] = onset
    if recorded:
        res["recordedDate"] = recorded
    return res


def symptom(
    rid: str, code: str, *, onset: str | None = "$now-3d", side: str | None = None, course: str | None = None, **kw: Any
) -> dict[str, Any]:
    if code in SNOMED_SYMPTOMS:
        sct, display = SNOMED_SYMPTOMS[code]
        concept = (SNOMED, sct, display)
    else:
        concept = (SF, code, SYMPTOMS[code])
    kw.setdefault("recorded", onset or "$now-1d")
    return condition(rid, concept, onset=onset, side=side, course=course, category="encounter-diagnosis", **kw)


def observation(
    rid: str,
    system: str,
    code: str,
    display: str,
    *,
    when: str = "$now-2d",
    status: str = "final",
    category: str = "survey",
    **value: Any,
) -> dict[str, Any]:
    res = {
        "resourceType": "Observation",
        "id": rid,
        "status": status,
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": category}]}],
        "code": _concept(system, code, display),
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": when,
    }
    res.update(value)
    return res


def kps(rid: str, value: int, **kw: Any) -> dict[str, Any]:
    return observation(rid, LOINC, "89243-0", "Karnofsky Performance Status score", valueInteger=value, **kw)


def ecog(rid: str, value: int, **kw: Any) -> dict[str, Any]:
    return observation(rid, LOINC, "89247-1", "ECOG Performance Status score", valueInteger=value, **kw)


def nrs(rid: str, value: int, **kw: Any) -> dict[str, Any]:
    return observation(
        rid, LOINC, "72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported", valueInteger=value, **kw
    )


def no_visceral(rid: str = "obs-visceral", **kw: Any) -> dict[str, Any]:
    return observation(
        rid,
        SF,
        "visceral-metastases",
        "Visceral or brain metastases present",
        category="imaging",
        valueBoolean=False,
        **kw,
    )


def sins(
    rid: str,
    level: str,
    answers: dict[str, str],
    *,
    stated: int | None = None,
    when: str = "$now-2d",
    status: str = "final",
) -> dict[str, Any]:
    """answers: component short name (location, pain, lesion, alignment, collapse, posterolateral) -> SF answer."""
    res = observation(
        rid, SF, "sins", "Spinal Instability Neoplastic Score", when=when, status=status, category="imaging"
    )
    if stated is not None:
        res["valueInteger"] = stated
    res["bodySite"] = {"text": level}
    res["component"] = [
        {
            "code": _concept(SF, SINS_COMPONENTS[name], SINS_DISPLAY[SINS_COMPONENTS[name]]),
            "valueCodeableConcept": _concept(SF, answer, SINS_ANSWER_DISPLAY[answer]),
        }
        for name, answer in answers.items()
    ]
    return res


def sins_total(answers: dict[str, str]) -> int:
    return sum(SINS_POINTS[a] for a in answers.values())


def service_request(
    rid: str, kind: str, *, priority: str | None = "routine", end: str | None = None, status: str = "draft"
) -> dict[str, Any]:
    code, display = ORDERS[kind]
    res: dict[str, Any] = {"resourceType": "ServiceRequest", "id": rid, "status": status, "intent": "order"}
    if priority:
        res["priority"] = priority
    res["code"] = _concept(SF, code, display)
    res["subject"] = {"reference": f"Patient/{PATIENT_ID}"}
    if end:
        res["occurrencePeriod"] = {"start": "$now", "end": end}
    res["authoredOn"] = "$now"
    return res


def bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"https://ehr.example.org/fhir/{r['resourceType']}/{r['id']}", "resource": r} for r in resources
        ],
    }
