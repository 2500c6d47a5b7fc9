"""Revision 2 of mri-urgency and mescc-treatment over HTTP, as an EHR sees it.

The real service (uvicorn, its own process) and the local FHIR server, with patients built by the
shared fixture builder: every new prefetch key (procedures, imagingStudies, diagnosticReports,
serviceRequests) must be answered by the FHIR server, and prefetch and FHIR fallback must give the
same cards. In-process tests (TestClient, pinned clock) cover what needs a controlled `now`: the
first-seen time kept in the store, the time zone setting, a deceased patient, optional keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from cds_hooks.app import create_app
from cds_hooks.auth_settings import AuthSettings
from cds_hooks.clock import get_now
from cds_hooks.prefetch_templates import prefetch_templates
from cds_hooks.settings import Settings
from engine.fixtures import build_resources
from sandbox import hook_client
from sandbox.fhir_server import ResourceStore, RunningServer, start_server
from sandbox.transport import session
from tests.live_service import live_service

BREAST = {"concept": "breast-cancer", "onset": "400 days ago"}
PATIENTS: dict[str, dict[str, Any]] = {
    # tier 1, an MRI already ordered (active ServiceRequest, due in 4 h): info "MRI ordered"
    "mri-ordered": {
        "diagnoses": [BREAST],
        "symptoms": [{"code": "leg-weakness", "recorded": "2 hours ago"}],
        "record_orders": [{"concept": "mri-whole-spine", "priority": "stat", "by": "in 4 hours"}],
    },
    # back pain answered by a whole-spine MRI (ImagingStudy): no MRI card
    "mri-study-done": {
        "diagnoses": [BREAST],
        "symptoms": [{"code": "local-back-pain", "recorded": "3 days ago"}],
        "imaging": [{"concept": "mri-whole-spine", "as": "study", "when": "1 day ago"}],
    },
    # back pain answered by a whole-spine MRI report (DiagnosticReport): no MRI card
    "mri-report-done": {
        "diagnoses": [BREAST],
        "symptoms": [{"code": "local-back-pain", "recorded": "3 days ago"}],
        "imaging": [{"concept": "mri-whole-spine", "as": "report", "when": "1 day ago"}],
    },
    # lumbar radicular pain with a lumbar MRI Procedure (CPT) since: info, whole spine advised
    "regional-mri": {
        "diagnoses": [BREAST],
        "symptoms": [{"code": "radicular-pain", "side": "left", "region": "lumbar", "recorded": "4 days ago"}],
        "imaging": [{"concept": "mri-lumbar-spine", "when": "2 days ago"}],
    },
    # MESCC with radiotherapy in progress (Procedure): treatment started, no MESCC card
    "mescc-treated": {
        "diagnoses": [BREAST, {"concept": "mescc", "key": "mescc-1", "onset": "20 hours ago"}],
        "procedures": [
            {"concept": "spine-radiotherapy", "status": "in-progress", "when": "2 hours ago", "for": "mescc-1"}
        ],
    },
    # MESCC, radiotherapy declined (not-done with a reason): info
    "mescc-declined": {
        "diagnoses": [BREAST, {"concept": "mescc", "key": "mescc-1", "onset": "30 hours ago"}],
        "procedures": [
            {"concept": "spine-radiotherapy", "status": "not-done", "reason": "patient declines", "for": "mescc-1"}
        ],
    },
    # band-like radiating pain: tier 1 (revision 1 said tier 5)
    "band-like": {
        "diagnoses": [BREAST],
        "symptoms": [{"code": "radiating-pain", "side": "left", "pattern": "band-like", "recorded": "1 hour ago"}],
    },
}


def _patient_id(name: str) -> str:
    return f"r2-{name}"


def _record(name: str, now: datetime) -> list[dict[str, Any]]:
    """The patient's resources with ids made unique per patient (the builder's ids are short and
    shared by every description), references rewritten to match."""
    resources = build_resources(PATIENTS[name], now, _patient_id(name))
    ids = {f"{r['resourceType']}/{r['id']}" for r in resources[1:]}
    text = json.dumps(resources)
    for ref in sorted(ids, key=len, reverse=True):
        rtype, rid = ref.split("/", 1)
        text = text.replace(f'"{ref}"', f'"{rtype}/{name}-{rid}"')
    unique = json.loads(text)
    for resource in unique[1:]:
        resource["id"] = f"{name}-{resource['id']}"
    return unique


@pytest.fixture(scope="module")
def fhir() -> Iterator[RunningServer]:
    store = ResourceStore()
    now = datetime.now(UTC)
    for name in PATIENTS:
        store.load(*_record(name, now))
    server = start_server(store)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_service(tmp_path_factory.mktemp("service-r2")) as base:
        yield base


@pytest.fixture(scope="module")
def sessions() -> Iterator[tuple[requests.Session, requests.Session]]:
    cds, fhir_session = session(None, accept="application/json"), session(None)
    yield cds, fhir_session
    cds.close()
    fhir_session.close()


def _fire(service: str, fhir: RunningServer, sessions: Any, name: str, prefetch: bool) -> dict[str, Any]:
    cds, fhir_session = sessions
    entry = hook_client.discover(cds, service, "patient-view")
    call = hook_client.fire(
        cds,
        service,
        entry,
        "patient-view",
        _patient_id(name),
        fhir_session=fhir_session,
        fhir_base=fhir.base_url,
        prefetch=prefetch,
        send_fhir_server=not prefetch,
        fhir_token="sandbox-open-server",
    )
    assert call.response.status_code == 200, call.response.text[:500]
    assert call.prefetch_failed == {}, "the local FHIR server must answer every prefetch key"
    if prefetch:
        for key in ("procedures", "imagingStudies", "diagnosticReports", "serviceRequests"):
            assert call.request["prefetch"][key]["resourceType"] == "Bundle"
    return call.body


def _card(body: dict[str, Any], rule: str) -> dict[str, Any] | None:
    cards = [c for c in body["cards"] if c["extension"]["spinecds"]["ruleId"] == rule]
    assert len(cards) <= 1
    return cards[0] if cards else None


MODES = pytest.mark.parametrize("prefetch", [True, False], ids=["prefetch", "fallback"])


@MODES
def test_mri_already_ordered_in_time_turns_the_card_into_info(prefetch, fhir, service, sessions):
    card = _card(_fire(service, fhir, sessions, "mri-ordered", prefetch), "mri-urgency")
    assert card is not None and card["indicator"] == "info"
    assert card["extension"]["spinecds"]["outcome"] == 1
    assert card["summary"].startswith("MRI ordered, due by")
    assert 9.5 < card["extension"]["spinecds"]["hoursLeft"] <= 10


@MODES
@pytest.mark.parametrize("name", ["mri-study-done", "mri-report-done"])
def test_whole_spine_mri_done_answers_the_back_pain(name, prefetch, fhir, service, sessions):
    body = _fire(service, fhir, sessions, name, prefetch)
    assert _card(body, "mri-urgency") is None


@MODES
def test_regional_mri_of_the_region_softens_tier_4_to_info(prefetch, fhir, service, sessions):
    card = _card(_fire(service, fhir, sessions, "regional-mri", prefetch), "mri-urgency")
    assert card is not None and card["indicator"] == "info"
    assert card["extension"]["spinecds"]["outcome"] == 4
    assert "lumbar MRI done on" in card["summary"]


@MODES
def test_mescc_treatment_started_ends_the_card(prefetch, fhir, service, sessions):
    assert _card(_fire(service, fhir, sessions, "mescc-treated", prefetch), "mescc-treatment") is None


@MODES
def test_mescc_decision_not_to_treat_is_info(prefetch, fhir, service, sessions):
    card = _card(_fire(service, fhir, sessions, "mescc-declined", prefetch), "mescc-treatment")
    assert card is not None and card["indicator"] == "info"
    assert card["extension"]["spinecds"]["outcome"] == "decision-not-to-treat"
    assert "patient declines" in card["detail"]


@MODES
def test_band_like_radiating_pain_is_tier_1_with_a_due_time(prefetch, fhir, service, sessions):
    card = _card(_fire(service, fhir, sessions, "band-like", prefetch), "mri-urgency")
    assert card is not None and card["indicator"] == "critical"
    ext = card["extension"]["spinecds"]
    assert ext["outcome"] == 1 and ext["deadlineHours"] == 12
    due = datetime.fromisoformat(ext["dueBy"])
    assert due.utcoffset() == timedelta(0)  # SPINECDS_TIMEZONE default UTC
    assert abs((due - datetime.now(UTC)) / timedelta(hours=1) - 11) < 0.5
    (order,) = [a["resource"] for s in card["suggestions"] for a in s["actions"]][:1]
    assert order["priority"] == "stat" and order["occurrencePeriod"]["end"] == ext["dueBy"]


def test_discovery_lists_the_new_prefetch_keys(service, sessions):
    cds, _ = sessions
    entry = hook_client.discover(cds, service, "patient-view")
    for key in ("procedures", "imagingStudies", "diagnosticReports", "serviceRequests"):
        assert entry["prefetch"][key] == prefetch_templates()[key]


# ---------------------------------------------------------------- in process, pinned clock

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def _client(tmp_path: Any, clock: list[datetime], **settings: Any) -> Any:
    from fastapi.testclient import TestClient

    settings.setdefault("database_path", tmp_path / "store.sqlite3")
    app = create_app(Settings(**settings), auth_settings=AuthSettings(auth_enabled=False))
    app.dependency_overrides[get_now] = lambda: clock[0]
    return TestClient(app)


def _request(resources: list[dict[str, Any]], patient_id: str = "p1", **drop: bool) -> dict[str, Any]:
    def bundle(types: set[str]) -> dict[str, Any]:
        entries = [{"resource": r} for r in resources if r["resourceType"] in types]
        return {"resourceType": "Bundle", "type": "searchset", "entry": entries}

    prefetch: dict[str, Any] = {"patient": resources[0], "conditions": bundle({"Condition"})}
    for key in ("performanceStatus", "pain", "sins", "staging"):
        prefetch[key] = bundle({"Observation"})
    for key, rtype in (
        ("procedures", "Procedure"),
        ("imagingStudies", "ImagingStudy"),
        ("diagnosticReports", "DiagnosticReport"),
        ("serviceRequests", "ServiceRequest"),
    ):
        if not drop.get(key):
            prefetch[key] = bundle({rtype})
    return {
        "hook": "patient-view",
        "hookInstance": "0d0c0b0a-0000-4000-8000-000000000001",
        "context": {"userId": "Practitioner/1", "patientId": patient_id},
        "prefetch": prefetch,
    }


def _mri(body: dict[str, Any]) -> dict[str, Any]:
    card = _card(body, "mri-urgency")
    assert card is not None
    return card


def test_first_seen_time_is_kept_so_the_deadline_does_not_restart(tmp_path):
    # Back pain with neither recordedDate nor onset: the presentation time is when the service
    # first saw it. Two days later the card must have 48 h less, not a fresh two weeks.
    resources = build_resources(
        {"diagnoses": [BREAST], "symptoms": [{"code": "local-back-pain", "recorded": "absent"}]}, T0
    )
    clock = [T0]
    client = _client(tmp_path, clock)
    first = _mri(client.post("/cds-services/spinecds-patient-view", json=_request(resources)).json())
    assert first["extension"]["spinecds"]["hoursLeft"] == 336
    assert any("presentation time not recorded" in m for m in first["extension"]["spinecds"]["missing"])
    clock[0] = T0 + timedelta(days=2)
    second = _mri(client.post("/cds-services/spinecds-patient-view", json=_request(resources)).json())
    assert second["extension"]["spinecds"]["hoursLeft"] == 288
    assert second["extension"]["spinecds"]["dueBy"] == first["extension"]["spinecds"]["dueBy"]
    # the store keeps a keyed hash, never the ids
    import sqlite3

    rows = (
        sqlite3.connect(tmp_path / "store.sqlite3").execute("SELECT resource_key FROM condition_first_seen").fetchall()
    )
    assert len(rows) == 1 and "sx-1" not in rows[0][0] and "p1" not in rows[0][0] and len(rows[0][0]) == 64


def test_another_client_cannot_age_an_undated_finding_by_seeing_it_first(tmp_path):
    # EHR B sends an undated back-pain Condition `sx-1` of a `p1` today; two days later EHR A, whose
    # own p1 has an undated `sx-1` too, opens its chart for the first time. A's clock must start
    # now (336 h), not at B's visit (288 h): first-seen times are kept per client.
    from fastapi.testclient import TestClient

    from cds_hooks.auth_settings import TrustedClient
    from tests.auth_tokens import BASE, bearer, claims, mint, new_ec_key, write_jwks

    resources = build_resources(
        {"diagnoses": [BREAST], "symptoms": [{"code": "local-back-pain", "recorded": "absent"}]}, T0
    )
    keys = {"https://ehr-a.example.org": new_ec_key("a"), "https://ehr-b.example.org": new_ec_key("b")}
    clients = tuple(
        TrustedClient(iss=iss, jwks_file=write_jwks(tmp_path / f"{key.kid}.json", key)) for iss, key in keys.items()
    )
    auth = AuthSettings(auth_enabled=True, external_base_url=BASE, trusted_clients=clients)
    settings = Settings(database_path=tmp_path / "store.sqlite3", pseudonym_key="k" * 32)
    app = create_app(settings, auth_settings=auth)
    clock = [T0]
    app.dependency_overrides[get_now] = lambda: clock[0]
    http = TestClient(app)
    path = "/cds-services/spinecds-patient-view"

    def hours_left(iss: str, instance: str) -> int:
        body = {**_request(resources), "hookInstance": f"0d0c0b0a-0000-4000-8000-{instance}"}
        token = mint(keys[iss], claims(iss=iss, aud=BASE + path))
        response = http.post(path, json=body, headers=bearer(token))
        assert response.status_code == 200, response.text
        return int(_mri(response.json())["extension"]["spinecds"]["hoursLeft"])

    assert hours_left("https://ehr-b.example.org", "000000000011") == 336
    clock[0] = T0 + timedelta(days=2)
    assert hours_left("https://ehr-a.example.org", "000000000012") == 336  # A's first view: a fresh clock
    assert hours_left("https://ehr-b.example.org", "000000000013") == 288  # B's own clock kept running
    app.state.store.close()


def test_time_zone_setting_shows_local_due_time_with_the_zone(tmp_path):
    resources = build_resources(
        {"diagnoses": [BREAST], "symptoms": [{"code": "leg-weakness", "recorded": "2 hours ago"}]}, T0
    )
    client = _client(tmp_path, [T0], timezone="Europe/Amsterdam")
    card = _mri(client.post("/cds-services/spinecds-patient-view", json=_request(resources)).json())
    assert card["extension"]["spinecds"]["dueBy"] == "2026-03-10T20:00:00+01:00"
    assert card["summary"] == "MRI whole spine by 20:00 today (Europe/Amsterdam), 10 h left: suspected cord compression"


def test_unknown_time_zone_setting_is_refused_at_start():
    with pytest.raises(ValueError, match="IANA"):
        Settings(timezone="Mars/Olympus_Mons")


def test_deceased_patient_gets_no_cards(tmp_path):
    description = {"patient": {"deceased": True}, "diagnoses": [BREAST, {"concept": "mescc", "onset": "3 hours ago"}]}
    resources = build_resources(description, T0)
    response = _client(tmp_path, [T0]).post("/cds-services/spinecds-patient-view", json=_request(resources))
    assert response.status_code == 200 and response.json()["cards"] == []


def test_optional_keys_missing_without_fhir_server_decide_and_say_so(tmp_path):
    # Without procedures the radiotherapy in progress is not seen: the card is more urgent, never
    # less, so the service answers (no 412) and lists what it did not read.
    description = {
        "diagnoses": [BREAST, {"concept": "mescc", "key": "mescc-1", "onset": "20 hours ago"}],
        "procedures": [
            {"concept": "spine-radiotherapy", "status": "in-progress", "when": "2 hours ago", "for": "mescc-1"}
        ],
    }
    resources = build_resources(description, T0)
    client = _client(tmp_path, [T0])
    full = client.post("/cds-services/spinecds-patient-view", json=_request(resources)).json()
    assert _card(full, "mescc-treatment") is None
    missing = client.post(
        "/cds-services/spinecds-patient-view", json=_request(resources, procedures=True, imagingStudies=True)
    )
    assert missing.status_code == 200
    body = missing.json()
    card = _card(body, "mescc-treatment")
    assert card is not None and card["indicator"] == "critical"
    quality = {item["resource"] for item in body["extension"]["spinecds"]["dataQuality"]}
    assert {"prefetch/procedures", "prefetch/imagingStudies"} <= quality


def test_required_key_missing_without_fhir_server_is_still_412(tmp_path):
    resources = build_resources({"diagnoses": [BREAST]}, T0)
    request = _request(resources)
    del request["prefetch"]["conditions"]
    assert _client(tmp_path, [T0]).post("/cds-services/spinecds-patient-view", json=request).status_code == 412


def test_generic_cord_compression_without_cancer_is_a_data_quality_line(tmp_path):
    resources = build_resources({"diagnoses": [{"concept": "cauda-equina", "onset": "3 hours ago"}]}, T0)
    body = _client(tmp_path, [T0]).post("/cds-services/spinecds-patient-view", json=_request(resources)).json()
    assert body["cards"] == []
    issues = [item["issue"] for item in body["extension"]["spinecds"]["dataQuality"]]
    assert any("cord/cauda compression, cause not recorded" in issue for issue in issues)
