"""The try-it page in a REAL headless browser (Debian's chromium driven by Playwright).

Starts the real service under uvicorn (try page on, trace allowed), picks the suspected-MESCC
patient (p05), sends patient-view, and checks what a clinician would see: the critical MRI card
with its text label, a suggestion showing its ServiceRequest, the collapsible rule trace.
Leaves a screenshot in test-artifacts/try-page.png.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_service import live_service

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is absent: apt-get install chromium (.ci/run does this in CI)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_service(tmp_path_factory.mktemp("service"), try_page="true", allow_trace="true") as base:
        yield base


@pytest.fixture
def page(tmp_path: Path) -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        # A persistent context with a fresh folder = a fresh user-data-dir; never a downloaded browser.
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        context.set_default_timeout(15_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        yield page
        context.close()
        assert errors == [], f"browser errors: {errors}"


def test_try_page_shows_the_critical_mri_card_for_suspected_mescc(service, page):
    page.goto(service + "/")
    assert page.title().startswith("spinecds")
    page.wait_for_selector("#patient option[value='spinecds-p05']", state="attached")
    page.get_by_label("Synthetic patient").select_option("spinecds-p05")
    assert "suspected spinal cord compression" in page.locator("#story").inner_text()
    page.get_by_label("Hook", exact=True).select_option("patient-view")
    page.get_by_role("button", name="Send").click()

    critical = page.locator("article.card.critical").first
    critical.wait_for()
    assert critical.locator(".badge").inner_text().strip().lower() == "critical"
    summary = critical.locator("h3").inner_text()
    # Revision 2: the due time runs from presentation, in local time, with the hours left.
    assert summary.startswith("MRI whole spine by ") and " h left" in summary
    assert "rule mri-urgency" in critical.locator(".rule").inner_text()
    # Markdown bold rendered as markup, not as asterisks; the source links to the guideline.
    assert critical.locator(".detail strong").count() >= 1 and "**" not in critical.locator(".detail").inner_text()
    assert critical.locator(".source a").get_attribute("href").startswith("https://")

    sent = page.locator("#request").text_content()
    assert '"hook": "patient-view"' in sent and '"patientId": "spinecds-p05"' in sent

    critical.locator(".suggestions button").first.click()
    action = page.locator("#action")
    action.wait_for()
    assert '"resourceType": "ServiceRequest"' in action.inner_text()
    assert '"priority": "stat"' in action.inner_text()

    trace_box = page.locator("#trace-box")
    assert trace_box.is_visible() and not page.locator("#trace").is_visible()  # collapsed until asked
    trace_box.locator("summary").click()
    assert "mri-urgency" in page.locator("#trace").inner_text()
    trace_box.locator("summary").click()

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "try-page.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000


def test_try_page_order_sign_with_a_sample_order(service, page):
    page.goto(service + "/")
    page.wait_for_selector("#patient option[value='spinecds-p13']", state="attached")
    page.get_by_label("Synthetic patient").select_option("spinecds-p13")
    assert page.get_by_label("Draft order").is_disabled()
    page.get_by_label("Hook", exact=True).select_option("order-sign")
    page.get_by_label("Draft order").select_option("spinal-surgery")
    page.get_by_role("button", name="Send").click()
    page.locator("article.card").first.wait_for()
    warning = page.locator("article.card.warning", has_text="Surgery order: guideline criteria not met")
    assert warning.locator(".badge").inner_text().strip().lower() == "warning"
    assert "sandbox-draft-spinal-surgery" in page.locator("#request").text_content()


def test_card_text_from_the_service_is_never_executed_as_html(service, page):
    page.goto(service + "/")
    page.wait_for_selector("#patient option", state="attached")
    hostile = {
        "summary": "<img src=x onerror=window.pwned=1>",
        "indicator": "critical",
        "detail": "**bold** <script>window.pwned=2</script>\n- [x](javascript:window.pwned=3)\n- <b onclick=1>item</b>",
        "source": {"label": "<i>src</i>", "url": "javascript:window.pwned=4"},
        "links": [{"label": "bad", "url": "javascript:window.pwned=5", "type": "absolute"}],
    }
    page.evaluate("card => renderCards([card])", hostile)
    card = page.locator("article.card.critical")
    assert card.locator("h3").inner_text() == hostile["summary"]  # shown as text
    assert card.locator("img, script, b, i").count() == 0
    assert card.locator(".detail strong").inner_text() == "bold"  # markdown still works
    assert card.locator(".detail li").count() == 2
    assert card.locator("a[href^='javascript']").count() == 0
    assert card.locator(".source").inner_text() == "Source: <i>src</i>"
    assert page.evaluate("window.pwned") is None


# The README's screenshots are refreshed on request (SPINECDS_UPDATE_SCREENSHOTS=1), so an ordinary
# test run never changes tracked files.
DOCS_IMG = (
    Path(__file__).resolve().parents[1] / "docs" / "img" if os.environ.get("SPINECDS_UPDATE_SCREENSHOTS") else ARTIFACTS
)
HOSTILE = json.loads((Path(__file__).parent / "fixtures" / "hostile-text.json").read_text(encoding="utf-8"))["strings"]


def _hostile_cards() -> list[dict]:
    """The engine's own cards for p13 with each hostile string as the SINS level (record text)."""
    from datetime import UTC, datetime

    from engine.api import get_engine
    from engine.cases import request_from_hook_call
    from tests.synthetic_requests import hook_request_for

    now = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    cards = []
    for text in HOSTILE:
        body, _ = hook_request_for("spinecds-p13", "patient-view", now)
        for entry in body["prefetch"]["sins"]["entry"]:
            entry["resource"]["bodySite"] = {"text": text}
        result = get_engine().evaluate(request_from_hook_call(body, now))
        cards.append(next(c for c in result.cards if c["extension"]["spinecds"]["ruleId"] == "sins-referral"))
    return cards


