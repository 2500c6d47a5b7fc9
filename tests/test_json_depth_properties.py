"""The JSON nesting check (cds_hooks.validation.nesting_within) gives the same answer as the
previous, slower implementation on a large random corpus, and the right answer on real JSON.

The fast version skips string contents with one translate() and an adjacent-quote shortcut; the
reference below is the implementation it replaced (split on every quote), kept here as the oracle.
"""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from cds_hooks.validation import nesting_within

_NOT_A_BRACKET = bytes(range(256)).translate(None, b"[]{}")


def reference_nesting_within(body: bytes, max_depth: int) -> bool:
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return True
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = b"".join(unescaped.split(b'"')[::2]).translate(None, _NOT_A_BRACKET)
    skeleton = skeleton.replace(b"{", b"[").replace(b"}", b"]")
    if b"[" * (max_depth + 1) in skeleton:
        return False
    for _ in range(max_depth):
        if b"[]" not in skeleton:
            return True
        skeleton = skeleton.replace(b"[]", b"")
    return b"[]" not in skeleton


def true_depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((true_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((true_depth(v) for v in value), default=0)
    return 0


# Bytes that matter to the scan, over-represented; plus a little of everything else.
ALPHABET = b'[]{}""\\\\\\,:ab 1'


def test_same_answers_as_the_previous_check_on_a_random_corpus() -> None:
    rng = random.Random(16)
    checked = deep = 0
    for _ in range(40_000):
        length = rng.randrange(0, 120)
        body = bytes(rng.choice(ALPHABET) if rng.random() < 0.95 else rng.randrange(256) for _ in range(length))
        max_depth = rng.randrange(0, 8)
        expected = reference_nesting_within(body, max_depth)
        assert nesting_within(body, max_depth) == expected, (body, max_depth)
        checked += 1
        deep += not expected
    assert checked == 40_000 and deep > 1_000  # the corpus exercises both answers


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n', max_size=6),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=4),
    max_leaves=40,
)


@settings(max_examples=800, deadline=None)
@given(json_values, st.integers(min_value=0, max_value=10))
def test_real_json_is_judged_by_its_true_depth(value: object, max_depth: int) -> None:
    body = json.dumps(value).encode()
    assert nesting_within(body, max_depth) == (true_depth(value) <= max_depth)
    assert nesting_within(body, max_depth) == reference_nesting_within(body, max_depth)


@settings(max_examples=3_000, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=10))
def test_same_answers_as_the_previous_check_on_arbitrary_bytes(body: bytes, max_depth: int) -> None:
    assert nesting_within(body, max_depth) == reference_nesting_within(body, max_depth)


def test_brackets_inside_strings_do_not_count() -> None:
    body = json.dumps({"a": "[[[[[[[[[[", "b": ["]]]]", '\\"[[[']}).encode()
    assert nesting_within(body, 2)
    assert not nesting_within(json.dumps([[[["x"]]]]).encode(), 3)
