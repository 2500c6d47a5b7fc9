import json
from datetime import UTC, datetime, timedelta

import pytest

from engine.facts import derive_facts
from engine.fixtures.resources import (
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
    make_patient,
    make_service_request,
    make_sins,
    make_vital,
)

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def facts(*resources, hook="patient-view", drafts=(), selections=()):
    return derive_facts(
        [make_patient(), *resources], NOW, hook, "p1", draft_orders=list(drafts), selections=list(selections)
    )


def symptom(result, code):
    (found,) = [s for s in result.symptoms if s["symptom.code"] == code]
    return found


# ------------------------------------------------------------------ cancer and primaries


@pytest.mark.parametrize("clinical", ["active", "remission", "resolved", "inactive", None])
def test_cancer_counts_whatever_its_clinical_status(clinical):
    assert facts(make_condition("C50.9", ICD10, clinical=clinical)).patient["cancer"] is True


@pytest.mark.parametrize("verification", ["refuted", "entered-in-error"])
def test_refuted_or_erroneous_cancer_does_not_count(verification):
    result = facts(make_condition("C50.9", ICD10, verification=verification))
    assert result.patient["cancer"] is False and "primary" not in result.patient


def test_no_conditions_at_all():
    p = facts().patient
    assert p["cancer"] is False and p["spinal_involvement"] is False and p["symptom_count"] == 0
    # survival and eligibility facts are only derived for a patient with cancer (every rule that reads
    # them requires it); the performance-status range always is
    assert "vdl.missing" not in p and "eligibility.verdict" not in p
    assert (p["kps_min"], p["kps_max"], p["kps_source"]) == (10, 100, "none")
    assert all(v is not None for v in p.values())


@pytest.mark.parametrize(
    "code, system, primary",
    [
        ("C50.912", ICD10, "breast"),
        ("254837009", SNOMED, "breast"),
        ("C61", ICD10, "prostate"),
        ("C34.90", ICD10, "lung"),
        ("C64.1", ICD10, "kidney"),
        ("C73", ICD10, "thyroid"),
        ("C62.90", ICD10, "germ-cell"),
        ("C90.00", ICD10, "myeloma"),
        ("C83.30", ICD10, "lymphoma"),
        ("C18.7", ICD10, "other"),
        ("C80.1", ICD10, "unknown"),
    ],
)
def test_primary(code, system, primary):
    result = facts(make_condition(code, system))
    assert result.patient["primary"] == primary and result.patient["cancer"] is True


def test_metastasis_alone_names_no_primary():
    p = facts(make_condition("C79.51", ICD10)).patient
    assert p["cancer"] is True and p["spinal_metastasis"] is True
    assert "primary" not in p and "primary tumour" in p["vdl.missing"]


def test_haematological_and_chemo_sensitive():
    p = facts(make_condition("C90.00", ICD10)).patient
    assert p["haematological"] is True and p["chemo_sensitive"] is True and p["vdl.applicable"] is False
    p = facts(make_condition("C62.90", ICD10)).patient
    assert p["haematological"] is False and p["chemo_sensitive"] is True
    p = facts(make_condition("C50.9", ICD10)).patient
    assert p["haematological"] is False and p["chemo_sensitive"] is False


def test_latest_primary_decides_and_all_are_listed():
    p = facts(
        make_condition("C61", ICD10, onset="2015-01-01"),
        make_condition("C34.90", ICD10, onset="2025-06-01"),
        make_condition("C80.1", ICD10, onset="2026-01-01"),
    ).patient
    assert p["primary"] == "lung"  # a coded primary beats "unknown primary"
    assert p["primaries"] == ["prostate", "lung", "unknown"]


# ------------------------------------------------------------------ findings statuses


