"""The StructureDefinitions and the coverage of the ValueSets (every code the spec and the rules use)."""

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from fhir.resources.R4B.structuredefinition import StructureDefinition

from engine.facts import COURSES
from engine.fixtures.resources import ICD10, LOINC, SF, SNOMED
from fhir_profiles.profile_checks import ProfileError, load_profiles, structure_definition_files
from fhir_profiles.terminology import DEFAULT_DIRECTORY, TerminologyError, load_terminology

ROOT = Path(__file__).resolve().parent.parent
SD_FILES = structure_definition_files()
SD_URL = "http://spinecds.org/fhir/StructureDefinition/"
VS_URL = "http://spinecds.org/fhir/ValueSet/"
SPEC_CANDIDATES = [ROOT / "docs" / "clinical-spec.md", Path("/work/shared/clinical-spec.md")]
SYMPTOMS = [
    "local-back-pain",
    "interscapular-pain",
    "nocturnal-back-pain",
    "radiating-pain",
    "radicular-pain",
    "radicular-deficit",
    "lhermitte-sign",
    "leg-weakness",
    "limb-control-difficulty",
    "unsteady-gait",
    "sensory-level",
    "unable-to-walk",
    # revision 2: bladder/bowel dysfunction and saddle anaesthesia (signs of cord/cauda compression)
    "sphincter-dysfunction",
    "saddle-anaesthesia",
]


@pytest.fixture(scope="module")
def term():
    return load_terminology()


def sd(name):
    return json.loads((DEFAULT_DIRECTORY / "structuredefinitions" / f"{name}.json").read_text())


def elements(name):
    return {e["id"]: e for e in sd(name)["differential"]["element"]}


# ------------------------------------------------------------------ StructureDefinitions


def test_the_expected_profiles_exist():
    assert {p.stem for p in SD_FILES} == {
        "spinecds-sins-observation",
        "spinecds-kps-observation",
        "spinecds-ecog-observation",
        "spinecds-pain-nrs-observation",
        "spinecds-symptom-condition",
        "spinecds-mescc-condition",
        "symptom-course",
    }


@pytest.mark.parametrize("path", SD_FILES, ids=lambda p: p.stem)
def test_every_structure_definition_is_an_r4b_constraint_profile(path):
    definition = StructureDefinition.model_validate(json.loads(path.read_text()))
    assert definition.id == path.stem and definition.url == SD_URL + path.stem
    assert definition.fhirVersion == "4.0.1" and definition.derivation == "constraint"
    assert definition.status in ("draft", "active")
    assert definition.baseDefinition == f"http://hl7.org/fhir/StructureDefinition/{definition.type}"
    assert all(e.path == re.sub(r":[^.]+", "", e.id) for e in definition.differential.element)


@pytest.mark.parametrize("path", SD_FILES, ids=lambda p: p.stem)
def test_every_binding_names_an_existing_valueset(path, term):
    for element in json.loads(path.read_text())["differential"]["element"]:
        if "binding" in element:
            # extensible: codes we read but never reject (symptom laterality and course, see profile_checks)
            assert element["binding"]["strength"] in ("required", "extensible")
            assert element["binding"]["valueSet"][len(VS_URL) :] in term.concept_names, element["id"]


@pytest.mark.parametrize(
    "name, code, low, high",
    [
        ("spinecds-kps-observation", "89243-0", 0, 100),
        ("spinecds-ecog-observation", "89247-1", 0, 5),
        ("spinecds-pain-nrs-observation", "72514-3", 0, 10),
    ],
)
def test_score_profiles_bind_the_loinc_code_and_bound_the_integer(name, code, low, high, term):
    els = elements(name)
    bound = els["Observation.code"]["binding"]["valueSet"][len(VS_URL) :]
    assert (LOINC, code) in term.codes(bound)
    value = els["Observation.value[x]"]
    assert value["type"][0]["code"] == "integer"
    assert (value["minValueInteger"], value["maxValueInteger"]) == (low, high)


@pytest.mark.parametrize("name", ["spinecds-kps-observation", "spinecds-ecog-observation"])
def test_performance_status_profiles_state_their_mcode_alignment(name):
    assert "mCODE" in sd(name)["description"]


def test_sins_profile_fixes_the_code_and_slices_six_components_bound_to_their_answers():
    els = elements("spinecds-sins-observation")
    assert els["Observation.code"]["patternCodeableConcept"] == {"coding": [{"system": SF, "code": "sins"}]}
    assert (els["Observation.value[x]"]["minValueInteger"], els["Observation.value[x]"]["maxValueInteger"]) == (0, 18)
    assert els["Observation.component"]["slicing"]["rules"] == "closed"
    slices = {e["sliceName"] for e in els.values() if e.get("sliceName")}
    assert slices == {"location", "pain", "bone-lesion", "alignment", "collapse", "posterolateral"}
    for name in slices:
        code = els[f"Observation.component:{name}.code"]["patternCodeableConcept"]["coding"][0]["code"]
        value = els[f"Observation.component:{name}.value[x]"]
        assert code == f"sins-{name}"
        assert value["binding"] == {
            "strength": "required",
            "description": value["binding"]["description"],
            "valueSet": VS_URL + code,
        }
    assert "bodySite" in " ".join(els)


