"""The SMART assessment loop end to end, in a REAL headless browser (Debian's chromium, Playwright).

One machine, everything on 127.0.0.1, started and stopped here: the local FHIR server (the EHR
stand-in, with its development authorisation server) holding a synthetic chart with an incomplete
SINS and unknown visceral status, and the real service (`uvicorn`, SMART app on).

patient-view -> the card's `smart` link -> EHR launch (launch + iss) -> PKCE sign-in -> the app
pre-filled from the chart -> answers typed with the keyboard only -> live preview -> one transaction
written -> read back and checked against the StructureDefinitions -> patient-view again: the SINS
and eligibility cards are decided. Bad input on the way: an out-of-range KPS, a write the FHIR server
refuses, a wrong state, a wrong PKCE verifier: each a clear message and nothing written.
axe-core (vendored in tests/vendor/axe-core) runs at 1280x800 and at tablet width: no serious or
critical violation. Screenshots go to test-artifacts/ (docs/img/ with SPINECDS_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

os.environ.setdefault("FHIR_SEQUENCE", "R4B")
pytest.importorskip("fhirstarter")

from fhir_profiles.profile_checks import check_resource, load_profiles
from sandbox import hook_client
from sandbox.fhir_server import ResourceStore, RunningServer, start_server
from tests import smart_patient as sp
from tests.live_service import live_service

CHROMIUM = Path("/usr/bin/chromium")
# As the try-it page's browser test: headless, no sandbox (containers), nothing fetched in the background.
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
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is absent: apt-get install chromium", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
# docs/img is refreshed on request (SPINECDS_UPDATE_SCREENSHOTS=1): an ordinary run changes no tracked file.
SHOTS = ROOT / ("docs/img" if os.environ.get("SPINECDS_UPDATE_SCREENSHOTS") else "test-artifacts")
# Chrome reports every non-2xx fetch as a console error; the refusals below are on purpose.
EXPECTED_CONSOLE = ("Failed to load resource",)


@pytest.fixture(scope="module")
def fhir() -> Iterator[RunningServer]:
    store = ResourceStore()
    from datetime import UTC, datetime

    store.load(*sp.chart(datetime.now(UTC)))
    server = start_server(store)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_service(tmp_path_factory.mktemp("service"), smart_app="true") as base:
        yield base


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One Debian chromium for the module (never a downloaded browser); each test gets a fresh context."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 800})  # fresh storage: no shared state
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text) if msg.type == "error" and not msg.text.startswith(EXPECTED_CONSOLE) else None
        ),
    )
    yield page
    context.close()
    assert errors == [], f"browser errors (CSP violations included): {errors}"


def patient_view(service: str, fhir: RunningServer) -> dict[str, dict[str, Any]]:
    """patient-view as the EHR sends it (prefetched from its FHIR server); cards by rule id."""
    with requests.Session() as session:
        discovered = hook_client.discover(session, service, "patient-view")
        call = hook_client.fire(
            session, service, discovered, "patient-view", sp.PATIENT_ID, fhir_session=session, fhir_base=fhir.base_url
        )
    assert call.response.status_code == 200, call.response.text
    return {card["extension"]["spinecds"]["ruleId"]: card for card in call.body["cards"]}


def smart_link(card: dict[str, Any]) -> dict[str, Any]:
    (link,) = [link for link in card.get("links", []) if link["type"] == "smart"]
    return link


def ehr_launch_url(fhir: RunningServer, link: dict[str, Any]) -> str:
    """What the EHR does with a smart link: open it with a launch context holding the card's appContext."""
    query = urlencode({"app": link["url"], "patient": sp.PATIENT_ID, "appContext": link.get("appContext", "")})
    return f"{fhir.base_url}/auth/launch?{query}"


def axe_serious(page: Any) -> list[dict[str, Any]]:
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")  # evaluated by the driver, not a page <script>
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
              .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))"""
    )
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def tab_to(page: Any, predicate: str, limit: int = 250) -> None:
    """Press Tab until the focused element satisfies the JS predicate `el => bool` (keyboard only)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"({predicate})(document.activeElement)"):
            return
    raise AssertionError(f"never reached by Tab: {predicate}")


def radio_of(legend: str) -> str:
    return (
        "el => el && el.type === 'radio' && el.closest('fieldset') &&"
        f" el.closest('fieldset').querySelector('legend').textContent.startsWith({json.dumps(legend)})"
    )


def choose(page: Any, legend: str, downs: int) -> None:
    """Tab into a radio group (focus lands on its first option) and select the option `downs` below it."""
    tab_to(page, radio_of(legend))
    if downs == 0:
        page.keyboard.press("Space")
    for _ in range(downs):
        page.keyboard.press("ArrowDown")


