"""`POST /smart/api/assess` needs a real SMART launch: the app's access token, checked with the EHR.

A loopback HTTP server stands in for the EHR: it answers `Patient/<id>` only to its one good token
and counts every request, so a test can prove a refused call never reached it (or never got further).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests import smart_patient as sp
from tests.service_fixtures import FIXED_NOW

GOOD_TOKEN = "ehr-token-for-the-launch"
ASSESS = "/smart/api/assess"


class FakeEhr:
    def __init__(self) -> None:
        self.reads: list[str] = []
        ehr = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                ehr.reads.append(self.path)
                patient = self.path.rsplit("/", 1)[-1]
                if self.headers.get("Authorization") != f"Bearer {GOOD_TOKEN}" or patient != sp.PATIENT_ID:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"resourceType": "Patient", "id": patient}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def ehr() -> Iterator[FakeEhr]:
    fake = FakeEhr()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def smart(make_client):
    return make_client(smart_app=True)


def launch_headers(ehr: FakeEhr, token: str = GOOD_TOKEN, patient: str = sp.PATIENT_ID, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Smart-Fhir-Server": ehr.base, "X-Smart-Patient": patient, **extra}


def body(patient: str = sp.PATIENT_ID) -> dict[str, Any]:
    return {"patientId": patient, "chart": sp.chart(FIXED_NOW), "answers": sp.answers()}


def test_without_a_launch_the_assessment_is_refused_before_the_body_is_read(smart, ehr):
    for headers in ({}, {"Authorization": "Bearer x"}, {"X-Smart-Fhir-Server": ehr.base, "X-Smart-Patient": "p"}):
        refused = smart.post(ASSESS, json=body(), headers=headers)
        assert refused.status_code == 401, refused.text
        assert refused.json()["resourceType"] == "OperationOutcome" and "answers" not in refused.text
    # Not JSON at all and huge: still 401 first, since the body is never looked at.
    assert smart.post(ASSESS, content=b"x" * 2_000_000, headers={"Content-Type": "text/plain"}).status_code == 401
    assert ehr.reads == []


def test_a_launch_token_the_ehr_accepts_for_that_patient_is_needed(smart, ehr):
    assert smart.post(ASSESS, json=body(), headers=launch_headers(ehr, token="stolen-or-made-up")).status_code == 401
    assert smart.post(ASSESS, json=body(), headers=launch_headers(ehr, patient="someone-else")).status_code == 401
    good = smart.post(ASSESS, json=body(), headers=launch_headers(ehr))
    assert good.status_code == 200, good.text
    assert good.json()["transaction"]["type"] == "transaction"
    reads = len(ehr.reads)
    assert smart.post(ASSESS, json=body(), headers=launch_headers(ehr)).status_code == 200
    assert len(ehr.reads) == reads  # verified once, remembered for a minute


def test_the_launch_patient_must_be_the_body_patient(smart, ehr):
    other = smart.post(ASSESS, json=body("another-patient"), headers=launch_headers(ehr))
    assert other.status_code == 403 and "patient of this SMART launch" in other.text


def test_the_fhir_server_header_cannot_aim_the_service_elsewhere(smart, ehr):
    for server in ("https://evil.example/fhir", "http://10.0.0.1/fhir", "http://127.0.0.1:1/fhir?x", "file:///etc"):
        headers = launch_headers(ehr, **{"X-Smart-Fhir-Server": server})
        assert smart.post(ASSESS, json=body(), headers=headers).status_code == 401
    assert ehr.reads == []


def test_json_only_a_small_body_and_a_fhir_id(smart, ehr):
    plain = smart.post(
        ASSESS, content=json.dumps(body()), headers={**launch_headers(ehr), "Content-Type": "text/plain"}
    )
    assert plain.status_code == 415  # a page cannot fire it cross-site as a simple request
    big = {**body(), "chart": [*sp.chart(FIXED_NOW), {"resourceType": "Basic", "note": "x" * 600_000}]}
    assert smart.post(ASSESS, json=big, headers=launch_headers(ehr)).status_code == 413
    for bad in ("..", "p1\n", "a/b"):
        assert smart.post(ASSESS, json=body(bad), headers=launch_headers(ehr, patient=bad)).status_code in (400, 401)


def test_at_most_two_assessments_run_at_once_and_the_third_is_told_to_retry(smart, ehr):
    release = threading.Event()
    entered = threading.Semaphore(0)

    class SlowLaunch:
        def verify(self, authorization: str | None, fhir_server: str | None, patient_id: str | None) -> str:
            entered.release()
            release.wait(10)
            return str(patient_id)

    smart.app.state.smart_launch = SlowLaunch()
    answers: list[int] = []
    workers = [
        threading.Thread(
            target=lambda: answers.append(smart.post(ASSESS, json=body(), headers=launch_headers(ehr)).status_code)
        )
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    assert entered.acquire(timeout=10) and entered.acquire(timeout=10)
    busy = smart.post(ASSESS, json=body(), headers=launch_headers(ehr))
    release.set()
    for worker in workers:
        worker.join(30)
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "2"
    assert answers == [200, 200]
