"""How a due time reads on a card: hours while they are readable at a glance, whole days after that,
always rounded towards urgency (fewer days left, more days overdue)."""

from __future__ import annotations

import pytest

from engine.localtime import hours_text


@pytest.mark.parametrize(
    ("hours_left", "text"),
    [
        (11.9, "11 h left"),
        (0.5, "30 min left"),
        (0, "due now"),
        (-0.5, "overdue by 30 min"),
        (-13, "overdue by 13 h"),
        (71.9, "71 h left"),
        (72, "3 days left"),
        (143.9, "5 days left"),
        (-71, "overdue by 71 h"),
        (-72, "overdue by 3 days"),
        (-144, "overdue by 6 days"),
        (-145, "overdue by 7 days"),
    ],
)
def test_hours_then_days_rounded_towards_urgency(hours_left: float, text: str) -> None:
    assert hours_text(hours_left) == text


def test_remembered_date_text_is_per_instant_and_zone():
    """date_text is remembered: the same instant gives the same day in a zone, whichever offset it
    was written with, and another zone its own day."""
    from datetime import UTC, datetime, timedelta, timezone

    from engine.localtime import date_text, zone

    late = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    same_instant = late.astimezone(timezone(timedelta(hours=5)))
    assert date_text(late, UTC) == date_text(same_instant, UTC) == "1 Mar 2026"
    assert (
        date_text(late, zone("Europe/Amsterdam")) == date_text(same_instant, zone("Europe/Amsterdam")) == "2 Mar 2026"
    )
    assert date_text(late, zone("America/New_York")) == "1 Mar 2026"