def test_symptom_course_extension_and_its_valueset_match_what_the_facts_read(term):
    definition = sd("symptom-course")
    assert definition["context"] == [{"type": "element", "expression": "Condition"}]
    value = {e["id"]: e for e in definition["differential"]["element"]}["Extension.value[x]"]
    assert value["type"] == [{"code": "code"}] and value["binding"]["valueSet"] == VS_URL + "symptom-course"
    assert sorted(code for _s, code in term.codes("symptom-course")) == sorted(COURSES)
    assert all(term.display(SF, code) for code in COURSES)


def test_symptom_condition_uses_the_symptom_laterality_and_course_artefacts():
    els = elements("spinecds-symptom-condition")
    assert els["Condition.code"]["binding"]["valueSet"] == VS_URL + "symptom"
    assert els["Condition.bodySite"]["binding"]["valueSet"] == VS_URL + "laterality"
    assert els["Condition.extension:course"]["type"][0]["profile"] == [SD_URL + "symptom-course"]
    assert "Condition.onset[x]" in els


def test_mescc_condition_requires_a_date_for_a_diagnosis():
    root = elements("spinecds-mescc-condition")["Condition"]
    assert [c["key"] for c in root["constraint"]] == ["spinecds-mescc-1"]


# ------------------------------------------------------------------ union ValueSets


def test_symptom_valueset_is_the_union_of_the_symptom_valuesets(term):
    parts = {pair for name in SYMPTOMS for pair in term.codes(f"symptom-{name}")}
    assert set(term.codes("symptom")) == parts
    assert term.matches("symptom", [{"system": SNOMED, "code": "279039007"}])


def test_laterality_valueset_is_the_union_of_left_right_bilateral(term):
    assert {code for _s, code in term.codes("laterality")} == {"7771000", "24028007", "51440002"}


def _copy_terminology(tmp_path):
    shutil.copytree(DEFAULT_DIRECTORY / "codesystems", tmp_path / "codesystems")
    shutil.copytree(DEFAULT_DIRECTORY / "valuesets", tmp_path / "valuesets")
    return tmp_path / "valuesets"


@pytest.mark.parametrize(
    "include, problem",
    [
        ({"valueSet": [VS_URL + "nope"]}, "includes unknown ValueSet 'nope'"),
        ({"valueSet": [VS_URL + "laterality"]}, "includes itself"),
        ({"valueSet": [VS_URL + "laterality-left", VS_URL + "laterality-right"]}, "one include per ValueSet"),
    ],
)
def test_broken_valueset_includes_are_reported_with_the_file(tmp_path, include, problem):
    folder = _copy_terminology(tmp_path)
    path = folder / "laterality.json"
    data = json.loads(path.read_text())
    data["compose"]["include"].append(include)
    path.write_text(json.dumps(data))
    with pytest.raises(TerminologyError, match=problem) as error:
        load_terminology(tmp_path)
    assert "laterality.json" in str(error.value)


def test_a_profile_promising_an_unchecked_constraint_does_not_load(tmp_path):
    _copy_terminology(tmp_path)
    shutil.copytree(DEFAULT_DIRECTORY / "structuredefinitions", tmp_path / "structuredefinitions")
    path = tmp_path / "structuredefinitions" / "spinecds-kps-observation.json"
    data = json.loads(path.read_text())
    data["differential"]["element"].append(
        {"id": "Observation.issued", "path": "Observation.issued", "minValueInstant": "2020-01-01T00:00:00Z"}
    )
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match=re.escape("Observation.issued: this element's constraints are not checked")):
        load_profiles(tmp_path)


def test_an_invariant_without_a_python_form_does_not_load(tmp_path):
    _copy_terminology(tmp_path)
    shutil.copytree(DEFAULT_DIRECTORY / "structuredefinitions", tmp_path / "structuredefinitions")
    path = tmp_path / "structuredefinitions" / "spinecds-mescc-condition.json"
    data = json.loads(path.read_text())
    data["differential"]["element"][0]["constraint"][0]["key"] = "spinecds-mescc-9"
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="spinecds-mescc-9"):
        load_profiles(tmp_path)


# ------------------------------------------------------------------ spec section 1 coverage


def spec_section_1() -> str:
    for path in SPEC_CANDIDATES:
        if path.exists():
            text = path.read_text(encoding="utf-8")
            return text.split("## 1.", 1)[1].split("\n## 2.", 1)[0]
    pytest.skip("clinical-spec.md not found (docs/ or /work/shared/)")


def _blocks(section: str) -> list[str]:
    """Table rows one by one, prose paragraphs joined (a code list may wrap)."""
    blocks: list[str] = []
    for paragraph in re.split(r"\n\s*\n", section):
        prose = []
        for line in paragraph.splitlines():
            if line.startswith("|"):
                blocks.append(line)
            elif not line.startswith("#"):
                prose.append(line)
        if prose:
            blocks.append(" ".join(prose))
    return blocks


