"""Fixtures for the CDS Hooks service tests: a real FHIR server on 127.0.0.1 and app factories."""

from __future__ import annotations

import copy
import socket
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_hooks.app import create_app
from cds_hooks.auth_settings import AuthSettings
from cds_hooks.clock import get_now
from cds_hooks.service_parts import RulesEngine, rules_engine
from cds_hooks.settings import Settings
from engine.api import EvaluationResult
from sandbox.fhir_server import RunningServer, start_server

FIXED_NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SF = "http://spinecds.org/fhir/CodeSystem/spine-findings"
LOINC = "http://loinc.org"
PATIENT_ID = "p1"


def observation(id_: str, system: str, code: str, when: str, **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": id_,
        "status": "final",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": when,
        **value,
    }


def patient_resources() -> list[dict[str, Any]]:
    """A small chart: breast cancer with a spinal metastasis, KPS, pain scores, one SINS lesion."""
    return [
        {"resourceType": "Patient", "id": PATIENT_ID, "birthDate": "1960-05-01", "gender": "female"},
        {
            "resourceType": "Condition",
            "id": "c-breast",
            "subject": {"reference": f"Patient/{PATIENT_ID}"},
            "clinicalStatus": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
            },
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C50.911"}]},
        },
        {
            "resourceType": "Condition",
            "id": "c-spine",
            "subject": {"reference": f"Patient/{PATIENT_ID}"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C79.51"}]},
        },
        observation("o-kps", LOINC, "89243-0", "2026-02-20T10:00:00Z", valueInteger=70),
        observation("o-nrs-1", LOINC, "72514-3", "2026-02-20T10:00:00Z", valueInteger=4),
        observation("o-nrs-2", LOINC, "72514-3", "2026-03-01T10:00:00Z", valueInteger=7),
        observation("o-sins", SF, "sins", "2026-02-25T10:00:00Z", valueInteger=9),
        observation("o-visceral", SF, "visceral-metastases", "2026-02-25T10:00:00Z", valueBoolean=False),
        # Another patient's data must never come back from the patient-filtered searches.
        {
            **observation("o-other", LOINC, "72514-3", "2026-03-01T10:00:00Z", valueInteger=2),
            "subject": {"reference": "Patient/p2"},
        },
    ]


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": copy.deepcopy(r)} for r in resources],
    }


def hook_request(hook: str = "patient-view", prefetch: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/dr-1", "patientId": PATIENT_ID},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    body.update(extra)
    return body


def closed_port() -> int:
    """A port nobody listens on (bound, then released), for 'server unreachable' tests."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def fhir_server_session() -> Iterator[RunningServer]:
    server = start_server()
    yield server
    server.stop()


@pytest.fixture
def fhir_server(fhir_server_session: RunningServer) -> Iterator[RunningServer]:
    """The running test FHIR server, loaded with `patient_resources()`, healthy, request log empty."""
    fhir_server_session.store.clear()
    fhir_server_session.faults.reset()
    fhir_server_session.store.load(*patient_resources())
    yield fhir_server_session
    fhir_server_session.faults.reset()


@pytest.fixture
def engine_seat() -> EngineSeat:
    """Where a test puts its stand-in engine; every app from make_client asks it first."""
    return EngineSeat()


@pytest.fixture
def make_client(tmp_path, engine_seat) -> Iterator[Callable[..., TestClient]]:  # type: ignore[no-untyped-def]
    """Factory: a TestClient on a fresh app; keyword arguments become Settings fields."""
    clients: list[TestClient] = []

    def factory(**settings: Any) -> TestClient:
        settings.setdefault("database_path", tmp_path / "spinecds.sqlite3")
        # The test FHIR server speaks plain http on 127.0.0.1: the development allowance, as `make serve`.
        settings.setdefault("fhir_allow_http_loopback", True)
        # Service behaviour tests run without client auth; tests/test_auth*.py cover the JWT checks.
        app = create_app(Settings(**settings), auth_settings=AuthSettings(auth_enabled=False))
        app.dependency_overrides[get_now] = lambda: FIXED_NOW
        real_engine = app.state.engine
        app.dependency_overrides[rules_engine] = lambda: engine_seat.engine or real_engine
        client = TestClient(app, raise_server_exceptions=False)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.app.state.store.close()


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


class EngineSeat:
    """The engine a test wants its apps to use instead of the real one (None: the real one)."""

    def __init__(self) -> None:
        self.engine: RulesEngine | None = None


class EngineSpy(RulesEngine):
    """Stands in for the rule engine (app.state.engine, via the rules_engine dependency): records
    requests, returns a set result. Discovery still lists the real rule versions."""

    def __init__(self) -> None:
        from engine.api import EvaluationResult

        self.requests: list[Any] = []
        self.result = EvaluationResult(cards=[])

    def evaluate(self, request: Any) -> Any:
        self.requests.append(request)
        return self.result


@pytest.fixture
def engine_spy(engine_seat: EngineSeat) -> EngineSpy:
    spy = EngineSpy()
    engine_seat.engine = spy
    return spy


def _rule_card(rule_id: str = "mri-urgency") -> dict:  # type: ignore[type-arg]
    return {
        "summary": "Order MRI",
        "indicator": "warning",
        "source": {"label": "spinecds"},
        "extension": {"spinecds": {"ruleId": rule_id, "ruleVersion": "1.0.0", "outcome": 2}},
    }


def issue_cards(client, engine_spy, count: int = 1) -> list[str]:  # type: ignore[no-untyped-def]
    """Have the service return `count` cards (as the engine would) and give back their uuids."""
    from cds_hooks.prefetch_templates import prefetch_templates

    engine_spy.result = EvaluationResult(cards=[_rule_card(f"rule-{n}") for n in range(count)])
    body = hook_request(prefetch={k: None for k in prefetch_templates()})
    body["hookInstance"] = str(uuid.uuid4())
    response = client.post("/cds-services/spinecds-patient-view", json=body)
    assert response.status_code == 200, response.text
    return [card["uuid"] for card in response.json()["cards"]]