def test_hostile_record_text_never_renders_as_a_link_image_or_html(service, page):
    page.goto(service + "/")
    page.wait_for_selector("#patient option", state="attached")
    cards = _hostile_cards()
    page.evaluate("cards => renderCards(cards)", cards)
    rendered = page.locator("article.card")
    assert rendered.count() == len(HOSTILE)
    for index in range(len(HOSTILE)):
        card = rendered.nth(index)
        detail = card.locator(".detail")
        # The template's own markup only: bold and one list; no link, image, HTML element or table.
        assert detail.locator("a, img, script, iframe, div, table, h1, h2, code, del, em").count() == 0, HOSTILE[index]
        assert detail.locator("ul").count() == 1 and detail.locator("ol").count() == 0, HOSTILE[index]
        text = detail.inner_text()
        assert "\u202e" not in text and "\u2066" not in text
    assert page.evaluate("window.pwned") is None


def test_markdown_tables_render_as_tables(service, page):
    # No rule's wording has a table today; the renderer must still show one properly when it does.
    page.goto(service + "/")
    page.wait_for_selector("#patient option", state="attached")
    card = {
        "summary": "Table",
        "indicator": "info",
        "detail": "**Survival**\n\n| model | group | median |\n|---|---|---|\n| Van der Linden | A | 3 months |",
        "source": {"label": "x"},
    }
    page.evaluate("card => renderCards([card])", card)
    table = page.locator("article.card .detail table")
    assert table.locator("th").all_inner_texts() == ["model", "group", "median"]
    assert table.locator("td").all_inner_texts() == ["Van der Linden", "A", "3 months"]


def test_markdown_lists_and_feedback_memory_by_hand(service, page):
    page.goto(service + "/")
    page.wait_for_selector("#patient option[value='spinecds-p13']", state="attached")
    page.get_by_label("Synthetic patient").select_option("spinecds-p13")
    page.get_by_label("Hook", exact=True).select_option("patient-view")
    page.get_by_role("button", name="Send").click()
    surgery = page.locator("article.card", has=page.locator(".rule", has_text="rule surgery-eligibility"))
    surgery.wait_for()
    assert page.locator("article.card").count() <= 3
    # Lists and emphasis render as markup; each merged rule is a section headed in bold.
    assert surgery.locator(".detail li").count() >= 4  # the host's bullets; merged sections are one paragraph
    assert surgery.locator(".detail strong", has_text="Also:").count() == 3
    assert "**" not in surgery.locator(".detail").inner_text()
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_IMG / "try-page-p13.png"), full_page=True)

    surgery.get_by_role("button", name="Override").click()
    page.locator("#status", has_text="stored").wait_for()
    page.get_by_role("button", name="Send").click()
    page.locator("#status", has_text="card(s) for").wait_for()
    rules = page.locator("article.card .rule").all_inner_texts()
    assert not any("surgery-eligibility" in rule for rule in rules), rules
    assert any("sins-referral" in rule for rule in rules)
    assert "surgery-eligibility" in page.locator("#set-aside").inner_text()
    page.screenshot(path=str(DOCS_IMG / "try-page-p13-after-override.png"), full_page=True)
