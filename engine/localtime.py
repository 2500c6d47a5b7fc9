"""Clinical time in the configured zone: FHIR date/dateTime values, and due times for cards.

A date without a time ("2026-03-02") is the start of that day in the configured time zone (an EHR
records dates in local time); a dateTime without a zone is read in the configured zone too. Card
text shows times in that zone and names it, so a clinician never converts from UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=16)
def zone(name: str | None) -> tzinfo:
    """The IANA zone, UTC for None or "UTC"; an unknown name raises ValueError (checked at start-up)."""
    if not name or name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as Europe/Amsterdam") from error


def moment(value: Any, tz: tzinfo = UTC) -> datetime | None:
    """A FHIR date, dateTime or instant (string or parsed value) as an aware datetime, or None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=tz)
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if len(text) == 4:
            return datetime(int(text), 1, 1, tzinfo=tz)
        if len(text) == 7:
            return datetime(int(text[:4]), int(text[5:7]), 1, tzinfo=tz)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def is_date_only(value: Any) -> bool:
    return isinstance(value, str) and len(value.strip()) <= 10


def iso_local(when: datetime, tz: tzinfo) -> str:
    """An instant with its offset in the configured zone (``2026-03-10T14:00:00+01:00``)."""
    return when.astimezone(tz).isoformat(timespec="seconds")


def zone_label(tz: tzinfo) -> str:
    return "UTC" if tz is UTC else str(getattr(tz, "key", tz))


def clock_text(when: datetime, now: datetime, tz: tzinfo) -> str:
    """ "14:00 today", "09:30 tomorrow", "08:00 yesterday" or "Tue 3 Mar 14:00", in the zone."""
    local, today = when.astimezone(tz), now.astimezone(tz).date()
    hour = local.strftime("%H:%M")
    days = (local.date() - today).days
    if days == 0:
        return f"{hour} today"
    if days == 1:
        return f"{hour} tomorrow"
    if days == -1:
        return f"{hour} yesterday"
    return f"{local.strftime('%a')} {local.day} {local.strftime('%b')} {hour}"


# Pure (the service never sets a locale: month names are the C locale's), and the same record times
# recur on every request of a chart.
@lru_cache(maxsize=1024)
def date_text(when: datetime, tz: tzinfo) -> str:
    """ "3 Mar 2026" in the zone (for "since" and "done on" phrases)."""
    local = when.astimezone(tz)
    return f"{local.day} {local.strftime('%b %Y')}"


def hours_text(hours_left: float) -> str:
    """ "11 h left", "40 min left", "due now", "overdue by 3 h"; from three days on "5 days left" /
    "overdue by 6 days" (rounded towards urgency)."""
    if hours_left >= 72:  # past three days hours are hard to read at a glance: whole days
        return f"{int(hours_left // 24)} days left"
    if hours_left >= 1:
        return f"{int(hours_left)} h left"
    if hours_left > 0:
        return f"{max(1, int(hours_left * 60))} min left"
    if hours_left == 0:
        return "due now"
    late = -hours_left
    if late >= 72:
        return f"overdue by {int(-(-late // 24))} days"  # rounded up: towards urgency
    return f"overdue by {max(1, round(late))} h" if late >= 1 else f"overdue by {max(1, round(late * 60))} min"


def due_description(due: datetime, now: datetime, tz: tzinfo) -> dict[str, Any]:
    """What cards show about a due time: the instant with offset, local text and hours left."""
    hours_left = round((due - now) / timedelta(hours=1), 2) + 0.0  # + 0.0: never "-0.0"
    return {
        "due_by": iso_local(due, tz),
        "due_local": f"{clock_text(due, now, tz)} ({zone_label(tz)})",
        "hours_left": hours_left,
        "due_text": hours_text(hours_left),
    }
