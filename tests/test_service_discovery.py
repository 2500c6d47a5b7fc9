"""GET /cds-services: three services, one per hook, prefetch templates for what the rules read."""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from cds_hooks.prefetch_templates import RECORD_GROUPS, observation_code_groups

EXPECTED = {
    "spinecds-patient-view": "patient-view",
    "spinecds-order-select": "order-select",
    "spinecds-order-sign": "order-sign",
}


def _codes(template: str) -> set[str]:
    query = parse_qs(template.split("?", 1)[1])
    assert query["patient"] == ["{{context.patientId}}"] and query["_sort"] == ["-date"]
    return set(query["code"][0].split(","))


def _walk(value, path="$"):  # type: ignore[no-untyped-def]
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def test_service_discovery_lists_one_service_per_hook(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/cds-services")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    services = response.json()["services"]
    assert {s["id"]: s["hook"] for s in services} == EXPECTED
    for service in services:
        assert set(service) >= {"id", "hook", "title", "description", "prefetch"}
        assert service["description"].strip() and service["title"].strip()


def test_service_discovery_prefetch_templates(client) -> None:  # type: ignore[no-untyped-def]
    for service in client.get("/cds-services").json()["services"]:
        prefetch = service["prefetch"]
        assert prefetch["patient"] == "Patient/{{context.patientId}}"
        assert prefetch["conditions"] == "Condition?patient={{context.patientId}}&_count=200"
        assert prefetch["performanceStatus"] == (
            "Observation?patient={{context.patientId}}&code=http://loinc.org|89243-0,http://loinc.org|89247-1"
            "&_sort=-date&_count=50"
        )
        assert _codes(prefetch["pain"]) == {"http://loinc.org|72514-3"}
        assert _codes(prefetch["sins"]) == {
            f"http://spinecds.org/fhir/CodeSystem/spine-findings|{code}"
            for code in (
                "sins",
                "sins-location",
                "sins-pain",
                "sins-bone-lesion",
                "sins-alignment",
                "sins-collapse",
                "sins-posterolateral",
            )
        }
        assert _codes(prefetch["staging"]) == {"http://spinecds.org/fhir/CodeSystem/spine-findings|visceral-metastases"}
        # Templates only use context tokens ({{context.x}}), as the spec requires.
        for template in prefetch.values():
            for token in re.findall(r"\{\{(.*?)\}\}", template):
                assert token == "context.patientId"
        # Every Observation group of observation_code_groups() and every record group (procedures,
        # imaging, reports, MRI orders: revision 2) has a key, and nothing else is asked.
        assert set(prefetch) == {"patient", "conditions", *observation_code_groups(), *RECORD_GROUPS}
        assert prefetch["imagingStudies"] == "ImagingStudy?patient={{context.patientId}}&_count=100"
        record = {key: parse_qs(prefetch[key].split("?", 1)[1]) for key in RECORD_GROUPS}
        # MRI orders (whole spine, incl. the LOINC codes), and (changed on purpose, revision 2
        # comfort-only care) hospice / comfort-care orders
        assert record["serviceRequests"]["code"][0].split(",") == [
            "http://spinecds.org/fhir/CodeSystem/spine-findings|mri-whole-spine",
            "http://loinc.org|30854-4",
            "http://loinc.org|30855-1",
            "http://snomed.info/sct|385763009",
            "http://snomed.info/sct|385736008",
            "http://snomed.info/sct|133918004",
        ]
        assert "http://snomed.info/sct|385763009" in record["procedures"]["code"][0].split(",")
        assert "http://www.ama-assn.org/go/cpt|72148" in record["diagnosticReports"]["code"][0].split(",")
        assert (
            "http://spinecds.org/fhir/CodeSystem/spine-findings|spine-radiotherapy" in record["procedures"]["code"][0]
        )


def test_service_discovery_has_no_null_or_empty_values(client) -> None:  # type: ignore[no-untyped-def]
    for path, value in _walk(client.get("/cds-services").json()):
        assert value is not None, path
        if isinstance(value, (str, list, dict)):
            assert len(value) > 0, path


def test_service_discovery_cors_allows_authorization_and_content_type(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(allowed_origins=["https://ehr.example.org"])  # no CORS unless configured
    response = client.options(
        "/cds-services/spinecds-patient-view",
        headers={
            "Origin": "https://ehr.example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert response.status_code == 200
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert response.headers["access-control-allow-origin"] in ("*", "https://ehr.example.org")


def test_service_allowed_origins_are_configurable(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(allowed_origins=["https://ehr.example.org"])
    allowed = client.get("/cds-services", headers={"Origin": "https://ehr.example.org"})
    assert allowed.headers["access-control-allow-origin"] == "https://ehr.example.org"
    other = client.get("/cds-services", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in other.headers


def test_service_settings_from_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from cds_hooks.settings import Settings

    monkeypatch.setenv("SPINECDS_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("SPINECDS_FHIR_TIMEOUT_SECONDS", "1.5")
    monkeypatch.setenv("SPINECDS_ALLOW_TRACE", "true")
    settings = Settings()
    assert settings.allowed_origins == ["https://a.example", "https://b.example"]
    assert settings.fhir_timeout_seconds == 1.5 and settings.allow_trace is True
    monkeypatch.delenv("SPINECDS_ALLOWED_ORIGINS")
    monkeypatch.delenv("SPINECDS_FHIR_TIMEOUT_SECONDS")
    monkeypatch.delenv("SPINECDS_ALLOW_TRACE")
    defaults = Settings()
    assert (defaults.allowed_origins, defaults.fhir_timeout_seconds, defaults.allow_trace) == ([], 2.5, False)
    assert str(defaults.database_path) == "var/spinecds.sqlite3" and defaults.max_body_bytes == 5 * 1024 * 1024


def test_discovery_names_the_release_and_the_rule_versions(client) -> None:  # type: ignore[no-untyped-def]
    import yaml

    from cds_hooks.version import SERVICE_VERSION
    from engine.vocabulary import RULES_DIR

    on_disk = yaml.safe_load((RULES_DIR / "mri-urgency" / "rule.yaml").read_text())["version"]
    for service in client.get("/cds-services").json()["services"]:
        extension = service["extension"]["spinecds"]
        assert extension["version"] == SERVICE_VERSION
        assert extension["rules"]["mri-urgency"] == on_disk
    assert client.get("/health").json()["version"] == SERVICE_VERSION
