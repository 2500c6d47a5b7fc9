"""The range rule, the KPS range, spine sites and comfort care (engine/eligibility.py and friends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.api import EvaluationRequest, get_engine
from engine.facts import derive_facts
from engine.fixtures.resources import (
    ICD10,
    SNOMED,
    make_condition,
    make_ecog,
    make_kps,
    make_patient,
    make_service_request,
)
from engine.spine_sites import levels_in_text

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def facts(*resources: dict[str, Any], drafts: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return derive_facts([make_patient(), *resources], NOW, "patient-view", "p1", draft_orders=list(drafts)).patient


def breast(*more: dict[str, Any]) -> list[dict[str, Any]]:
    return [make_condition("C50.9", ICD10), make_condition("C79.51", ICD10), *more]


# ------------------------------------------------------------------ the KPS range


@pytest.mark.parametrize("days, current", [(30, True), (30.01, False)])
def test_a_kps_older_than_30_days_reads_as_10_up_to_the_value(days, current):
    p = facts(*breast(make_kps(80, NOW - timedelta(days=days))))
    assert p["kps_current"] is current
    assert (p["kps_min"], p["kps_max"]) == ((80, 80) if current else (10, 80))


def test_a_kps_older_than_the_newest_tier_1_finding_is_uncertain():
    sign = make_condition("lhermitte-sign", recorded=NOW - timedelta(days=1))
    p = facts(*breast(make_kps(90, NOW - timedelta(days=3)), sign))
    assert (p["kps_min"], p["kps_max"]) == (10, 90)
    assert "recorded before the newest neurological finding" in p["performance.text"]


def test_a_tier_4_finding_after_the_kps_leaves_it_current():
    pain = make_condition("radicular-pain", laterality="left", recorded=NOW - timedelta(days=1))
    p = facts(*breast(make_kps(90, NOW - timedelta(days=3)), pain))
    assert (p["kps_min"], p["kps_max"], p["kps_current"]) == (90, 90, True)


def test_no_performance_status_is_every_kps_and_never_a_verdict():
    # kidney (not in the draft Bollen table) with liver metastases: Van der Linden A whatever the KPS,
    # so every completion is not-eligible; without a KPS or ECOG it is still undetermined
    p = facts(make_condition("C64.9", ICD10), make_condition("C79.51", ICD10), make_condition("C78.7", ICD10))
    assert (p["kps_min"], p["kps_max"], p["kps_source"]) == (10, 100, "none")
    assert p["vdl.group"] == "A"
    assert p["eligibility.possible"] == ["not-eligible"] and p["eligibility.verdict"] == "undetermined"
    assert p["eligibility.settle"] == ["a KPS (none recorded)"]


def test_ecog_1_straddling_80_asks_for_a_kps_and_ecog_2_does_not():
    assert "record a KPS" in facts(*breast(make_ecog(1, NOW)))["performance.ask"]
    assert facts(*breast(make_ecog(2, NOW)))["performance.ask"] == ""


# ------------------------------------------------------------------ the verdict


@pytest.mark.parametrize(
    "kps, verdict", [(40, "not-eligible"), (49, "not-eligible"), (50, "discuss"), (60, "discuss"), (70, "eligible")]
)
def test_the_clinical_condition_gate(kps, verdict):
    p = facts(*breast(make_kps(kps, NOW), make_condition("C78.7", ICD10, clinical="resolved")))
    assert p["eligibility.verdict"] == verdict


def test_a_combined_procedure_needs_6_months():
    # prostate, KPS 80, liver metastases: Van der Linden B (9.0) and Bollen B (15.4) meet 6 months;
    # KPS 70: Van der Linden A fails, Bollen C (4.8) fails 6 months: both fail
    liver = make_condition("C78.7", ICD10)
    combined = make_service_request("spinal-surgery-combined")
    for kps, verdict in ((80, "eligible"), (70, "not-eligible")):
        p = facts(
            make_condition("C61", ICD10), make_condition("C79.51", ICD10), liver, make_kps(kps, NOW), drafts=(combined,)
        )
        assert (p["eligibility.months_needed"], p["eligibility.verdict"]) == (6, verdict)


def test_group_a_reachable_is_published():
    p = facts(make_condition("C34.90", ICD10), make_condition("C79.51", ICD10), make_kps(80, NOW))
    assert p["vdl.groups"] == ["A", "B"] and p["eligibility.group_a_reachable"] is True


def test_a_secondary_site_is_never_a_primary_candidate():
    p = facts(make_condition("C50.9", ICD10), make_condition("C79.51", ICD10), make_condition("C78.01", ICD10))
    assert p["primary_candidates"] == ["breast"]


# ------------------------------------------------------------------ where the disease is


@pytest.mark.parametrize(
    "text, levels",
    [
        ("T12", ["T12"]),
        ("Th12 vertebra", ["T12"]),
        ("T11-T12", ["T11", "T12"]),
        ("L5-S1", ["L5", "S1"]),
        ("T13", []),
        ("T12-L2", ["T12", "L1", "L2"]),
        ("L2-T12", ["T12", "L1", "L2"]),
    ],
)
def test_vertebral_levels_are_read_from_text(text, levels):
    assert levels_in_text(text) == levels


def test_affected_levels_come_from_metastasis_bodysites_and_sins_levels():
    t12 = make_condition("C79.51", ICD10)
    t12["bodySite"] = [{"text": "T11-T12"}]
    p = facts(make_condition("C50.9", ICD10), t12)
    assert p["affected_levels"] == ["T11", "T12"] and "several levels" in p["extent.text"]


# ------------------------------------------------------------------ comfort-only care


def _hospice(resource_type: str = "ServiceRequest", status: str = "active", code: str = "385763009") -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": resource_type,
        "id": f"gc-{resource_type.lower()}",
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SNOMED, "code": code}]},
        "authoredOn": "2026-02-20T10:00:00Z",
    }
    return resource


def test_z51_5_alone_is_not_comfort_only_care():
    palliative = make_condition("Z51.5", ICD10)
    assert facts(*breast(palliative))["comfort_care"] is False


def test_a_revoked_hospice_order_does_not_count_and_an_active_one_does():
    assert facts(*breast(_hospice(status="revoked")))["comfort_care"] is False
    p = facts(*breast(_hospice()))
    assert (p["comfort_care"], p["comfort_care.date"]) == (True, "2026-02-20")


def test_a_comfort_measures_goal_counts():
    goal = {
        "resourceType": "Goal",
        "id": "goal-1",
        "lifecycleStatus": "active",
        "subject": {"reference": "Patient/p1"},
        "description": {"coding": [{"system": SNOMED, "code": "133918004", "display": "Comfort measures"}]},
    }
    assert facts(*breast(goal))["comfort_care"] is True


def test_comfort_care_adds_one_line_to_every_card_and_suppresses_none():
    chart = [make_patient(), *breast(make_kps(90, NOW), make_condition("leg-weakness", recorded=NOW))]
    engine = get_engine()

    def run(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
        request = EvaluationRequest("patient-view", "h", "p1", resources, NOW)
        return engine.evaluate(request).cards

    def rules(cards: list[dict[str, Any]]) -> list[str]:
        spinecds = [c["extension"]["spinecds"] for c in cards]
        return [e["ruleId"] for e in spinecds] + [m["ruleId"] for e in spinecds for m in e.get("merged", [])]

    without, with_comfort = run(chart), run([*chart, _hospice("Procedure", "completed")])
    assert rules(with_comfort) == rules(without) and len(rules(with_comfort)) >= 3
    for card in with_comfort:
        assert card["detail"].count("Goals of care:") == 1
        assert "comfort care documented (2026-02-20): check that this fits" in card["detail"]


def test_with_comfort_care_the_expectations_dialogue_is_the_host_cards_first_section():
    chart = [make_patient(), *breast(make_kps(90, NOW), make_condition("mescc", recorded=NOW - timedelta(hours=2)))]
    request = EvaluationRequest("patient-view", "h", "p1", [*chart, _hospice("Procedure", "completed")], NOW)
    cards = get_engine().evaluate(request).cards
    host = next(
        c
        for c in cards
        if any(m["ruleId"] == "expectations-dialogue" for m in c["extension"]["spinecds"].get("merged", []))
    )
    assert host["detail"].startswith("**Also: Before deciding on treatment: ask and record what the patient hopes for")
    assert host["detail"].rstrip().endswith("check that this fits.")


def test_remembered_survival_and_eligibility_is_the_direct_answer():
    """engine.surgery_facts remembers survival_and_eligibility per input: the same facts as the direct
    call for every combination of inputs, the second time from the cache, and lists the caller owns."""
    import itertools

    from engine import surgery_facts
    from engine.eligibility import Context, survival_and_eligibility
    from engine.performance import Performance
    from engine.scores import load_scores

    tables = load_scores()
    perfs = [
        Performance(60, 60, "kps", 60, False, None, "KPS 60"),
        Performance(50, 70, "ecog", 2, True, None, "ECOG 2 (about KPS 50-70)"),
        Performance(10, 100, "none", None, False, "not recorded", "not recorded"),
    ]
    patients = [{}, {"primaries": ["breast"]}, {"primaries": ["lung", "unknown"], "visceral_metastases": True}]
    patients += [{"primaries": ["prostate"], "visceral_metastases": False}, {"primaries": ["unknown"]}]
    contexts = [Context(*flags) for flags in itertools.product([False, True], repeat=3)]
    for patient, perf, context in itertools.product(patients, perfs, contexts):
        expected = survival_and_eligibility(tables, patient, perf, context)
        for _ in range(2):
            got = surgery_facts._survival_and_eligibility(tables, patient, perf, context)
            assert got == expected and list(got) == list(expected)
            for value in got.values():
                if isinstance(value, list):
                    value.append("changed by the caller")
    assert surgery_facts._remembered_survival.cache_info().hits > 0


def _comfort_care_reference(resources, term):
    """comfort_care_facts as it was written before the coding test moved first (the reference)."""
    from engine.bundles import flatten
    from engine.goals_of_care import CONCEPT, WITHDRAWN, _concepts, _status, _time
    from engine.parse import codings_of

    times = []
    for raw in flatten(resources):
        if raw.get("resourceType") in ("Patient", "Bundle") or _status(raw) in WITHDRAWN:
            continue
        if any(CONCEPT in term.concepts(codings_of(c)) for c in _concepts(raw)):
            times.append(_time(raw))
    if not times:
        return {"comfort_care": False}
    dated = [t for t in times if t is not None]
    return {
        "comfort_care": True,
        "comfort_care.date": max(dated).date().isoformat() if dated else "date not recorded",
    }


def test_comfort_care_facts_answer_as_the_reference():
    import itertools
    from datetime import UTC, datetime

    from engine.goals_of_care import comfort_care_facts
    from fhir_profiles.terminology import load_terminology
    from sandbox.patients import build_resources, patient_ids

    term = load_terminology()
    hospice = {"system": "http://snomed.info/sct", "code": "385763009"}
    shapes = [
        {
            "resourceType": "Procedure",
            "status": "completed",
            "code": {"coding": [hospice]},
            "performedDateTime": "2026-02-01",
        },
        {
            "resourceType": "ServiceRequest",
            "status": "revoked",
            "code": {"coding": [hospice]},
            "authoredOn": "2026-02-03",
        },
        {
            "resourceType": "CarePlan",
            "status": "active",
            "category": [{"coding": [hospice]}],
            "period": {"start": "2026-01-05"},
        },
        {"resourceType": "CarePlan", "status": "active", "activity": [{"detail": {"code": {"coding": [hospice]}}}]},
        {"resourceType": "Goal", "lifecycleStatus": "active", "description": {"coding": [hospice]}},
        {
            "resourceType": "Condition",
            "verificationStatus": {"coding": [{"code": "refuted"}]},
            "code": {"coding": [hospice]},
        },
        {"resourceType": "Observation", "status": "final", "category": {"coding": [{"system": ["x"], "code": "1"}]}},
        {
            "resourceType": "Bundle",
            "entry": [{"resource": {"resourceType": "Goal", "description": {"coding": [hospice]}}}],
        },
    ]
    for index, shape in enumerate(shapes):
        shape["id"] = f"s{index}"
    records = [build_resources(p, datetime(2026, 3, 10, tzinfo=UTC)) for p in patient_ids()[:6]]
    groups = [*records, *([shape] for shape in shapes), *(list(pair) for pair in itertools.combinations(shapes, 2))]
    assert any(_comfort_care_reference(group, term)["comfort_care"] for group in groups)
    for group in groups:
        assert comfort_care_facts(group, term) == _comfort_care_reference(group, term)
