"""MESCC: diagnosis time, treatment started, a recorded decision not to treat.

- Diagnosis time of a confirmed MESCC: the earliest of its recordedDate and the time of a spine MRI
  it references in Condition.evidence (with no such reference: a spine MRI up to
  ``diagnosis_mri_before_hours`` before the recordedDate); else its onset; else the time the service
  first saw it (then "not recorded"). One definition for the 24 h clock and every 14-day window.
- Treatment started: a spine radiotherapy or spinal surgery Procedure (planning codes are in no
  ValueSet) in progress or completed, performed at or after diagnosis time minus
  ``treatment_before_diagnosis_hours``, with a spinal bodySite, a reasonReference to the MESCC, or no
  site (it counts; the card says "site not recorded"). For a haematological primary, the start of
  systemic therapy counts too.
- A decision not to treat: such a Procedure with status not-done and a statusReason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from engine.imaging import SpineImaging, as_dict
from engine.localtime import moment
from engine.parse import Entry, Parsed
from engine.presentation import onset_of
from fhir_profiles.terminology import Terminology

TREATMENTS = ("spine-radiotherapy", "spinal-surgery", "spinal-surgery-combined")
TREATMENT_WORDS = {
    "spine-radiotherapy": "radiotherapy of the spine",
    "spinal-surgery": "spinal surgery",
    "spinal-surgery-combined": "spinal surgery",
    "systemic-therapy": "systemic therapy",
}


@dataclass
class MesccTiming:
    diagnosed_at: datetime
    recorded: bool  # False: from the service's first sight of the Condition
    entry: Entry


@dataclass
class MesccTreatment:
    started_at: datetime | None = None
    words: str = ""
    site_recorded: bool = True
    refs: list[str] = field(default_factory=list)
    decision: str | None = None  # "radiotherapy of the spine not done: <reason>"
    decision_at: datetime | None = None
    decision_refs: list[str] = field(default_factory=list)


def _performed(raw: dict[str, Any], tz: tzinfo) -> datetime | None:
    period = as_dict(raw.get("performedPeriod"))
    return moment(raw.get("performedDateTime"), tz) or moment(period.get("start"), tz)


def diagnosis_time(
    entry: Entry,
    imaging: SpineImaging,
    tz: tzinfo,
    first_seen: dict[str, datetime],
    now: datetime,
    mri_before_hours: float,
) -> MesccTiming:
    raw = entry.raw
    recorded = moment(raw.get("recordedDate"), tz)
    evidence_refs = {
        d.get("reference")
        for item in raw.get("evidence") or []
        if isinstance(item, dict)
        for d in item.get("detail") or []
        if isinstance(d, dict)
    }
    candidates: list[datetime] = [recorded] if recorded else []
    referenced = [m.at for m in imaging.done if m.ref in evidence_refs]
    if referenced:
        candidates.extend(referenced)
    elif recorded is not None:
        window = timedelta(hours=mri_before_hours)
        candidates.extend(m.at for m in imaging.done if recorded - window <= m.at <= recorded)
    if candidates:
        return MesccTiming(min(candidates), True, entry)
    onset = onset_of(raw, tz)
    if onset is not None:
        return MesccTiming(onset, True, entry)
    return MesccTiming(first_seen.get(entry.ref, now), False, entry)


def _spinal_or_for_mescc(raw: dict[str, Any], term: Terminology, mescc_refs: set[str]) -> tuple[bool, bool]:
    """(counts, site recorded): spinal bodySite, a reasonReference to the MESCC, or no site at all."""
    reasons = {r.get("reference") for r in raw.get("reasonReference") or [] if isinstance(r, dict)}
    if reasons & mescc_refs:
        return True, True
    sites = [s for s in raw.get("bodySite") or [] if isinstance(s, dict)]
    if not sites:
        return True, False
    spinal = any("vertebral-column-site" in term.concepts(s.get("coding") or []) for s in sites)
    return spinal, True


def mescc_treatment(
    parsed: Parsed,
    term: Terminology,
    diagnosed_at: datetime,
    mescc_refs: set[str],
    haematological: bool,
    tz: tzinfo,
    before_hours: float,
) -> MesccTreatment:
    out = MesccTreatment()
    earliest = diagnosed_at - timedelta(hours=before_hours)
    kinds = TREATMENTS + (("systemic-therapy",) if haematological else ())
    for entry in parsed.procedures:
        kind = next((k for k in kinds if k in entry.concepts), None)
        if kind is None:
            continue
        raw = entry.raw
        counts, site_recorded = (
            _spinal_or_for_mescc(raw, term, mescc_refs) if kind != "systemic-therapy" else (True, True)
        )
        if not counts:
            continue
        when = _performed(raw, tz)
        if raw.get("status") == "not-done" and raw.get("statusReason"):
            reason = raw["statusReason"]
            text = reason.get("text") or next(
                (c.get("display") or c.get("code") for c in reason.get("coding") or [] if isinstance(c, dict)),
                "reason recorded",
            )
            out.decision = f"{TREATMENT_WORDS[kind]} not done: {text}"
            out.decision_at = when or moment(raw.get("recorded"), tz)
            out.decision_refs.append(entry.ref)
            continue
        if raw.get("status") not in ("in-progress", "completed") or when is None or when < earliest:
            continue
        if out.started_at is None or when < out.started_at:
            out.started_at, out.words, out.site_recorded = when, TREATMENT_WORDS[kind], site_recorded
        out.refs.append(entry.ref)
    return out
