"""Every rule's example cases, as data. tools/make_cases.py turns them into rules/*/cases/*.json.

A case: rule, name (= expected outcome), title, resources (FHIR), optional hook / draft_orders /
selections, cards (the exact cards the rule must return), optional absentRules / presentRules.
"""

from __future__ import annotations

from typing import Any

from fhir_build import condition, ecog, kps, no_visceral, nrs, service_request, sins, sins_total, symptom

CASES: list[dict[str, Any]] = []


def case(
    rule: str, name: str, title: str, resources: list[dict[str, Any]], cards: list[dict[str, Any]], **extra: Any
) -> None:
    CASES.append({"rule": rule, "name": name, "title": title, "resources": resources, "cards": cards, **extra})


def card(rule: str, indicator: str, outcome: Any, **checks: Any) -> dict[str, Any]:
    return {"ruleId": rule, "indicator": indicator, "outcome": outcome, **checks}


def breast_ca(**kw: Any) -> dict[str, Any]:
    return condition("ca-breast", "breast", onset="$now-400d", recorded="$now-400d", **kw)


def bone_mets(rid: str = "met-bone", concept: str = "bone-metastasis", **kw: Any) -> dict[str, Any]:
    return condition(rid, concept, onset="$now-60d", recorded="$now-60d", **kw)


# SINS answer sets with their Fisher totals (asserted below so a typo cannot shift a boundary)
S4 = {
    "location": "loc-semirigid",
    "pain": "pain-occasional",
    "lesion": "lesion-blastic",
    "alignment": "align-normal",
    "collapse": "collapse-involved-gt50",
    "posterolateral": "postero-unilateral",
}
S6 = {
    "location": "loc-mobile",
    "pain": "pain-mechanical",
    "lesion": "lesion-mixed",
    "alignment": "align-normal",
    "collapse": "collapse-none",
    "posterolateral": "postero-none",
}
S7 = {
    "location": "loc-mobile",
    "pain": "pain-mechanical",
    "lesion": "lesion-mixed",
    "alignment": "align-normal",
    "collapse": "collapse-involved-gt50",
    "posterolateral": "postero-none",
}
S9 = {
    "location": "loc-semirigid",
    "pain": "pain-mechanical",
    "lesion": "lesion-lytic",
    "alignment": "align-normal",
    "collapse": "collapse-lt50",
    "posterolateral": "postero-unilateral",
}
S12 = {
    "location": "loc-junctional",
    "pain": "pain-mechanical",
    "lesion": "lesion-lytic",
    "alignment": "align-normal",
    "collapse": "collapse-gt50",
    "posterolateral": "postero-unilateral",
}
S13 = {
    "location": "loc-junctional",
    "pain": "pain-mechanical",
    "lesion": "lesion-lytic",
    "alignment": "align-deformity",
    "collapse": "collapse-lt50",
    "posterolateral": "postero-unilateral",
}
S18 = {
    "location": "loc-junctional",
    "pain": "pain-mechanical",
    "lesion": "lesion-lytic",
    "alignment": "align-subluxation",
    "collapse": "collapse-gt50",
    "posterolateral": "postero-bilateral",
}
for answers, total in ((S4, 4), (S6, 6), (S7, 7), (S9, 9), (S12, 12), (S13, 13), (S18, 18)):
    assert sins_total(answers) == total, (answers, total)
# incomplete: 3 known points, collapse + posterolateral missing -> 3..9 (crosses 7)
S_CROSS = {
    "location": "loc-semirigid",
    "pain": "pain-occasional",
    "lesion": "lesion-mixed",
    "alignment": "align-normal",
}
# incomplete: 8 known points, three components missing -> 8..18 (minimum already >= 7)
S_MIN8 = {"location": "loc-junctional", "pain": "pain-mechanical", "lesion": "lesion-lytic"}
# incomplete: 0 known points, collapse + posterolateral missing -> 0..6 (cannot reach 7)
S_MAX6 = {"location": "loc-rigid", "pain": "pain-free", "lesion": "lesion-blastic", "alignment": "align-normal"}
# incomplete: 15 known points, posterolateral missing -> 15..18
S_MIN15 = {
    "location": "loc-junctional",
    "pain": "pain-mechanical",
    "lesion": "lesion-lytic",
    "alignment": "align-subluxation",
    "collapse": "collapse-gt50",
}

# =================================================================================================
# mri-urgency
R = "mri-urgency"
T1 = dict(
    deadlineHours=12,
    summaryContains="12 h",
    suggestionResource="ServiceRequest",
    suggestionAction="create",
    suggestionPriority="stat",
)
T2 = dict(deadlineHours=24, summaryContains="24 h", suggestionResource="ServiceRequest", suggestionPriority="asap")
T3 = dict(deadlineHours=48, summaryContains="48 h", suggestionResource="ServiceRequest", suggestionPriority="urgent")
T4 = dict(deadlineHours=168, summaryContains="1 week", suggestionResource="ServiceRequest", suggestionPriority="urgent")
T5 = dict(
    deadlineHours=336, summaryContains="2 weeks", suggestionResource="ServiceRequest", suggestionPriority="routine"
)

