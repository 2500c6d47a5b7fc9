"""Profile checks: each constraint with a conforming and a breaking example, and their use in parse.py."""

import json
import shutil
from datetime import UTC, datetime

import pytest
from fhir.resources.R4B.observation import Observation

from engine.fixtures.resources import (
    COURSE_URL,
    ICD10,
    SF,
    SINS_ANSWERS_0,
    SINS_ANSWERS_18,
    SNOMED,
    make_condition,
    make_ecog,
    make_kps,
    make_nrs,
    make_observation,
    make_sins,
)
from engine.parse import parse_resources
from fhir_profiles.profile_checks import check_resource, load_profiles
from fhir_profiles.terminology import DEFAULT_DIRECTORY, load_terminology

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
SD = "http://spinecds.org/fhir/StructureDefinition/"


def with_(resource, **fields):
    return {**resource, **fields}


def quantity(resource, value):
    out = dict(resource)
    out.pop("valueInteger", None)
    out["valueQuantity"] = {"value": value}
    return out


def sins_with_component(code, answer):
    res = make_sins("T12", SINS_ANSWERS_0)
    res["component"][0] = {
        "code": {"coding": [{"system": SF, "code": code}]},
        "valueCodeableConcept": {"coding": [{"system": SF, "code": answer}]},
    }
    return res


def radicular(**kw):
    return make_condition("radicular-deficit", laterality="left", course="progressive", onset=NOW, **kw)


# (name, conforming resource, breaking resource, expected issue of the breaking one)
CASES = [
    (
        "sins answer",
        make_sins("T12", SINS_ANSWERS_18),
        make_sins("T12", dict(SINS_ANSWERS_18, pain="lesion-lytic")),
        "spinecds-sins-observation: SINS pain answer is not in ValueSet sins-pain",
    ),
    (
        "sins unknown answer code",
        make_sins("T12", SINS_ANSWERS_0),
        make_sins("T12", dict(SINS_ANSWERS_0, pain="ouch")),
        "spinecds-sins-observation: SINS pain answer is not in ValueSet sins-pain",
    ),
    (
        "sins unknown component",
        sins_with_component("sins-location", "loc-rigid"),
        sins_with_component("sins-size", "loc-rigid"),
        "spinecds-sins-observation: SINS component code is not one of the 6 SINS components",
    ),
    (
        "sins component twice",
        make_sins("T12", SINS_ANSWERS_0),
        with_(
            make_sins("T12", SINS_ANSWERS_0),
            component=make_sins("T12", SINS_ANSWERS_0)["component"]
            + make_sins("T12", {"location": "loc-mobile"})["component"],
        ),
        "spinecds-sins-observation: SINS has more than 1 location component",
    ),
    (
        "sins answer type",
        make_sins("T12", SINS_ANSWERS_0),
        with_(
            make_sins("T12", {}),
            component=[{"code": {"coding": [{"system": SF, "code": "sins-pain"}]}, "valueInteger": 3}],
        ),
        "spinecds-sins-observation: SINS pain answer must be valueCodeableConcept",
    ),
    (
        "sins total",
        make_sins("T12", SINS_ANSWERS_18, total=18),
        make_sins("T12", SINS_ANSWERS_18, total=19),
        "spinecds-sins-observation: SINS value out of range 0-18",
    ),
    (
        "sins member observation",
        make_observation("sins-pain", SF, value="pain-free"),
        make_observation("sins-pain", SF, value="lesion-lytic"),
        "spinecds-sins-observation: SINS pain answer is not in ValueSet sins-pain",
    ),
    ("kps range", make_kps(100, NOW), make_kps(105, NOW), "spinecds-kps-observation: KPS value out of range 0-100"),
    ("kps negative", make_kps(0, NOW), make_kps(-10, NOW), "spinecds-kps-observation: KPS value out of range 0-100"),
    (
        "kps non-integer",
        quantity(make_kps(80, NOW), 80.0),
        quantity(make_kps(80, NOW), 72.5),
        "spinecds-kps-observation: violates spinecds-score-1: a valueQuantity stands for the integer score, so its "
        "value is a whole number",
    ),
    (
        "kps value type",
        make_kps(80, NOW),
        with_(make_kps(None, NOW), valueString="eighty"),
        "spinecds-kps-observation: KPS value must be valueInteger or valueQuantity",
    ),
    ("ecog range", make_ecog(5, NOW), make_ecog(7, NOW), "spinecds-ecog-observation: ECOG value out of range 0-5"),
    (
        "pain nrs range",
        make_nrs(10, NOW),
        make_nrs(11, NOW),
        "spinecds-pain-nrs-observation: pain NRS value out of range 0-10",
    ),
    (
        "course type",
        radicular(),
        with_(radicular(), extension=[{"url": COURSE_URL, "valueString": "stable"}]),
        "spinecds-symptom-condition: symptom-course extension value must be valueCode",
    ),
    (
        "course twice",
        radicular(),
        with_(radicular(), extension=[{"url": COURSE_URL, "valueCode": "stable"}] * 2),
        "spinecds-symptom-condition: more than 1 symptom-course extension",
    ),
    (
        "claimed symptom code",
        with_(radicular(), meta={"profile": [SD + "spinecds-symptom-condition"]}),
        with_(make_condition("C50.9", ICD10), meta={"profile": [SD + "spinecds-symptom-condition|1.0.0"]}),
        "spinecds-symptom-condition: symptom code is not in ValueSet symptom",
    ),
    (
        "mescc date",
        make_condition("mescc", recorded=NOW),
        make_condition("mescc"),
        "spinecds-mescc-condition: violates spinecds-mescc-1: a diagnosed MESCC (verificationStatus confirmed or "
        "absent) has a date, onsetDateTime or recordedDate, that starts the treatment clock",
    ),
    (
        "mescc date, no verification",
        make_condition("G95.20", ICD10, verification=None, onset=NOW),
        make_condition("G95.20", ICD10, verification=None),
        "spinecds-mescc-condition: violates spinecds-mescc-1: a diagnosed MESCC (verificationStatus confirmed or "
        "absent) has a date, onsetDateTime or recordedDate, that starts the treatment clock",
    ),
]


