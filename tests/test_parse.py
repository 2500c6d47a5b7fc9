from datetime import UTC, datetime, timedelta

import pytest

import engine.parse as parse
from engine.fixtures.resources import (
    ICD10,
    SF,
    SINS_ANSWERS_18,
    bundle,
    make_condition,
    make_ecog,
    make_kps,
    make_nrs,
    make_observation,
    make_patient,
    make_service_request,
    make_sins,
    make_vital,
)
from engine.parse import parse_resources, to_instant
from fhir_profiles.terminology import load_terminology

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def term():
    return load_terminology()


def issues(parsed):
    return {item["resource"]: item["issue"] for item in parsed.data_quality}


def test_unrelated_observations_never_reach_validation(term, monkeypatch):
    calls = []
    real = parse._validate
    monkeypatch.setattr(parse, "_validate", lambda model, raw: calls.append(raw["resourceType"]) or real(model, raw))
    resources = [make_patient()] + [make_vital(NOW - timedelta(hours=i)) for i in range(300)]
    resources += [make_kps(80, NOW), make_condition("C50.9", ICD10)]
    parsed = parse_resources(resources, term, "p1")
    assert sorted(calls) == ["Condition", "Observation", "Patient"]
    assert parsed.validated == 3
    assert [e.ref.split("/")[0] for e in parsed.observations] == ["Observation"]


def test_bundles_are_flattened(term):
    parsed = parse_resources([bundle(make_patient(), make_kps(80, NOW, id="k1"))], term, "p1")
    assert parsed.patient.ref == "Patient/p1"
    assert [e.ref for e in parsed.observations] == ["Observation/k1"]
    assert parsed.observations[0].concepts == {"kps"}


def test_resource_failing_validation_is_a_data_quality_item_without_values(term):
    bad = make_kps(80, NOW, id="k1")
    bad["valueInteger"] = "eighty"
    parsed = parse_resources([bad], term, "p1")
    assert parsed.observations == []
    issue = issues(parsed)["Observation/k1"]
    assert issue.startswith("invalid FHIR R4: valueInteger")
    assert "eighty" not in issue


def test_unknown_element_fails_validation(term):
    bad = make_condition("mescc", id="c1")
    bad["onsetDateTime"] = "yesterday"
    parsed = parse_resources([bad], term, "p1")
    assert parsed.conditions == [] and "Condition/c1" in issues(parsed)


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("clinicalStatus", "bogus", "clinicalStatus is not a condition-clinical code"),
        ("verificationStatus", "maybe", "verificationStatus is not a condition-ver-status code"),
    ],
)
def test_condition_status_codes_are_checked(term, field, value, expected):
    res = make_condition("mescc", id="c1")
    res[field]["coding"][0]["code"] = value
    parsed = parse_resources([res], term, "p1")
    assert parsed.conditions == []
    assert issues(parsed) == {"Condition/c1": expected}


def test_observation_status_is_checked(term):
    parsed = parse_resources([make_kps(80, NOW, id="k1", status="done")], term, "p1")
    assert parsed.observations == [] and issues(parsed) == {
        "Observation/k1": "status is not an observation-status code"
    }


@pytest.mark.parametrize(
    "builder, value, ok",
    [
        (make_kps, 0, True),
        (make_kps, 100, True),
        (make_kps, 101, False),
        (make_kps, -10, False),
        (make_kps, 75, True),
        (make_ecog, 0, True),
        (make_ecog, 5, True),
        (make_ecog, 6, False),
        (make_nrs, 10, True),
        (make_nrs, 11, False),
        (make_nrs, -1, False),
    ],
)
def test_value_ranges(term, builder, value, ok):
    parsed = parse_resources([builder(value, NOW, id="o1")], term, "p1")
    assert bool(parsed.observations) is ok
    if not ok:
        assert "value out of range" in issues(parsed)["Observation/o1"]


def test_kps_as_quantity_is_accepted_but_fractional_ecog_is_not(term):
    parsed = parse_resources([make_kps(80.0, NOW, id="k1"), make_ecog(1, NOW, id="e1")], term, "p1")
    assert len(parsed.observations) == 2
    ecog = make_ecog(1, NOW, id="e2")
    ecog.pop("valueInteger")
    ecog["valueQuantity"] = {"value": 1.5}
    parsed = parse_resources([ecog], term, "p1")
    assert parsed.observations == [] and "whole number" in issues(parsed)["Observation/e2"]


def test_final_score_without_value_is_reported(term):
    parsed = parse_resources([make_kps(None, NOW, id="k1")], term, "p1")
    assert issues(parsed) == {"Observation/k1": "kps Observation has no numeric value"}


def test_sins_answer_outside_its_component_valueset_is_rejected(term):
    answers = dict(SINS_ANSWERS_18, pain="lesion-lytic")  # a bone-lesion answer on the pain component
    parsed = parse_resources([make_sins("T12", answers, id="s1")], term, "p1")
    assert parsed.observations == []
    assert issues(parsed) == {
        "Observation/s1": "spinecds-sins-observation: SINS pain answer is not in ValueSet sins-pain"
    }


def test_sins_stated_total_out_of_range(term):
    parsed = parse_resources([make_sins("T12", SINS_ANSWERS_18, total=19, id="s1")], term, "p1")
    assert parsed.observations == [] and "out of range 0-18" in issues(parsed)["Observation/s1"]