case(
    R,
    "tier1-suspected-mescc-provisional",
    "Provisional MESCC (clinical suspicion) in breast cancer: MRI within 12 h, stat",
    [breast_ca(), condition("mescc-1", "mescc", onset="$now-2h", recorded="$now-1h", verification="provisional")],
    [card(R, "critical", 1, **T1)],
    absentRules=["mescc-treatment"],
)
case(
    R,
    "tier1-suspected-mescc-differential-sf-code",
    "MESCC on the differential (SF code): clinical suspicion, MRI within 12 h",
    [breast_ca(), condition("mescc-1", "mescc-sf", onset="$now-5h", verification="differential")],
    [card(R, "critical", 1, **T1)],
    absentRules=["mescc-treatment"],
)
case(
    R,
    "tier1-leg-weakness",
    "Decreased strength in the legs since yesterday (Table 2 right column): MRI within 12 h",
    [breast_ca(), symptom("sx-1", "leg-weakness", onset="$now-1d")],
    [card(R, "critical", 1, **T1)],
)
case(
    R,
    "tier1-unable-to-walk",
    "Unable to walk or stand in prostate cancer: MRI within 12 h",
    [condition("ca-prostate", "prostate", onset="$now-1100d"), symptom("sx-1", "unable-to-walk", onset="$now-6h")],
    [card(R, "critical", 1, **T1)],
)
case(
    R,
    "tier1-lhermitte-sign",
    "Lhermitte's sign in lung cancer: MRI within 12 h",
    [condition("ca-lung", "lung", onset="$now-200d"), symptom("sx-1", "lhermitte-sign", onset="$now-4d")],
    [card(R, "critical", 1, **T1)],
)
case(
    R,
    "tier1-sensory-level",
    "Numbness spreading down from the chest: MRI within 12 h",
    [breast_ca(), symptom("sx-1", "sensory-level", onset="$now-2d")],
    [card(R, "critical", 1, **T1)],
)
case(
    R,
    "tier1-bilateral-radicular-pain",
    "Bilateral radicular pain (bodySite right and left): MRI within 12 h",
    [breast_ca(), symptom("sx-1", "radicular-pain", onset="$now-10d", side="bilateral")],
    [card(R, "critical", 1, **T1)],
)
case(
    R,
    "tier1-radicular-deficit-left-and-right",
    "Radicular deficit recorded on the left and on the right: bilateral, MRI within 12 h",
    [
        breast_ca(),
        symptom("sx-1", "radicular-deficit", onset="$now-20d", side="left", course="stable"),
        symptom("sx-2", "radicular-deficit", onset="$now-15d", side="right", course="stable"),
    ],
    [card(R, "critical", 1, **T1)],
)
case(
    R,
    "tier1-radicular-pain-laterality-unknown",
    "Radicular pain without bodySite: unknown laterality is read as bilateral (tier 1); the card says so",
    [breast_ca(), symptom("sx-1", "radicular-pain", onset="$now-5d")],
    [card(R, "critical", 1, missing=["laterality"], **T1)],
)
case(
    R,
    "tier1-most-urgent-finding-wins",
    "Local back pain for 3 weeks plus new leg weakness: the most urgent finding sets the tier",
    [
        breast_ca(),
        symptom("sx-1", "local-back-pain", onset="$now-21d"),
        symptom("sx-2", "leg-weakness", onset="$now-12h"),
    ],
    [card(R, "critical", 1, summaryContains="12 h", deadlineHours=12)],
)
case(
    R,
    "tier2-progressive-deficit-3-days",
    "Unilateral progressive radicular deficit since 3 days: MRI within 24 h",
    [breast_ca(), symptom("sx-1", "radicular-deficit", onset="$now-3d", side="left", course="progressive")],
    [card(R, "critical", 2, **T2)],
)
case(
    R,
    "tier2-deficit-exactly-7-days",
    "Boundary: progressive unilateral deficit that developed exactly 7 days ago is 'within seven days': 24 h",
    [breast_ca(), symptom("sx-1", "radicular-deficit", onset="$now-7d", side="right", course="progressive")],
    [card(R, "critical", 2, **T2)],
)
case(
    R,
    "tier3-deficit-7-days-and-1-hour",
    "Boundary: progressive unilateral deficit developing over 7 days and 1 hour: 48 h",
    [breast_ca(), symptom("sx-1", "radicular-deficit", onset="$now-169h", side="right", course="progressive")],
    [card(R, "warning", 3, **T3)],
)
case(
    R,
    "tier3-progressive-deficit-3-weeks",
    "Unilateral radicular deficit progressing over 3 weeks in kidney cancer: MRI within 48 h",
    [
        condition("ca-kidney", "kidney", onset="$now-730d"),
        symptom("sx-1", "radicular-deficit", onset="$now-3w", side="left", course="progressive"),
    ],
    [card(R, "warning", 3, **T3)],
)
case(
    R,
    "tier2-deficit-course-unknown",
    "Unilateral radicular deficit since 2 days without a course: unknown course is read as progressive (24 h)",
    [breast_ca(), symptom("sx-1", "radicular-deficit", onset="$now-2d", side="left")],
    [card(R, "critical", 2, missing=["course"], **T2)],
)
case(
    R,
    "tier2-deficit-onset-unknown",
    "Progressive unilateral radicular deficit without onset: unknown onset is read as within 7 days (24 h)",
    [
        breast_ca(),
        symptom("sx-1", "radicular-deficit", onset=None, recorded="$now-30d", side="right", course="progressive"),
    ],
    [card(R, "critical", 2, missing=["onset"], **T2)],
)
case(
    R,
    "tier4-radicular-pain-right",
    "Unilateral (right) radicular pain: MRI within 1 week",
    [breast_ca(), symptom("sx-1", "radicular-pain", onset="$now-4d", side="right")],
    [card(R, "warning", 4, **T4)],
)
case(
    R,
    "tier4-stable-unilateral-deficit",
    "Unilateral radicular deficit that is stable: at least tier 4, MRI within 1 week",
    [breast_ca(), symptom("sx-1", "radicular-deficit", onset="$now-2d", side="left", course="stable")],
    [card(R, "warning", 4, **T4)],
)
case(
    R,
    "tier4-improving-unilateral-deficit",
    "Unilateral radicular deficit that is improving: tier 4, MRI within 1 week",
    [breast_ca(), symptom("sx-1", "radicular-deficit", onset="$now-20d", side="right", course="improving")],
    [card(R, "warning", 4, **T4)],
)
case(
    R,
    "tier4-cancer-in-remission",
    "Breast cancer in remission still counts as cancer: unilateral radicular pain, MRI within 1 week",
    [breast_ca(clinical="remission"), symptom("sx-1", "radicular-pain", onset="$now-3d", side="left")],
    [card(R, "warning", 4, **T4)],
)
case(
    R,
    "tier5-local-back-pain",
    "Only local back pain for 10 days in breast cancer: MRI within 2 weeks",
    [breast_ca(), symptom("sx-1", "local-back-pain", onset="$now-10d")],
    [card(R, "info", 5, **T5)],
)
case(
    R,
    "tier5-snomed-low-back-pain",
    "Low back pain coded in SNOMED (279039007) counts as local back pain: MRI within 2 weeks",
    [condition("ca-prostate", "prostate", onset="$now-1100d"), symptom("sx-1", "low-back-pain", onset="$now-14d")],
    [card(R, "info", 5, **T5)],
)
case(
    R,
    "tier5-nocturnal-back-pain",
    "Back pain lying down that eases sitting up (Table 2): MRI within 2 weeks",
    [breast_ca(), symptom("sx-1", "nocturnal-back-pain", onset="$now-9d")],
    [card(R, "info", 5, **T5)],
)
case(
    R,
    "tier5-refuted-leg-weakness-ignored",
    "Leg weakness refuted; local back pain remains: tier 5, not tier 1",
    [
        breast_ca(),
        symptom("sx-1", "leg-weakness", onset="$now-2d", verification="refuted"),
        symptom("sx-2", "interscapular-pain", onset="$now-6d"),
    ],
    [card(R, "info", 5, **T5)],
)
case(
    R,
    "tier5-entered-in-error-deficit-ignored",
    "Radicular deficit entered in error; back pain remains: tier 5",
    [
        breast_ca(),
        symptom(
            "sx-1",
            "radicular-deficit",
            onset="$now-1d",
            side="left",
            course="progressive",
            verification="entered-in-error",
        ),
        symptom("sx-2", "local-back-pain", onset="$now-5d"),
    ],
    [card(R, "info", 5, **T5)],
)
case(
    R,
    "no-card-resolved-symptom",
    "Leg weakness resolved: no active symptom, no MRI card",
    [breast_ca(), symptom("sx-1", "leg-weakness", onset="$now-30d", clinical="resolved")],
    [],
)
case(
    R,
    "no-card-without-cancer",
    "Leg weakness without any malignancy: the guideline does not apply, no MRI card",
    [symptom("sx-1", "leg-weakness", onset="$now-1d")],
    [],
)
case(
    R,
    "no-card-refuted-cancer",
    "Malignancy refuted: not a patient with cancer, no MRI card",
    [breast_ca(verification="refuted"), symptom("sx-1", "radicular-pain", onset="$now-2d", side="left")],
    [],
)
case(R, "no-card-cancer-without-symptoms", "Breast cancer without any alarm symptom: no MRI card", [breast_ca()], [])
case(
    R,
    "no-card-confirmed-mescc",
    "MESCC already confirmed with leg weakness: no MRI card, the MESCC card applies",
    [
        breast_ca(),
        condition("mescc-1", "mescc", onset="$now-3h", recorded="$now-3h"),
        symptom("sx-1", "leg-weakness", onset="$now-1d"),
    ],
    [],
    presentRules=["mescc-treatment"],
)
case(
    R,
    "draft-mri-too-late-tier1-order-select",
    "order-select: tier 1 (leg weakness) but the draft MRI is routine in 2 weeks: warning, update to stat within 12 h",
    [breast_ca(), symptom("sx-1", "leg-weakness", onset="$now-1d")],
    [card(R, "warning", 1, deadlineHours=12, suggestionAction="update", suggestionPriority="stat", overrideReasons=1)],
    hook="order-select",
    draft_orders=[service_request("sr-mri", "mri", priority="routine", end="$now+14d")],
)
case(
    R,
    "draft-mri-too-late-tier2-order-sign",
    "order-sign: tier 2 deficit but the draft MRI is urgent within 48 h: warning, update to asap within 24 h",
    [breast_ca(), symptom("sx-1", "radicular-deficit", onset="$now-2d", side="left", course="progressive")],
    [card(R, "warning", 2, deadlineHours=24, suggestionAction="update", suggestionPriority="asap")],
    hook="order-sign",
    draft_orders=[service_request("sr-mri", "mri", priority="urgent", end="$now+48h")],
)
case(
    R,
    "draft-mri-without-priority-tier4-order-select",
    "order-select: tier 4 radicular pain, draft MRI without priority (routine by default) and no date: warning",
    [breast_ca(), symptom("sx-1", "radicular-pain", onset="$now-2d", side="right")],
    [card(R, "warning", 4, deadlineHours=168, suggestionAction="update", suggestionPriority="urgent")],
    hook="order-select",
    draft_orders=[service_request("sr-mri", "mri", priority=None, end=None)],
)
case(
    R,
    "draft-mri-too-late-tier5-order-select",
    "order-select: local back pain (tier 5), draft MRI routine in 4 weeks: warning, bring within 2 weeks",
    [breast_ca(), symptom("sx-1", "local-back-pain", onset="$now-7d")],
    [card(R, "warning", 5, deadlineHours=336, suggestionAction="update")],
    hook="order-select",
    draft_orders=[service_request("sr-mri", "mri", priority="routine", end="$now+4w")],
)
case(
    R,
    "tier1-draft-mri-on-time-order-select",
    "order-select: tier 1 and the draft MRI is stat within 6 h: no correction needed, the tier card stands",
    [breast_ca(), symptom("sx-1", "unsteady-gait", onset="$now-1d")],
    [card(R, "critical", 1, deadlineHours=12)],
    hook="order-select",
    draft_orders=[service_request("sr-mri", "mri", priority="stat", end="$now+6h")],
)
case(
    R,
    "tier5-draft-mri-on-time-order-sign",
    "order-sign: tier 5 and the draft MRI is routine within 10 days: the tier card stands",
    [breast_ca(), symptom("sx-1", "local-back-pain", onset="$now-3d")],
    [card(R, "info", 5, deadlineHours=336)],
    hook="order-sign",
    draft_orders=[service_request("sr-mri", "mri", priority="routine", end="$now+10d")],
)
case(
    R,
    "tier3-unselected-late-draft-not-corrected-order-select",
    "order-select: a late draft MRI that is not among the selections is not corrected; tier card stands",
    [breast_ca(), symptom("sx-1", "radicular-deficit", onset="$now-10d", side="left", course="progressive")],
    [card(R, "warning", 3, deadlineHours=48, suggestionAction="create")],
    hook="order-select",
    draft_orders=[service_request("sr-mri", "mri", priority="routine", end="$now+14d")],
    selections=["ServiceRequest/sr-other"],
)