def wait_until(page: Any, predicate: str, timeout: float = 15.0) -> None:
    """Poll `() => bool` through the driver: the app's CSP (no eval) rules out page.wait_for_function."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        time.sleep(0.05)


def written(store: ResourceStore) -> dict[str, int]:
    return {kind: len(store.all(kind)) for kind in ("Observation", "Condition", "Provenance")}


def test_the_card_link_launches_the_app_which_completes_the_chart(service, fhir, browser):
    page = browser
    SHOTS.mkdir(parents=True, exist_ok=True)
    # 1. patient-view: the SINS card is incomplete, eligibility undetermined for the visceral status
    before = patient_view(service, fhir)
    assert before["sins-referral"]["extension"]["spinecds"]["sins"]["category"] == "incomplete"
    assert before["surgery-eligibility"]["extension"]["spinecds"]["outcome"] == "undetermined"
    link = smart_link(before["sins-referral"])
    assert json.loads(link["appContext"])["levels"] == ["T12"]
    assert smart_link(before["surgery-eligibility"])  # it lacks data too
    start = written(fhir.store)

    # 2. the EHR launches the link; the app signs in with PKCE and opens on the SINS questions
    page.goto(ehr_launch_url(fhir, link))
    page.wait_for_selector("#assessment:not([hidden])")
    assert page.evaluate("document.activeElement.id") == "h-spinecds-sins"
    assert "(asked by the card)" in page.locator("#h-spinecds-sins").inner_text()
    assert "SINS pain component missing" in page.locator("#asked").inner_text()
    lesion = page.locator("fieldset.instance", has_text="Lesion T12")
    assert lesion.get_by_label("Junctional", exact=False).first.is_checked()  # pre-filled from the chart
    assert page.get_by_label("KPS (0-100, in steps of 10)").input_value() == "80"
    assert "7 so far (3 components open)" in lesion.locator("output").first.inner_text()
    after_box = page.locator("#result-after")
    assert "visceral metastases status" in after_box.inner_text()

    # 3. keyboard only: the three missing components, then "absent" for visceral and brain metastases
    choose(page, "Pain", 0)  # mechanical
    choose(page, "Radiographic alignment", 2)  # normal alignment
    choose(page, "Posterolateral involvement", 2)  # none
    choose(page, "Visceral metastases", 1)  # absent
    choose(page, "Brain metastases", 1)  # absent
    assert lesion.locator("output").first.inner_text() == "10"
    # previews are debounced (stale answers are dropped): wait for the one that includes the last answer
    wait_until(page, "() => document.querySelector('#result-after').textContent.includes('Still missingnothing')")
    assert "SINS 10, potentially unstable" in after_box.inner_text()
    assert "Surgery eligibility" in after_box.inner_text() and "eligible" in after_box.inner_text()
    assert "Still missing" in after_box.inner_text() and "nothing" in after_box.inner_text()

    # 4. an out-of-range KPS: marked at the field, and Save writes nothing
    kps = page.get_by_label("KPS (0-100, in steps of 10)")
    tab_to(page, "el => el && el.type === 'number'")
    page.keyboard.press("Control+A")
    page.keyboard.type("150")
    page.wait_for_selector("#problems-box:not([hidden])")
    assert kps.get_attribute("aria-invalid") == "true"
    hint = page.locator("#" + kps.get_attribute("aria-describedby"))
    assert hint.inner_text() == "out of range: must be 0-100 in steps of 10"
    assert not page.locator("#done").is_visible()
    assert axe_serious(page) == []  # the error state is announced properly too
    tab_to(page, "el => el && el.id === 'save'")
    page.keyboard.press("Enter")
    page.wait_for_selector("#error:not([hidden])")
    assert "Nothing was saved: some answers need correcting" in page.locator("#error").inner_text()
    assert written(fhir.store) == start
    kps.focus()
    page.keyboard.press("Control+A")
    page.keyboard.type("80")  # back to the chart's value: not written again
    page.wait_for_selector("#problems-box", state="hidden")
    page.wait_for_selector("#error", state="hidden")  # the correction clears the message

    # accessibility and layout at 1280x800 and at tablet width
    assert axe_serious(page) == []
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / "smart-app-1280x800.png"))
    page.set_viewport_size({"width": 768, "height": 1024})
    assert axe_serious(page) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    page.screenshot(path=str(SHOTS / "smart-app-tablet.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})

    # 5. the FHIR server refuses the write: a clear message, nothing partial
    fhir.faults.refuse_transactions = True
    try:
        page.locator("#save").focus()
        page.keyboard.press("Enter")
        wait_until(page, "() => document.querySelector('#error').textContent.includes('refused the write')")
        assert "HTTP 422" in page.locator("#error").inner_text()
        assert written(fhir.store) == start
    finally:
        fhir.faults.refuse_transactions = False

    # 6. the write: one transaction, the app says the card updates on the next hook
    page.locator("#save").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#done:not([hidden])")
    assert "The cards update on the next hook" in page.locator("#done").inner_text()
    assert page.evaluate("document.activeElement.id") == "done"
    page.screenshot(path=str(SHOTS / "smart-app-saved.png"))
    assert "SINS assessment, T12" in page.locator("#done-list").inner_text()
    locations = page.locator("#done-list li code").all_inner_texts()
    assert sorted(loc.split("/")[0] for loc in locations) == ["Observation", "Observation", "Provenance"]

    # 7. read back from the FHIR server: valid against our StructureDefinitions, with a Provenance
    with requests.Session() as session:
        resources = [session.get(f"{fhir.base_url}/{loc}", timeout=5).json() for loc in locations]
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    for resource in observations:
        assert check_resource(resource) == []
    sins = next(r for r in observations if r["code"]["coding"][0]["code"] == "sins")
    assert [p.id for p in load_profiles().applicable(sins)] == ["spinecds-sins-observation"]
    assert sins["valueInteger"] == 10 and sins["subject"]["reference"] == f"Patient/{sp.PATIENT_ID}"
    provenance = next(r for r in resources if r["resourceType"] == "Provenance")
    assert sorted(t["reference"] for t in provenance["target"]) == sorted(
        loc for loc in locations if not loc.startswith("Provenance")
    )
    assert provenance["agent"][0]["who"]["reference"] == "Practitioner/sandbox-clinician"
    assert provenance["agent"][1]["who"]["display"].startswith("spinecds assessment")
    assert written(fhir.store) == {**start, "Observation": start["Observation"] + 2, "Provenance": 1}

    # 8. patient-view again: decided, and no longer asking for data
    after = patient_view(service, fhir)
    sins_card = after["sins-referral"]["extension"]["spinecds"]
    assert sins_card["sins"] == {"total": 10, "category": "potentially-unstable", "level": "T12"}
    assert "missing" not in sins_card and not any(
        lk["type"] == "smart" for lk in after["sins-referral"].get("links", [])
    )
    assert after["surgery-eligibility"]["extension"]["spinecds"]["outcome"] == "eligible"
    assert "missing" not in after["surgery-eligibility"]["extension"]["spinecds"]


def test_a_wrong_state_is_refused_with_a_clear_message(service, browser):
    page = browser
    page.goto(f"{service}/smart/index.html?code=forged&state=not-the-one-we-sent")
    page.wait_for_selector("#error:not([hidden])")
    text = page.locator("#error").inner_text()
    assert "The sign-in could not be completed" in text and "Open the app again" in text
    assert page.locator("#assessment").is_hidden()
    assert axe_serious(page) == []


def test_a_wrong_code_verifier_is_refused_by_the_authorisation_server(service, fhir, browser):
    page = browser
    link = {"url": f"{service}/smart/launch.html", "appContext": '{"questions":["staging"]}'}
    sent: list[str] = []

    def tamper(route: Any) -> None:
        body = route.request.post_data or ""
        sent.append(body)
        forged = "&".join(
            "code_verifier=" + "x" * 64 if part.startswith("code_verifier=") else part for part in body.split("&")
        )
        route.continue_(post_data=forged)

    start = written(fhir.store)
    page.route(f"{fhir.base_url}/auth/token", tamper)
    page.goto(ehr_launch_url(fhir, link))
    page.wait_for_selector("#error:not([hidden])")
    assert sent and "code_verifier=" in sent[0]
    text = page.locator("#error").inner_text()
    assert "The sign-in could not be completed" in text and "code_verifier does not match" in text
    assert page.locator("#assessment").is_hidden()
    assert written(fhir.store) == start  # no token, so nothing could be written


def test_standalone_launch_picks_the_patient_at_the_authorisation_server(service, fhir, browser):
    page = browser
    page.goto(f"{service}/smart/launch.html")
    page.get_by_label("FHIR server base URL").fill(fhir.base_url)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Patient").select_option(sp.PATIENT_ID)
    page.get_by_role("button", name="Allow").click()
    page.wait_for_selector("#assessment:not([hidden])")
    assert sp.PATIENT_ID in page.locator("#banner").inner_text() or "Case" in page.locator("#banner").inner_text()
    # no card context: all four questionnaires, in their usual order
    headings = page.locator("section.questionnaire h2").all_inner_texts()
    assert len(headings) == 4 and headings[0].startswith("Spinal Instability")