def test_resource_of_another_patient_is_skipped(term):
    parsed = parse_resources([make_condition("mescc", id="c1", patient="p2")], term, "p1")
    assert parsed.conditions == []
    assert issues(parsed) == {"Condition/c1": "subject is not the patient in context"}


def test_draft_orders_keep_every_service_request_and_check_priority(term):
    drafts = [
        make_service_request("mri-whole-spine", id="a"),
        make_service_request("x-ray", "urn:local", id="b"),
        make_service_request(id="c", priority="whenever"),
        {"resourceType": "MedicationRequest", "id": "m1"},
    ]
    parsed = parse_resources([], term, "p1", draft_orders=drafts)
    assert [e.ref for e in parsed.orders] == ["ServiceRequest/a", "ServiceRequest/b"]
    assert issues(parsed) == {"ServiceRequest/c": "priority is not a request-priority code"}


def test_service_requests_in_the_record_are_not_draft_orders(term):
    # Revision 2 reads spine-MRI ServiceRequests already in the record ("MRI already ordered"),
    # but never as draft orders of the hook.
    parsed = parse_resources([make_service_request(id="a")], term, "p1")
    assert parsed.orders == [] and [e.ref for e in parsed.record_orders] == ["ServiceRequest/a"]


def test_garbage_never_raises(term):
    junk = [
        None,
        3,
        "x",
        {},
        {"resourceType": "Observation"},
        {"resourceType": "Observation", "code": "kps"},
        {"resourceType": "Condition", "code": {"coding": "nope"}},
        {"resourceType": "Observation", "code": {"coding": [{"system": "http://loinc.org", "code": "89243-0"}]}},
        {"resourceType": "Bundle", "entry": [None, {"resource": 5}]},
    ]
    parsed = parse_resources(junk, term, "p1")
    assert parsed.observations == []
    assert list(issues(parsed)) == ["Observation/(no id)"]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-02", datetime(2026, 2, 1, tzinfo=UTC)),
        ("2026-02-03", datetime(2026, 2, 3, tzinfo=UTC)),
        ("2026-02-03T10:00:00+02:00", datetime(2026, 2, 3, 8, tzinfo=UTC)),
        ("2026-02-03T10:00:00Z", datetime(2026, 2, 3, 10, tzinfo=UTC)),
        ("not a date", None),
        (None, None),
    ],
)
def test_to_instant(value, expected):
    assert to_instant(value) == expected


def test_procedures_matching_a_concept_are_kept(term):
    proc = {
        "resourceType": "Procedure",
        "id": "pr1",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SF, "code": "spine-radiotherapy"}]},
    }
    other = dict(proc, id="pr2", code={"coding": [{"system": "urn:x", "code": "appendectomy"}]})
    parsed = parse_resources([proc, other], term, "p1")
    assert [e.ref for e in parsed.procedures] == ["Procedure/pr1"]


def test_unrelated_observation_with_sf_code_outside_used_concepts_is_dropped(term):
    parsed = parse_resources([make_observation("mri-whole-spine", SF, value=1, id="x")], term, "p1")
    assert parsed.observations == [] and parsed.validated == 0


def test_subject_references_that_name_no_patient_id_are_kept(term):
    urn = make_condition("mescc", id="c1")
    urn["subject"] = {"reference": "urn:uuid:1f0c3c9e-0000-4000-8000-000000000001"}
    absolute = make_condition("mescc", id="c2")
    absolute["subject"] = {"reference": "https://ehr.example/fhir/Patient/p1"}
    other = make_condition("mescc", id="c3")
    other["subject"] = {"reference": "https://ehr.example/fhir/Patient/p10"}
    parsed = parse_resources([urn, absolute, other], term, "p1")
    assert [e.ref for e in parsed.conditions] == ["Condition/c1", "Condition/c2"]
    assert issues(parsed) == {"Condition/c3": "subject is not the patient in context"}


def test_status_coding_from_another_system_is_ignored(term):
    res = make_condition("mescc", id="c1")
    res["clinicalStatus"]["coding"].insert(0, {"system": "urn:local:status", "code": "zzz"})
    parsed = parse_resources([res], term, "p1")
    assert [e.ref for e in parsed.conditions] == ["Condition/c1"] and parsed.data_quality == []


def test_remembered_profile_verdicts_are_those_of_the_check_itself():
    """profile_verdict remembers per canonical JSON: the same answer as checking, for valid and broken
    resources of every synthetic patient, and the second time from the cache."""
    import copy
    from datetime import UTC, datetime

    from fhir_profiles.profile_checks import load_profiles
    from sandbox.patients import build_resources, patient_ids

    profiles = load_profiles()
    samples = []
    for patient_id in patient_ids():
        for resource in build_resources(patient_id, datetime(2026, 3, 10, tzinfo=UTC)):
            samples.append(resource)
            broken = copy.deepcopy(resource)
            broken["valueInteger"] = 999
            broken["component"] = [{"code": {"coding": [{"system": parse.SF, "code": "sins-pain"}]}}] * 3
            broken["extension"] = [{"url": "http://spinecds.org/fhir/StructureDefinition/symptom-course"}]
            samples.append(broken)
    samples.append({"resourceType": "Observation", "valueQuantity": {"value": float("nan")}})
    assert any(parse._verdict(profiles, r) for r in samples) and any(not parse._verdict(profiles, r) for r in samples)
    for resource in samples:
        assert parse.profile_verdict(profiles, resource) == parse._verdict(profiles, resource)
        assert parse.profile_verdict(profiles, resource) == parse._verdict(profiles, resource)
