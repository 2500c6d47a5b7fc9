"""The shared fixture builder: its concept table agrees with the fhir_profiles ValueSets, its one time
syntax, and its refusals name the place and the fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.fixtures import FixtureError, build_resources, times
from engine.fixtures import concepts as C
from fhir_profiles.terminology import load_terminology

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("table", ["DIAGNOSES", "PROCEDURES"])
def test_every_concept_coding_belongs_to_the_valueset_the_rules_read(table):
    terminology = load_terminology()
    for name, concept in getattr(C, table).items():
        for system, code, _display in (*concept.codings, *concept.alternatives):
            assert concept.valueset in terminology.concepts_of(system, code), (name, system, code)
        for system, code, _display in concept.extra:  # written beside, read by no rule
            assert concept.valueset not in terminology.concepts_of(system, code), (name, system, code)


def test_snomed_symptoms_belong_to_their_valueset():
    terminology = load_terminology()
    for name, ((system, code, _), valueset) in C.SNOMED_SYMPTOMS.items():
        assert valueset in terminology.concepts_of(system, code), name


def test_symptom_codes_and_sins_answers_come_from_the_artefacts():
    assert "radicular-deficit" in C.symptom_names() and "low-back-pain" in C.symptom_names()
    assert C.symptom_coding("leg-weakness") == (C.SF, "leg-weakness", "Leg (or arm) weakness")
    assert C.sins_answers("location") == ["loc-junctional", "loc-mobile", "loc-semirigid", "loc-rigid"]
    assert C.listed_coding("laterality-left")[:2] == (C.SNOMED, "7771000")
    assert C.listed_coding("kps")[:2] == (C.LOINC, "89243-0")


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("now", timedelta(0)),
        ("3 days ago", -timedelta(days=3)),
        ("1 day ago", -timedelta(days=1)),
        ("30 hours ago", -timedelta(hours=30)),
        ("1.5 days ago", -timedelta(hours=36)),
        ("90 minutes ago", -timedelta(minutes=90)),
        ("2 weeks ago", -timedelta(days=14)),
        ("6 months ago", -timedelta(days=180)),
        ("in 2 hours", timedelta(hours=2)),
    ],
)
def test_one_relative_time_syntax(text, delta):
    assert times.offset(text) == delta


@pytest.mark.parametrize("text", ["$now-3d", "last tuesday", "3 days", "in 2 hours ago", ""])
def test_other_time_spellings_are_refused_with_examples(text):
    with pytest.raises(times.RelativeTimeError, match=r"write e\.g\. '3 days ago'"):
        times.offset(text, "x.yaml:3")


def test_a_future_onset_is_refused():
    with pytest.raises(FixtureError, match=r"symptoms\[0\]\.onset: .*lies in the future"):
        build_resources({"symptoms": [{"code": "leg-weakness", "onset": "in 2 days"}]}, NOW)


def test_resolve_touches_only_whole_relative_strings():
    value = {"a": "now", "b": ["in 1 day", "now and then"], "c": 3}
    assert times.resolve(value, NOW) == {
        "a": "2026-03-10T09:00:00Z",
        "b": ["2026-03-11T09:00:00Z", "now and then"],
        "c": 3,
    }


def test_a_description_becomes_the_resources_the_rules_read():
    resources = build_resources(
        {
            "diagnoses": [{"concept": "prostate-cancer", "onset": "2 years ago"}],
            "symptoms": [{"code": "radicular-pain", "side": "right", "onset": "5 days ago"}],
            "kps": [{"value": 60, "when": "1 day ago", "status": "preliminary"}],
            "visceral_metastases": {"present": False, "when": "10 days ago"},
            "sins": [{"level": "T12", "when": "2 days ago", "location": "loc-junctional", "stated": 9}],
            "procedures": [{"concept": "spine-radiotherapy", "when": "300 days ago", "days": 5, "site": "T11-L1"}],
        },
        NOW,
    )
    by_id = {r["id"]: r for r in resources}
    assert by_id["p1"]["resourceType"] == "Patient"
    assert [c["code"] for c in by_id["ca-prostate"]["code"]["coding"]] == ["C61", "399068003"]
    assert by_id["ca-prostate"]["onsetDateTime"] == by_id["ca-prostate"]["recordedDate"] == "2024-03-10T09:00:00Z"
    assert by_id["sx-1"]["bodySite"][0]["coding"][0]["code"] == "24028007"
    assert by_id["kps-1"]["status"] == "preliminary" and by_id["kps-1"]["valueInteger"] == 60
    assert by_id["obs-visceral"]["valueBoolean"] is False
    assert by_id["sins-t12"]["valueInteger"] == 9 and len(by_id["sins-t12"]["component"]) == 1
    assert by_id["rt-spine"]["performedPeriod"] == {"start": "2025-05-14T09:00:00Z", "end": "2025-05-19T09:00:00Z"}


@pytest.mark.parametrize(
    ("description", "message"),
    [
        (
            {"diagnoses": [{"concept": "brest-cancer"}]},
            r"diagnoses\[0\]\.concept: unknown concept 'brest-cancer' - did you mean 'breast-cancer'\?",
        ),
        ({"symptoms": [{"code": "leg-weaknes"}]}, r"did you mean 'leg-weakness'\?"),
        (
            {"symptoms": [{"code": "leg-weakness", "side": "up"}]},
            r"symptoms\[0\]\.side: 'up' - use one of left, right, bilateral",
        ),
        ({"kps": [{"valeu": 70}]}, r"kps\[0\]\.valeu: unknown key 'valeu' - did you mean 'value'\?"),
        (
            {"sins": [{"level": "T1", "pain": "loc-rigid"}]},
            r"sins\[0\]\.pain: 'loc-rigid' - use one of \['pain-mechanical'",
        ),
        ({"orders": [{"concept": "mri"}]}, r"orders\[0\]\.concept: unknown order 'mri'"),
    ],
)
def test_refusals_name_the_place_and_the_fix(description, message):
    with pytest.raises(FixtureError, match=message):
        build_resources(description, NOW)
