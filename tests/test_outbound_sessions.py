"""Outbound HTTP ignores the process environment: no proxy variables, no ~/.netrc.

Otherwise HTTPS_PROXY / ALL_PROXY would route the EHR's bearer token through whatever proxy the host
names, and a .netrc entry for the FHIR host would replace the Bearer token with Basic credentials.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cds_hooks.fhir_client import FhirClient
from cds_hooks.jwks import KeyRegistry
from cds_hooks.smart_launch import SmartLaunchCheck
from tests.attack_rig import json_answer, recording_listener

TOKEN = "the-ehrs-bearer-token"


def _environment_that_would_divert(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, proxy: str) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login stolen password hunter2\n", encoding="utf-8")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))


def test_fhir_fetches_ignore_proxy_variables_and_netrc(monkeypatch, tmp_path):
    patient = {"resourceType": "Patient", "id": "p1"}
    with recording_listener() as proxy, recording_listener(lambda _: json_answer(patient)) as fhir:
        _environment_that_would_divert(monkeypatch, tmp_path, proxy.url)
        client = FhirClient(base_url=f"{fhir.url}/fhir", access_token=TOKEN, deadline=time.monotonic() + 10)
        assert client.fetch("Patient/p1").data == patient
        assert proxy.connections == 0 and proxy.requests == []
        (seen,) = fhir.requests
        assert seen.headers["Authorization"] == f"Bearer {TOKEN}"  # not Basic from the netrc


def test_the_smart_launch_check_ignores_proxy_variables_and_netrc(monkeypatch, tmp_path):
    from cds_hooks.fhir_server_policy import parse_allowlist

    patient = {"resourceType": "Patient", "id": "p1"}
    with recording_listener() as proxy, recording_listener(lambda _: json_answer(patient)) as ehr:
        _environment_that_would_divert(monkeypatch, tmp_path, proxy.url)
        check = SmartLaunchCheck(parse_allowlist([ehr.url], allow_any_port=False), allow_http_loopback=True)
        assert check.verify(f"Bearer {TOKEN}", f"{ehr.url}/fhir", "p1") == "p1"
        assert proxy.connections == 0
        assert ehr.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_key_set_fetches_ignore_the_environment():
    registry = KeyRegistry([], ttl=60, refresh_interval=60, failure_backoff=10, fetch_timeout=2)
    assert registry._session.trust_env is False