# =================================================================================================
# sins-referral
R = "sins-referral"
REF = dict(suggestionResource="ServiceRequest", suggestionAction="create")
case(
    R,
    "stable-sins-6-no-card",
    "Boundary: SINS 6 (stable): no referral card",
    [breast_ca(), bone_mets(), sins("sins-t8", "T8", S6)],
    [],
)
case(
    R,
    "potentially-unstable-sins-7",
    "Boundary: SINS 7 at L3: potentially unstable, discuss with a spine surgeon",
    [breast_ca(), bone_mets(), sins("sins-l3", "L3", S7)],
    [
        card(
            R,
            "warning",
            "potentially-unstable",
            sins={"total": 7, "category": "potentially-unstable"},
            summaryContains="discuss with a spine surgeon",
            **REF,
        )
    ],
)
case(
    R,
    "potentially-unstable-sins-12",
    "Boundary: SINS 12 at T12: still potentially unstable",
    [breast_ca(), bone_mets(), sins("sins-t12", "T12", S12)],
    [card(R, "warning", "potentially-unstable", sins={"total": 12, "category": "potentially-unstable"}, **REF)],
)
case(
    R,
    "unstable-sins-13",
    "Boundary: SINS 13 at T12: unstable, spine surgeon now",
    [breast_ca(), bone_mets(), sins("sins-t12", "T12", S13)],
    [
        card(
            R,
            "critical",
            "unstable",
            sins={"total": 13, "category": "unstable"},
            summaryContains="spine surgeon now",
            suggestionPriority="stat",
            **REF,
        )
    ],
)
case(
    R,
    "unstable-sins-18",
    "Maximal SINS 18 at C7: unstable",
    [condition("ca-lung", "lung", onset="$now-100d"), bone_mets(), sins("sins-c7", "C7", S18)],
    [card(R, "critical", "unstable", sins={"total": 18, "category": "unstable"}, **REF)],
)
case(
    R,
    "potentially-unstable-sins-9-without-coded-cancer",
    "SINS 9 with no malignancy coded yet: the SINS itself records a neoplastic lesion; card fires",
    [sins("sins-t10", "T10", S9)],
    [card(R, "warning", "potentially-unstable", sins={"total": 9, "category": "potentially-unstable"})],
)
case(
    R,
    "incomplete-range-crosses-7",
    "Collapse and posterolateral components missing: SINS 3-9 crosses 7; info card asks for them",
    [breast_ca(), bone_mets(), sins("sins-t6", "T6", S_CROSS)],
    [card(R, "info", "incomplete", sins={"min": 3, "max": 9}, missing=["collapse", "posterolateral"])],
)
case(
    R,
    "potentially-unstable-incomplete-minimum-8",
    "Three components missing but the known ones already give 8: fires as potentially unstable (8-18)",
    [breast_ca(), bone_mets(), sins("sins-l1", "L1", S_MIN8)],
    [card(R, "warning", "potentially-unstable", sins={"min": 8, "max": 18}, **REF)],
)
case(
    R,
    "unstable-incomplete-minimum-15",
    "Posterolateral component missing, the rest gives 15: unstable whatever it is",
    [breast_ca(), bone_mets(), sins("sins-t11", "T11", S_MIN15)],
    [card(R, "critical", "unstable", sins={"min": 15, "max": 18}, **REF)],
)
case(
    R,
    "stable-incomplete-maximum-6-no-card",
    "Two components missing but the range 0-6 cannot reach 7: no card",
    [breast_ca(), bone_mets(), sins("sins-s3", "S3", S_MAX6)],
    [],
)
case(
    R,
    "potentially-unstable-discordant-stated-total",
    "Stated total 5 but components add up to 9: card reports the discordance and uses 9",
    [breast_ca(), bone_mets(), sins("sins-t9", "T9", S9, stated=5)],
    [
        card(
            R,
            "warning",
            "potentially-unstable",
            sins={"total": 9, "category": "potentially-unstable"},
            detailContains=["recorded on the assessment: **5**", "disagrees"],
        )
    ],
)
case(
    R,
    "potentially-unstable-stated-total-only",
    "Only a stated total of 9 (no components): the stated total is used and the card says so",
    [breast_ca(), bone_mets(), sins("sins-t9", "T9", {}, stated=9)],
    [card(R, "warning", "potentially-unstable", missing=["stated total used"])],
)
case(
    R,
    "stable-concordant-stated-total-no-card",
    "Stated total 4 agrees with the components: stable, no card",
    [breast_ca(), bone_mets(), sins("sins-t4", "T4", S4, stated=4)],
    [],
)
case(
    R,
    "unstable-several-lesions-highest-decides",
    "Three lesions (L2 SINS 4, T12 SINS 13, T7 SINS 9): the highest decides, the card lists each",
    [breast_ca(), bone_mets(), sins("sins-l2", "L2", S4), sins("sins-t12", "T12", S13), sins("sins-t7", "T7", S9)],
    [
        card(
            R,
            "critical",
            "unstable",
            sins={"total": 13, "category": "unstable"},
            summaryContains="T12",
            detailContains=["L2", "T7", "T12"],
        )
    ],
)
case(
    R,
    "potentially-unstable-highest-of-two-decides",
    "Two potentially unstable lesions (L4 SINS 7, T12 SINS 12): T12 decides",
    [breast_ca(), bone_mets(), sins("sins-l4", "L4", S7), sins("sins-t12", "T12", S12)],
    [card(R, "warning", "potentially-unstable", sins={"total": 12}, summaryContains="T12", detailContains="L4")],
)
case(
    R,
    "potentially-unstable-latest-assessment-per-level-wins",
    "T12 scored 13 a month ago and 9 today: the latest assessment of the level decides (9)",
    [
        breast_ca(),
        bone_mets(),
        sins("sins-t12-old", "T12", S13, when="$now-30d"),
        sins("sins-t12-new", "T12", S9, when="$now-1d"),
    ],
    [card(R, "warning", "potentially-unstable", sins={"total": 9, "category": "potentially-unstable"})],
)
case(
    R,
    "potentially-unstable-preliminary-assessment-ignored",
    "A preliminary SINS 13 does not decide; the final SINS 9 at the same level does",
    [
        breast_ca(),
        bone_mets(),
        sins("sins-t12-final", "T12", S9, when="$now-3d"),
        sins("sins-t12-prelim", "T12", S13, when="$now-2h", status="preliminary"),
    ],
    [card(R, "warning", "potentially-unstable", sins={"total": 9})],
)
case(
    R,
    "no-card-entered-in-error-assessment",
    "The only SINS (13) was entered in error: no card",
    [breast_ca(), bone_mets(), sins("sins-t12", "T12", S13, status="entered-in-error")],
    [],
)
case(
    R,
    "unstable-sins-13-order-sign",
    "order-sign of an unrelated order: the unstable spine is still flagged",
    [breast_ca(), bone_mets(), sins("sins-t12", "T12", S13)],
    [card(R, "critical", "unstable")],
    hook="order-sign",
    draft_orders=[service_request("sr-rt", "radiotherapy", priority="routine", end="$now+7d")],
)

