"""Issue 15's findings, each reproduced as an attack over real HTTP against the production entry point
(`python -m cds_hooks`, authentication on) and each failing safely now: no connection to the other
host (its loopback listener records nothing), no token sent, a 4xx with an OperationOutcome, nothing
stored. docs/security.md's threat model table points at these tests.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from cds_hooks.store import ClientId, SqliteStore
from tests.attack_rig import (
    ENTRY_POINTS,
    Ehr,
    ProductionService,
    RecordingListener,
    empty_bundle,
    free_port,
    json_answer,
    production_service,
    recording_listener,
    write_trusted_clients,
)

markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py is in the test extras")

SERVICE = "/cds-services/spinecds-patient-view"
# The namespace the engine derived card uuids from (uuid5 of hookInstance and rule id): what an
# attacker would compute. Kept here so the test does not depend on the engine still having it.
CARD_NAMESPACE = uuid.UUID("6f1c2f0e-7a41-4d1b-9a55-5f0c3e1d2b7a")
SECRET = "ehr-access-token-never-leaves-the-fhir-server"
PATIENT = "p1"


def fhir_responder(path: str) -> tuple[int, dict[str, str], bytes]:
    if path.split("?")[0].endswith(f"/Patient/{PATIENT}"):
        return json_answer({"resourceType": "Patient", "id": PATIENT, "gender": "female", "birthDate": "1960-05-01"})
    return empty_bundle(path)


@dataclass
class Rig:
    service: ProductionService
    ehr_a: Ehr
    ehr_b: Ehr
    fhir: RecordingListener  # the FHIR server EHR A allowlists
    other: RecordingListener  # another host on loopback: nobody may send us there
    garbage: RecordingListener  # allowlisted, open port, not a FHIR server
    closed_port: int  # allowlisted, nothing listens

    def post(self, path: str, body: Any, ehr: Ehr | None = None, **kwargs: Any) -> requests.Response:
        ehr = ehr or self.ehr_a
        url = self.service.base + path
        return requests.post(url, json=body, headers=ehr.headers(url), timeout=10, **kwargs)

    def quiet(self) -> None:
        for listener in (self.fhir, self.other, self.garbage):
            listener.connections = 0
            listener.requests.clear()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    folder = tmp_path_factory.mktemp("attack")
    ehr_a = Ehr.new("https://ehr-a.example.org", tenant="hospital-a")
    ehr_b = Ehr.new("https://ehr-b.example.org")
    closed = free_port()
    with (
        recording_listener(fhir_responder) as fhir,
        recording_listener(fhir_responder) as other,
        recording_listener(lambda _: (200, {"Content-Type": "text/plain"}, b"SSH-2.0-OpenSSH_9.6")) as garbage,
    ):
        clients = write_trusted_clients(
            folder,
            [
                (ehr_a, [f"{fhir.url}/fhir", f"{garbage.url}/fhir", f"http://127.0.0.1:{closed}/fhir"]),
                (ehr_b, [f"{other.url}/fhir"]),
            ],
        )
        with production_service(
            folder, trusted_clients_file=str(clients), fhir_allow_http_loopback="true", log_level="INFO"
        ) as service:
            yield Rig(service, ehr_a, ehr_b, fhir, other, garbage, closed)


def hook_body(fhir_server: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr-1", "patientId": PATIENT},
    }
    if fhir_server is not None:
        body["fhirServer"] = fhir_server
        body["fhirAuthorization"] = {
            "access_token": SECRET,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds-service",
        }
    body.update(extra)
    return body


def assert_outcome(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    return outcome


# ---------------------------------------------------------------- 1. fhirServer goes anywhere


def test_the_allowlisted_fhir_server_is_used_with_the_token(rig: Rig) -> None:
    """The control case: the attack tests below would pass trivially if fetching never worked."""
    rig.quiet()
    response = rig.post(SERVICE, hook_body(f"{rig.fhir.url}/fhir"))
    assert response.status_code == 200, response.text
    assert rig.fhir.requests and rig.fhir.saw_token(SECRET)
    assert {seen.path.split("?")[0] for seen in rig.fhir.requests} >= {"/fhir/Patient/p1", "/fhir/Condition"}


def _other_host_urls(rig: Rig) -> list[str]:
    port = rig.other.port
    fhir_port = rig.fhir.port
    return [
        f"http://127.0.0.1:{port}/fhir",  # another loopback port (allowlisted for EHR B, not for A)
        f"http://localhost:{port}/fhir",
        f"http://0.0.0.0:{port}/fhir",
        f"http://2130706433:{port}/fhir",  # 127.0.0.1 as a decimal number
        f"http://0x7f.0.0.1:{port}/fhir",
        f"http://[::ffff:127.0.0.1]:{port}/fhir",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata (link-local)
        "http://10.0.0.1/fhir",
        f"http://localhost:{fhir_port}/fhir",  # the right port under another name is not the allowlisted URL
        f"http://user:pw@127.0.0.1:{fhir_port}/fhir",  # Basic credentials instead of the token
        f"http://127.0.0.1:{fhir_port}@127.0.0.1:{port}/fhir",
        f"http://127.0.0.1:{fhir_port}/fhir?x=1",  # a query breaks every path built on it
        f"http://127.0.0.1:{fhir_port}/fhir#frag",
        f"http://127.0.0.1:{fhir_port}/fhir-evil",  # prefix on whole path segments only
        f"http://127.0.0.1:{fhir_port}/",
        f"http://127.0.0.1:{fhir_port}/fhir/../admin",
        f"http://127.0.0.1:{fhir_port}/fhir/%2e%2e/admin",
        f"http://127.0.0.1:{fhir_port}\\@127.0.0.1:{port}/fhir",
        f"https://127.0.0.1:{fhir_port}/fhir",  # scheme is exact
        f"ftp://127.0.0.1:{fhir_port}/fhir",
        "file:///etc/passwd",
        "not a url",
    ]


def test_a_fhir_server_outside_the_callers_allowlist_is_refused_before_any_connection(rig: Rig) -> None:
    answers = set()
    for url in _other_host_urls(rig):
        rig.quiet()
        outcome = assert_outcome(rig.post(SERVICE, hook_body(url)), 400)
        (issue,) = outcome["issue"]
        assert issue["expression"] == ["fhirServer"]
        answers.add(issue["diagnostics"])
        assert rig.other.connections == 0 and rig.fhir.connections == 0, url
    # One neutral message whatever the reason: the answer says nothing about what is out there.
    assert answers == {"fhirServer is not a FHIR server this service may call for this client"}


def test_another_clients_fhir_server_is_refused(rig: Rig) -> None:
    """EHR B may use its own server; EHR A may not send us there with its token."""
    rig.quiet()
    assert rig.post(SERVICE, hook_body(f"{rig.other.url}/fhir"), ehr=rig.ehr_b).status_code == 200
    assert rig.other.requests
    rig.quiet()
    assert_outcome(rig.post(SERVICE, hook_body(f"{rig.other.url}/fhir"), ehr=rig.ehr_a), 400)
    assert rig.other.connections == 0


def test_redirects_from_the_fhir_server_are_not_followed(rig: Rig) -> None:
    rig.quiet()
    target = f"{rig.other.url}/fhir/Patient/p1"
    rig.fhir.responder = lambda _: (302, {"Location": target}, b"")
    try:
        outcome = assert_outcome(rig.post(SERVICE, hook_body(f"{rig.fhir.url}/fhir")), 412)
    finally:
        rig.fhir.responder = fhir_responder
    assert rig.fhir.requests  # the allowlisted server was asked ...
    assert rig.other.connections == 0 and not rig.other.saw_token(SECRET)  # ... and nobody else
    assert "redirect" not in str(outcome).lower()


def test_a_next_link_off_the_fhir_server_is_not_followed(rig: Rig) -> None:
    rig.quiet()

    def paging(path: str) -> tuple[int, dict[str, str], bytes]:
        if "/Condition" in path:
            return json_answer(
                {
                    "resourceType": "Bundle",
                    "type": "searchset",
                    "link": [{"relation": "next", "url": f"{rig.other.url}/fhir/Condition?page=2"}],
                }
            )
        return fhir_responder(path)

    rig.fhir.responder = paging
    try:
        assert_outcome(rig.post(SERVICE, hook_body(f"{rig.fhir.url}/fhir")), 412)
    finally:
        rig.fhir.responder = fhir_responder
    assert rig.other.connections == 0


def test_the_412_wording_does_not_tell_open_from_closed_ports(rig: Rig) -> None:
    closed = assert_outcome(rig.post(SERVICE, hook_body(f"http://127.0.0.1:{rig.closed_port}/fhir")), 412)
    opened = assert_outcome(rig.post(SERVICE, hook_body(f"{rig.garbage.url}/fhir")), 412)
    assert rig.garbage.connections > 0  # it was really tried
    assert closed == opened
    assert SECRET not in rig.service.log()


# ---------------------------------------------------------------- 2. feedback not bound to the client

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "patient-view-suspected-mescc.json"
FEEDBACK = SERVICE + "/feedback"


def charted_body(hook_instance: str | None = None) -> dict[str, Any]:
    """A fully prefetched call on a chart that gets cards (no FHIR server involved)."""
    body = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    body["hookInstance"] = hook_instance or str(uuid.uuid4())
    return body


def accepted(card: str) -> dict[str, Any]:
    return {"card": card, "outcome": "accepted", "outcomeTimestamp": "2026-03-02T09:31:00Z"}


def stored_feedback(rig: Rig) -> list[dict[str, Any]]:
    store = SqliteStore(rig.service.folder / "spinecds.sqlite3")
    try:
        return store.list_feedback()
    finally:
        store.close()


def test_card_uuids_cannot_be_predicted(rig: Rig) -> None:
    body = charted_body()
    cards = rig.post(SERVICE, body).json()["cards"]
    assert cards
    for card in cards:
        rule = card["extension"]["spinecds"]["ruleId"]
        assert card["uuid"] != str(uuid.uuid5(CARD_NAMESPACE, f"{body['hookInstance']}|{rule}"))
        assert uuid.UUID(card["uuid"]).version == 4
    # The uuid a second client would compute for the same call is unknown to the service.
    guessed = str(uuid.uuid5(CARD_NAMESPACE, f"{body['hookInstance']}|{cards[0]['extension']['spinecds']['ruleId']}"))
    before = stored_feedback(rig)
    assert_outcome(rig.post(FEEDBACK, {"feedback": [accepted(guessed)]}, ehr=rig.ehr_b), 404)
    assert stored_feedback(rig) == before


def test_feedback_on_another_clients_card_is_404_and_cannot_preempt_the_real_feedback(rig: Rig) -> None:
    card = rig.post(SERVICE, charted_body()).json()["cards"][0]["uuid"]
    before = stored_feedback(rig)
    # EHR B learned the uuid somehow and answers first, with "overridden".
    overridden = {**accepted(card), "outcome": "overridden"}
    assert_outcome(rig.post(FEEDBACK, {"feedback": [overridden]}, ehr=rig.ehr_b), 404)
    assert stored_feedback(rig) == before
    # EHR A's real feedback is then stored, not silently dropped.
    assert rig.post(FEEDBACK, {"feedback": [accepted(card)]}).status_code == 200
    assert [(f["card"], f["outcome"]) for f in stored_feedback(rig) if f["card"] == card] == [(card, "accepted")]


def test_feedback_for_a_card_never_issued_is_404_and_not_stored(rig: Rig) -> None:
    before = stored_feedback(rig)
    assert_outcome(rig.post(FEEDBACK, {"feedback": [accepted(str(uuid.uuid4()))]}), 404)
    assert stored_feedback(rig) == before


def test_a_reused_hook_instance_cannot_overwrite_another_clients_audit_rows(rig: Rig) -> None:
    hook_instance = str(uuid.uuid4())
    card = rig.post(SERVICE, charted_body(hook_instance)).json()["cards"][0]["uuid"]
    assert rig.post(SERVICE, charted_body(hook_instance), ehr=rig.ehr_b).status_code == 200
    store = SqliteStore(rig.service.folder / "spinecds.sqlite3")
    try:
        first, second = store.list_evaluations(hook_instance)
        assert first["client"] == {"iss": rig.ehr_a.iss, "tenant": "hospital-a"}
        assert second["client"] == {"iss": rig.ehr_b.iss, "tenant": None}
        assert card in first["cardUuids"] and card not in second["cardUuids"]
        assert store.cards_issued_to([card], ClientId(rig.ehr_a.iss, "hospital-a"), "spinecds-patient-view") == {card}
    finally:
        store.close()
    assert rig.post(FEEDBACK, {"feedback": [accepted(card)]}).status_code == 200


def test_hook_instance_must_be_a_uuid(rig: Rig) -> None:
    for value in ("hook-1", "../../etc", "x" * 100, "5b2c6a0e6f0b4c559b1e2a7f9c3d1e01"):
        outcome = assert_outcome(rig.post(SERVICE, charted_body(value)), 400)
        assert ["hookInstance"] in [issue.get("expression") for issue in outcome["issue"]]


def test_feedback_is_bounded_in_items_and_length(rig: Rig) -> None:
    card = rig.post(SERVICE, charted_body()).json()["cards"][0]["uuid"]
    before = stored_feedback(rig)
    assert_outcome(rig.post(FEEDBACK, {"feedback": [accepted(card)] * 42_000}), 413)
    huge = {**accepted(card), "outcome": "overridden", "overrideReason": {"userComment": "x" * 4_000_000}}
    assert_outcome(rig.post(FEEDBACK, {"feedback": [huge]}), 400)
    assert stored_feedback(rig) == before


# ---------------------------------------------------------------- 3. patientId as a path segment


@pytest.mark.parametrize("patient_id", [".", "..", "...", "p1/../p2", "p1?_id=p2", "p1#x", "p%2F1", ""])
def test_a_patient_id_that_is_not_a_fhir_id_never_reaches_the_fhir_server(rig: Rig, patient_id: str) -> None:
    rig.quiet()
    body = hook_body(f"{rig.fhir.url}/fhir")
    body["context"]["patientId"] = patient_id
    outcome = assert_outcome(rig.post(SERVICE, body), 400)
    assert ["context.patientId"] in [issue.get("expression") for issue in outcome["issue"]]
    assert rig.fhir.connections == 0


def test_the_fetched_patient_must_be_the_context_patient(rig: Rig) -> None:
    rig.quiet()
    rig.fhir.responder = lambda path: (
        json_answer({"resourceType": "Patient", "id": "someone-else"}) if "/Patient/" in path else empty_bundle(path)
    )
    try:
        outcome = assert_outcome(rig.post(SERVICE, hook_body(f"{rig.fhir.url}/fhir")), 412)
    finally:
        rig.fhir.responder = fhir_responder
    assert outcome["issue"][0]["expression"] == ["prefetch.patient"]
    assert [seen.path for seen in rig.fhir.requests if "/Patient/" in seen.path] == ["/fhir/Patient/p1"]


# ---------------------------------------------------------------- 4. the production entry point


@dataclass
class Served:
    service: ProductionService
    ehr: Ehr

    def url(self, path: str) -> str:
        return self.service.base + path


@pytest.fixture(scope="module", params=ENTRY_POINTS)
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Each way production runs the app, with its defaults: only the trusted client is configured."""
    if request.param == "gunicorn" and importlib.util.find_spec("gunicorn") is None:
        pytest.skip("gunicorn (the deploy extra) is not installed")
    folder = tmp_path_factory.mktemp("entry")
    ehr = Ehr.new("https://ehr-a.example.org")
    clients = write_trusted_clients(folder, [(ehr, [])])
    with production_service(folder, request.param, trusted_clients_file=str(clients), log_level="INFO") as service:
        yield Served(service, ehr)


