"""Presentation time of a finding: when the patient presented with it, the start of every MRI clock.

The Condition's recordedDate, else its onset (onsetDateTime or onsetPeriod.start), else the time
this service first saw the Condition (the service keeps it under a keyed hash and hands it in as
``first_seen``; with none, "now": the first time is this one). A deadline computed from the
presentation time does not restart when the chart is opened again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from engine.localtime import date_text, is_date_only, moment


@dataclass(frozen=True)
class Presentation:
    at: datetime
    recorded: bool  # False: from the service's first sight (the card says "presentation time not recorded")


def onset_of(raw: Mapping[str, Any], tz: tzinfo) -> datetime | None:
    period = raw.get("onsetPeriod")
    start = period.get("start") if isinstance(period, dict) else None
    return moment(raw.get("onsetDateTime"), tz) or moment(start, tz)


def onset_is_date_only(raw: Mapping[str, Any]) -> bool:
    value = raw.get("onsetDateTime")
    if value is None and isinstance(raw.get("onsetPeriod"), dict):
        value = raw["onsetPeriod"].get("start")
    return is_date_only(value)


def presentation_of(
    ref: str, raw: Mapping[str, Any], tz: tzinfo, now: datetime, first_seen: Mapping[str, datetime]
) -> Presentation:
    recorded = moment(raw.get("recordedDate"), tz)
    if recorded is not None:
        return Presentation(recorded, True)
    onset = onset_of(raw, tz)
    if onset is not None:
        return Presentation(onset, True)
    return Presentation(first_seen.get(ref, now), False)


def development_days(raw: Mapping[str, Any], presented: datetime, tz: tzinfo) -> float:
    """Days from onset to presentation: how fast a deficit developed before it was presented.

    Unknown onset, an onset after the presentation time, or a date-only onset on the presentation
    day read as 0 (within seven days: the more urgent reading)."""
    onset = onset_of(raw, tz)
    if onset is None or onset >= presented:
        return 0.0
    if onset_is_date_only(raw) and onset.date() == presented.astimezone(tz).date():
        return 0.0
    return round((presented - onset).total_seconds() / 86400.0, 2)


def development_text(raw: Mapping[str, Any], presented: datetime, tz: tzinfo) -> str:
    """How the card says onset to presentation, never inventing a number for an unknown onset:
    "since 26 Feb, presented 10 Mar 2026" or "onset not recorded, presented 10 Mar 2026"."""
    onset = onset_of(raw, tz)
    shown = date_text(presented, tz)
    if onset is None:
        return f"onset not recorded, presented {shown}"
    return f"since {date_text(onset, tz)}, presented {shown}"