# =================================================================================================
# survival-estimate
R = "survival-estimate"


def vdl(group: str, bollen: str | None = None) -> list[dict[str, str]]:
    """Expected survival estimates. Bollen groups follow rules/scores/bollen.yaml (draft): breast
    favourable, prostate moderate, lung unfavourable; other primaries are not classified there."""
    estimates = [{"model": "van-der-linden", "group": group}]
    if bollen:
        estimates.append({"model": "bollen", "group": bollen})
    return estimates


case(
    R,
    "advise-van-der-linden-c-score-6",
    "Breast, KPS 90, no visceral metastases: Van der Linden score 6, group C (18.7 months)",
    [breast_ca(), bone_mets(), kps("kps-1", 90), no_visceral()],
    [card(R, "info", "advise", survival=vdl("C", "A"), summaryContains="18.7")],
)
case(
    R,
    "advise-van-der-linden-c-kps-80-boundary",
    "Boundary: KPS 80 scores 2 points: breast, no visceral metastases -> score 6, group C",
    [breast_ca(), bone_mets(), kps("kps-1", 80), no_visceral()],
    [card(R, "info", "advise", survival=vdl("C", "A"))],
)
case(
    R,
    "advise-van-der-linden-b-score-5-kps-70-boundary",
    "Boundary: KPS 70 scores 1 point: breast, no visceral metastases -> score 5, group B (9.0 months)",
    [breast_ca(), bone_mets(), kps("kps-1", 70), no_visceral()],
    [card(R, "info", "advise", survival=vdl("B", "B"))],
)
case(
    R,
    "advise-van-der-linden-b-score-4",
    "Prostate, KPS 80, liver metastases: score 2+2+0 = 4, group B",
    [
        condition("ca-prostate", "prostate", onset="$now-1100d"),
        bone_mets(),
        kps("kps-1", 80),
        condition("met-liver", "liver-metastasis", onset="$now-30d"),
    ],
    [card(R, "info", "advise", survival=vdl("B", "B"))],
)
case(
    R,
    "advise-van-der-linden-a-score-3",
    "Prostate, KPS 70, liver metastases: score 1+2+0 = 3, group A (3.0 months)",
    [
        condition("ca-prostate", "prostate", onset="$now-1100d"),
        bone_mets(),
        kps("kps-1", 70),
        condition("met-liver", "liver-metastasis", onset="$now-30d"),
    ],
    [card(R, "info", "advise", survival=vdl("A", "C"))],
)
case(
    R,
    "advise-van-der-linden-a-lung-kps-70",
    "Lung, KPS 70, no visceral metastases: score 1+1+1 = 3, group A",
    [condition("ca-lung", "lung", onset="$now-100d"), bone_mets(), kps("kps-1", 70), no_visceral()],
    [card(R, "info", "advise", survival=vdl("A", "D"))],
)
case(
    R,
    "advise-ecog-1-converted-to-kps-70",
    "No KPS, ECOG 1: converted to KPS 70 (lower bound): breast, no visceral -> score 5, group B",
    [breast_ca(), bone_mets(), ecog("ecog-1", 1), no_visceral()],
    [card(R, "info", "advise", survival=vdl("B", "B"), detailContains="ecog")],
)
case(
    R,
    "advise-kps-preferred-over-ecog",
    "KPS 90 and ECOG 2 both recorded: KPS is used (score 6, group C), ECOG only as fallback",
    [breast_ca(), bone_mets(), kps("kps-1", 90, when="$now-5d"), ecog("ecog-1", 2, when="$now-1d"), no_visceral()],
    [card(R, "info", "advise", survival=vdl("C", "A"))],
)
case(
    R,
    "advise-latest-kps-wins",
    "KPS 90 two months ago, KPS 60 yesterday: the latest (60) is used -> breast, no visceral: score 5, group B",
    [breast_ca(), bone_mets(), kps("kps-old", 90, when="$now-60d"), kps("kps-new", 60, when="$now-1d"), no_visceral()],
    [card(R, "info", "advise", survival=vdl("B", "B"))],
)
case(
    R,
    "advise-preliminary-kps-ignored",
    "A preliminary KPS 40 does not decide; the final KPS 90 does (group C)",
    [
        breast_ca(),
        bone_mets(),
        kps("kps-final", 90, when="$now-3d"),
        kps("kps-prelim", 40, when="$now-1h", status="preliminary"),
        no_visceral(),
    ],
    [card(R, "info", "advise", survival=vdl("C", "A"))],
)
case(
    R,
    "advise-missing-kps",
    "No KPS or ECOG: Van der Linden cannot be computed; the card lists KPS as missing",
    [breast_ca(), bone_mets(), no_visceral()],
    [card(R, "info", "advise", missing=["KPS"])],
)
case(
    R,
    "advise-missing-visceral-status",
    "Visceral status unknown (no Condition, no observation): Van der Linden not computable; listed as missing",
    [breast_ca(), bone_mets(), kps("kps-1", 90)],
    [card(R, "info", "advise", missing=["visceral"])],
)
case(
    R,
    "advise-outside-models-myeloma",
    "Multiple myeloma is outside both models: the card says so",
    [condition("ca-myeloma", "myeloma", onset="$now-365d"), bone_mets(), kps("kps-1", 80)],
    [card(R, "info", "advise", summaryContains="do not apply")],
)
case(
    R,
    "advise-outside-models-lymphoma",
    "Lymphoma is outside both models: the card says so",
    [condition("ca-lymphoma", "lymphoma", onset="$now-200d"), bone_mets(), kps("kps-1", 80), no_visceral()],
    [card(R, "info", "advise", summaryContains="do not apply")],
)
case(
    R,
    "advise-outside-models-unknown-primary",
    "Cancer of unknown primary (C80.1) with a bone metastasis: outside both models",
    [condition("ca-cup", "unknown-primary", onset="$now-30d"), bone_mets(), kps("kps-1", 70), no_visceral()],
    [card(R, "info", "advise", summaryContains="do not apply")],
)
case(
    R,
    "advise-primary-not-coded-listed-missing",
    "Bone metastasis coded but no primary tumour at all: the card asks for the primary, no estimate",
    [bone_mets(), kps("kps-1", 90), no_visceral()],
    [card(R, "info", "advise", missing=["primary"], summaryContains="record")],
)
case(
    R,
    "no-card-cancer-without-spinal-metastasis",
    "Breast cancer without a spinal/bone metastasis, MESCC or SINS: no survival card yet",
    [breast_ca(), kps("kps-1", 90), no_visceral()],
    [],
)

