"""The same clinical story coded in spine-findings codes, in SNOMED CT descendants, in ICD-10-CM and in
WHO ICD-10 gives the same cards, over HTTP: for every symptom concept that has a code in those systems,
and for every primary tumour of the survival tables."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cds_hooks.prefetch_templates import prefetch_templates
from engine.fixtures.resources import ICD10, LOINC, SF, SNOMED, coding, make_kps, make_patient
from engine.parse import SYMPTOM_CODES
from fhir_profiles.terminology import DEFAULT_DIRECTORY
from tests.service_fixtures import hook_request, searchset

URL = "/cds-services/spinecds-patient-view"
WHO = "http://hl7.org/fhir/sid/icd-10"
SYSTEMS = {"sf": SF, "snomed": SNOMED, "icd10cm": ICD10, "who": WHO}
RIGHT = (SNOMED, "24028007", "Right")

# The story's cancer in each coding: a breast primary and a bone metastasis without a site.
CANCER = {
    "sf": [(ICD10, "C50.912", "Malignant neoplasm of unspecified site of left female breast"), (ICD10, "C79.51", "")],
    "snomed": [
        (SNOMED, "353431000119107", "Primary malignant neoplasm of female left breast"),
        (SNOMED, "94222008", ""),
    ],
    "icd10cm": [(ICD10, "C50.912", ""), (ICD10, "C79.51", "")],
    "who": [(WHO, "C50.9", "Malignant neoplasm of breast, unspecified"), (WHO, "C79.5", "")],
}

# Symptom concept -> variant -> (coding, bodySite codings). A variant a concept lacks has no standard
# code in that system (see NO_STANDARD_CODE).
SYMPTOMS: dict[str, dict[str, tuple[tuple[str, str, str], list[tuple[str, str, str]]]]] = {
    "local-back-pain": {
        "sf": ((SF, "local-back-pain", ""), []),
        "snomed": ((SNOMED, "279039007", "Low back pain"), []),
        "icd10cm": ((ICD10, "M54.50", "Low back pain, unspecified"), []),
        "who": ((WHO, "M54.5", "Low back pain"), []),
    },
    "radicular-pain": {  # side unknown: read as bilateral in every coding
        "sf": ((SF, "radicular-pain", ""), []),
        "snomed": ((SNOMED, "23056005", "Sciatica"), []),
        "icd10cm": ((ICD10, "M54.16", "Radiculopathy, lumbar region"), []),
        "who": ((WHO, "M54.1", "Radiculopathy"), []),
    },
    "radicular-pain, right": {  # the side in a bodySite, in a lateralised body structure or in the code
        "sf": ((SF, "radicular-pain", ""), [RIGHT]),
        "snomed": ((SNOMED, "23056005", "Sciatica"), [(SNOMED, "62175007", "Structure of right lower limb")]),
        "icd10cm": ((ICD10, "M54.31", "Sciatica, right side"), []),
        "who": ((WHO, "M54.3", "Sciatica"), [RIGHT]),
    },
    "unsteady-gait": {
        "sf": ((SF, "unsteady-gait", ""), []),
        "icd10cm": ((ICD10, "R26.0", "Ataxic gait"), []),
        "who": ((WHO, "R26.0", "Ataxic gait"), []),
    },
    "leg-weakness": {
        "sf": ((SF, "leg-weakness", ""), []),
        "icd10cm": ((ICD10, "G82.20", "Paraplegia, unspecified"), []),
        "who": ((WHO, "G82.2", "Paraplegia, unspecified"), []),
    },
    "limb-control-difficulty": {
        "sf": ((SF, "limb-control-difficulty", ""), []),
        "icd10cm": ((ICD10, "R27.0", "Ataxia, unspecified"), []),
        "who": ((WHO, "R27.0", "Ataxia, unspecified"), []),
    },
    "sphincter-dysfunction": {  # a coded bladder finding presented within 14 days reads as the symptom
        "sf": ((SF, "sphincter-dysfunction", ""), []),
        "snomed": ((SNOMED, "165232002", "Urinary incontinence"), []),
        "icd10cm": ((ICD10, "R32", "Unspecified urinary incontinence"), []),
        "who": ((WHO, "R32", "Unspecified urinary incontinence"), []),
    },
    "unable-to-walk": {
        "sf": ((SF, "unable-to-walk", ""), []),
        "snomed": ((SNOMED, "282145008", "Unable to walk"), []),
    },
}
# Symptom concepts no standard code expresses (only the spine-findings code): their ValueSets hold no
# ICD-10 or SNOMED CT code, which the test below keeps true, so this list cannot go stale.
# Where a concept's standard codes live when not in its symptom-<concept> ValueSet (the coded
# bladder/bowel findings qualify by time, so they have ValueSets of their own).
CODED_ELSEWHERE = {"sphincter-dysfunction": ("sphincter-code-recent", "sphincter-code-companion")}
NO_STANDARD_CODE = {
    "saddle-anaesthesia",
    "interscapular-pain",
    "nocturnal-back-pain",
    "radiating-pain",
    "radicular-deficit",
    "lhermitte-sign",
    "sensory-level",
}

# Primary tumour -> variant -> coding. The survival models read breast, prostate, lung and "other" and
# exclude myeloma, lymphoma and unknown; kidney, thyroid and germ cell decide other cards.
PRIMARIES: dict[str, dict[str, tuple[str, str, str]]] = {
    "breast": {
        "snomed": (SNOMED, "353431000119107", "Primary malignant neoplasm of female left breast"),
        "icd10cm": (ICD10, "C50.912", "Malignant neoplasm of unspecified site of left female breast"),
        "who": (WHO, "C50.9", "Malignant neoplasm of breast, unspecified"),
    },
    "prostate": {
        "snomed": (SNOMED, "399490008", "Adenocarcinoma of prostate"),
        "icd10cm": (ICD10, "C61", "Malignant neoplasm of prostate"),
        "who": (WHO, "C61", "Malignant neoplasm of prostate"),
    },
    "lung": {
        "snomed": (SNOMED, "1078901000119100", "Primary adenocarcinoma of upper lobe of left lung"),
        "icd10cm": (ICD10, "C34.12", "Malignant neoplasm of upper lobe, left bronchus or lung"),
        "who": (WHO, "C34.1", "Malignant neoplasm of upper lobe, bronchus or lung"),
    },
    "kidney": {
        "snomed": (SNOMED, "354361000119107", "Primary malignant neoplasm of right kidney"),
        "icd10cm": (ICD10, "C64.1", "Malignant neoplasm of right kidney, except renal pelvis"),
        "who": (WHO, "C64", "Malignant neoplasm of kidney, except renal pelvis"),
    },
    "thyroid": {
        "snomed": (SNOMED, "255029007", "Papillary thyroid carcinoma"),
        "icd10cm": (ICD10, "C73", "Malignant neoplasm of thyroid gland"),
        "who": (WHO, "C73", "Malignant neoplasm of thyroid gland"),
    },
    "myeloma": {
        "snomed": (SNOMED, "109989006", "Multiple myeloma"),
        "icd10cm": (ICD10, "C90.00", "Multiple myeloma not having achieved remission"),
        "who": (WHO, "C90.0", "Multiple myeloma"),
    },
    "lymphoma": {
        "snomed": (SNOMED, "716788007", "Epstein-Barr virus positive diffuse large B-cell lymphoma of elderly"),
        "icd10cm": (ICD10, "C83.38", "Diffuse large B-cell lymphoma, lymph nodes of multiple sites"),
        "who": (WHO, "C83.3", "Diffuse large B-cell lymphoma"),
    },
    "germ-cell": {
        "snomed": (SNOMED, "313428008", "Seminoma of undescended testis"),
        "icd10cm": (ICD10, "C62.02", "Malignant neoplasm of undescended left testis"),
        "who": (WHO, "C62.0", "Malignant neoplasm of undescended testis"),
    },
    "unknown": {  # excluded from both models; no SNOMED CT code for "primary not known" is shipped
        "icd10cm": (ICD10, "C80.1", "Malignant (primary) neoplasm, unspecified"),
        "who": (WHO, "C80.9", "Malignant neoplasm, primary site unspecified"),
    },
    "other": {
        "snomed": (SNOMED, "109838007", "Overlapping malignant neoplasm of colon"),
        "icd10cm": (ICD10, "C18.8", "Malignant neoplasm of overlapping sites of colon"),
        "who": (WHO, "C18.8", "Overlapping lesion of colon"),
    },
}
# The story's spinal and liver metastases in each coding (the survival models read visceral status).
METASTASES = {
    "snomed": [
        (SNOMED, "94389000", "Secondary malignant neoplasm of lumbar vertebral column"),
        (SNOMED, "94381002", ""),
    ],
    "icd10cm": [(ICD10, "C79.51", ""), (ICD10, "C78.7", "")],
    "who": [(WHO, "C79.5", ""), (WHO, "C78.7", "")],
}


def _condition(rid: str, code: tuple[str, str, str], onset: str, sites: list[tuple[str, str, str]] = ()) -> dict:  # type: ignore[assignment]
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": rid,
        "subject": {"reference": "Patient/p1"},
        "clinicalStatus": {"coding": [coding("active", "http://terminology.hl7.org/CodeSystem/condition-clinical")]},
        "verificationStatus": {
            "coding": [coding("confirmed", "http://terminology.hl7.org/CodeSystem/condition-ver-status")]
        },
        "code": {"coding": [coding(code[1], code[0], code[2] or None)]},
        "onsetDateTime": onset,
        "recordedDate": onset,
    }
    if sites:
        resource["bodySite"] = [{"coding": [coding(c, s, d)]} for s, c, d in sites]
    return resource


def _signature(client, conditions: list[dict[str, Any]], kps: int | None = None) -> list[tuple]:  # type: ignore[no-untyped-def]
    prefetch: dict[str, Any] = {key: None for key in prefetch_templates()}
    prefetch["patient"] = make_patient()
    prefetch["conditions"] = searchset(conditions)
    prefetch["performanceStatus"] = searchset([make_kps(kps, "2026-02-27T10:00:00Z")] if kps else [])
    response = client.post(URL, json=hook_request(prefetch=prefetch))
    assert response.status_code == 200, response.text
    body = response.json()
    unknown = [
        i
        for i in body.get("extension", {}).get("spinecds", {}).get("dataQuality", [])
        if "not recognised" in i["issue"]
    ]
    assert unknown == []
    cards = []
    for card in body["cards"]:
        spinecds = card["extension"]["spinecds"]
        cards.append(
            (
                spinecds["ruleId"],
                card["indicator"],
                spinecds.get("outcome"),
                spinecds.get("deadlineHours"),
                card["summary"],
                json.dumps(spinecds.get("survival"), sort_keys=True),
                json.dumps(spinecds.get("merged"), sort_keys=True),
            )
        )
    return sorted(cards)


@pytest.mark.parametrize("concept", sorted(SYMPTOMS))
def test_a_symptom_story_gives_the_same_cards_in_every_coding(client, concept):
    signatures = {}
    for variant, (code, sites) in SYMPTOMS[concept].items():
        primary, metastasis = CANCER[variant]
        conditions = [
            _condition("c-primary", primary, "2024-05-01"),
            _condition("c-metastasis", metastasis, "2026-01-10"),
            _condition("c-symptom", code, "2026-02-28T08:00:00Z", sites),
        ]
        signatures[variant] = _signature(client, conditions)
    reference = signatures["sf"]
    assert any(card[0] == "mri-urgency" for card in reference), reference
    for variant, signature in signatures.items():
        assert signature == reference, (concept, variant)


@pytest.mark.parametrize("primary", sorted(PRIMARIES))
def test_a_primary_tumour_story_gives_the_same_cards_in_every_coding(client, primary):
    signatures = {}
    for variant, code in PRIMARIES[primary].items():
        spine, liver = METASTASES[variant]
        conditions = [
            _condition("c-primary", code, "2024-05-01"),
            _condition("c-spine", spine, "2026-01-10"),
            _condition("c-liver", liver, "2026-01-10"),
        ]
        signatures[variant] = _signature(client, conditions, kps=80)
    reference = signatures["icd10cm"]
    assert reference, primary
    for variant, signature in signatures.items():
        assert signature == reference, (primary, variant)


def test_the_primary_stories_reach_the_survival_models_and_the_haematological_rules(client):
    """The equivalence above is not vacuous: the primaries give the cards that tell them apart."""
    seen, signatures = {}, {}
    for primary, variants in PRIMARIES.items():
        spine, liver = METASTASES["icd10cm"]
        conditions = [
            _condition("c-primary", variants["icd10cm"], "2024-05-01"),
            _condition("c-spine", spine, "2026-01-10"),
            _condition("c-liver", liver, "2026-01-10"),
        ]
        signatures[primary] = _signature(client, conditions, kps=80)
        seen[primary] = {card[0] for card in signatures[primary]}
    assert "systemic-first" in seen["myeloma"] and "systemic-first" in seen["lymphoma"]
    assert "systemic-first" not in seen["breast"]
    # the survival models tell the primaries apart (with liver metastases and KPS 80, breast and prostate
    # share Van der Linden and Bollen group B)
    assert len({json.dumps(signatures[p]) for p in ("breast", "lung", "other")}) == 3
    assert signatures["prostate"] != signatures["lung"]


def test_symptom_concepts_without_a_standard_code_really_have_none():
    """Every symptom concept is in SYMPTOMS or in NO_STANDARD_CODE, and the latter's ValueSets list
    only spine-findings codes: a site or maintainer adding an ICD-10 or SNOMED CT code must add the
    concept's row above, so the equivalence is tested for it."""
    assert set(SYMPTOM_CODES) == {c.split(",")[0] for c in SYMPTOMS} | NO_STANDARD_CODE
    for concept in NO_STANDARD_CODE:
        data = json.loads((DEFAULT_DIRECTORY / "valuesets" / f"symptom-{concept}.json").read_text())
        assert {c["system"] for c in data["expansion"]["contains"]} == {SF}, concept
    for concept, variants in SYMPTOMS.items():
        name = concept.split(",")[0]
        systems = set()
        for valueset in (f"symptom-{name}", *CODED_ELSEWHERE.get(name, ())):
            data = json.loads((DEFAULT_DIRECTORY / "valuesets" / f"{valueset}.json").read_text())
            systems |= {c["system"] for c in data["expansion"]["contains"]}
        assert {SYSTEMS[v] for v in variants} == systems, concept


def test_loinc_scores_need_no_translation():
    """KPS, ECOG and pain NRS are LOINC everywhere (mCODE and US Core use the same codes)."""
    for concept, code in (("kps", "89243-0"), ("ecog", "89247-1"), ("pain-nrs", "72514-3")):
        data = json.loads((DEFAULT_DIRECTORY / "valuesets" / f"{concept}.json").read_text())
        assert (LOINC, code) in {(c["system"], c["code"]) for c in data["expansion"]["contains"]}
