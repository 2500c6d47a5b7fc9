"""Property tests: random but schema-shaped FHIR Conditions and Observations (codes from our
ValueSets plus junk, random statuses, dates, bodySites, extensions, components) never make fact
derivation or evaluation raise, and every fact stays a JSON scalar or a list of strings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.api import EvaluationRequest, evaluate, get_engine
from engine.facts import COURSE_URL, derive_facts
from fhir_profiles.terminology import load_terminology

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
PATIENT = "p1"
TERMINOLOGY = load_terminology()
OUR_CODES = sorted({code for concept in TERMINOLOGY.concept_names for code in TERMINOLOGY.codes(concept)})
JUNK_CODES = [
    ("http://snomed.info/sct", "0"),
    ("http://loinc.org", "not-a-code"),
    ("urn:junk", ""),
    ("", "C79.51"),
    ("http://hl7.org/fhir/sid/icd-10-cm", "C79.51 "),
]
HOOKS = ("patient-view", "order-select", "order-sign")

text = st.text(max_size=12)
codings = st.lists(
    st.builds(
        lambda pair, display: {"system": pair[0], "code": pair[1], **display},
        st.sampled_from(OUR_CODES + JUNK_CODES),
        st.sampled_from([{}, {"display": "shown"}]),
    ),
    max_size=3,
)
concept = st.builds(lambda c, t: {"coding": c, **t}, codings, st.sampled_from([{}, {"text": "free text"}]))
status_concept = lambda system, codes: st.builds(  # noqa: E731
    lambda code: {"coding": [{"system": system, "code": code}]}, st.sampled_from(codes)
)
date_time = st.one_of(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)).map(
        lambda d: d.isoformat()
    ),
    st.dates(min_value=datetime(1900, 1, 1).date(), max_value=datetime(2100, 1, 1).date()).map(str),
    st.sampled_from(["2026", "2026-03", "2026-03-02T09:30:00+01:00"]),
)
extension = st.one_of(
    st.builds(
        lambda code: {"url": COURSE_URL, "valueCode": code},
        st.sampled_from(["progressive", "stable", "improving", "sideways"]),
    ),
    st.builds(lambda c: {"url": "http://example.org/other", "valueCodeableConcept": c}, concept),
)
value = st.one_of(
    st.just({}),
    st.integers(-10, 200).map(lambda n: {"valueInteger": n}),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: {"valueQuantity": {"value": x, "unit": "1"}}),
    st.booleans().map(lambda b: {"valueBoolean": b}),
    concept.map(lambda c: {"valueCodeableConcept": c}),
    text.map(lambda t: {"valueString": t}),
)


@st.composite
def condition(draw: st.DrawFn, n: int) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": f"c{n}",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "code": draw(concept),
    }
    optional = {
        "clinicalStatus": status_concept(
            "http://terminology.hl7.org/CodeSystem/condition-clinical",
            ["active", "recurrence", "relapse", "inactive", "remission", "resolved", "x"],
        ),
        "verificationStatus": status_concept(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            ["confirmed", "unconfirmed", "provisional", "differential", "refuted", "entered-in-error"],
        ),
        "onsetDateTime": date_time,
        "recordedDate": date_time,
        "bodySite": st.lists(concept, max_size=2),
        "extension": st.lists(extension, max_size=2),
        "severity": concept,
        "note": st.lists(text.map(lambda t: {"text": t}), max_size=1),
    }
    for name in draw(st.sets(st.sampled_from(sorted(optional)))):
        resource[name] = draw(optional[name])
    return resource


@st.composite
def observation(draw: st.DrawFn, n: int) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"o{n}",
        "status": draw(
            st.sampled_from(
                ["final", "amended", "corrected", "preliminary", "registered", "cancelled", "entered-in-error"]
            )
        ),
        "subject": {"reference": f"Patient/{PATIENT}"},
        "code": draw(concept),
        **draw(value),
    }
    optional = {
        "effectiveDateTime": date_time,
        "issued": date_time,
        "bodySite": concept,
        "extension": st.lists(extension, max_size=2),
        "component": st.lists(st.builds(lambda c, v: {"code": c, **v}, concept, value), max_size=3),
        "note": st.lists(text.map(lambda t: {"text": t}), max_size=1),
    }
    for name in draw(st.sets(st.sampled_from(sorted(optional)))):
        resource[name] = draw(optional[name])
    return resource


@st.composite
def chart(draw: st.DrawFn) -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = []
    if draw(st.booleans()):
        resources.append(
            {
                "resourceType": "Patient",
                "id": PATIENT,
                "birthDate": draw(st.sampled_from(["1950-01-01", "2000", "1980-06"])),
            }
        )
    for n in range(draw(st.integers(0, 6))):
        resources.append(draw(condition(n)))
    for n in range(draw(st.integers(0, 8))):
        resources.append(draw(observation(n)))
    return resources


def _json_fact(value: Any) -> bool:
    if value is None:
        return False  # absent facts are omitted, never None
    if isinstance(value, (str, bool, int, float)):
        return True
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY_SETTINGS
@given(resources=chart(), hook=st.sampled_from(HOOKS))
def test_derive_facts_never_raises_and_facts_are_json_scalars(resources: list[dict[str, Any]], hook: str) -> None:
    facts = derive_facts(resources, NOW, hook, PATIENT)
    subjects = [facts.patient, *facts.symptoms, *facts.lesions, *facts.orders]
    for subject in subjects:
        for name, value in subject.items():
            assert _json_fact(value), (name, value)


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(resources=chart())
def test_evaluate_never_raises_on_random_charts(resources: list[dict[str, Any]]) -> None:
    get_engine()
    result = evaluate(
        EvaluationRequest(hook="patient-view", hook_instance="h", patient_id=PATIENT, resources=resources, now=NOW)
    )
    for card in result.cards:
        assert card["summary"] and card["indicator"] in ("info", "warning", "critical")