# =================================================================================================
# surgery-eligibility
R = "surgery-eligibility"
PROSTATE = condition("ca-prostate", "prostate", onset="$now-1100d")
LIVER = condition("met-liver", "liver-metastasis", onset="$now-30d")
LUNG = condition("ca-lung", "lung", onset="$now-100d")

case(
    R,
    "eligible-van-der-linden-b-sins-9",
    "SINS 9 (surgical indication), breast, KPS 70, no visceral: group B (9 months) meets 3 months",
    [breast_ca(), bone_mets(), sins("sins-t10", "T10", S9), kps("kps-1", 70), no_visceral()],
    [card(R, "info", "eligible", survival=vdl("B", "B"), summaryContains="KPS 70")],
)
case(
    R,
    "eligible-van-der-linden-c-confirmed-mescc",
    "Confirmed MESCC, breast, KPS 90, no visceral: group C (18.7 months): eligible",
    [breast_ca(), bone_mets(), condition("mescc-1", "mescc", onset="$now-4h"), kps("kps-1", 90), no_visceral()],
    [card(R, "info", "eligible", survival=vdl("C", "A"))],
)
case(
    R,
    "eligible-van-der-linden-b-score-4-kps-80",
    "Boundary: prostate, KPS 80, liver metastases = score 4 (group B): eligible",
    [PROSTATE, bone_mets(), LIVER, sins("sins-l1", "L1", S12), kps("kps-1", 80)],
    [card(R, "info", "eligible", survival=vdl("B", "B"))],
)
case(
    R,
    "models-disagree-van-der-linden-a-kps-70",
    "Boundary: same patient with KPS 70 = score 3 (group A, 3.0 mo); Bollen (favourable profile) > 3 months: MDT",
    [PROSTATE, bone_mets(), LIVER, sins("sins-l1", "L1", S12), kps("kps-1", 70)],
    [card(R, "warning", "models-disagree", survival=vdl("A", "C"), detailContains="multidisciplinary")],
)
case(
    R,
    "not-eligible-van-der-linden-a-lung",
    "SINS 12, lung, KPS 70, no visceral: group A (3.0 months): criterion not met",
    [LUNG, bone_mets(), sins("sins-t12", "T12", S12), kps("kps-1", 70), no_visceral()],
    [card(R, "warning", "not-eligible", survival=vdl("A", "D"))],
)
case(
    R,
    "undetermined-missing-kps",
    "SINS 13 but no KPS or ECOG: no eligibility claim, KPS listed as missing",
    [breast_ca(), bone_mets(), sins("sins-t12", "T12", S13), no_visceral()],
    [card(R, "info", "undetermined", missing=["KPS"])],
)
case(
    R,
    "undetermined-missing-visceral-status",
    "Confirmed MESCC, breast, KPS 80, visceral status unknown: no eligibility claim",
    [breast_ca(), bone_mets(), condition("mescc-1", "mescc", onset="$now-2h"), kps("kps-1", 80)],
    [card(R, "info", "undetermined", missing=["visceral"])],
)
case(
    R,
    "undetermined-unknown-primary",
    "SINS 9 in cancer of unknown primary (C80.1): outside the models, no eligibility claim",
    [
        condition("ca-cup", "unknown-primary", onset="$now-30d"),
        bone_mets(),
        sins("sins-t10", "T10", S9),
        kps("kps-1", 80),
        no_visceral(),
    ],
    [card(R, "info", "undetermined", summaryContains="do not apply")],
)
case(
    R,
    "undetermined-primary-not-coded",
    "SINS 9 with a bone metastasis but no primary coded: primary listed as missing, no eligibility claim",
    [bone_mets(), sins("sins-t10", "T10", S9), kps("kps-1", 80), no_visceral()],
    [card(R, "info", "undetermined", missing=["primary"])],
)
case(
    R,
    "undetermined-myeloma-unstable-spine",
    "Myeloma with SINS 13: chemo-sensitive but unstable; survival models do not apply: undetermined",
    [
        condition("ca-myeloma", "myeloma", onset="$now-365d"),
        bone_mets(),
        sins("sins-t12", "T12", S13),
        kps("kps-1", 80),
    ],
    [card(R, "info", "undetermined")],
)
case(
    R,
    "not-eligible-lymphoma-stable-spine-mescc",
    "Lymphoma with confirmed MESCC and a stable spine (SINS 4): chemo-sensitive, treat systemically",
    [
        condition("ca-lymphoma", "lymphoma", onset="$now-100d"),
        bone_mets(),
        condition("mescc-1", "mescc", onset="$now-3h"),
        sins("sins-t8", "T8", S4),
        kps("kps-1", 80),
    ],
    [card(R, "warning", "not-eligible", summaryContains="stable spine")],
)
case(
    R,
    "eligible-draft-surgery-order-select",
    "order-select of spinal surgery (no SINS, no MESCC), breast, KPS 90, no visceral: group C, eligible",
    [breast_ca(), bone_mets(), kps("kps-1", 90), no_visceral()],
    [card(R, "info", "eligible", survival=vdl("C", "A"))],
    hook="order-select",
    draft_orders=[service_request("sr-surg", "surgery", priority="urgent", end="$now+5d")],
)
case(
    R,
    "not-eligible-sign-surgery-group-a-override",
    "order-sign of spinal surgery in Van der Linden group A (lung, KPS 70): warning with override reasons",
    [LUNG, bone_mets(), sins("sins-t12", "T12", S12), kps("kps-1", 70), no_visceral()],
    [card(R, "warning", "not-eligible", overrideReasons=3, survival=vdl("A", "D"))],
    hook="order-sign",
    draft_orders=[service_request("sr-surg", "surgery", priority="urgent", end="$now+3d")],
)
case(
    R,
    "eligible-sign-surgery-group-b",
    "order-sign of spinal surgery in group B (breast, KPS 70, no visceral): no warning, eligible",
    [breast_ca(), bone_mets(), sins("sins-t10", "T10", S9), kps("kps-1", 70), no_visceral()],
    [card(R, "info", "eligible", survival=vdl("B", "B"))],
    hook="order-sign",
    draft_orders=[service_request("sr-surg", "surgery", priority="urgent", end="$now+3d")],
)
case(
    R,
    "not-eligible-combined-surgery-group-a",
    "Combined procedure drafted for lung, KPS 70: group A is below the 6 months a combined procedure needs",
    [LUNG, bone_mets(), kps("kps-1", 70), no_visceral()],
    [card(R, "warning", "not-eligible", summaryContains="6 months")],
    hook="order-select",
    draft_orders=[service_request("sr-comb", "combined", priority="urgent", end="$now+5d")],
)
case(
    R,
    "models-disagree-combined-surgery-6-months",
    "Combined procedure, breast, KPS 70, liver metastases: Van der Linden B (9.0 mo) vs Bollen C (4.8 mo) "
    "straddle 6 months: MDT",
    [breast_ca(), bone_mets(), LIVER, kps("kps-1", 70)],
    [card(R, "warning", "models-disagree", survival=vdl("B", "C"), summaryContains="6-month")],
    hook="order-select",
    draft_orders=[service_request("sr-comb", "combined", priority="urgent", end="$now+5d")],
)
case(
    R,
    "eligible-combined-surgery-group-c",
    "Combined procedure drafted for breast, KPS 90, no visceral: group C (18.7) meets 6 months",
    [breast_ca(), bone_mets(), kps("kps-1", 90), no_visceral()],
    [card(R, "info", "eligible", summaryContains="6-month")],
    hook="order-select",
    draft_orders=[service_request("sr-comb", "combined", priority="urgent", end="$now+5d")],
)
case(
    R,
    "no-card-without-surgical-indication",
    "Bone metastasis with SINS 6 and no MESCC or surgery order: no surgical indication, no card",
    [breast_ca(), bone_mets(), sins("sins-t8", "T8", S6), kps("kps-1", 90), no_visceral()],
    [],
)
case(
    R,
    "no-card-incomplete-sins-below-7",
    "SINS 3-9 (incomplete): minimum below 7 is not yet a surgical indication",
    [breast_ca(), bone_mets(), sins("sins-t6", "T6", S_CROSS), kps("kps-1", 90), no_visceral()],
    [],
)
case(
    R,
    "no-card-suspected-mescc-only",
    "Suspected (provisional) MESCC is not yet a surgical indication: MRI first",
    [
        breast_ca(),
        condition("mescc-1", "mescc", onset="$now-2h", verification="provisional"),
        kps("kps-1", 90),
        no_visceral(),
    ],
    [],
    presentRules=["mri-urgency"],
)

