"""The facts of survival, surgery eligibility, the multidisciplinary consultation and goals of care.

One entry point for engine/facts.py, so that derivation stays in small modules:
performance (KPS range), spine_sites (spinal vs elsewhere, levels, radiotherapy), eligibility
(the range rule) and goals_of_care (comfort-only care).
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import datetime
from typing import Any

from engine.eligibility import Context, survival_and_eligibility
from engine.goals_of_care import comfort_care_facts
from engine.parse import CONDITION_CLINICAL, CONDITION_VERIFICATION, Entry, Parsed, status_code
from engine.performance import Performance, hours_since, latest, performance
from engine.scores import ScoreTables
from engine.spine_sites import (
    extent,
    level_key,
    levels_in_text,
    presentation_time,
    radiotherapy_recurrence,
    site_levels,
)
from fhir_profiles.terminology import Terminology

ACTIVE_CLINICAL = frozenset({None, "active", "recurrence", "relapse"})
EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})


def _counts(entry: Entry) -> bool:
    clinical = status_code(entry.model.clinicalStatus, CONDITION_CLINICAL)[0]
    verification = status_code(entry.model.verificationStatus, CONDITION_VERIFICATION)[0]
    return clinical in ACTIVE_CLINICAL and verification not in EXCLUDED_VERIFICATION


def _is_outdating(symptom: dict[str, Any], tables: ScoreTables) -> bool:
    crit = tables.criteria
    code = symptom.get("symptom.code")
    if code in crit.outdated_codes:
        return True
    if code in crit.outdated_progressive_codes and symptom.get("symptom.course") == "progressive":
        return True
    return code in crit.outdated_bilateral_codes and symptom.get("symptom.laterality") == "bilateral"


def surgery_facts(
    parsed: Parsed,
    term: Terminology,
    tables: ScoreTables,
    patient: dict[str, Any],
    symptoms: list[dict[str, Any]],
    lesions: list[dict[str, Any]],
    now: datetime,
    resources: list[Any],
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """(facts, provenance) for the vocabulary's survival / eligibility / MDT / goals-of-care facts."""
    crit = tables.criteria
    out: dict[str, Any] = {}
    provenance: dict[str, list[str]] = {}
    by_ref = {e.ref: e for e in parsed.conditions}
    mescc = [e for e in parsed.conditions if "mescc" in e.concepts and _counts(e)]

    # -- neurological findings and their presentation times
    deficits = [s for s in symptoms if s.get("symptom.code") in crit.deficit_codes]
    deficit_entries = [by_ref[str(s["symptom.resource"])] for s in deficits if str(s["symptom.resource"]) in by_ref]
    if crit.deficit_mescc:
        deficit_entries += mescc
    recent = False
    for entry in deficit_entries:
        presented = presentation_time(entry)
        # unknown presentation time reads as recent: the exception is the cautious side of the gate
        if presented is None or (now - presented).total_seconds() <= crit.recent_days * 86400:
            recent = True
    outdating = [
        by_ref[ref] for s in symptoms if _is_outdating(s, tables) and (ref := str(s["symptom.resource"])) in by_ref
    ]
    outdating += mescc if crit.outdated_mescc else []
    times = [t for e in outdating if (t := presentation_time(e)) is not None]
    newest = max(times) if times else None

    # -- performance status as a range
    kps_entries = [e for e in parsed.observations if "kps" in e.concepts]
    ecog_entries = [e for e in parsed.observations if "ecog" in e.concepts]
    perf = performance(tables, kps_entries, ecog_entries, now, newest)
    context = Context(
        deficit_or_mescc=bool(deficit_entries),
        recent_deficit_or_mescc=recent,
        combined=bool(patient.get("draft.combined_surgery")),
    )
    out["neurological_deficit"] = bool(deficit_entries)
    out["neurological_deficit_recent"] = recent
    if patient.get("cancer"):  # every rule that reads these facts needs cancer; skip the work otherwise
        out.update(_survival_and_eligibility(tables, patient, perf, context))
    else:
        out.update(
            {"kps_source": perf.source, "kps_min": perf.low, "kps_max": perf.high, "performance.text": perf.text}
        )
    if perf.sources:
        provenance["kps_min"] = [e.ref for e in perf.sources]

    # -- where the disease is (spinal vs elsewhere is the shared `spinal_metastasis` fact)
    bone = [e for e in parsed.conditions if "spinal-metastasis" in e.concepts and _counts(e)]
    levels: set[str] = set()
    for entry in bone + mescc:
        levels.update(site_levels(entry.model.bodySite or ()))
    for lesion in lesions:
        levels.update(levels_in_text(str(lesion.get("lesion.level", ""))))
    ordered = sorted(levels, key=level_key)
    out["affected_levels"] = ordered
    out["affected_level_count"] = len(ordered)
    out["extent.text"] = extent(ordered)
    out.update(radiotherapy_recurrence(parsed.procedures, symptoms, by_ref, term, mescc))

    out["surgery.indication_text"] = _indications(tables, patient, lesions, out)
    out["surgery.indication"] = _indication_kind(tables, patient, lesions, out)

    # -- pain: how recent the latest final NRS is
    nrs = latest(e for e in parsed.observations if "pain-nrs" in e.concepts)
    age = hours_since(now, nrs)
    if age is not None:
        out["nrs.age_hours"] = age

    out.update(comfort_care_facts(resources, term))
    return out, provenance


