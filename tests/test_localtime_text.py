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