# =================================================================================================
# mescc-treatment
R = "mescc-treatment"
case(
    R,
    "within-window-diagnosed-6-hours-ago",
    "MESCC confirmed 6 h ago: critical, 18 h left to start treatment",
    [breast_ca(), bone_mets(), condition("mescc-1", "mescc", onset="$now-6h", recorded="$now-5h")],
    [card(R, "critical", "within-window", hoursLeft=18, detailContains=["radiation oncologist", "equivalent"])],
    absentRules=["mri-urgency"],
)
case(
    R,
    "within-window-exactly-24-hours",
    "Boundary: diagnosed exactly 24 h ago: 0 h left, not yet overdue",
    [breast_ca(), condition("mescc-1", "mescc", onset="$now-24h")],
    [card(R, "critical", "within-window", hoursLeft=0)],
)
case(
    R,
    "overdue-diagnosed-30-hours-ago",
    "Diagnosed 30 h ago and still on the chart: overdue by 6 h",
    [breast_ca(), condition("mescc-1", "mescc", onset="$now-30h")],
    [card(R, "critical", "overdue", hoursLeft=-6, summaryContains="overdue")],
)
case(
    R,
    "within-window-recorded-date-when-no-onset",
    "No onsetDateTime: the clock runs from recordedDate (2 h ago): 22 h left",
    [
        condition("ca-prostate", "prostate", onset="$now-1100d"),
        condition("mescc-1", "mescc", onset=None, recorded="$now-2h"),
    ],
    [card(R, "critical", "within-window", hoursLeft=22)],
)
case(
    R,
    "within-window-verification-absent",
    "MESCC without verificationStatus counts as a diagnosis (SF code, 1 h ago)",
    [breast_ca(), condition("mescc-1", "mescc-sf", onset="$now-1h", verification=None)],
    [card(R, "critical", "within-window", hoursLeft=23)],
)
case(
    R,
    "within-window-time-unknown",
    "Confirmed MESCC with neither onset nor recorded date: read as just diagnosed, time listed as missing",
    [breast_ca(), condition("mescc-1", "mescc", onset=None, recorded=None)],
    [card(R, "critical", "within-window", summaryContains="unknown")],
)
case(
    R,
    "within-window-order-sign",
    "order-sign while MESCC is confirmed 3 h ago: the clock card still shows (21 h left)",
    [breast_ca(), condition("mescc-1", "mescc", onset="$now-3h")],
    [card(R, "critical", "within-window", hoursLeft=21)],
    hook="order-sign",
    draft_orders=[service_request("sr-rt", "radiotherapy", priority="stat", end="$now+12h")],
)
case(
    R,
    "no-card-suspected-mescc",
    "Provisional MESCC is a suspicion: MRI card, no treatment clock",
    [breast_ca(), condition("mescc-1", "mescc", onset="$now-2h", verification="provisional")],
    [],
    presentRules=["mri-urgency"],
)
case(
    R,
    "no-card-refuted-mescc",
    "MESCC refuted on MRI: no card",
    [breast_ca(), condition("mescc-1", "mescc", onset="$now-20h", verification="refuted")],
    [],
)
case(
    R,
    "no-card-entered-in-error-mescc",
    "MESCC entered in error: no card",
    [breast_ca(), condition("mescc-1", "mescc", onset="$now-2h", verification="entered-in-error")],
    [],
)
case(
    R,
    "no-card-resolved-mescc",
    "MESCC resolved after treatment: no card",
    [breast_ca(), condition("mescc-1", "mescc", onset="$now-40d", clinical="resolved")],
    [],
)
case(
    R,
    "no-card-cauda-equina-without-cancer",
    "Cauda equina syndrome without any malignancy (e.g. disc herniation): not this guideline",
    [condition("ce-1", "cauda-equina", onset="$now-3h")],
    [],
)

