import json
import shutil
from pathlib import Path

import pytest
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.valueset import ValueSet

from engine.fixtures.resources import ICD10, LOINC, SF, SNOMED
from engine.parse import CONDITION_CONCEPTS, OBSERVATION_CONCEPTS, PROCEDURE_CONCEPTS
from engine.scores import load_scores
from fhir_profiles.terminology import DEFAULT_DIRECTORY, TerminologyError, load_terminology

VALUESETS = sorted((DEFAULT_DIRECTORY / "valuesets").glob("*.json"))
REQUIRED = [
    "malignancy",
    "primary-breast",
    "primary-prostate",
    "primary-lung",
    "primary-kidney",
    "primary-thyroid",
    "primary-germ-cell",
    "myeloma",
    "lymphoma",
    "spinal-metastasis",
    "visceral-metastasis",
    "mescc",
    "kps",
    "ecog",
    "pain-nrs",
    "sins",
    "sins-location",
    "sins-pain",
    "sins-bone-lesion",
    "sins-alignment",
    "sins-collapse",
    "sins-posterolateral",
    "visceral-metastases-staging",
    "mri-spine",
    "spine-surgery-referral",
    "spinal-surgery",
    "spinal-surgery-combined",
    "spine-radiotherapy",
    "laterality-left",
    "laterality-right",
    "laterality-bilateral",
]


@pytest.fixture(scope="module")
def term():
    return load_terminology()


@pytest.mark.parametrize("path", VALUESETS, ids=lambda p: p.stem)
def test_every_valueset_is_an_r4b_valueset(path):
    vs = ValueSet.model_validate(json.loads(path.read_text()))
    assert vs.id == path.stem
    assert vs.url == f"http://spinecds.org/fhir/ValueSet/{path.stem}"


@pytest.mark.parametrize("name", ["spine-findings", "rules"])
def test_codesystems_are_r4b_codesystems_with_display_and_definition(name):
    cs = CodeSystem.model_validate(json.loads((DEFAULT_DIRECTORY / "codesystems" / f"{name}.json").read_text()))
    assert cs.concept and all(c.display and c.definition for c in cs.concept)
    assert cs.count == len(cs.concept)


def test_rules_codesystem_lists_the_nine_rules():
    data = json.loads((DEFAULT_DIRECTORY / "codesystems" / "rules.json").read_text())
    assert {c["code"] for c in data["concept"]} == {
        "mri-urgency",
        "sins-referral",
        "survival-estimate",
        "surgery-eligibility",
        "mescc-treatment",
        "systemic-first",
        "mdt-consultation",
        "alarm-symptom-education",
        "expectations-dialogue",
    }


def test_required_concepts_and_every_concept_the_parser_uses_exist(term):
    used = CONDITION_CONCEPTS | OBSERVATION_CONCEPTS | PROCEDURE_CONCEPTS
    assert set(REQUIRED) | used <= term.concept_names


def test_every_sf_code_in_a_valueset_is_defined_in_the_codesystem(term):
    for concept in term.concept_names:
        for system, code in term.codes(concept):
            if system == SF:
                assert term.display(SF, code), f"{concept}: SF {code} has no CodeSystem entry"


@pytest.mark.parametrize(
    "code, concepts",
    [
        ("C50.912", {"malignancy", "primary-breast"}),
        ("C50", {"malignancy", "primary-breast"}),
        ("C5091", {"malignancy", "primary-breast"}),  # undotted form is normalised
        ("c34.11", {"malignancy", "primary-lung"}),
        ("C61", {"malignancy", "primary-prostate"}),
        ("C90.00", {"malignancy", "myeloma"}),
        ("C90.10", {"malignancy"}),  # plasma cell leukaemia: not C90.0*
        ("C81.00", {"malignancy", "lymphoma"}),
        ("C86.6", {"malignancy", "lymphoma"}),
        ("C88.0", {"malignancy"}),  # outside C81-C86: not lymphoma
        # a bone metastasis whose code does not name the bone: spinal unless its bodySite says otherwise
        ("C79.51", {"malignancy", "secondary-malignancy", "spinal-metastasis"}),
        ("C79.52", {"malignancy", "secondary-malignancy"}),  # bone marrow: not a spinal metastasis
        ("C79.31", {"malignancy", "secondary-malignancy", "visceral-metastasis"}),
        ("C78.7", {"malignancy", "secondary-malignancy", "visceral-metastasis"}),
        ("C96.9", {"malignancy"}),
        ("C97", set()),
        ("D05.1", set()),
        ("C500", {"malignancy", "primary-breast"}),
        ("C62.10", {"malignancy", "primary-germ-cell"}),
        ("G95.20", {"mescc", "cord-compression-generic"}),  # generic: MESCC only with cancer
    ],
)
def test_icd10_prefix_matching(term, code, concepts):
    assert term.concepts([{"system": ICD10, "code": code}]) == concepts


