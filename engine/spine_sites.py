"""Where the disease is: the affected vertebral levels (the limited-area-of-damage criterion) and
radiotherapy followed by recurring or progressing symptoms at the irradiated level.

A vertebral level is read from a bodySite's text, display or code ("T12", "Th12", "L3-L4"). Whether
a bone metastasis is spinal or elsewhere is the shared `spinal_metastasis` fact (engine/facts.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from engine.parse import Entry, to_instant
from fhir_profiles.terminology import Terminology

_LEVEL = re.compile(r"\b(C|Th|T|L|S)\s?-?(\d{1,2})\b", re.IGNORECASE)
_LEVEL_RANGE = re.compile(r"\b(C|Th|T|L|S)\s?(\d{1,2})\s?[-\u2013]\s?(C|Th|T|L|S)?\s?(\d{1,2})\b", re.IGNORECASE)
_SEGMENTS = {"C": 7, "T": 12, "L": 5, "S": 5}
_ORDER = {"C": 0, "T": 1, "L": 2, "S": 3}
RT_DONE = frozenset({"completed", "in-progress"})


def _level(prefix: str, number: str) -> str | None:
    segment = "T" if prefix.lower() == "th" else prefix.upper()
    value = int(number)
    if 1 <= value <= _SEGMENTS[segment]:
        return f"{segment}{value}"
    return None


def level_key(level: str) -> tuple[int, int]:
    return _ORDER[level[0]], int(level[1:])


# Every vertebral level from C1 to S5 in anatomical order: a range may cross segments ("T12-L2"
# is T12, L1, L2), the usual way to write a radiotherapy field.
_ALL_LEVELS = [f"{seg}{n}" for seg in sorted(_SEGMENTS, key=_ORDER.__getitem__) for n in range(1, _SEGMENTS[seg] + 1)]
_MAX_RANGE = 10  # a longer "range" is more likely two levels joined by a dash in free text than a field


def level_span(levels: list[str]) -> str:
    """Levels as written on a card: a contiguous run as a range ("T12-L2"), else a list ("T6, L3")."""
    ordered = sorted(set(levels), key=level_key)
    if len(ordered) >= 2:
        first, last = _ALL_LEVELS.index(ordered[0]), _ALL_LEVELS.index(ordered[-1])
        if last - first + 1 == len(ordered):
            return f"{ordered[0]}-{ordered[-1]}"
    return ", ".join(ordered)


def levels_in_text(text: str | None) -> list[str]:
    """Vertebral levels named in a text, ranges expanded, also across segments ("T12-L2" -> T12, L1, L2)."""
    if not text:
        return []
    found: set[str] = set()
    for match in _LEVEL_RANGE.finditer(text):
        first = _level(match.group(1), match.group(2))
        last = _level(match.group(3) or match.group(1), match.group(4))
        if first and last:
            low, high = sorted((_ALL_LEVELS.index(first), _ALL_LEVELS.index(last)))
            if high - low < _MAX_RANGE:
                found.update(_ALL_LEVELS[low : high + 1])
    for match in _LEVEL.finditer(text):
        level = _level(match.group(1), match.group(2))
        if level:
            found.add(level)
    return sorted(found, key=level_key)


def _site_texts(site: Any) -> list[str]:
    texts = [site.text] if getattr(site, "text", None) else []
    for coding in getattr(site, "coding", None) or ():
        texts.extend(t for t in (coding.display, coding.code) if t)
    return texts


def site_levels(sites: Iterable[Any]) -> list[str]:
    found: set[str] = set()
    for site in sites or ():
        for text in _site_texts(site):
            found.update(levels_in_text(text))
    return sorted(found, key=level_key)


def _non_laterality_sites(entry: Entry, term: Terminology) -> list[Any]:
    sites = []
    for site in entry.model.bodySite or ():
        concepts = term.concepts(site.coding or [])
        if concepts and all(c.startswith("laterality") for c in concepts):
            continue  # a side only (left / right / bilateral) says nothing about where in the body
        sites.append(site)
    return sites


def presentation_time(entry: Entry) -> datetime | None:
    """recordedDate, else onset (dateTime or period start)."""
    model = entry.model
    onset = to_instant(model.onsetDateTime) or (to_instant(model.onsetPeriod.start) if model.onsetPeriod else None)
    return to_instant(model.recordedDate) or onset


def procedure_time(entry: Entry) -> datetime | None:
    model = entry.model
    period = model.performedPeriod
    return (
        to_instant(model.performedDateTime)
        or (to_instant(period.end) if period is not None else None)
        or (to_instant(period.start) if period is not None else None)
    )


def _day(moment: datetime | None) -> str:
    return f"{moment.day} {moment:%b %Y}" if moment is not None else "date not recorded"


def extent(levels: list[str]) -> str:
    if not levels:
        return "number of affected levels not recorded: check the MRI"
    if len(levels) == 1:
        return f"one affected level recorded ({levels[0]})"
    named = ", ".join(levels)
    return f"{len(levels)} affected levels recorded ({named}): several levels, so the damage may not be limited"


def radiotherapy_recurrence(
    procedures: Iterable[Entry],
    symptoms: list[dict[str, Any]],
    conditions_by_ref: dict[str, Entry],
    term: Terminology,
    mescc: Iterable[Entry] = (),
) -> dict[str, Any]:
    """Facts for "surgery after radiotherapy": a spine radiotherapy, then a symptom that recurs or
    progresses, or a MESCC inside the irradiated field (re-irradiation may not be possible: the
    guideline then prefers surgery). ``radiotherapy.recurrence`` is at-level, level-unknown or
    other-level; ``radiotherapy.mescc_in_field`` names such a MESCC."""
    courses = [e for e in procedures if "spine-radiotherapy" in e.concepts and e.model.status in RT_DONE]
    if not courses:
        return {}
    out: dict[str, Any] = {}
    found: list[tuple[str, str, datetime | None]] = []  # (kind, description, when it presented)
    for course in courses:
        when = procedure_time(course)
        rt_levels = site_levels(course.model.bodySite or ())
        for symptom in symptoms:
            entry = conditions_by_ref.get(str(symptom.get("symptom.resource")))
            if entry is None:
                continue
            presented = presentation_time(entry)
            after = presented is None or when is None or presented > when
            progressing = symptom.get("symptom.course_known") and symptom.get("symptom.course") == "progressive"
            if not (after or progressing):
                continue
            how = "progressing" if progressing and not after else "presented after it"
            symptom_levels = site_levels(_non_laterality_sites(entry, term))
            name = str(symptom.get("symptom.display", "symptom")).lower()
            rt_text = f"Radiotherapy of the spine{' at ' + level_span(rt_levels) if rt_levels else ''} ({_day(when)})"
            where = f" at {level_span(symptom_levels)}" if symptom_levels else ""
            description = f"{rt_text}; {name} {how}{where}"
            if not rt_levels or not symptom_levels:
                found.append(("level-unknown", description + " (levels not recorded)", presented))
            elif set(rt_levels) & set(symptom_levels):
                found.append(("at-level", description, presented))
            else:
                found.append(("other-level", description, presented))
        for entry in mescc:
            mescc_levels = site_levels(_non_laterality_sites(entry, term))
            diagnosed = presentation_time(entry)
            later = diagnosed is None or when is None or diagnosed > when
            inside = sorted(set(mescc_levels) & set(rt_levels), key=level_key)
            if later and inside:
                field = f"the {level_span(rt_levels)} field irradiated {_day(when)}"
                out["radiotherapy.mescc_in_field"] = f"MESCC at {level_span(inside)} inside {field}"
                out["radiotherapy.mescc_level"] = level_span(inside)
                found.append(("at-level", f"MESCC at {level_span(inside)}, inside {field}", diagnosed))
    for kind in ("at-level", "level-unknown", "other-level"):
        # the newest finding is the one the question is about (an older back pain is not "new")
        chosen = sorted((f for f in found if f[0] == kind), key=lambda f: f[2] or datetime.min.replace(tzinfo=UTC))
        if chosen:
            out["radiotherapy.recurrence"] = kind
            out["radiotherapy.text"] = chosen[-1][1]
            break
    out["radiotherapy.count"] = len(courses)
    return out
