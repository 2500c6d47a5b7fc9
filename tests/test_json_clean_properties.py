"""strip_empty (cds_hooks.json_clean), rewritten as one pass per level, gives the same result as
the previous two-pass version on generated JSON, and leaves nothing empty behind."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cds_hooks.json_clean import strip_empty


def reference_strip_empty(value: Any) -> Any:
    def is_empty(item: Any) -> bool:
        return item is None or (isinstance(item, (str, list, dict)) and len(item) == 0)

    if isinstance(value, dict):
        cleaned = {k: reference_strip_empty(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if not is_empty(v)}
    if isinstance(value, list):
        cleaned_list = [reference_strip_empty(v) for v in value]
        return [v for v in cleaned_list if not is_empty(v)]
    return value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2) | st.floats(allow_nan=False) | st.sampled_from(["", "a", "0"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from("abc"), children, max_size=3),
    max_leaves=30,
)


def nothing_empty(value: Any) -> bool:
    if isinstance(value, dict):
        return all(v not in (None, "", [], {}) and nothing_empty(v) for v in value.values())
    if isinstance(value, list):
        return all(v not in (None, "", [], {}) and nothing_empty(v) for v in value)
    return True


@settings(max_examples=800, deadline=None)
@given(json_values)
def test_same_result_as_the_two_pass_version(value: Any) -> None:
    result = strip_empty(value)
    assert result == reference_strip_empty(value)
    assert type(result) is type(reference_strip_empty(value))
    assert nothing_empty(result)


def test_falsy_values_that_are_not_empty_stay() -> None:
    assert strip_empty({"a": 0, "b": False, "c": 0.0, "d": "", "e": [None, {}], "f": [0]}) == {
        "a": 0,
        "b": False,
        "c": 0.0,
        "f": [0],
    }


def test_service_cards_have_nothing_empty_even_when_the_engine_card_has() -> None:
    from cds_hooks.cards import build_cards

    raw = {
        "summary": "s",
        "indicator": "info",
        "detail": "",
        "source": {"label": "spinecds", "url": "", "topic": {}},
        "links": [],
        "suggestions": [{"label": "do it", "actions": [], "isRecommended": None}],
        "selectionBehavior": "at-most-one",
        "overrideReasons": [],
        "extension": {"spinecds": {"ruleId": "r", "notes": [], "empty": {}, "none": None}},
    }
    (card,) = build_cards([raw], "http://example.org/")
    assert nothing_empty(card)
    assert card["extension"] == {"spinecds": {"ruleId": "r"}}
    assert card["suggestions"][0]["label"] == "do it" and "actions" not in card["suggestions"][0]
