"""Spine MRI in the record: done (whole spine or a region), ordered, or contraindicated.

Done: a Procedure (completed), ImagingStudy (available) or DiagnosticReport (preliminary, final,
amended, corrected) whose code is in ValueSet ``mri-spine-done``, timed by its performed / started /
effective time. Whole spine: a whole-spine code (ValueSet ``mri-spine``), or cervical + thoracic +
lumbar MRIs within ``whole_spine_combine_hours`` of each other. CT, X-ray and bone scans are in no
MRI ValueSet, so they never count (they cannot exclude spinal metastases).
Ordered: an active or draft spine-MRI ServiceRequest already in the record.
Contraindicated: a Condition coded as an MRI contraindication, or a spine-MRI Procedure not done
with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from engine.localtime import moment
from engine.parse import Entry, Parsed, resource_codings
from fhir_profiles.terminology import Terminology

REGIONS = ("cervical", "thoracic", "lumbar")
DONE_REPORT = frozenset({"preliminary", "final", "amended", "corrected"})
ORDER_OPEN = frozenset({"active", "draft"})


def as_dict(value: Any) -> dict[str, Any]:
    """A JSON object member, or {} when absent or not an object (raw FHIR JSON can hold anything)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class MriDone:
    at: datetime
    region: str  # "whole" or one of REGIONS
    ref: str


@dataclass
class SpineImaging:
    done: list[MriDone] = field(default_factory=list)  # every spine MRI performed, oldest first
    whole_spine: list[tuple[datetime, list[str]]] = field(default_factory=list)  # (time, refs), oldest first
    order_due: datetime | None = None  # earliest due time of an open spine-MRI order
    order_due_unknown: bool = False  # an open order without a due date
    order_refs: list[str] = field(default_factory=list)
    contraindication: str | None = None  # clinical words
    contraindication_refs: list[str] = field(default_factory=list)

    def latest(self) -> MriDone | None:
        return self.done[-1] if self.done else None

    def whole_spine_after(self, when: datetime) -> datetime | None:
        """The first whole-spine MRI at or after ``when`` (it answers a finding presented then)."""
        return next((at for at, _ in self.whole_spine if at >= when), None)

    def regional_after(self, when: datetime, region: str | None) -> MriDone | None:
        """The latest regional MRI of ``region`` at or after ``when``; None for an unknown region."""
        if region is None:
            return None
        found = [m for m in self.done if m.region == region and m.at >= when]
        return found[-1] if found else None


def _region(entry: Entry, term: Terminology) -> str:
    """whole, cervical, thoracic or lumbar (the parser kept only `mri-spine-done`: look again)."""
    concepts = term.concepts(resource_codings(entry.ref.split("/", 1)[0], entry.raw))
    if "mri-spine" in concepts:
        return "whole"
    for region in REGIONS:
        if f"mri-spine-{region}" in concepts:
            return region
    return "whole"


def _time_of(entry: Entry, tz: tzinfo) -> datetime | None:
    raw = entry.raw
    period = as_dict(raw.get("performedPeriod"))
    eperiod = as_dict(raw.get("effectivePeriod"))
    for value in (
        raw.get("performedDateTime"),
        period.get("start"),
        raw.get("started"),
        raw.get("effectiveDateTime"),
        eperiod.get("start"),
        raw.get("issued"),
    ):
        when = moment(value, tz)
        if when is not None:
            return when
    return None


def _is_done(entry: Entry) -> bool:
    rtype = entry.ref.split("/", 1)[0]
    status = entry.raw.get("status")
    if rtype == "Procedure":
        return status == "completed"
    if rtype == "ImagingStudy":
        return status == "available"
    return status in DONE_REPORT


def _reason_text(raw: dict[str, Any]) -> str:
    reason = as_dict(raw.get("statusReason"))
    text = reason.get("text")
    if not text:
        codings = as_list(reason.get("coding"))
        text = next((c.get("display") or c.get("code") for c in codings if isinstance(c, dict)), None)
    return str(text or "reason recorded")


def spine_imaging(parsed: Parsed, term: Terminology, tz: tzinfo, now: datetime, combine_hours: float) -> SpineImaging:
    result = SpineImaging()
    candidates = [e for e in parsed.procedures + parsed.imaging if "mri-spine-done" in e.concepts]
    for entry in candidates:
        if (
            entry.ref.startswith("Procedure/")
            and entry.raw.get("status") == "not-done"
            and entry.raw.get("statusReason")
        ):
            result.contraindication = f"MRI not done: {_reason_text(entry.raw)}"
            result.contraindication_refs.append(entry.ref)
            continue
        when = _time_of(entry, tz)
        if when is None or when > now or not _is_done(entry):
            continue
        result.done.append(MriDone(when, _region(entry, term), entry.ref))
    result.done.sort(key=lambda m: m.at)
    whole = [(m.at, [m.ref]) for m in result.done if m.region == "whole"]
    window = timedelta(hours=combine_hours)
    for m in result.done:
        if m.region != "cervical":
            continue
        # cervical + thoracic + lumbar within the window of each other = one whole-spine MRI
        others = [
            [o for o in result.done if o.region == region and abs(o.at - m.at) <= window] for region in REGIONS[1:]
        ]
        for thoracic in others[0]:
            for lumbar in others[1]:
                times = [m.at, thoracic.at, lumbar.at]
                if max(times) - min(times) <= window:
                    whole.append((max(times), [m.ref, thoracic.ref, lumbar.ref]))
    result.whole_spine = sorted(whole, key=lambda w: w[0])
    for entry in parsed.conditions:
        if "mri-contraindication" in entry.concepts and _verification_code(entry.raw) not in (
            "refuted",
            "entered-in-error",
        ):
            result.contraindication = result.contraindication or "MRI contraindication recorded"
            result.contraindication_refs.append(entry.ref)
    for entry in parsed.record_orders:
        if entry.raw.get("status") not in ORDER_OPEN or "mri-spine" not in entry.concepts:
            continue
        period = as_dict(entry.raw.get("occurrencePeriod"))
        due = moment(period.get("end"), tz) or moment(entry.raw.get("occurrenceDateTime"), tz)
        result.order_refs.append(entry.ref)
        if due is None:
            result.order_due_unknown = True
        elif result.order_due is None or due < result.order_due:
            result.order_due = due
    return result


def _verification_code(raw: dict[str, Any]) -> str | None:
    status = raw.get("verificationStatus")
    codings = as_list(as_dict(status).get("coding"))
    return next((c.get("code") for c in codings if isinstance(c, dict)), None)