# =================================================================================================
# systemic-first
R = "systemic-first"
MYELOMA = condition("ca-myeloma", "myeloma", onset="$now-365d")
case(
    R,
    "advise-myeloma-with-bone-lesion",
    "Myeloma with a bone lesion: systemic treatment first, involve the haematologist",
    [MYELOMA, bone_mets()],
    [card(R, "info", "advise", detailContains="haematologist")],
)
case(
    R,
    "advise-lymphoma-with-back-pain",
    "Lymphoma with back pain (spinal involvement by symptom): systemic first",
    [condition("ca-lymphoma", "lymphoma", onset="$now-100d"), symptom("sx-1", "local-back-pain", onset="$now-5d")],
    [card(R, "info", "advise")],
)
case(
    R,
    "advise-myeloma-with-sins-assessment",
    "Myeloma with a SINS assessment only: spinal involvement, systemic first",
    [MYELOMA, sins("sins-l2", "L2", S4)],
    [card(R, "info", "advise")],
)
case(
    R,
    "advise-myeloma-with-suspected-mescc",
    "Myeloma with suspected MESCC: systemic first (and the MRI card)",
    [MYELOMA, condition("mescc-1", "mescc", onset="$now-2h", verification="provisional")],
    [card(R, "info", "advise")],
    presentRules=["mri-urgency"],
)
case(R, "no-card-myeloma-without-spinal-involvement", "Myeloma without any spinal finding: no card", [MYELOMA], [])
case(
    R,
    "no-card-breast-cancer-with-spinal-metastasis",
    "Breast cancer bone metastasis (not chemo-sensitive): no card",
    [breast_ca(), bone_mets()],
    [],
)