@pytest.fixture(scope="module")
def profiles():
    return load_profiles()


@pytest.mark.parametrize("name, good, bad, expected", CASES, ids=[c[0] for c in CASES])
def test_each_profile_check_passes_the_conforming_and_fails_the_breaking_example(profiles, name, good, bad, expected):
    assert profiles.check(good) == []
    issues = profiles.check(bad)
    assert [str(issue) for issue in issues] == [expected]
    # only the MESCC date is a warning: the MESCC still decides (see the StructureDefinition's comment)
    assert issues[0].severity == ("warning" if name.startswith("mescc date") else "error")


def test_issues_never_contain_the_offending_value(profiles):
    issue = str(profiles.check(make_kps(105, NOW))[0])
    assert "105" not in issue
    assert "worse" not in str(profiles.check(with_(radicular(), extension=[{"url": COURSE_URL, "valueCode": "worse"}])))


def test_a_suspected_mescc_needs_no_date(profiles):
    assert profiles.check(make_condition("mescc", verification="provisional")) == []


def test_resources_outside_every_profile_are_not_checked(profiles):
    assert profiles.check(make_condition("C50.9", ICD10)) == []
    assert profiles.check(make_observation("8867-4", value=500)) == []


def test_a_local_code_added_to_the_kps_valueset_is_checked_by_the_kps_profile(tmp_path):
    for folder in ("codesystems", "valuesets", "structuredefinitions"):
        shutil.copytree(DEFAULT_DIRECTORY / folder, tmp_path / folder)
    path = tmp_path / "valuesets" / "kps.json"
    data = json.loads(path.read_text())
    data["compose"]["include"].append({"system": "urn:local", "concept": [{"code": "KARNOFSKY"}]})
    path.write_text(json.dumps(data))
    profiles = load_profiles(tmp_path)
    res = make_observation("KARNOFSKY", "urn:local", value=130)
    assert [str(i) for i in profiles.check(res)] == ["spinecds-kps-observation: KPS value out of range 0-100"]


def test_claiming_a_profile_with_another_code_is_an_issue(profiles):
    res = with_(make_nrs(5, NOW), meta={"profile": [SD + "spinecds-kps-observation"]})
    assert [str(i) for i in profiles.check(res)] == ["spinecds-kps-observation: KPS code is not in ValueSet kps"]