def _icd_samples(token: str) -> list[str]:
    """Codes that an ICD-10-CM group from the spec must cover: both ends of a range, a group's stem
    and one child (C50.* -> C50, C50.9; C90.0* -> C90.0, C90.09)."""
    samples = []
    for end in token.split("-"):
        stem = end.rstrip("*").rstrip(".")
        if end.endswith("*"):
            samples += [stem, (stem + "9") if "." in stem else stem + ".9"]
        else:
            samples.append(stem)
    return samples


def spec_codes() -> dict[str, set[str]]:
    codes: dict[str, set[str]] = {SF: set(), LOINC: set(), SNOMED: set(), ICD10: set()}
    sf_column = False
    for block in _blocks(spec_section_1()):
        if block.startswith("|"):
            cells = [c.strip() for c in block.strip("|").split("|")]
            if cells[0] == "SF code":
                sf_column = True
                continue
            if set(cells[0]) <= set("-: "):
                continue
            if sf_column:
                codes[SF].update(re.findall(r"`([a-z][a-z0-9-]*)`", cells[0]))
        else:
            sf_column = False
        for run in re.findall(r"SF ((?:`[a-z][a-z0-9-]*`(?:, )?)+)", block):
            codes[SF].update(re.findall(r"`([a-z][a-z0-9-]*)`", run))
        codes[LOINC].update(re.findall(r"\bLOINC (\d{4,6}-\d)\b", block))
        if "SNOMED" in block:
            codes[SNOMED].update(re.findall(r"\b(\d{6,18})\b", block.split("SNOMED", 1)[1]))
        if "ICD-10-CM" in block:
            for token in re.findall(r"\b(C\d\d(?:\.\d*)?\*?(?:-C\d\d(?:\.\d*)?\*?)?|G\d\d\.\d+)", block):
                codes[ICD10].update(_icd_samples(token))
    return codes


def test_the_spec_parser_finds_the_section_1_codes():
    codes = spec_codes()
    assert (
        set(SYMPTOMS[:12])  # section 1 lists twelve; revision 2's sphincter and saddle codes are elsewhere
        | {
            "mescc",
            "sins",
            "sins-location",
            "sins-posterolateral",
            "mri-whole-spine",
            "spinal-surgery-combined",
            "spine-radiotherapy",
        }
        <= codes[SF]
    )
    assert "mri-spine" not in codes[SF]  # a ValueSet name, not an SF code
    assert codes[LOINC] == {"89243-0", "89247-1", "72514-3"}
    assert {"363346000", "94225005", "161891005", "279039007", "7771000", "51440002"} <= codes[SNOMED]
    assert {"C00", "C96", "C50", "C50.9", "C81", "C86", "C90.0", "C90.09", "C79.51", "G83.4"} <= codes[ICD10]


@pytest.mark.parametrize("system", [SF, LOINC, SNOMED, ICD10], ids=["SF", "LOINC", "SNOMED", "ICD-10-CM"])
def test_every_section_1_code_of_the_spec_is_in_a_valueset(system, term):
    missing = sorted(code for code in spec_codes()[system] if not term.concepts_of(system, code))
    assert missing == [], f"codes of clinical-spec section 1 in no ValueSet: {missing}"


# ------------------------------------------------------------------ codes in rule suggestions

RULE_SYSTEMS = {SF, LOINC, SNOMED, ICD10}


def suggestion_codings(rule: dict) -> list[tuple[str, str]]:
    """(system, code) of every coding in a rule's suggestion templates, in the four code systems."""
    found: list[tuple[str, str]] = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("system") in RULE_SYSTEMS and isinstance(node.get("code"), str) and "{" not in node["code"]:
                found.append((node["system"], node["code"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for outcome in rule.get("outcomes") or ():
        walk((outcome.get("card") or {}).get("suggestions"))
    return found


RULE_FILES = sorted((ROOT / "rules").glob("*/rule.yaml")) + sorted((ROOT / "tests/fixtures/rules").glob("*/rule.yaml"))
RULE_CODES = sorted(
    {(path.parent.name, *pair) for path in RULE_FILES for pair in suggestion_codings(yaml.safe_load(path.read_text()))}
)


def test_suggestion_codings_are_collected_from_every_action():
    rule = {
        "outcomes": [
            {
                "card": {
                    "suggestions": [
                        {
                            "actions": [
                                {"resource": {"code": {"coding": [{"system": SF, "code": "mri-whole-spine"}]}}},
                                {
                                    "patch": {
                                        "reasonCode": [
                                            {
                                                "coding": [
                                                    {"system": ICD10, "code": "C79.51"},
                                                    {"system": "urn:x", "code": "y"},
                                                ]
                                            }
                                        ]
                                    }
                                },
                            ]
                        }
                    ]
                }
            }
        ]
    }
    assert suggestion_codings(rule) == [(SF, "mri-whole-spine"), (ICD10, "C79.51")]


@pytest.mark.parametrize("rule_id, system, code", RULE_CODES)
def test_every_code_in_a_rule_suggestion_is_in_a_valueset(rule_id, system, code, term):
    assert term.concepts_of(system, code), f"{rule_id}: {system}|{code} is in no ValueSet"