# =================================================================================================
# mdt-consultation
R = "mdt-consultation"
case(
    R,
    "advise-weekly-meeting-symptomatic-metastasis",
    "Bone metastasis with local back pain: discuss in the multidisciplinary meeting",
    [breast_ca(), bone_mets(), symptom("sx-1", "local-back-pain", onset="$now-10d")],
    [card(R, "info", "advise", summaryContains="multidisciplinary")],
)
case(
    R,
    "urgent-ad-hoc-progressive-deficit",
    "Bone metastasis with a progressive radicular deficit: ad hoc consultation today",
    [
        breast_ca(),
        bone_mets(),
        symptom("sx-1", "radicular-deficit", onset="$now-2d", side="left", course="progressive"),
    ],
    [card(R, "warning", "advise", summaryContains="ad hoc")],
)
case(
    R,
    "urgent-ad-hoc-nrs-8-rising",
    "Pain NRS 5 then 8 (severe and rising): ad hoc consultation",
    [
        breast_ca(),
        bone_mets(),
        symptom("sx-1", "local-back-pain", onset="$now-10d"),
        nrs("nrs-1", 5, when="$now-3d"),
        nrs("nrs-2", 8, when="$now-2h"),
    ],
    [card(R, "warning", "advise")],
)
case(
    R,
    "urgent-ad-hoc-nrs-7-rising-boundary",
    "Boundary: NRS 6 then 7 (7 counts as severe) and rising: ad hoc consultation",
    [
        breast_ca(),
        bone_mets(),
        symptom("sx-1", "local-back-pain", onset="$now-10d"),
        nrs("nrs-1", 6, when="$now-2d"),
        nrs("nrs-2", 7, when="$now-1h"),
    ],
    [card(R, "warning", "advise")],
)
case(
    R,
    "advise-weekly-meeting-nrs-8-not-rising",
    "NRS 8 then 8: severe but not rising: weekly meeting",
    [
        breast_ca(),
        bone_mets(),
        symptom("sx-1", "local-back-pain", onset="$now-10d"),
        nrs("nrs-1", 8, when="$now-3d"),
        nrs("nrs-2", 8, when="$now-2h"),
    ],
    [card(R, "info", "advise")],
)
case(
    R,
    "advise-weekly-meeting-nrs-6-rising",
    "Boundary: NRS 4 then 6: rising but below 7: weekly meeting",
    [
        breast_ca(),
        bone_mets(),
        symptom("sx-1", "local-back-pain", onset="$now-10d"),
        nrs("nrs-1", 4, when="$now-3d"),
        nrs("nrs-2", 6, when="$now-2h"),
    ],
    [card(R, "info", "advise")],
)
case(
    R,
    "advise-weekly-meeting-preliminary-nrs-ignored",
    "A preliminary NRS 9 does not count: final NRS 5 then 6, weekly meeting",
    [
        breast_ca(),
        bone_mets(),
        symptom("sx-1", "local-back-pain", onset="$now-10d"),
        nrs("nrs-1", 5, when="$now-3d"),
        nrs("nrs-2", 6, when="$now-1d"),
        nrs("nrs-3", 9, when="$now-1h", status="preliminary"),
    ],
    [card(R, "info", "advise")],
)
case(
    R,
    "urgent-ad-hoc-sins-13",
    "Symptomatic lesion with SINS 13: ad hoc consultation",
    [breast_ca(), bone_mets(), symptom("sx-1", "local-back-pain", onset="$now-10d"), sins("sins-t12", "T12", S13)],
    [card(R, "warning", "advise")],
)
case(
    R,
    "advise-weekly-meeting-sins-12",
    "Boundary: symptomatic lesion with SINS 12: weekly meeting (spine surgeon via the SINS card)",
    [breast_ca(), bone_mets(), symptom("sx-1", "local-back-pain", onset="$now-10d"), sins("sins-t12", "T12", S12)],
    [card(R, "info", "advise")],
    presentRules=["sins-referral"],
)
case(
    R,
    "no-card-asymptomatic-metastasis",
    "Bone metastasis without symptoms: no MDT card (alarm-sheet card instead)",
    [breast_ca(), bone_mets()],
    [],
    presentRules=["alarm-symptom-education"],
)
case(
    R,
    "no-card-symptoms-without-known-metastasis",
    "Back pain in breast cancer without a known spinal metastasis: MRI first, no MDT card yet",
    [breast_ca(), symptom("sx-1", "local-back-pain", onset="$now-10d")],
    [],
    presentRules=["mri-urgency"],
)
case(
    R,
    "no-card-confirmed-mescc",
    "Confirmed MESCC: the MESCC card carries the ad hoc consultation",
    [
        breast_ca(),
        bone_mets(),
        condition("mescc-1", "mescc", onset="$now-2h"),
        symptom("sx-1", "leg-weakness", onset="$now-1d"),
    ],
    [],
    presentRules=["mescc-treatment"],
)

# =================================================================================================
# alarm-symptom-education
R = "alarm-symptom-education"
case(
    R,
    "advise-asymptomatic-bone-metastasis",
    "Bone metastasis without symptoms: give the alarm-symptom sheet",
    [breast_ca(), bone_mets()],
    [card(R, "info", "advise", summaryContains="alarm-symptom sheet")],
)
case(
    R,
    "advise-snomed-bone-metastasis-prostate",
    "Prostate cancer with a SNOMED-coded bone metastasis, no symptoms",
    [condition("ca-prostate", "prostate", onset="$now-1100d"), bone_mets(concept="bone-metastasis-snomed")],
    [card(R, "info", "advise")],
)
case(
    R,
    "advise-refuted-symptom-ignored",
    "Back pain refuted: still without symptoms, sheet advised",
    [breast_ca(), bone_mets(), symptom("sx-1", "local-back-pain", onset="$now-3d", verification="refuted")],
    [card(R, "info", "advise")],
)
case(
    R,
    "no-card-symptomatic",
    "Bone metastasis with radicular pain: symptomatic, the MRI and MDT cards apply instead",
    [breast_ca(), bone_mets(), symptom("sx-1", "radicular-pain", onset="$now-3d", side="left")],
    [],
    presentRules=["mri-urgency"],
)
case(R, "no-card-without-metastasis", "Breast cancer without bone metastasis: no sheet card", [breast_ca()], [])
case(
    R,
    "no-card-order-select",
    "Patient-view only: no sheet card while selecting an order",
    [breast_ca(), bone_mets()],
    [],
    hook="order-select",
    draft_orders=[service_request("sr-rt", "radiotherapy", priority="routine", end="$now+7d")],
)

# =================================================================================================
# expectations-dialogue
R = "expectations-dialogue"
case(
    R,
    "advise-surgery-eligibility-on-table",
    "SINS 9 puts surgery on the table: ask and record goals and expectations",
    [breast_ca(), bone_mets(), sins("sins-t10", "T10", S9), kps("kps-1", 70), no_visceral()],
    [card(R, "info", "advise", detailContains=["palliative", "recovery time"])],
    presentRules=["surgery-eligibility"],
)
case(
    R,
    "advise-confirmed-mescc",
    "Confirmed MESCC: treatment decision today, ask the patient's goals",
    [breast_ca(), condition("mescc-1", "mescc", onset="$now-2h")],
    [card(R, "info", "advise")],
    presentRules=["mescc-treatment"],
)
case(
    R,
    "advise-draft-surgery-order-select",
    "Spinal surgery being ordered: ask and record expectations",
    [breast_ca(), bone_mets(), kps("kps-1", 90), no_visceral()],
    [card(R, "info", "advise")],
    hook="order-select",
    draft_orders=[service_request("sr-surg", "surgery", priority="urgent", end="$now+5d")],
)
case(
    R,
    "no-card-without-treatment-decision",
    "Bone metastasis with SINS 4 and no MESCC: no treatment decision, no card",
    [breast_ca(), bone_mets(), sins("sins-t8", "T8", S4)],
    [],
)
case(
    R,
    "no-card-suspected-mescc-only",
    "Suspected MESCC only: diagnosis first, no expectations card yet",
    [breast_ca(), condition("mescc-1", "mescc", onset="$now-2h", verification="provisional")],
    [],
)
