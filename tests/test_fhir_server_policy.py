"""fhirServer allowlists: what may be called with a client's token, and what the configuration accepts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cds_hooks.auth_settings import TrustedClient
from cds_hooks.fhir_server_policy import FhirServerPolicy, parse_allowlist, same_server
from cds_hooks.settings import Settings
from tests.service_fixtures import hook_request

EHR = "https://ehr.example.org/fhir/r4"


def policy(*entries: str, http: bool = False, any_port: bool = False) -> FhirServerPolicy:
    return FhirServerPolicy(parse_allowlist(entries, allow_any_port=any_port), http)


@pytest.mark.parametrize(
    "url",
    [EHR, EHR + "/", "HTTPS://EHR.example.org/fhir/r4", "https://ehr.example.org:443/fhir/r4", EHR + "/tenant-1"],
)
def test_urls_under_an_allowlisted_base_are_allowed(url: str) -> None:
    assert policy(EHR).reason_to_refuse(url) is None


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://ehr.example.org/fhir/r4", "http-not-allowed"),
        ("https://ehr.example.org:8443/fhir/r4", "not-in-allowlist"),
        ("https://ehr.example.org/fhir/r4x", "not-in-allowlist"),
        ("https://ehr.example.org/fhir", "not-in-allowlist"),
        ("https://ehr.example.org.evil.example/fhir/r4", "not-in-allowlist"),
        ("https://ehr.example.org./fhir/r4", "not-in-allowlist"),
        ("https://u:p@ehr.example.org/fhir/r4", "unsafe-characters"),
        ("https://ehr.example.org/fhir/r4?_format=xml", "unsafe-characters"),
        ("https://ehr.example.org/fhir/r4#x", "unsafe-characters"),
        ("https://ehr.example.org/fhir/r4/%2e%2e/admin", "unsafe-characters"),
        ("https://ehr.example.org/fhir/r4/../../admin", "dot-segment"),
        ("https://ehr.example.org/fhir/r4/./x", "dot-segment"),
        ("https://ehr.example.org\\@evil.example/fhir/r4", "unsafe-characters"),
        (" https://ehr.example.org/fhir/r4", "unsafe-characters"),
        ("https://ehr.example.org:99999/fhir/r4", "bad-port"),
        ("ws://ehr.example.org/fhir/r4", "not-http"),
        ("https:///fhir/r4", "not-http"),
        ("", "not-a-url"),
    ],
)
def test_everything_else_is_refused_with_a_reason_for_the_log(url: str, reason: str) -> None:
    assert policy(EHR).reason_to_refuse(url) == reason


def test_http_only_for_loopback_and_only_with_the_development_setting() -> None:
    local = "http://127.0.0.1:8080/fhir"
    assert policy(local).reason_to_refuse(local) == "http-not-allowed"
    assert policy(local, http=True).reason_to_refuse(local) is None
    with pytest.raises(ValueError, match="must be https"):
        parse_allowlist(["http://ehr.example.org/fhir"], allow_any_port=False)


def test_development_default_is_loopback_on_any_port() -> None:
    development = Settings(fhir_allow_http_loopback=True).development_fhir_servers()
    for url in ("http://127.0.0.1:8080/fhir", "http://localhost:9/", "http://[::1]:1234/r4", "https://127.0.0.1:1"):
        assert development.reason_to_refuse(url) is None, url
    for url in ("http://10.0.0.1:8080/fhir", "http://0.0.0.0:8080"):
        assert development.reason_to_refuse(url) == "http-not-allowed", url
    for url in ("https://10.0.0.1:8080/fhir", "https://0.0.0.0:8080", "https://ehr.example.org/fhir"):
        assert development.reason_to_refuse(url) == "not-in-allowlist", url
    assert Settings().development_fhir_servers().reason_to_refuse("http://127.0.0.1:8080") == "http-not-allowed"


def test_the_development_allowlist_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINECDS_FHIR_SERVER_ALLOWLIST", "https://test-ehr.example.org/fhir, https://127.0.0.1:*")
    development = Settings().development_fhir_servers()
    assert development.reason_to_refuse("https://test-ehr.example.org/fhir/Patient") is None
    assert development.reason_to_refuse("http://127.0.0.1:8080") == "http-not-allowed"
    monkeypatch.setenv("SPINECDS_FHIR_SERVER_ALLOWLIST", "https://user:pw@test-ehr.example.org")
    with pytest.raises(ValidationError, match="unsafe-characters"):
        Settings()


def test_trusted_clients_name_exact_ports_and_plain_urls() -> None:
    client = TrustedClient(iss="https://ehr", jwks_file="k.json", fhir_server_allowlist=(EHR,))
    assert client.fhir_servers()[0].port == 443
    for bad in ("https://ehr.example.org:*/fhir", "https://ehr.example.org/fhir?x=1", "http://ehr.example.org/"):
        with pytest.raises(ValidationError):
            TrustedClient(iss="https://ehr", jwks_file="k.json", fhir_server_allowlist=(bad,))


def test_next_links_stay_under_the_base_url() -> None:
    assert same_server(EHR, EHR + "?_getpages=abc&_offset=50")
    assert same_server(EHR, EHR + "/Observation?page=2")
    assert not same_server(EHR, "https://other.example.org/fhir/r4?page=2")
    assert not same_server(EHR, "https://ehr.example.org/admin?page=2")
    assert not same_server(EHR, "https://x@ehr.example.org/fhir/r4?page=2")
    assert not same_server(EHR, "http://ehr.example.org/fhir/r4?page=2")


def test_with_authentication_off_the_development_allowlist_applies(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    response = client.post(
        "/cds-services/spinecds-patient-view", json=hook_request(fhirServer="https://ehr.example.org/fhir")
    )
    assert response.status_code == 400
    assert response.json()["issue"][0]["diagnostics"] == (
        "fhirServer is not a FHIR server this service may call for this client"
    )
