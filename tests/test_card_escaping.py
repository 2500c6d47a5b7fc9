"""Record text on a card shows as written and never becomes markup.

The corpus (tests/fixtures/hostile-text.json) holds links, images, raw HTML, autolinks, bare URLs,
direction overrides, backticks, tables and control characters. Each string goes into a SINS
assessment's bodySite.text (it becomes the lesion level that the sins-referral card, its referral
suggestion and the merged sections quote) and the cards are rendered by a CommonMark renderer with
raw HTML switched ON and GFM tables on: the worst an EHR could do. The browser test
(tests/test_try_page_browser.py) shows the same cards in the try-it page.
"""

from __future__ import annotations

import copy
import html as html_module
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.api import get_engine
from engine.cases import request_from_hook_call
from engine.templates import defang, escape_markdown, plain
from tests.synthetic_requests import hook_request_for

markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py is in the test extras")

CORPUS = json.loads((Path(__file__).parent / "fixtures" / "hostile-text.json").read_text(encoding="utf-8"))["strings"]
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
MARKUP_TAGS = re.compile(r"<(a|img|script|table|div|h[1-6]|ol|ul|li|code|pre|del|s|strong|em|b|i|iframe)\b", re.I)
UNSAFE_CHARACTERS = re.compile(
    "[\u0000-\u0008\u000b-\u001f\u007f\u00ad\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\U000e0000-\U000e007f]"
)
LINKABLE = re.compile(r"(?i)(?:https?|ftp|mailto|javascript|vbscript|data|file|tel|sms|xmpp):|www\.")
RENDERER = markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def test_urls_and_addresses_are_defanged_visibly():
    assert defang("see https://evil.example or www.evil.example, mail a@b.example") == (
        "see https[:]//evil.example or www[.]evil.example, mail a[@]b.example"
    )
    assert defang("L1: 10 (potentially unstable); T4: 7-9") == "L1: 10 (potentially unstable); T4: 7-9"


def _tags(markdown: str) -> list[str]:
    return sorted(match.group(1).lower() for match in MARKUP_TAGS.finditer(RENDERER.render(markdown)))


@pytest.mark.parametrize("text", CORPUS)
def test_escaped_record_text_renders_as_its_own_characters(text):
    escaped = escape_markdown(text)
    html = RENDERER.render(f"Level: {escaped}.")
    assert _tags(f"Level: {escaped}.") == [], html
    assert not UNSAFE_CHARACTERS.search(escaped)
    assert "\n" not in escaped  # a value can never open a new block (heading, list, table, fence)
    # GFM renderers autolink a scheme or `www.` after `_`, a digit or any other non-letter, which
    # the renderer above does not do: so not one scheme or `www.` may be left undefanged.
    assert not LINKABLE.search(escaped), escaped
    # Nothing is lost but the dangerous invisible characters; URLs and addresses show defanged
    # (https[:]//...), because GitHub-flavoured renderers link them whatever the escaping.
    visible = html_module.unescape(re.sub(r"<[^>]+>", "", html))
    assert " ".join(defang(plain(text)).split()) in " ".join(visible.split())


def _with_sins_site(text: str) -> dict[str, Any]:
    body, _ = hook_request_for("spinecds-p13", "patient-view", NOW)
    body = copy.deepcopy(body)
    for entry in body["prefetch"]["sins"]["entry"]:
        entry["resource"]["bodySite"] = {"text": text}
    return body


def _card_texts(card: dict[str, Any]) -> list[str]:
    texts = [card["summary"], card.get("detail", "")]
    for suggestion in card.get("suggestions") or []:
        texts.append(suggestion["label"])
        texts.extend(action.get("description", "") for action in suggestion.get("actions") or [])
    texts.extend(link["label"] for link in card.get("links") or [])
    return texts


@pytest.fixture(scope="module")
def benign_tags() -> list[list[str]]:
    cards = get_engine().evaluate(request_from_hook_call(_with_sins_site("L1"), NOW)).cards
    return [[_tags(text) for text in _card_texts(card)] for card in cards]  # type: ignore[misc]


@pytest.mark.parametrize("text", CORPUS)
def test_hostile_record_text_adds_no_markup_to_any_card(text, benign_tags):
    result = get_engine().evaluate(request_from_hook_call(_with_sins_site(text), NOW))
    sins = next(c for c in result.cards if c["extension"]["spinecds"]["ruleId"] == "sins-referral")
    assert escape_markdown(text) in sins["detail"]  # the record text is on the card, escaped
    # Exactly the markup the rule's own template makes, whatever the record says.
    assert [[_tags(t) for t in _card_texts(card)] for card in result.cards] == benign_tags
    for card in result.cards:
        for value in _card_texts(card):
            assert not UNSAFE_CHARACTERS.search(value), (card["summary"], value)
