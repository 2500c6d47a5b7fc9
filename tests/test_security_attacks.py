"""Issue 15's findings, each reproduced as an attack over real HTTP against the production entry point
(`python -m cds_hooks`, authentication on) and each failing safely now: no connection to the other
host (its loopback listener records nothing), no token sent, a 4xx with an OperationOutcome, nothing
stored. docs/security.md's threat model table points at these tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.attack_rig import (
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

SERVICE = "/cds-services/spinecds-patient-view"
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
