"""The revision-2 timing facts on their own: local time words, presentation time, development time,
spine MRI done / ordered / contraindicated, the shared definitions file, and the symptom timing facts.

The rule cases (rules/mri-urgency/cases, rules/mescc-treatment/cases) show the cards these lead to;
here each derivation is pinned down where a boundary or a fallback could silently go wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.definitions import DefinitionsError, load_definitions
from engine.facts import derive_facts
from engine.fixtures.resources import ICD10, make_condition, make_patient
from engine.imaging import spine_imaging
from engine.localtime import clock_text, due_description, hours_text, moment, zone
from engine.parse import parse_resources
from engine.presentation import development_days, presentation_of
from fhir_profiles.terminology import load_terminology

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
AMSTERDAM = zone("Europe/Amsterdam")
CPT = "http://www.ama-assn.org/go/cpt"


# ------------------------------------------------------------------ local time words


@pytest.mark.parametrize(
    ("hours", "text"),
    [
        (11.9, "11 h left"),
        (1.0, "1 h left"),
        (0.5, "30 min left"),
        (0.0, "due now"),
        (-0.02, "overdue by 1 min"),
        (-0.99, "overdue by 59 min"),
        (-1.4, "overdue by 1 h"),
        (-36.0, "overdue by 36 h"),
    ],
)
def test_hours_text_says_left_due_now_or_overdue(hours, text):
    assert hours_text(hours) == text


def test_clock_text_uses_the_zone_and_says_today_tomorrow_yesterday_or_the_date():
    assert clock_text(NOW + timedelta(hours=11), NOW, AMSTERDAM) == "21:00 today"
    assert clock_text(NOW + timedelta(hours=15), NOW, AMSTERDAM) == "01:00 tomorrow"
    assert clock_text(NOW - timedelta(hours=20), NOW, UTC) == "13:00 yesterday"
    assert clock_text(NOW + timedelta(days=5), NOW, UTC) == "Sun 15 Mar 09:00"


def test_due_description_is_an_instant_with_offset_and_never_minus_zero():
    due = due_description(NOW + timedelta(hours=2), NOW, AMSTERDAM)
    assert due == {
        "due_by": "2026-03-10T12:00:00+01:00",
        "due_local": "12:00 today (Europe/Amsterdam)",
        "hours_left": 2.0,
        "due_text": "2 h left",
    }
    assert str(due_description(NOW - timedelta(seconds=10), NOW, UTC)["hours_left"]) == "0.0"


def test_unknown_zone_is_refused_with_the_name():
    with pytest.raises(ValueError, match="Mars/Olympus"):
        zone("Mars/Olympus")


def test_a_date_only_value_starts_at_midnight_in_the_zone():
    assert moment("2026-03-10", AMSTERDAM) == datetime(2026, 3, 9, 23, 0, tzinfo=UTC)
    assert moment("2026-03-10T10:00:00", AMSTERDAM) == datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    assert moment("2026-03-10T10:00:00Z", AMSTERDAM) == datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


# ------------------------------------------------------------------ presentation and development


def test_presentation_prefers_recorded_date_then_onset_then_first_seen_then_now():
    recorded = {"recordedDate": "2026-03-09T08:00:00Z", "onsetDateTime": "2026-03-01T08:00:00Z"}
    assert presentation_of("Condition/a", recorded, UTC, NOW, {}).at == datetime(2026, 3, 9, 8, tzinfo=UTC)
    onset = {"onsetPeriod": {"start": "2026-03-01T08:00:00Z"}}
    assert presentation_of("Condition/a", onset, UTC, NOW, {}).at == datetime(2026, 3, 1, 8, tzinfo=UTC)
    seen = NOW - timedelta(days=2)
    first = presentation_of("Condition/a", {}, UTC, NOW, {"Condition/a": seen})
    assert (first.at, first.recorded) == (seen, False)
    assert presentation_of("Condition/b", {}, UTC, NOW, {"Condition/a": seen}).at == NOW


@pytest.mark.parametrize(
    ("raw", "days"),
    [
        ({"onsetDateTime": "2026-03-03T09:00:00Z"}, 7.0),  # exactly seven days before presentation
        ({"onsetDateTime": "2026-03-03T08:00:00Z"}, 7.04),
        ({}, 0.0),  # unknown onset: within seven days
        ({"onsetDateTime": "2026-03-10T10:00:00Z"}, 0.0),  # onset after presentation
        ({"onsetDateTime": "2026-03-10"}, 0.0),  # date-only onset on the presentation day
    ],
)
def test_development_days_run_from_onset_to_presentation(raw, days):
    assert development_days(raw, NOW, UTC) == days


# ------------------------------------------------------------------ spine MRI done, ordered, contraindicated


def _procedure(rid: str, system: str, code: str, when: datetime, status: str = "completed", **extra):
    return {
        "resourceType": "Procedure",
        "id": rid,
        "status": status,
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": system, "code": code}]},
        "performedDateTime": when.isoformat(),
        **extra,
    }


def _imaging(*resources):
    term = load_terminology()
    parsed = parse_resources([make_patient(), *resources], term, "p1")
    return spine_imaging(parsed, term, UTC, NOW, load_definitions().whole_spine_combine_hours)


def test_three_regions_within_24_hours_make_a_whole_spine_mri_at_the_last_one():
    found = _imaging(
        _procedure("c", CPT, "72141", NOW - timedelta(hours=30)),
        _procedure("t", CPT, "72146", NOW - timedelta(hours=20)),
        _procedure("l", CPT, "72148", NOW - timedelta(hours=7)),
    )
    assert [m.region for m in found.done] == ["cervical", "thoracic", "lumbar"]
    assert found.whole_spine == [(NOW - timedelta(hours=7), ["Procedure/c", "Procedure/t", "Procedure/l"])]
    assert found.whole_spine_after(NOW - timedelta(hours=8)) == NOW - timedelta(hours=7)
    assert found.whole_spine_after(NOW - timedelta(hours=6)) is None


def test_regions_spread_over_more_than_24_hours_are_not_whole_spine():
    found = _imaging(
        _procedure("c", CPT, "72141", NOW - timedelta(hours=40)),
        _procedure("t", CPT, "72146", NOW - timedelta(hours=20)),
        _procedure("l", CPT, "72148", NOW - timedelta(hours=7)),
    )
    assert found.whole_spine == []
    assert found.regional_after(NOW - timedelta(days=1), "lumbar") is not None
    assert found.regional_after(NOW - timedelta(days=1), None) is None  # unknown region never matches


def test_ct_and_planned_or_future_mris_never_count():
    found = _imaging(
        _procedure("ct", CPT, "72128", NOW - timedelta(hours=3)),
        _procedure("planned", CPT, "72148", NOW - timedelta(hours=3), status="preparation"),
        _procedure(
            "future", "http://spinecds.org/fhir/CodeSystem/spine-findings", "mri-whole-spine", NOW + timedelta(hours=3)
        ),
    )
    assert found.done == [] and found.whole_spine == []


def test_not_done_mri_with_a_reason_is_a_contraindication_and_orders_give_the_earliest_due():
    order = {
        "resourceType": "ServiceRequest",
        "id": "sr",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "code": {
            "coding": [{"system": "http://spinecds.org/fhir/CodeSystem/spine-findings", "code": "mri-whole-spine"}]
        },
        "occurrencePeriod": {"end": (NOW + timedelta(hours=5)).isoformat()},
    }
    revoked = {
        **order,
        "id": "old",
        "status": "revoked",
        "occurrencePeriod": {"end": (NOW + timedelta(hours=1)).isoformat()},
    }
    found = _imaging(
        _procedure("nd", CPT, "72148", NOW - timedelta(hours=3), status="not-done", statusReason={"text": "pacemaker"}),
        order,
        revoked,
    )
    assert found.contraindication == "MRI not done: pacemaker" and found.done == []
    assert found.order_due == NOW + timedelta(hours=5) and found.order_refs == ["ServiceRequest/sr"]


# ------------------------------------------------------------------ definitions file


def test_definitions_file_is_checked_by_key(tmp_path):
    path = tmp_path / "definitions.yaml"
    path.write_text("lookback_days: 30\nmescc_window_dayz: 14\n", encoding="utf-8")
    with pytest.raises(DefinitionsError, match=r"unknown key.*mescc_window_dayz"):
        load_definitions(path)
    path.write_text(
        "lookback_days: -1\nwhole_spine_combine_hours: 24\ndiagnosis_mri_before_hours: 48\n"
        "treatment_before_diagnosis_hours: 12\nmescc_window_days: 14\n",
        encoding="utf-8",
    )
    with pytest.raises(DefinitionsError, match="lookback_days must be a number >= 0"):
        load_definitions(path)


# ------------------------------------------------------------------ symptom timing facts


def _symptom(resources, **kw):
    facts = derive_facts([make_patient(), make_condition("C50.9", ICD10), *resources], NOW, "patient-view", "p1", **kw)
    (subject,) = facts.symptoms
    return facts, subject


def test_symptom_timing_facts_from_a_date_only_recorded_date_in_amsterdam():
    condition = make_condition("leg-weakness", recorded="2026-03-10")
    _, s = _symptom([condition], timezone="Europe/Amsterdam")
    assert s["symptom.presented_at"] == "2026-03-10T00:00:00+01:00"
    assert s["symptom.presented_hours_ago"] == 10.0 and s["symptom.presentation_recorded"] is True
    assert s["symptom.in_lookback"] is True and s["symptom.stale"] is False and s["symptom.mescc_relation"] == "none"


def test_lookback_setting_overrides_the_definitions_file():
    condition = make_condition("local-back-pain", recorded=NOW - timedelta(days=10))
    assert _symptom([condition])[1]["symptom.in_lookback"] is True
    _, s = _symptom([condition], lookback_days=7)
    assert s["symptom.in_lookback"] is False and s["symptom.stale"] is True


def test_left_and_right_across_radicular_and_radiating_pain_are_bilateral():
    facts = derive_facts(
        [
            make_patient(),
            make_condition("C50.9", ICD10),
            make_condition("radicular-pain", laterality="left", recorded=NOW),
            make_condition("radiating-pain", laterality="right", recorded=NOW),
        ],
        NOW,
        "patient-view",
        "p1",
    )
    assert {s["symptom.code"]: s["symptom.laterality"] for s in facts.symptoms} == {
        "radicular-pain": "bilateral",
        "radiating-pain": "bilateral",
    }


def test_a_rules_folder_brings_its_own_definitions_and_a_broken_one_stops_the_build(tmp_path):
    import shutil

    from engine.api import build_engine
    from engine.loader import RuleLoadError
    from engine.vocabulary import RULES_DIR

    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    text = (rules / "definitions.yaml").read_text(encoding="utf-8").replace("lookback_days: 30", "lookback_days: 7")
    (rules / "definitions.yaml").write_text(text, encoding="utf-8")
    assert build_engine(rules, run_cases=False).definitions.lookback_days == 7
    (rules / "definitions.yaml").write_text("lookback_days: [\n", encoding="utf-8")
    with pytest.raises(RuleLoadError, match=r"definitions\.yaml: not valid YAML"):
        build_engine(rules, run_cases=False)