@pytest.mark.parametrize(
    "clinical, counts",
    [
        ("active", True),
        ("recurrence", True),
        ("relapse", True),
        (None, True),
        ("inactive", False),
        ("resolved", False),
        ("remission", False),
    ],
)
def test_spinal_metastasis_needs_an_active_status(clinical, counts):
    assert facts(make_condition("C79.51", ICD10, clinical=clinical)).patient["spinal_metastasis"] is counts


@pytest.mark.parametrize("verification", ["refuted", "entered-in-error"])
def test_refuted_findings_are_ignored(verification):
    p = facts(
        make_condition("C79.51", ICD10, verification=verification),
        make_condition("radicular-pain", verification=verification),
        make_condition("mescc", verification=verification),
    ).patient
    assert p["spinal_metastasis"] is False and p["symptom_count"] == 0
    assert p["mescc_confirmed"] is False and p["mescc_suspected"] is False


def test_visceral_metastases_true_false_absent():
    assert facts(make_condition("C78.7", ICD10)).patient["visceral_metastases"] is True
    assert facts(make_condition("94225005", SNOMED)).patient["visceral_metastases"] is True
    assert facts(make_condition("C78.7", ICD10, verification="refuted")).patient["visceral_metastases"] is False
    staged = make_observation("visceral-metastases", SF, value=False, when=NOW)
    assert facts(staged).patient["visceral_metastases"] is False
    assert "visceral_metastases" not in facts(make_condition("C50.9", ICD10)).patient


def test_visceral_staging_latest_wins_and_preliminary_is_ignored():
    older = make_observation("visceral-metastases", SF, value=True, when=NOW - timedelta(days=30))
    newer = make_observation("visceral-metastases", SF, value=False, when=NOW - timedelta(days=1))
    prelim = make_observation("visceral-metastases", SF, value=True, when=NOW, status="preliminary")
    assert facts(older, newer, prelim).patient["visceral_metastases"] is False


# ------------------------------------------------------------------ MESCC


def test_confirmed_mescc_and_its_clock():
    onset = NOW - timedelta(hours=30)
    result = facts(make_condition("mescc", verification="confirmed", onset=onset, recorded=NOW - timedelta(hours=2)))
    p = result.patient
    assert p["mescc_confirmed"] is True and p["mescc_suspected"] is False
    # Revision 2: the clock runs from the diagnosis time (the recordedDate), not from symptom onset.
    assert p["mescc.hours_since_diagnosis"] == 2.0
    assert all(s["symptom.code"] != "mescc-suspected" for s in result.symptoms)


def test_mescc_without_verification_is_a_diagnosis_timed_by_recorded_date():
    # Revision 2: a generic cord compression code is MESCC only in a patient with cancer.
    cancer = make_condition("C50.9", ICD10)
    p = facts(cancer, make_condition("G95.20", ICD10, verification=None, recorded=NOW - timedelta(hours=6))).patient
    assert p["mescc_confirmed"] is True and p["mescc.hours_since_diagnosis"] == 6.0


@pytest.mark.parametrize("verification", ["provisional", "differential"])
def test_suspected_mescc_is_a_symptom_subject(verification):
    result = facts(make_condition("mescc", verification=verification, onset=NOW - timedelta(hours=4)))
    assert result.patient["mescc_suspected"] is True and result.patient["mescc_confirmed"] is False
    assert "mescc.hours_since_diagnosis" not in result.patient
    s = symptom(result, "mescc-suspected")
    assert s["symptom.display"] == "Suspected MESCC"
    assert result.patient["symptom_count"] == 0 and result.patient["spinal_involvement"] is True


def test_confirmed_mescc_overrides_suspicion():
    result = facts(
        make_condition("mescc", verification="provisional"), make_condition("mescc", onset=NOW - timedelta(hours=1))
    )
    assert result.patient["mescc_confirmed"] is True and result.patient["mescc_suspected"] is False
    assert not [s for s in result.symptoms if s["symptom.code"] == "mescc-suspected"]


