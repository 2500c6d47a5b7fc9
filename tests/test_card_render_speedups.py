"""The faster card rendering gives exactly what the straightforward code gave: templates split once
(engine.templates.compiled) fill like re.sub did, the uuids are random version 4, and the facts an
outcome reads are worked out once per compiled outcome."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cds_hooks.cards import _random_uuid
from engine import cards
from engine.api import get_engine
from engine.templates import (
    PLACEHOLDER,
    SERVICE_VALUES,
    escape_markdown,
    plain,
    render_card_text,
    render_text,
    show,
)

VALUES: dict[str, Any] = {
    "a": "x*y",
    "b.c": 3,
    "d": None,
    "e": ["p", "q"],
    "f": True,
    "service.base_url": "http://h/x_y",
}


def lookup(name: str) -> Any:
    return VALUES.get(name, "<b>")


def reference_card_text(template: str) -> str:
    def fill(match: Any) -> str:
        name = match.group(1)
        value = lookup(name)
        if name in SERVICE_VALUES or isinstance(value, (bool, int, float)):
            return show(value)
        return escape_markdown(show(value))

    return PLACEHOLDER.sub(fill, template)


pieces = st.sampled_from(
    ["{a}", "{b.c}", "{d}", "{e}", "{f}", "{zz}", "{service.base_url}", "{", "}", "{A}", "x", " ", "*"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(pieces, max_size=12).map("".join))
def test_compiled_templates_fill_as_re_sub_did(template: str) -> None:
    assert render_card_text(template, lookup) == reference_card_text(template)
    assert render_text(template, lookup) == PLACEHOLDER.sub(lambda m: plain(show(lookup(m.group(1)))), template)


def test_random_uuids_are_version_4_and_kept_by_the_service() -> None:
    seen = set()
    for _ in range(2000):
        text = cards.random_uuid()
        batch = list(cards.random_uuids(3))
        assert len(set(batch)) == 3 and all(uuid.UUID(b).version == 4 and str(uuid.UUID(b)) == b for b in batch)
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text
        assert _random_uuid(text) == text
        seen.add(text)
    assert len(seen) == 2000


def test_the_service_still_replaces_what_is_not_a_random_uuid() -> None:
    upper = str(uuid.uuid4()).upper()
    assert _random_uuid(upper) == upper  # a version 4 uuid in another spelling is kept, as before
    for value in (str(uuid.uuid1()), str(uuid.uuid5(uuid.NAMESPACE_DNS, "x")), "card-1", None, 7):
        replaced = _random_uuid(value)
        assert replaced != value and uuid.UUID(replaced).version == 4


def test_read_names_are_computed_once_per_outcome() -> None:
    from engine.conditions import facts_named
    from engine.templates import placeholders

    for outcome in get_engine().compiled.outcomes:
        expected = {name for condition in outcome.conditions for name in facts_named(condition)}
        expected.update(name for name, _ in placeholders([outcome.outcome.card.summary, outcome.outcome.card.detail]))
        first = cards._read_names(outcome)
        assert first == expected
        assert cards._read_names(outcome) is first


@settings(max_examples=300, deadline=None)
@given(st.lists(pieces, max_size=6).map("".join))
def test_a_whole_placeholder_keeps_its_type_as_before(template: str) -> None:
    from engine.templates import UNKNOWN, render_value

    whole = PLACEHOLDER.fullmatch(template)
    expected = (UNKNOWN if lookup(whole.group(1)) is None else lookup(whole.group(1))) if whole else None
    if whole:
        assert render_value(template, lookup) == expected
    else:
        assert render_value(template, lookup) == render_text(template, lookup)


json_templates = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2) | st.lists(pieces, max_size=4).map("".join),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from("abc"), children, max_size=3),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(json_templates)
def test_a_compiled_json_template_fills_as_render_value(template: Any) -> None:
    from engine.templates import compile_value, render_value

    fill = compile_value(template)
    for _ in range(2):
        got, expected = fill(lookup), render_value(template, lookup)
        assert got == expected and type(got) is type(expected)
        if isinstance(expected, dict):
            assert list(got) == list(expected)