def test_r4b_models_are_checked_too():
    model = Observation.model_validate(make_kps(105, NOW))
    assert [str(i) for i in check_resource(model)] == ["spinecds-kps-observation: KPS value out of range 0-100"]


def test_the_bounds_come_from_the_structure_definition(profiles):
    kps = profiles.get("spinecds-kps-observation")
    assert (kps.value.low, kps.value.high) == (0, 100)
    assert profiles.get("spinecds-sins-observation").closed_components


# ------------------------------------------------------------------ parse.py integration


@pytest.fixture(scope="module")
def term():
    return load_terminology()


def test_a_resource_breaking_a_profile_is_a_data_quality_item_and_not_used(term):
    parsed = parse_resources([make_kps(105, NOW, id="x"), make_kps(70, NOW, id="ok")], term, "p1")
    assert [e.ref for e in parsed.observations] == ["Observation/ok"]
    assert parsed.data_quality == [
        {"resource": "Observation/x", "issue": "spinecds-kps-observation: KPS value out of range 0-100"}
    ]


def test_unrecognised_course_or_laterality_codes_keep_the_symptom_with_the_cautious_reading(term):
    """Dropping a radicular deficit could lower the MRI tier: an unknown course reads as progressive,
    an unknown bodySite code as bilateral, exactly as if the datum were absent."""
    from datetime import datetime

    from engine.facts import derive_facts

    odd_course = with_(radicular(id="c1"), extension=[{"url": COURSE_URL, "valueCode": "worse"}])
    odd_side = with_(
        make_condition("radicular-pain", id="c2"), bodySite=[{"coding": [{"system": SNOMED, "code": "7771001"}]}]
    )
    parsed = parse_resources([odd_course, odd_side], term, "p1")
    assert sorted(e.ref for e in parsed.conditions) == ["Condition/c1", "Condition/c2"]
    facts = derive_facts(
        [odd_course, odd_side], datetime(2026, 3, 10, tzinfo=UTC), hook="patient-view", patient_id="p1"
    )
    by_ref = {s["symptom.resource"]: s for s in facts.symptoms}
    assert by_ref["Condition/c1"]["symptom.course"] == "progressive"
    assert not by_ref["Condition/c1"]["symptom.course_known"]
    assert by_ref["Condition/c2"]["symptom.laterality"] == "bilateral"
    assert any("read as bilateral" in item for item in by_ref["Condition/c2"]["missing"])


def test_several_issues_are_counted_in_one_item(term):
    bad = make_sins("T12", dict(SINS_ANSWERS_18, pain="lesion-lytic", collapse="pain-free"), total=30, id="s1")
    parsed = parse_resources([bad], term, "p1")
    assert parsed.data_quality == [
        {"resource": "Observation/s1", "issue": "spinecds-sins-observation: SINS value out of range 0-18 (+2 more)"}
    ]


def test_a_diagnosed_mescc_without_a_date_is_still_used_and_not_listed_as_unused(term):
    parsed = parse_resources([make_condition("mescc", id="m1")], term, "p1")
    assert [e.ref for e in parsed.conditions] == ["Condition/m1"] and parsed.data_quality == []


JUNK = [
    None,
    3,
    "x",
    [],
    {},
    [None],
    {"coding": "x"},
    {"coding": [None, {"system": [1], "code": {}}]},
    True,
    {"value": [1]},
    [{"url": COURSE_URL, "valueCode": ["stable"]}],
]


@pytest.mark.parametrize(
    "base",
    [make_kps(70), make_sins("T12", SINS_ANSWERS_18, total=3), radicular(), make_condition("mescc")],
    ids=["kps", "sins", "symptom", "mescc"],
)
def test_junk_anywhere_never_raises(profiles, base):
    """The checker also serves `spinecds fhir check` on unvalidated JSON: junk is an issue, never a crash."""
    for key in list(base) + ["meta", "extension", "component", "bodySite", "valueQuantity"]:
        for junk in JUNK:
            assert isinstance(profiles.check({**base, key: junk}), list)
    for junk in JUNK:
        assert profiles.check(junk) == []