def test_resolved_mescc_does_not_count():
    p = facts(make_condition("mescc", clinical="resolved", onset=NOW - timedelta(days=40))).patient
    assert p["mescc_confirmed"] is False and "mescc.hours_since_diagnosis" not in p


# ------------------------------------------------------------------ symptoms


NEW_TIMING_FACTS = (
    "symptom.presented",
    "symptom.presentation_recorded",
    "symptom.development",
    "symptom.development_days",
    "symptom.in_lookback",
    "symptom.stale",
    "symptom.mri_answered",
    "symptom.regional_mri",
    "symptom.mescc_relation",
)


def test_fully_described_unilateral_deficit():
    result = facts(
        make_condition("radicular-deficit", laterality="left", course="progressive", onset=NOW - timedelta(days=3))
    )
    s = symptom(result, "radicular-deficit")
    # the revision-1 facts, unchanged (the timing facts of revision 2 are tested in test_mri_timing_facts.py)
    assert {k: v for k, v in s.items() if not k.startswith(NEW_TIMING_FACTS)} == {
        "symptom.code": "radicular-deficit",
        "symptom.display": "Radicular deficit",
        "symptom.laterality": "unilateral",
        "symptom.laterality_known": True,
        "symptom.course": "progressive",
        "symptom.course_known": True,
        "symptom.onset_days": 3.0,
        "symptom.onset_known": True,
        "symptom.resource": s["symptom.resource"],
        "symptom.sphincter_kind": "specific",
        # no recordedDate: the presentation time falls back to the onset, so nothing is missing
        "missing": [],
    }
    assert result.patient["progressive_deficit"] is True and result.patient["symptom_count"] == 1


def test_unknown_laterality_reads_as_bilateral_and_says_so():
    s = symptom(facts(make_condition("radicular-pain", onset=NOW - timedelta(days=2))), "radicular-pain")
    assert s["symptom.laterality"] == "bilateral" and s["symptom.laterality_known"] is False
    assert s["missing"] == ["laterality of radicular pain unknown: read as bilateral"]


def test_unknown_course_reads_as_progressive_and_says_so():
    result = facts(make_condition("radicular-deficit", laterality="right", onset=NOW - timedelta(days=10)))
    s = symptom(result, "radicular-deficit")
    assert s["symptom.course"] == "progressive" and s["symptom.course_known"] is False
    assert s["missing"] == ["course of radicular deficit unknown: read as progressive"]
    assert result.patient["progressive_deficit"] is True


def test_unknown_onset_reads_as_within_7_days_and_says_so():
    s = symptom(
        facts(make_condition("radicular-deficit", laterality="right", course="stable", recorded=NOW)),
        "radicular-deficit",
    )
    assert s["symptom.onset_days"] == 0 and s["symptom.onset_known"] is False
    assert s["missing"] == ["onset of radicular deficit unknown: read as within 7 days"]


def test_everything_unknown_lists_every_assumption():
    s = symptom(facts(make_condition("radicular-deficit")), "radicular-deficit")
    # revision 2 adds the presentation time (no recordedDate, no onset)
    assert len(s["missing"]) == 4


def test_stable_deficit_is_not_progressive():
    p = facts(make_condition("radicular-deficit", laterality="left", course="stable", onset=NOW)).patient
    assert p["progressive_deficit"] is False


def test_bilateral_code_and_left_plus_right_are_bilateral():
    s = symptom(facts(make_condition("radicular-pain", laterality="bilateral")), "radicular-pain")
    assert (s["symptom.laterality"], s["symptom.laterality_known"]) == ("bilateral", True)
    result = facts(
        make_condition("radicular-pain", laterality="left"), make_condition("radicular-pain", laterality="right")
    )
    assert [s["symptom.laterality"] for s in result.symptoms] == ["bilateral", "bilateral"]
    result = facts(
        make_condition("radicular-pain", laterality="left"),
        make_condition("radicular-pain", laterality="right", clinical="resolved"),
    )
    assert [s["symptom.laterality"] for s in result.symptoms] == ["unilateral"]


