"""Cards as the public CDS Hooks Sandbox renders them, in a real headless Chromium.

The Sandbox renders a card's detail with react-markdown + remark-gfm + rehype-raw: GitHub markdown
with raw HTML switched on, the most permissive rendering a CDS client does. tools/cds_hooks_sandbox_render
runs those same packages (pinned versions; `npm ci` there once) and frames the cards like the
Sandbox does. The hostile-text corpus must render as text there too. The p13 screenshot is the one
README.md and docs/cds-hooks-sandbox.md show.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.api import get_engine
from engine.cases import request_from_hook_call
from tests.synthetic_requests import hook_request_for

ROOT = Path(__file__).resolve().parents[1]
RENDERER = ROOT / "tools" / "cds_hooks_sandbox_render"
CHROMIUM = Path("/usr/bin/chromium")
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
HOSTILE = json.loads((Path(__file__).parent / "fixtures" / "hostile-text.json").read_text(encoding="utf-8"))["strings"]

if shutil.which("node") is None or not (RENDERER / "node_modules" / "react-markdown").is_dir():
    pytest.skip(f"needs node and `npm ci` in {RENDERER.relative_to(ROOT)}", allow_module_level=True)
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is absent: apt-get install chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")


def sandbox_html(cards: list[dict[str, Any]], title: str, tmp_path: Path) -> str:
    source = tmp_path / "cards.json"
    source.write_text(json.dumps({"title": title, "cards": cards}), encoding="utf-8")
    done = subprocess.run(
        ["node", str(RENDERER / "render.mjs"), str(source)], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
            viewport={"width": 900, "height": 1000},
            offline=True,  # the page loads nothing: a link or image from record text could not even fetch
        )
        yield context.new_page()
        context.close()


def _cards(patient: str, sins_site: str | None = None) -> list[dict[str, Any]]:
    body, _ = hook_request_for(patient, "patient-view", NOW)
    if sins_site is not None:
        for entry in body["prefetch"]["sins"]["entry"]:
            entry["resource"]["bodySite"] = {"text": sins_site}
    return get_engine().evaluate(request_from_hook_call(body, NOW)).cards


def test_hostile_record_text_renders_as_text_in_the_cds_hooks_sandbox(page, tmp_path):
    cards = []
    for text in HOSTILE:
        sins = next(c for c in _cards("spinecds-p13", text) if c["extension"]["spinecds"]["ruleId"] == "sins-referral")
        cards.append(sins)
    page.set_content(sandbox_html(cards, "hostile record text", tmp_path))
    details = page.locator(".decision-card .detail")
    assert details.count() == len(HOSTILE)
    for index, text in enumerate(HOSTILE):
        detail = details.nth(index)
        found = detail.locator("a, img, script, iframe, div, table, h1, h2, code, del, em, b, i, style").count()
        assert found == 0, (text, detail.inner_html()[:400])
        assert detail.locator("ul").count() == 1 and detail.locator("ol").count() == 0, text
        assert "\u202e" not in detail.inner_text()
    assert page.evaluate("() => window.pwned") is None


def test_p13_as_the_cds_hooks_sandbox_shows_it(page, tmp_path):
    cards = _cards("spinecds-p13")
    page.set_content(sandbox_html(cards, "CDS Hooks Sandbox rendering - spinecds-p13, patient-view", tmp_path))
    rendered = page.locator(".decision-card")
    assert rendered.count() == len(cards) <= 3
    assert page.locator(".detail strong", has_text="Also:").count() == 3  # merged sections
    assert page.locator(".detail li").count() >= 5
    assert "**" not in page.locator("main").inner_text()
    # The README's screenshot is refreshed on request only: a test run never changes tracked files.
    folder = ROOT / ("docs/img" if os.environ.get("SPINECDS_UPDATE_SCREENSHOTS") else "test-artifacts")
    shot = folder / "cds-hooks-sandbox-p13.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