class _Same:
    """A key part that is equal only to itself: the score tables, fixed once loaded."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.value is self.value


def _survival_and_eligibility(
    tables: ScoreTables, patient: dict[str, Any], perf: Performance, context: Context
) -> dict[str, Any]:
    """engine.eligibility.survival_and_eligibility, remembered: it reads only the primaries, the visceral
    metastases status, the performance range (not its source resources) and the context, and the same
    few combinations recur across patients and requests. Lists are copied: callers own what they get."""
    primaries = patient.get("primaries")
    key = (
        tuple(primaries) if isinstance(primaries, (list, tuple)) else primaries,
        patient.get("visceral_metastases"),
        dataclasses.replace(perf, sources=()),
        context,
    )
    try:
        remembered = _remembered_survival(_Same(tables), *key)
    except TypeError:  # unhashable input (not from engine/facts.py): computed directly
        return survival_and_eligibility(tables, patient, perf, context)
    return {name: list(value) if isinstance(value, list) else value for name, value in remembered}


@functools.lru_cache(maxsize=1024)
def _remembered_survival(
    tables: _Same, primaries: Any, visceral: Any, perf: Performance, context: Context
) -> tuple[tuple[str, Any], ...]:
    patient = {"primaries": list(primaries) if isinstance(primaries, tuple) else primaries}
    if visceral is not None:
        patient["visceral_metastases"] = visceral
    return tuple(survival_and_eligibility(tables.value, patient, perf, context).items())


def _indication_kind(
    tables: ScoreTables, patient: dict[str, Any], lesions: list[dict[str, Any]], out: dict[str, Any]
) -> str:
    """present | none | no-spinal-metastasis: whether anything on record makes spinal surgery a question.

    A surgery order alone is not an indication: with none recorded, the card says so instead of
    judging survival and condition as if surgery were indicated."""
    unstable = any(
        (band := tables.sins.band_of(int(lesion.get("lesion.sins_min", 0)))) is not None
        and band.name != tables.sins.bands[0].name
        for lesion in lesions
    )
    recurrence = out.get("radiotherapy.recurrence") in ("at-level", "level-unknown")
    if unstable or patient.get("mescc_confirmed") or recurrence:
        return "present"
    if not patient.get("spinal_metastasis") and not lesions:
        return "no-spinal-metastasis"
    return "none"


def _indications(
    tables: ScoreTables, patient: dict[str, Any], lesions: list[dict[str, Any]], out: dict[str, Any]
) -> str:
    """The surgical indications found, in clinician words (the rule decides which ones count)."""
    found = []
    for lesion in lesions:
        band = tables.sins.band_of(int(lesion.get("lesion.sins_min", 0)))
        if band is not None and band.name != tables.sins.bands[0].name:
            low, high = lesion["lesion.sins_min"], lesion["lesion.sins_max"]
            score = str(low) if low == high else f"{low}-{high}"
            found.append(f"{band.label} spine at {lesion.get('lesion.level')} (SINS {score})")
    if patient.get("mescc_confirmed"):
        found.append("confirmed MESCC")
    if patient.get("draft.combined_surgery"):
        found.append("combined spinal surgery ordered")
    elif patient.get("draft.spinal_surgery"):
        found.append("spinal surgery ordered")
    recurrence = out.get("radiotherapy.recurrence")
    if recurrence == "at-level":
        found.append(f"recurrence at the irradiated level: {out.get('radiotherapy.text')}")
    elif recurrence == "level-unknown":
        found.append("pain or deficit after spine radiotherapy (levels not recorded)")
    return "; ".join(found)