def test_local_back_pain_by_snomed_and_no_irrelevant_assumptions():
    result = facts(make_condition("279039007", SNOMED, recorded=NOW))
    s = symptom(result, "local-back-pain")
    assert s["missing"] == [] and s["symptom.display"] == "Local back or neck pain"


def test_leg_weakness_without_course_is_a_progressive_deficit():
    assert facts(make_condition("leg-weakness")).patient["progressive_deficit"] is True


def test_inactive_symptom_is_not_a_subject():
    result = facts(make_condition("radicular-pain", clinical="resolved"))
    assert result.symptoms == [] and result.patient["symptom_count"] == 0


# ------------------------------------------------------------------ performance status and pain


def test_latest_final_kps_wins_and_preliminary_never_decides():
    p = facts(
        make_kps(90, NOW - timedelta(days=10)),
        make_kps(60, NOW - timedelta(days=1)),
        make_kps(100, NOW, status="preliminary"),
        make_kps(20, NOW - timedelta(days=20)),
    ).patient
    assert (p["kps"], p["kps_source"]) == (60, "kps")


def test_amended_and_corrected_decide_and_issued_is_used_without_effective():
    p = facts(
        make_kps(90, NOW - timedelta(days=10)), make_kps(50, issued=NOW - timedelta(days=2), status="amended")
    ).patient
    assert p["kps"] == 50


# Revision 2: an ECOG grade stands for its conventional KPS band (no longer the band's lower bound).
@pytest.mark.parametrize("ecog, band", [(0, (90, 100)), (1, (70, 80)), (2, (50, 60)), (3, (30, 40)), (4, (10, 20))])
def test_ecog_gives_its_kps_band(ecog, band):
    p = facts(make_ecog(ecog, NOW)).patient
    assert "kps" not in p and p["ecog"] == ecog
    assert (p["kps_min"], p["kps_max"], p["kps_source"]) == (*band, "ecog")


def test_ecog_5_gives_no_kps():
    p = facts(make_condition("C50.9", ICD10), make_ecog(5, NOW)).patient
    assert p["ecog"] == 5 and "kps" not in p and p["kps_source"] == "none"
    assert p["eligibility.verdict"] == "undetermined"


def test_kps_is_preferred_over_a_newer_ecog():
    p = facts(make_kps(80, NOW - timedelta(days=5)), make_ecog(3, NOW)).patient
    assert (p["kps"], p["kps_source"], p["ecog"], p["kps_min"]) == (80, "kps", 3, 80)


@pytest.mark.parametrize("kps, group", [(70, "A"), (80, "B")])
def test_kps_70_80_boundary_moves_van_der_linden_group(kps, group):
    p = facts(make_condition("C61", ICD10), make_condition("C78.7", ICD10), make_kps(kps, NOW)).patient
    assert p["vdl.group"] == group


def test_nrs_latest_previous_rising():
    p = facts(
        make_nrs(4, NOW - timedelta(days=7)),
        make_nrs(8, NOW - timedelta(days=1)),
        make_nrs(2, NOW - timedelta(days=30)),
        make_nrs(10, NOW, status="preliminary"),
    ).patient
    assert (p["nrs"], p["nrs_previous"], p["nrs_rising"]) == (8, 4, True)
    p = facts(make_nrs(8, NOW - timedelta(days=7)), make_nrs(8, NOW)).patient
    assert p["nrs_rising"] is False
    p = facts(make_nrs(8, NOW)).patient
    assert p["nrs"] == 8 and "nrs_previous" not in p and "nrs_rising" not in p


# ------------------------------------------------------------------ SINS lesions


