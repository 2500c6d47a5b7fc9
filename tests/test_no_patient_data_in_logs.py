"""No patient data and no tokens in the logs: every synthetic patient through every hook, with every
logger at DEBUG, and each record rendered as the JSON line our formatter writes (message and extra
fields). Names, birth dates, identifiers, addresses, telecom and free text from the charts, the
fhirAuthorization access tokens and the client JWTs must not appear in any line."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_hooks.app import create_app
from cds_hooks.auth_settings import AuthSettings, TrustedClient
from cds_hooks.clock import get_now
from cds_hooks.logging_json import JsonLinesFormatter
from cds_hooks.settings import Settings
from sandbox.hook_client import HOOKS
from sandbox.patients import patient_ids
from tests.auth_tokens import BASE, bearer, claims, mint, write_jwks
from tests.auth_tokens import new_ec_key as _ec_key
from tests.synthetic_requests import hook_request_for

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonLinesFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def debug_logs() -> Iterator[Collect]:
    root = logging.getLogger()
    handler = Collect()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    levels = [(logger, logger.level) for logger in loggers if isinstance(logger, logging.Logger)]
    for logger, _ in levels:
        logger.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)
    for logger, level in levels:
        logger.setLevel(level)


def _patient_data(resource: dict[str, Any]) -> Iterator[str]:
    """The identifying and free-text values of one resource."""
    for name in resource.get("name") or []:
        yield from [name.get("family"), name.get("text"), *(name.get("given") or [])]
    yield resource.get("birthDate")
    for item in resource.get("identifier") or []:
        yield item.get("value")
    for item in resource.get("telecom") or []:
        yield item.get("value")
    for address in resource.get("address") or []:
        yield from [address.get("city"), address.get("postalCode"), address.get("text"), *(address.get("line") or [])]
    for note in resource.get("note") or []:
        yield note.get("text")
    yield resource.get("valueString")
    yield (resource.get("code") or {}).get("text")
    for component in resource.get("component") or []:
        yield component.get("valueString")


def _forbidden(resources: list[dict[str, Any]]) -> set[str]:
    return {value for r in resources for value in _patient_data(r) if isinstance(value, str) and len(value) >= 3}


def _leaks(lines: list[str], secrets: set[str]) -> list[tuple[str, str]]:
    found = []
    for secret in secrets:
        pattern = re.compile(r"(?<![\w])" + re.escape(secret) + r"(?![\w])")
        found.extend((secret, line) for line in lines if pattern.search(line))
    return found


def _authenticated_client(tmp_path, fhir_base: str) -> tuple[TestClient, Any]:  # type: ignore[no-untyped-def]
    key = _ec_key("ehr-key-1")
    auth = AuthSettings(
        auth_enabled=True,
        external_base_url=BASE,
        trusted_clients=(
            TrustedClient(
                iss="https://ehr.example.org",
                jwks_file=write_jwks(tmp_path / "ehr.jwks.json", key),
                fhir_server_allowlist=(fhir_base,),
            ),
        ),
    )
    app = create_app(
        Settings(
            database_path=tmp_path / "db.sqlite3",
            log_level="DEBUG",
            external_base_url=BASE,
            fhir_allow_http_loopback=True,  # the test FHIR server is plain http on 127.0.0.1
        ),
        auth_settings=auth,
    )
    app.dependency_overrides[get_now] = lambda: NOW
    return TestClient(app, raise_server_exceptions=False, base_url=BASE), key


def test_no_patient_data_or_tokens_in_debug_logs(tmp_path, debug_logs: Collect, fhir_server) -> None:  # type: ignore[no-untyped-def]
    client, key = _authenticated_client(tmp_path, fhir_server.base_url)
    forbidden: set[str] = set()
    tokens: set[str] = set()
    answered: dict[int, int] = {}

    def post(path: str, body: dict[str, Any]) -> Any:
        token = mint(key, claims(aud=BASE + path))
        tokens.add(token)
        response = client.post(path, json=body, headers=bearer(token))
        answered[response.status_code] = answered.get(response.status_code, 0) + 1
        return response

    with client:
        for patient in patient_ids():
            for hook in HOOKS:
                body, resources = hook_request_for(patient, hook, NOW)
                forbidden |= _forbidden(
                    resources + [e["resource"] for e in (body["context"].get("draftOrders") or {}).get("entry", [])]
                )
                response = post(f"/cds-services/spinecds-{hook}", body)
                assert response.status_code == 200, (patient, hook, response.text)
                cards = response.json()["cards"]
                if cards:
                    feedback = {
                        "feedback": [
                            {
                                "card": cards[0]["uuid"],
                                "outcome": "overridden",
                                "overrideReason": {"userComment": f"comment {uuid.uuid4()}"},
                                "outcomeTimestamp": "2026-03-02T09:31:00Z",
                            }
                        ]
                    }
                    forbidden.add(feedback["feedback"][0]["overrideReason"]["userComment"])
                    assert post(f"/cds-services/spinecds-{hook}/feedback", feedback).status_code == 200
            # The fallback path too: the service fetches the chart with the fhirAuthorization token.
            fhir_server.store.clear()
            fhir_server.store.load(*resources)
            access_token = f"access-{uuid.uuid4().hex}"
            tokens.add(access_token)
            body, _ = hook_request_for(
                patient, "patient-view", NOW, fhir_server=fhir_server.base_url, fhir_token=access_token
            )
            assert post("/cds-services/spinecds-patient-view", body).status_code == 200, patient
        # A replayed JWT is refused and logged: the token itself still must not be.
        token = mint(key, claims(aud=BASE + "/cds-services"))
        tokens.add(token)
        assert client.get("/cds-services", headers=bearer(token)).status_code == 200
        assert client.get("/cds-services", headers=bearer(token)).status_code == 401

    assert answered.get(200, 0) >= len(patient_ids()) * (len(HOOKS) + 1)
    assert len(debug_logs.lines) > 100, "expected DEBUG logging to have been captured"
    assert forbidden and tokens
    # The JWT signature alone is secret too (a log that cuts the token would still leak it).
    secrets = tokens | {token.rsplit(".", 1)[-1] for token in tokens if token.count(".") == 2}
    leaks = _leaks(debug_logs.lines, forbidden | secrets)
    assert leaks == [], "\n".join(f"{secret!r} in {line}" for secret, line in leaks[:10])