def test_forwarded_proto_from_loopback_does_not_change_the_audience(served: Served) -> None:
    url = served.url("/cds-services")
    assert requests.get(url, headers=served.ehr.headers(url), timeout=10).status_code == 200  # control
    https_aud = url.replace("http://", "https://")
    forged = {**served.ehr.headers(https_aud), "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    response = requests.get(url, headers=forged, timeout=10)
    assert response.status_code == 401  # uvicorn did not turn the call into an https one


def test_no_access_log_with_query_strings(served: Served) -> None:
    url = served.url("/cds-services")
    leak = "query-token-" + uuid.uuid4().hex
    assert requests.get(url + f"?access_token={leak}", headers=served.ehr.headers(url), timeout=10).status_code == 200
    requests.get(served.url(f"/patient-sheets/alarm-symptoms?code={leak}"), timeout=10)
    time.sleep(0.3)
    log = served.service.log()
    assert '"message": "request"' in log  # the service's own request line is there ...
    assert leak not in log  # ... without the query string, and there is no other access log
    assert '"GET /cds-services' not in log


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_api_docs_are_off(served: Served, path: str) -> None:
    response = requests.get(served.url(path), timeout=10)
    assert response.status_code == 404
    assert "cdn" not in response.text.lower() and "swagger" not in response.text.lower()


def test_authentication_happens_before_the_body_is_read(served: Served) -> None:
    """Headers of a 4 MB POST without a token, and no body: the 401 comes without waiting for it."""
    host, port = served.service.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(
            f"POST {SERVICE} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {4 * 1024 * 1024}\r\n\r\n".encode()
        )
        started = time.monotonic()
        answer = connection.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 401"), answer[:200]
    assert time.monotonic() - started < 3


def test_no_cors_by_default(served: Served) -> None:
    url = served.url("/cds-services")
    origin = {"Origin": "https://evil.example.com"}
    answer = requests.get(url, headers={**served.ehr.headers(url), **origin}, timeout=10)
    preflight = requests.options(url, headers={**origin, "Access-Control-Request-Method": "GET"}, timeout=10)
    for response in (answer, preflight):
        assert not [name for name in response.headers if name.lower().startswith("access-control-")]


def test_tokens_living_longer_than_five_minutes_are_refused(served: Served) -> None:
    url = served.url("/cds-services")
    assert requests.get(url, headers=served.ehr.headers(url, lifetime=3600), timeout=10).status_code == 401
    assert requests.get(url, headers=served.ehr.headers(url, lifetime=300), timeout=10).status_code == 200


def test_the_patient_sheet_carries_security_headers(served: Served) -> None:
    response = requests.get(served.url("/patient-sheets/alarm-symptoms"), timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy and "script-src" not in policy
    assert "'unsafe-inline'" not in policy and "'sha256-" in policy  # its own <style> only, by hash
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


# ---------------------------------------------------------------- 5. hostile record text on cards

HOSTILE = json.loads((Path(__file__).parent / "fixtures" / "hostile-text.json").read_text(encoding="utf-8"))["strings"]
MARKUP = re.compile(r"<(a|img|script|iframe|table|div|h[1-6]|ol|ul|li|code|pre|del|s|strong|em|b|i|style)\b", re.I)
BIDI_AND_CONTROL = re.compile("[\u0000-\u0008\u000b-\u001f\u007f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
SYNTHETIC_PATIENT = "spinecds-p13"  # gets several cards, one of them quoting record text (the SINS lesion level)


def _with_record_text(body: dict[str, Any], text: str) -> dict[str, Any]:
    """Every free-text member of every prefetched resource (displays, texts, lesion sites) set to `text`."""
    body = copy.deepcopy(body)

    def rewrite(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("display", "text") and isinstance(value, str):
                    node[key] = text
                else:
                    rewrite(value)
            if node.get("resourceType") == "Observation":
                node["bodySite"] = {"text": text}
        elif isinstance(node, list):
            for item in node:
                rewrite(item)

    rewrite(body["prefetch"])
    return body


def _card_strings(card: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, text) of every string a CDS client may show, whatever member it is in."""
    found: list[tuple[str, str]] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, str):
            found.append((where, node))
        elif isinstance(node, dict):
            for key, value in node.items():
                if key not in ("uuid", "url", "icon", "resource", "extension", "system", "code"):
                    walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{where}[{index}]")

    walk(card, card["extension"]["spinecds"]["ruleId"])
    return found


def _markup_of(cards: list[dict[str, Any]]) -> dict[str, list[str]]:
    renderer = markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    return {
        where: sorted(m.group(1).lower() for m in MARKUP.finditer(renderer.render(text)))
        for card in cards
        for where, text in _card_strings(card)
    }


@pytest.fixture(scope="module")
def patient_call() -> dict[str, Any]:
    from datetime import UTC, datetime

    from tests.synthetic_requests import hook_request_for

    body, _ = hook_request_for(SYNTHETIC_PATIENT, "patient-view", datetime.now(UTC))
    return body


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_record_text_never_becomes_markup_in_any_card_field(rig: Rig, patient_call, text: str) -> None:  # type: ignore[no-untyped-def]
    benign = rig.post(SERVICE, {**_with_record_text(patient_call, "benign"), "hookInstance": str(uuid.uuid4())})
    hostile = rig.post(SERVICE, {**_with_record_text(patient_call, text), "hookInstance": str(uuid.uuid4())})
    assert benign.status_code == hostile.status_code == 200, hostile.text
    benign_cards, hostile_cards = benign.json()["cards"], hostile.json()["cards"]
    assert benign_cards, "the chart should get cards"
    # Record text does reach the cards (else this test could not fail): the benign marker is quoted.
    assert any("benign" in value for card in benign_cards for _, value in _card_strings(card))
    # The same cards, and in every string a client may show exactly the markup the templates make.
    assert _markup_of(hostile_cards) == _markup_of(benign_cards)
    renderer = markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    for card in hostile_cards:
        for where, value in _card_strings(card):
            assert not BIDI_AND_CONTROL.search(value), where
            assert not re.search(r"(href|src)=\"(https://evil|javascript)", renderer.render(value)), where


@pytest.mark.parametrize("key", ["", "too-short-for-a-secret"])
def test_authentication_on_without_a_long_pseudonym_key_refuses_to_start(tmp_path: Path, key: str) -> None:
    # A missing key means the development key written in the source: hashes of guessable patient and
    # user ids could be reversed by trying ids. The production entry point must not start at all.
    ehr = Ehr.new("https://ehr-a.example.org")
    clients = write_trusted_clients(tmp_path, [(ehr, [])])
    refused = pytest.raises(RuntimeError, match=r"SPINECDS_PSEUDONYM_KEY is (not set|shorter than 32 bytes)")
    with refused, production_service(tmp_path, trusted_clients_file=str(clients), pseudonym_key=key):
        pass  # pragma: no cover - reaching here means it started
    assert "refusing to start" in (tmp_path / "service.log").read_text(encoding="utf-8")