def test_complete_sins_lesion():
    result = facts(make_sins("T12", SINS_ANSWERS_18, total=18))
    (lesion,) = result.lesions
    assert lesion["lesion.level"] == "T12" and lesion["lesion.sins_total"] == 18
    assert (lesion["lesion.sins_min"], lesion["lesion.sins_max"], lesion["lesion.sins_complete"]) == (18, 18, True)
    assert lesion["lesion.sins_category"] == "unstable" and lesion["lesion.discordant"] is False
    assert lesion["missing"] == []
    assert result.patient["sins.count"] == 1 and result.patient["sins.lesions"] == "T12: 18 (unstable)"
    assert result.patient["spinal_involvement"] is True


def test_discordant_stated_total_uses_the_computed_one():
    (lesion,) = facts(make_sins("L1", SINS_ANSWERS_0, total=9)).lesions
    assert lesion["lesion.sins_total"] == 0 and lesion["lesion.stated_total"] == 9
    assert lesion["lesion.discordant"] is True and lesion["lesion.sins_category"] == "stable"


def test_incomplete_sins_range_and_missing_components():
    answers = {k: v for k, v in SINS_ANSWERS_18.items() if k != "pain"}
    result = facts(make_sins("L2", answers, total=16))
    (lesion,) = result.lesions
    assert "lesion.sins_total" not in lesion and lesion["lesion.sins_complete"] is False
    assert (lesion["lesion.sins_min"], lesion["lesion.sins_max"]) == (15, 18)
    assert lesion["lesion.sins_category"] == "unstable"
    assert lesion["missing"] == ["SINS pain component missing"]
    assert lesion["lesion.discordant"] is False  # 16 is a possible total
    assert result.patient["sins.lesions"] == "L2: 15-18 (unstable, incomplete)"


def test_several_lesions_highest_first_and_latest_per_level():
    result = facts(
        make_sins("T4", {"location": "loc-semirigid"}, when=NOW - timedelta(days=1)),
        make_sins("L1", SINS_ANSWERS_0, when=NOW - timedelta(days=30)),
        make_sins(
            "L1",
            dict(
                SINS_ANSWERS_0, location="loc-junctional", pain="pain-mechanical", posterolateral="postero-unilateral"
            ),
            when=NOW - timedelta(days=2),
        ),
        make_sins("L3", SINS_ANSWERS_0, when=NOW, status="preliminary"),
    )
    assert [les["lesion.level"] for les in result.lesions] == ["L1", "T4"]
    p = result.patient
    assert (p["sins.count"], p["sins.max_min"], p["sins.max_max"]) == (2, 7, 16)
    assert p["sins.lesions"] == "L1: 7 (potentially unstable); T4: 1-16 (incomplete)"


def test_only_a_stated_total_is_used_and_flagged():
    (lesion,) = facts(make_sins("T8", {}, total=8)).lesions
    assert lesion["lesion.sins_total"] == 8 and lesion["lesion.total_source"] == "stated"
    assert lesion["lesion.sins_category"] == "potentially-unstable" and lesion["lesion.sins_complete"] is False
    assert lesion["missing"] == ["SINS components not recorded: stated total used"]


def test_sins_components_as_member_observations():
    members = [
        make_observation(code, SF, value=answer, id=f"m{i}", when=NOW)
        for i, (code, answer) in enumerate(
            [
                ("sins-location", "loc-junctional"),
                ("sins-pain", "pain-mechanical"),
                ("sins-bone-lesion", "lesion-lytic"),
            ]
        )
    ]
    panel = make_sins("C7", {}, when=NOW, has_member=[f"Observation/m{i}" for i in range(3)])
    (lesion,) = facts(panel, *members).lesions
    assert (lesion["lesion.sins_min"], lesion["lesion.sins_max"]) == (8, 18)
    assert len(lesion["missing"]) == 3


def test_lesion_without_body_site_is_named_by_its_id():
    (lesion,) = facts(make_sins(None, SINS_ANSWERS_0, id="sx")).lesions
    assert lesion["lesion.level"] == "sx"


