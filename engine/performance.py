"""Performance status as a range of KPS values, and how recent the pain score is.

A KPS is only certain when it was measured recently: an ECOG grade stands for a KPS band, and a
KPS or ECOG older than ``old_after_days`` (or older than the newest acute neurological finding)
reads as ``old_floor`` up to the recorded value, because the patient may have declined since.
Every number comes from rules/scores/surgery-criteria.yaml and ecog-to-kps.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from engine.parse import Entry, observation_number, to_instant
from engine.scores import ScoreTables

DECIDING_STATUS = frozenset({"final", "amended", "corrected"})


@dataclass(frozen=True)
class Performance:
    low: int
    high: int
    source: str  # kps | ecog | none
    recorded: int | None  # the KPS or ECOG value as recorded
    from_ecog: bool
    outdated: str | None  # why a recorded value is uncertain, in plain words
    text: str  # for the card: "KPS 60 (2 days ago)", "ECOG 2 (about KPS 50-60)", "not recorded"
    sources: tuple[Entry, ...] = ()

    @property
    def certain(self) -> bool:
        return self.low == self.high


def observation_time(entry: Entry) -> datetime | None:
    model = entry.model
    return to_instant(model.effectiveDateTime) or to_instant(model.effectiveInstant) or to_instant(model.issued)


def latest(entries: Iterable[Entry]) -> Entry | None:
    """The newest deciding Observation with a number (undated ones lose to dated ones)."""
    usable = [e for e in entries if e.model.status in DECIDING_STATUS and observation_number(e.model) is not None]
    if not usable:
        return None
    dated = [e for e in usable if observation_time(e) is not None]
    if dated:
        return max(dated, key=lambda e: observation_time(e))  # type: ignore[arg-type, return-value]
    return usable[0]


def _age(now: datetime, when: datetime | None) -> str:
    if when is None:
        return "date not recorded"
    days = (now - when).total_seconds() / 86400.0
    if days < 1:
        return "today"
    whole = int(days)
    return f"{whole} day{'s' if whole != 1 else ''} ago"


def performance(
    tables: ScoreTables,
    kps_entries: Iterable[Entry],
    ecog_entries: Iterable[Entry],
    now: datetime,
    newest_acute_finding: datetime | None,
) -> Performance:
    """The KPS range the survival models and the clinical-condition gate are evaluated over."""
    criteria = tables.criteria
    kps = latest(kps_entries)
    ecog = latest(ecog_entries)
    if kps is not None:
        value = round(observation_number(kps.model) or 0)
        low, high, source, recorded, from_ecog, chosen = value, value, "kps", value, False, kps
        shown = f"KPS {value}"
    elif ecog is not None:
        grade = int(observation_number(ecog.model) or 0)
        band = tables.ecog_to_kps.get(grade)
        if band is None:  # ECOG 5 (dead) or a grade outside the table: no KPS can be read from it
            low, high = criteria.range_when_unknown
            return Performance(low, high, "none", None, False, None, f"ECOG {grade} (no KPS band)", (ecog,))
        low, high = band
        source, recorded, from_ecog, chosen = "ecog", grade, True, ecog
        shown = f"ECOG {grade} (about KPS {low}-{high})"
    else:
        low, high = criteria.range_when_unknown
        return Performance(low, high, "none", None, False, None, "KPS not recorded")

    when = observation_time(chosen)
    outdated = None
    if when is None:
        outdated = "date not recorded"
    elif (now - when).total_seconds() > criteria.old_after_days * 86400:
        outdated = f"older than {criteria.old_after_days:g} days"
    elif newest_acute_finding is not None and when < newest_acute_finding:
        outdated = "recorded before the newest neurological finding"
    if outdated is not None:
        low = min(criteria.old_floor, low)
        text = f"{shown}, {_age(now, when)}: {outdated}, so read as KPS {low}-{high}"
    else:
        text = f"{shown}, {_age(now, when)}"
    return Performance(low, high, source, recorded, from_ecog, outdated, text, (chosen,))


def hours_since(now: datetime, entry: Entry | None) -> float | None:
    if entry is None:
        return None
    when = observation_time(entry)
    return None if when is None else round((now - when).total_seconds() / 3600.0, 2)