def test_same_code_in_another_system_does_not_match(term):
    assert term.concepts([{"system": SNOMED, "code": "C50.9"}]) == frozenset()
    assert not term.matches("kps", [{"system": SNOMED, "code": "89243-0"}])


def test_snomed_back_pain_codes_are_local_back_pain(term):
    for code in ("161891005", "279039007"):
        assert term.matches("symptom-local-back-pain", [{"system": SNOMED, "code": code}])


def test_matches_accepts_r4b_codings_and_unions_concepts(term):
    codings = [Coding(system=LOINC, code="89243-0"), Coding(system=SF, code="mescc")]
    assert term.concepts(codings) == {"kps", "mescc"}
    assert term.matches("kps", codings)


def test_codes_lists_explicit_codes_for_prefetch(term):
    assert (SF, "mri-whole-spine") in term.codes("mri-spine")
    assert (LOINC, "89243-0") in term.codes("kps")
    with pytest.raises(KeyError, match="unknown concept"):
        term.codes("no-such-concept")


def test_display_comes_from_the_codesystem(term):
    assert term.display(SF, "radicular-deficit") == "Radicular deficit"
    assert term.display(SF, "nope") is None


def test_sins_answer_valuesets_agree_with_the_score_table(term):
    for component in load_scores().sins.components:
        listed = {code for _, code in term.codes(component.code)}
        assert listed == set(component.points), component.code


def _copy_profiles(tmp_path: Path) -> Path:
    target = tmp_path / "profiles"
    shutil.copytree(DEFAULT_DIRECTORY / "codesystems", target / "codesystems")
    shutil.copytree(DEFAULT_DIRECTORY / "valuesets", target / "valuesets")
    return target


def test_a_site_adds_a_local_code_by_editing_a_valueset(tmp_path):
    target = _copy_profiles(tmp_path)
    path = target / "valuesets" / "kps.json"
    data = json.loads(path.read_text())
    data["compose"]["include"].append({"system": "urn:local:codes", "concept": [{"code": "KARNOF"}]})
    path.write_text(json.dumps(data))
    term = load_terminology(target)
    assert term.matches("kps", [{"system": "urn:local:codes", "code": "KARNOF"}])


def test_broken_valueset_names_the_file(tmp_path):
    target = _copy_profiles(tmp_path)
    (target / "valuesets" / "ecog.json").write_text('{"resourceType": "ValueSet", "id": "ecog",')
    with pytest.raises(TerminologyError, match=r"ecog\.json:1: not valid JSON"):
        load_terminology(target)


def test_bad_regex_filter_names_the_file_and_include(tmp_path):
    target = _copy_profiles(tmp_path)
    path = target / "valuesets" / "primary-lung.json"
    data = json.loads(path.read_text())
    # a legacy regex filter (files written before expansions) is still compiled, and checked
    data["compose"]["include"][0] = {
        "system": ICD10,
        "filter": [{"property": "code", "op": "regex", "value": "C34("}],
    }
    path.write_text(json.dumps(data))
    with pytest.raises(TerminologyError, match=r"primary-lung\.json: compose\.include\[0\]\.filter\[0\]: bad regex"):
        load_terminology(target)


def test_id_must_match_file_name(tmp_path):
    target = _copy_profiles(tmp_path)
    path = target / "valuesets" / "ecog.json"
    data = json.loads(path.read_text())
    data["id"] = "ecg"
    path.write_text(json.dumps(data))
    with pytest.raises(TerminologyError, match=r"ecog\.json: id must equal the file name"):
        load_terminology(target)


def test_loading_is_cached(term):
    assert load_terminology() is term


def test_has_concept_answers_as_concepts_does():
    """Terminology.has_concept skips code systems a concept has no codes in: same answers as
    ``concept in concepts(codings)`` for every concept, on every coding of the synthetic patients."""
    from datetime import UTC, datetime

    from engine.parse import codings_of
    from fhir_profiles.terminology import load_terminology
    from sandbox.patients import build_resources, patient_ids

    term = load_terminology()
    concepts_json = []
    for patient_id in patient_ids():
        for resource in build_resources(patient_id, datetime(2026, 3, 10, tzinfo=UTC)):
            for name in ("code", "category", "bodySite", "valueCodeableConcept"):
                value = resource.get(name)
                concepts_json.extend(value if isinstance(value, list) else [value])
    junk = [{"system": ["x"], "code": "C50"}, {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": ""}, "C50", None]
    codings = [codings_of(c) for c in concepts_json] + [junk]
    assert any(term.concepts(c) for c in codings)
    for concept in sorted(term.concept_names):
        for group in codings:
            assert term.has_concept(concept, group) == (concept in term.concepts(group)), (concept, group)
