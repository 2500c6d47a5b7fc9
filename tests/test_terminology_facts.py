"""Real-world codings in the facts: laterality and body sites in SNOMED CT and ICD-10-CM codes, the
mCODE secondary cancer condition with its site, and "not recognised" codes that sit near a concept."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.facts import derive_facts
from engine.fixtures.resources import ICD10, SNOMED, coding, make_condition, make_observation, make_patient

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
WHO = "http://hl7.org/fhir/sid/icd-10"
MCODE_LATERALITY = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-laterality-qualifier"


def facts(*resources: dict[str, Any]):  # type: ignore[no-untyped-def]
    return derive_facts([make_patient(), *resources], NOW, "patient-view", "p1")


def site(*codes: tuple[str, str], text: str | None = None) -> list[dict[str, Any]]:
    concept: dict[str, Any] = {"coding": [coding(code, SNOMED, display) for code, display in codes]}
    if text:
        concept["text"] = text
    return [concept]


def with_site(resource: dict[str, Any], body_site: list[dict[str, Any]]) -> dict[str, Any]:
    resource["bodySite"] = body_site
    return resource


def radicular(result):  # type: ignore[no-untyped-def]
    (found,) = [s for s in result.symptoms if s["symptom.code"] == "radicular-pain"]
    return found


# ------------------------------------------------------------------ laterality


@pytest.mark.parametrize(("code", "side"), [("M54.31", "right"), ("M54.42", "left"), ("M54.32", "left")])
def test_icd10cm_sciatica_carries_its_side(code, side):
    result = facts(make_condition("C61", ICD10), make_condition(code, ICD10, onset="2026-02-27"))
    found = radicular(result)
    assert found["symptom.laterality"] == "unilateral" and found["symptom.laterality_known"] is True
    assert found["missing"] == []


@pytest.mark.parametrize("code", ["M54.30", "M54.40", "M54.16", "M51.16", "M50.12", "M47.26"])
def test_radiculopathy_without_a_side_in_the_code_reads_as_bilateral_and_says_so(code):
    found = radicular(facts(make_condition("C61", ICD10), make_condition(code, ICD10, onset="2026-02-27")))
    assert found["symptom.laterality"] == "bilateral" and found["symptom.laterality_known"] is False
    assert any("laterality" in item for item in found["missing"])


def test_left_and_right_sciatica_codes_together_are_bilateral():
    result = facts(
        make_condition("C61", ICD10),
        make_condition("M54.31", ICD10, onset="2026-02-27"),
        make_condition("M54.32", ICD10, onset="2026-02-27"),
    )
    assert {s["symptom.laterality"] for s in result.symptoms if s["symptom.code"] == "radicular-pain"} == {"bilateral"}


@pytest.mark.parametrize(
    ("structure", "display", "laterality"),
    [
        ("32153003", "Structure of left lower limb", "unilateral"),
        ("62175007", "Structure of right lower limb", "unilateral"),
        ("6921000", "Structure of right upper limb", "unilateral"),
        ("80768000", "Structure of left upper limb", "unilateral"),
    ],
)
def test_lateralised_body_structures_give_the_side(structure, display, laterality):
    pain = with_site(make_condition("23056005", SNOMED, onset="2026-02-27"), site((structure, display)))
    found = radicular(facts(make_condition("C61", ICD10), pain))
    assert found["symptom.laterality"] == laterality and found["symptom.laterality_known"] is True


def test_left_and_right_lower_limb_structures_on_one_condition_are_bilateral():
    pain = with_site(
        make_condition("23056005", SNOMED, onset="2026-02-27"),
        site(("32153003", "Structure of left lower limb"), ("62175007", "Structure of right lower limb")),
    )
    assert radicular(facts(make_condition("C61", ICD10), pain))["symptom.laterality"] == "bilateral"


def test_an_mcode_laterality_qualifier_on_the_body_site_gives_the_side():
    body_site = site(("30021000", "Structure of lower leg"))
    body_site[0]["extension"] = [
        {"url": MCODE_LATERALITY, "valueCodeableConcept": {"coding": [coding("24028007", SNOMED, "Right")]}}
    ]
    pain = with_site(make_condition("M54.16", ICD10, onset="2026-02-27"), body_site)
    found = radicular(facts(make_condition("C61", ICD10), pain))
    assert found["symptom.laterality"] == "unilateral" and found["symptom.laterality_known"] is True


# ------------------------------------------------------------------ body site of a metastasis


def secondary(code: str, system: str = SNOMED, **kw: Any) -> dict[str, Any]:
    return make_condition(code, system, onset="2026-01-10", **kw)


@pytest.mark.parametrize(
    "body_site",
    [
        site(("421060004", "Vertebral column structure")),
        site(("53983007", "Structure of body of second lumbar vertebra")),
        site(("122496007", "Lumbar spine structure")),
        [{"text": "T11 vertebra"}],
    ],
)
def test_mcode_secondary_cancer_condition_with_a_spinal_body_site_is_a_spinal_metastasis(body_site):
    # mCODE SecondaryCancerCondition: 128462008 "Metastatic malignant neoplasm" with the site in bodySite
    result = facts(make_condition("C50.912", ICD10), with_site(secondary("128462008"), body_site))
    assert result.patient["spinal_metastasis"] is True
    assert result.patient["cancer"] is True


def test_secondary_cancer_without_a_site_or_elsewhere_is_not_spinal():
    assert facts(make_condition("C50.912", ICD10), secondary("128462008")).patient["spinal_metastasis"] is False
    liver = with_site(secondary("128462008"), site(("10200004", "Liver structure")))
    assert facts(make_condition("C50.912", ICD10), liver).patient["spinal_metastasis"] is False


@pytest.mark.parametrize(("code", "system"), [("C79.51", ICD10), ("94222008", SNOMED), ("C79.5", WHO)])
def test_bone_metastasis_without_a_site_reads_as_spinal(code, system):
    assert facts(make_condition("C61", ICD10), secondary(code, system)).patient["spinal_metastasis"] is True


@pytest.mark.parametrize(("code", "system"), [("C79.51", ICD10), ("94222008", SNOMED)])
def test_bone_metastasis_with_a_non_spinal_site_is_a_bone_metastasis_elsewhere(code, system):
    femur = with_site(secondary(code, system), site(("71341001", "Bone structure of femur")))
    result = facts(make_condition("C61", ICD10), femur)
    assert result.patient["spinal_metastasis"] is False
    assert result.patient["cancer"] is True


def test_bone_metastasis_with_only_a_laterality_on_its_site_still_reads_as_spinal():
    left = with_site(secondary("C79.51", ICD10), site(("7771000", "Left")))
    assert facts(make_condition("C61", ICD10), left).patient["spinal_metastasis"] is True


@pytest.mark.parametrize(
    ("code", "display"),
    [
        ("94389000", "Secondary malignant neoplasm of lumbar vertebral column"),
        ("94274006", "Secondary malignant neoplasm of thoracic vertebral column"),
        ("94602001", "Secondary malignant neoplasm of vertebral column"),
    ],
)
def test_vertebral_secondary_codes_are_spinal_by_their_code(code, display):
    result = facts(make_condition("C61", ICD10), secondary(code))
    assert result.patient["spinal_metastasis"] is True


def test_bone_marrow_and_limb_bone_secondaries_are_not_spinal():
    for code, system in (("C79.52", ICD10), ("94219006", SNOMED)):  # bone marrow; bone of lower limb
        assert facts(make_condition("C61", ICD10), secondary(code, system)).patient["spinal_metastasis"] is False


# ------------------------------------------------------------------ nothing relevant dropped silently


@pytest.mark.parametrize(
    ("code", "system", "display"),
    [
        ("M54.9", ICD10, "Dorsalgia, unspecified"),
        ("G95.89", ICD10, "Other specified diseases of spinal cord"),
        ("R29.898", ICD10, "Other symptoms and signs involving the musculoskeletal system"),
        ("R20.2", ICD10, "Paresthesia of skin"),
        ("M48.50XA", ICD10, "Collapsed vertebra, NEC, site unspecified, initial encounter"),
        ("M84.58XA", ICD10, "Pathological fracture in neoplastic disease, other specified site"),
        ("R29.8", WHO, "Other symptoms and signs involving the nervous system"),
        # a SNOMED CT code no expansion knows: its display names a neoplasm
        ("1234567890123", SNOMED, "Malignant glomus tumor of spinal canal"),
    ],
)
def test_a_code_near_a_concept_is_listed_as_not_recognised(code, system, display):
    condition = make_condition(code, system, id="c-near")
    condition["code"] = {"coding": [coding(code, system, display)]}
    result = facts(condition)
    issues = [item for item in result.data_quality if item["resource"] == "Condition/c-near"]
    assert issues == [{"resource": "Condition/c-near", "issue": f"not recognised: {system}|{code} {display}"}]


def test_far_away_codes_and_known_codes_are_not_listed():
    result = facts(
        make_condition("I10", ICD10),
        make_condition("38341003", SNOMED),  # hypertensive disorder
        make_condition("C44.91", ICD10),  # non-melanoma skin cancer: excluded on purpose, not unrecognised
        make_condition("M54.50", ICD10),
        make_condition("C79.51", ICD10),
        make_observation("8867-4", value=70.0),
    )
    assert [item for item in result.data_quality if item["issue"].startswith("not recognised")] == []


def test_an_unknown_snomed_observation_is_listed_by_its_display():
    obs = make_observation("9999999999", SNOMED, id="o-near", value=3)
    obs["code"]["coding"][0]["display"] = "Spinal pain score"
    issues = [item["issue"] for item in facts(obs).data_quality]
    assert issues == [f"not recognised: {SNOMED}|9999999999 Spinal pain score"]


def test_a_display_cannot_carry_markup_into_the_card():
    cond = make_condition("M54.89", ICD10, id="c-x")
    cond["code"]["coding"][0]["display"] = "Back [pain](http://evil.example) <b>x</b> **y** \u202e"
    (item,) = facts(cond).data_quality
    assert item["issue"] == f"not recognised: {ICD10}|M54.89 Back pain (http evil example) b x b y"


def test_another_patients_unknown_code_is_not_reported():
    cond = make_condition("M54.9", ICD10, patient="p2")
    assert facts(cond).data_quality == []


# ------------------------------------------------------------------ primary tumour from a post-coordinated code


@pytest.mark.parametrize(
    ("structure", "display", "primary"),
    [
        ("80248007", "Left breast structure", "breast"),  # the mCODE primary-cancer-condition-breast example
        ("41216001", "Prostatic structure", "prostate"),
        ("39607008", "Lung structure", "lung"),
        ("64033007", "Kidney structure", "kidney"),
        ("69748006", "Thyroid structure", "thyroid"),
    ],
)
def test_malignant_neoplastic_disease_with_an_organ_body_site_names_the_primary(structure, display, primary):
    condition = with_site(make_condition("363346000", SNOMED, onset="2019-04-01"), site((structure, display)))
    result = facts(condition)
    assert result.patient["primary"] == primary and result.patient["cancer"] is True


def test_malignant_neoplastic_disease_without_a_site_is_another_primary():
    assert facts(make_condition("363346000", SNOMED)).patient["primary"] == "other"


@pytest.mark.parametrize(
    ("structure", "display"),
    [
        ("10200004", "Liver structure"),
        ("12738006", "Brain structure"),
        ("39607008", "Lung structure"),
        ("23451007", "Adrenal structure"),
    ],
)
def test_mcode_secondary_cancer_condition_in_a_visceral_organ_is_a_visceral_metastasis(structure, display):
    metastasis = with_site(secondary("128462008"), site((structure, display)))
    assert facts(make_condition("C50.912", ICD10), metastasis).patient["visceral_metastases"] is True


def test_secondary_cancer_in_bone_or_without_a_site_says_nothing_about_visceral_metastases():
    for body_site in (site(("71341001", "Bone structure of femur")), None):
        metastasis = secondary("128462008")
        if body_site:
            metastasis = with_site(metastasis, body_site)
        assert "visceral_metastases" not in facts(make_condition("C50.912", ICD10), metastasis).patient


def test_a_primary_metastatic_to_bone_is_the_primary_and_a_spinal_metastasis_without_a_site():
    # US edition: "Primary malignant neoplasm of prostate metastatic to bone" (one code, two facts)
    result = facts(make_condition("712849003", SNOMED, onset="2025-01-01"))
    assert result.patient["primary"] == "prostate"
    assert result.patient["spinal_metastasis"] is True


def test_an_unknown_loinc_performance_score_is_listed_and_a_lab_is_not():
    kps_panel = make_observation("89262-0", id="o-kps-panel", value=70)
    kps_panel["code"]["coding"][0]["display"] = "Karnofsky performance status panel"
    lab = make_observation("6875-9", id="o-ca153", value=40.0)
    lab["code"]["coding"][0]["display"] = "Cancer Ag 15-3 [Units/volume] in Serum or Plasma"
    issues = [item["issue"] for item in facts(kps_panel, lab).data_quality]
    assert issues == ["not recognised: http://loinc.org|89262-0 Karnofsky performance status panel"]