# ------------------------------------------------------------------ draft orders


def test_draft_orders():
    drafts = [
        make_service_request("mri-whole-spine", id="mri", priority="urgent", due=NOW + timedelta(hours=48)),
        make_service_request(
            "spinal-surgery-combined",
            id="op",
            priority=None,
            due=NOW + timedelta(days=3),
            due_field="occurrenceDateTime",
        ),
        make_service_request("spine-surgery-referral", id="ref", priority="stat"),
        make_service_request("xyz", "urn:local", id="lab"),
    ]
    result = facts(hook="order-select", drafts=drafts, selections=["ServiceRequest/mri"])
    by_id = {o["order.id"]: o for o in result.orders}
    assert by_id["mri"] == {
        "order.kind": "mri-spine",
        "order.id": "mri",
        "order.resource": "ServiceRequest/mri",
        "order.selected": True,
        "order.priority": "urgent",
        "order.priority_rank": 3,
        "order.deadline_hours": 48.0,
    }
    assert by_id["op"]["order.kind"] == "spinal-surgery-combined" and by_id["op"]["order.deadline_hours"] == 72.0
    assert by_id["op"]["order.selected"] is False and "order.priority" not in by_id["op"]
    assert by_id["ref"]["order.priority_rank"] == 1 and by_id["lab"]["order.kind"] == "other"
    assert result.order_resources["mri"] == drafts[0]
    p = result.patient
    assert p["draft.mri"] is True and p["draft.spinal_surgery"] is True and p["draft.combined_surgery"] is True


def test_order_sign_selects_every_order():
    result = facts(hook="order-sign", drafts=[make_service_request("spinal-surgery", id="a")])
    assert result.orders[0]["order.selected"] is True
    assert result.patient["draft.spinal_surgery"] is True and result.patient["draft.combined_surgery"] is False


# ------------------------------------------------------------------ shape of the output


def test_facts_are_json_scalars_or_string_lists_and_data_quality_is_exposed():
    bad = make_kps(80, NOW, id="bad")
    bad["valueInteger"] = "x"
    result = facts(
        make_condition("C50.9", ICD10),
        make_condition("radicular-deficit"),
        make_kps(70, NOW),
        make_sins("T12", SINS_ANSWERS_18),
        bad,
        drafts=[make_service_request(id="a")],
    )
    for subject in [result.patient, *result.symptoms, *result.lesions, *result.orders]:
        for name, value in subject.items():
            assert value is not None, name
            assert isinstance(value, (str, int, float, bool)) or (
                isinstance(value, list) and all(isinstance(v, str) for v in value)
            ), name
    json.dumps(result.patient)
    assert result.data_quality == [{"resource": "Observation/bad", "issue": result.data_quality[0]["issue"]}]
    assert result.patient["data_quality"][0].startswith("Observation/bad: invalid FHIR R4")
    assert result.provenance["kps"] == [f"Observation/{r}" for r in [result.provenance["kps"][0].split("/")[1]]]
    assert result.provenance["cancer"][0].startswith("Condition/")


def test_unrelated_vitals_are_filtered_before_validation():
    vitals = [make_vital(NOW - timedelta(minutes=i)) for i in range(300)]
    result = facts(*vitals, make_kps(80, NOW), make_condition("C50.9", ICD10))
    assert result.validated == 3  # Patient, KPS, cancer
    assert result.patient["kps"] == 80


def test_now_must_be_aware():
    with pytest.raises(ValueError, match="timezone-aware"):
        derive_facts([], datetime(2026, 1, 1), "patient-view", "p1")


def test_status_is_read_from_the_hl7_coding_not_the_first_one():
    res = make_condition("C79.51", ICD10, clinical="resolved")
    res["clinicalStatus"]["coding"].insert(0, {"system": "urn:local:status", "code": "active"})
    assert facts(res).patient["spinal_metastasis"] is False
