"""Feedback memory over HTTP: what a user overrode stays out of their way until something changes.

The first tests drive the app in-process (a fixed clock that they move); the last ones run the real
service (uvicorn) on SQLite and on a throwaway PostgreSQL server, restart it on the same database
and check that the memory survived.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from cds_hooks.app import create_app
from cds_hooks.auth_settings import AuthSettings, TrustedClient
from cds_hooks.clock import get_now
from cds_hooks.feedback_memory import FeedbackMemory
from cds_hooks.settings import Settings
from cds_hooks.store import DEVELOPMENT_CLIENT
from engine.api import get_engine
from engine.cases import request_from_hook_call
from tests.auth_tokens import BASE, bearer, claims, mint, new_ec_key, write_jwks
from tests.live_service import live_service
from tests.synthetic_requests import hook_request_for

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
PATIENT_VIEW = "/cds-services/spinecds-patient-view"
FEEDBACK = PATIENT_VIEW + "/feedback"
REASON = {"reason": {"system": "http://example.org/reasons", "code": "discussed", "display": "Discussed in MDT"}}


class Clinic:
    """One app on one database (a SQLite file, or PostgreSQL with `database_url`) whose clock the test moves."""

    def __init__(self, tmp_path: Path, database_url: str | None = None) -> None:
        self.now = NOW
        settings = Settings(database_path=tmp_path / "memory.sqlite3", database_url=database_url)
        app = create_app(settings, auth_settings=AuthSettings(auth_enabled=False))
        app.dependency_overrides[get_now] = lambda: self.now
        self.client = TestClient(app, raise_server_exceptions=False)
        self.store = app.state.store

    def open_chart(self, body: dict[str, Any], user: str = "Practitioner/a") -> list[dict[str, Any]]:
        body = copy.deepcopy(body)
        body["context"]["userId"] = user
        body["hookInstance"] = f"{body['hookInstance'][:24]}{int(self.now.timestamp()) % 10**12:012d}"
        response = self.client.post(PATIENT_VIEW, json=body)
        assert response.status_code == 200, response.text
        self.set_aside = response.json().get("extension", {}).get("spinecds", {}).get("setAside", [])
        return response.json()["cards"]

    def feedback(self, card: dict[str, Any], outcome: str, **extra: Any) -> None:
        item = {"card": card["uuid"], "outcome": outcome, "outcomeTimestamp": self.now.isoformat(), **extra}
        assert self.client.post(FEEDBACK, json={"feedback": [item]}).status_code == 200


@pytest.fixture(scope="module")
def postgres() -> Iterator[Any]:
    from tests.postgres_server import start_postgres

    try:
        server = start_postgres()
    except LookupError as missing:
        pytest.skip(str(missing))
    yield server
    server.stop()


_databases = iter(range(10**6))


@pytest.fixture(params=["sqlite", "postgres"])
def clinic(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Clinic]:
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("postgres").create_database(f"memory_{next(_databases)}")
    clinic = Clinic(tmp_path, url)
    yield clinic
    clinic.store.close()


def _rules(cards: list[dict[str, Any]]) -> list[str]:
    return [card["extension"]["spinecds"]["ruleId"] for card in cards]


def _all_rules(cards: list[dict[str, Any]]) -> set[str]:
    merged = {m["ruleId"] for card in cards for m in card["extension"]["spinecds"].get("merged", [])}
    return set(_rules(cards)) | merged


def _card(cards: list[dict[str, Any]], rule: str) -> dict[str, Any]:
    return next(card for card in cards if card["extension"]["spinecds"]["ruleId"] == rule)


@pytest.fixture(scope="module")
def p13() -> dict[str, Any]:
    return hook_request_for("spinecds-p13", "patient-view", NOW)[0]


@pytest.fixture(scope="module")
def p05() -> dict[str, Any]:
    return hook_request_for("spinecds-p05", "patient-view", NOW)[0]


def test_an_overridden_card_and_its_merged_rules_stay_hidden_for_that_user_only(clinic, p13):
    first = clinic.open_chart(p13)
    surgery = _card(first, "surgery-eligibility")
    assert {m["ruleId"] for m in surgery["extension"]["spinecds"]["merged"]} >= {"survival-estimate"}
    clinic.feedback(surgery, "overridden")  # non-critical: no reason needed

    clinic.now += timedelta(hours=1)
    again = clinic.open_chart(p13)
    assert "surgery-eligibility" not in _all_rules(again)
    assert not {"survival-estimate", "expectations-dialogue"} & _all_rules(again)  # feedback on the host
    assert {"sins-referral", "mri-urgency"} <= set(_rules(again))
    assert "surgery-eligibility" in clinic.set_aside and "survival-estimate" in clinic.set_aside  # said, not silent
    assert "surgery-eligibility" in _rules(clinic.open_chart(p13, user="Practitioner/b"))  # another user

    hidden = clinic.store.memory_read("hidden")
    assert {row["rule_id"] for row in hidden} >= {"surgery-eligibility", "survival-estimate"}  # audited
    (suppression,) = [s for s in clinic.store.memory_read("suppressions") if s["rule_id"] == "surgery-eligibility"]
    assert suppression["hidden_until"] == (NOW + timedelta(days=7)).isoformat()


def test_the_memory_ends_after_seven_days(clinic, p13):
    clinic.feedback(_card(clinic.open_chart(p13), "surgery-eligibility"), "overridden")
    clinic.now += timedelta(days=6, hours=23)
    assert "surgery-eligibility" not in _rules(clinic.open_chart(p13))
    clinic.now += timedelta(hours=2)
    assert "surgery-eligibility" in _rules(clinic.open_chart(p13))


def test_a_changed_decisive_resource_shows_the_card_again(clinic, p13):
    clinic.feedback(_card(clinic.open_chart(p13), "sins-referral"), "overridden")
    assert "sins-referral" not in _rules(clinic.open_chart(p13))
    edited = copy.deepcopy(p13)
    for entry in edited["prefetch"]["sins"]["entry"]:
        entry["resource"]["meta"]["versionId"] = "2"  # the SINS assessment was edited
    assert "sins-referral" in _rules(clinic.open_chart(edited))


def test_an_escalation_or_any_change_of_outcome_shows_the_card_again(clinic, p13):
    clinic.feedback(_card(clinic.open_chart(p13), "sins-referral"), "overridden")
    result = get_engine().evaluate(request_from_hook_call(p13, NOW))
    (sins,) = [item for item in result.shown if item.rule_id == "sins-referral"]
    recall = FeedbackMemory(clinic.store, 7).recall(DEVELOPMENT_CLIENT, "Practitioner/a", "spinecds-p13", clinic.now)
    assert recall is not None and recall.hides(sins.identity())
    for change in ({"indicator": "critical"}, {"outcome": "unstable"}, {"decisive": ["Observation/new@1"]}):
        assert not recall.hides({**sins.identity(), **change}), change
    other_user = FeedbackMemory(clinic.store, 7).recall(
        DEVELOPMENT_CLIENT, "Practitioner/b", "spinecds-p13", clinic.now
    )
    assert other_user is not None and not other_user.hides(sins.identity())


def test_a_critical_card_is_hidden_only_with_a_reason_and_at_most_until_its_due_time(clinic, p05):
    mri = _card(clinic.open_chart(p05), "mri-urgency")
    assert mri["indicator"] == "critical"
    clinic.feedback(mri, "overridden")  # no reason
    assert "mri-urgency" in _rules(clinic.open_chart(p05))

    clinic.now += timedelta(minutes=5)
    mri = _card(clinic.open_chart(p05), "mri-urgency")
    clinic.feedback(mri, "overridden", overrideReason=REASON)
    clinic.now += timedelta(hours=1)
    assert "mri-urgency" not in _rules(clinic.open_chart(p05))
    (suppression,) = [s for s in clinic.store.memory_read("suppressions") if s["rule_id"] == "mri-urgency"]
    assert suppression["indicator"] == "critical" and "Discussed in MDT" in suppression["reason"]
    until = datetime.fromisoformat(suppression["hidden_until"])
    assert until <= NOW + timedelta(minutes=5, hours=24)
    clinic.now = until + timedelta(seconds=1)
    assert "mri-urgency" in _rules(clinic.open_chart(p05))


def test_an_accepted_suggestion_hides_nothing(clinic, p05):
    mri = _card(clinic.open_chart(p05), "mri-urgency")
    accepted = [{"id": mri["suggestions"][0]["uuid"]}]
    clinic.feedback(mri, "accepted", acceptedSuggestions=accepted)
    assert "mri-urgency" in _rules(clinic.open_chart(p05))
    assert clinic.store.memory_read("suppressions") == []


def test_the_database_holds_no_patient_or_user_id(clinic, p13, tmp_path):
    surgery = _card(clinic.open_chart(p13, user="Practitioner/dr-jansen"), "sins-referral")
    clinic.feedback(surgery, "overridden", overrideReason={"userComment": "seen"})
    clinic.open_chart(p13, user="Practitioner/dr-jansen")
    rows = [
        *clinic.store.memory_read("cards", (surgery["uuid"],)),
        *clinic.store.memory_read("suppressions"),
        *clinic.store.memory_read("hidden"),
    ]
    assert len(rows) >= 3
    stored = json.dumps(rows)
    for identifier in ("spinecds-p13", "dr-jansen", "Practitioner/", "Observation/", "Condition/"):
        assert identifier not in stored
    clinic.store.close()
    files = list(tmp_path.glob("memory.sqlite3*"))
    if files:  # SQLite: not even in the file's free pages
        raw = b"".join(path.read_bytes() for path in files)
        for identifier in (b"spinecds-p13", b"dr-jansen", b"Practitioner/", b"Observation/"):
            assert identifier not in raw


# ------------------------------------------------------------------ two EHRs, same ids


def test_one_clients_override_never_hides_another_clients_card(tmp_path, p13):
    """Two EHRs (and two tenants of one EHR) that both have a patient `spinecds-p13` and a user
    `Practitioner/a`: EHR B overriding every card it got (with a reason, so even critical cards
    qualify) must not hide a single card from EHR A or from A's other tenant."""
    key_a, key_b = new_ec_key("a"), new_ec_key("b")
    ehr_a, ehr_b = "https://ehr-a.example.org", "https://ehr-b.example.org"
    auth = AuthSettings(
        auth_enabled=True,
        external_base_url=BASE,
        trusted_clients=(
            TrustedClient(iss=ehr_a, jwks_file=write_jwks(tmp_path / "a.json", key_a)),
            TrustedClient(iss=ehr_b, jwks_file=write_jwks(tmp_path / "b.json", key_b)),
        ),
    )
    app = create_app(Settings(database_path=tmp_path / "db.sqlite3", pseudonym_key="k" * 32), auth_settings=auth)
    app.dependency_overrides[get_now] = lambda: NOW
    http = TestClient(app, raise_server_exceptions=False)

    def post(key: Any, iss: str, path: str, body: dict[str, Any], tenant: str | None = None) -> Any:
        token = mint(key, claims(iss=iss, aud=BASE + path, **({"tenant": tenant} if tenant else {})))
        response = http.post(path, json=body, headers=bearer(token))
        assert response.status_code == 200, response.text
        return response

    def chart(key: Any, iss: str, tenant: str | None = None) -> list[dict[str, Any]]:
        body = copy.deepcopy(p13)
        body["context"]["userId"] = "Practitioner/a"
        body["hookInstance"] = str(uuid.uuid4())
        return post(key, iss, PATIENT_VIEW, body, tenant).json()["cards"]

    def override_all(key: Any, iss: str, cards: list[dict[str, Any]], tenant: str | None = None) -> None:
        items = [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "outcomeTimestamp": NOW.isoformat(),
                "overrideReason": REASON,
            }
            for card in cards
        ]
        post(key, iss, FEEDBACK, {"feedback": items}, tenant)

    try:
        seen_by_a = _all_rules(chart(key_a, ehr_a, "t1"))
        assert {"surgery-eligibility", "sins-referral", "mri-urgency"} <= seen_by_a
        override_all(key_b, ehr_b, chart(key_b, ehr_b))
        assert _all_rules(chart(key_b, ehr_b)) < seen_by_a  # B's own memory works...
        assert _all_rules(chart(key_a, ehr_a, "t1")) == seen_by_a  # ...and never reaches A
        override_all(key_a, ehr_a, chart(key_a, ehr_a, "t2"), tenant="t2")
        assert _all_rules(chart(key_a, ehr_a, "t1")) == seen_by_a  # nor crosses A's tenants
        assert len(app.state.store.memory_read("suppressions")) >= 2
    finally:
        app.state.store.close()


# ------------------------------------------------------------------ the real service, restarted


def _live_round(base: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    body = copy.deepcopy(body)
    body["hookInstance"] = body["hookInstance"][:-12] + f"{datetime.now(UTC).microsecond:012d}"
    response = requests.post(base + PATIENT_VIEW, json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["cards"]


def _override_then_restart(start: Callable[[], Any]) -> None:
    body = hook_request_for("spinecds-p13", "patient-view", datetime.now(UTC))[0]
    with start() as base:
        surgery = _card(_live_round(base, body), "surgery-eligibility")
        item = {"card": surgery["uuid"], "outcome": "overridden", "outcomeTimestamp": datetime.now(UTC).isoformat()}
        assert requests.post(base + FEEDBACK, json={"feedback": [item]}, timeout=30).status_code == 200
        assert "surgery-eligibility" not in _all_rules(_live_round(base, body))
    with start() as base:  # a new process on the same database
        cards = _live_round(base, body)
        assert "surgery-eligibility" not in _all_rules(cards)
        assert "sins-referral" in _rules(cards)


def test_memory_survives_a_restart_on_sqlite(tmp_path):
    _override_then_restart(lambda: live_service(tmp_path, pseudonym_key="test-secret"))


def test_memory_survives_a_restart_on_postgres(tmp_path, postgres):
    url = postgres.create_database("feedback_memory_restart")
    _override_then_restart(lambda: live_service(tmp_path, database_url=url, pseudonym_key="test-secret"))


def test_pseudonyms_are_keyed_and_auth_on_refuses_to_start_without_a_long_key(tmp_path, caplog, monkeypatch):
    from cds_hooks import pseudonyms
    from cds_hooks.app import PseudonymKeyError

    monkeypatch.delenv("SPINECDS_PSEUDONYM_KEY", raising=False)
    try:
        pseudonyms.configure("key-one")
        first = pseudonyms.pseudonym("user|Practitioner/a")
        assert len(first) == 64 and "Practitioner" not in first
        pseudonyms.configure("key-two")
        assert pseudonyms.pseudonym("user|Practitioner/a") != first  # without the key, no link to a person
        caplog.set_level("CRITICAL", logger="spinecds.service")
        auth_on = AuthSettings(auth_enabled=True)
        for key, problem in ((None, "is not set"), ("k" * 31, "is shorter than 32 bytes")):
            with pytest.raises(PseudonymKeyError, match=problem):
                create_app(Settings(database_path=tmp_path / "db.sqlite3", pseudonym_key=key), auth_settings=auth_on)
            assert f"SPINECDS_PSEUDONYM_KEY {problem}" in caplog.text and "refusing to start" in caplog.text
        assert not (tmp_path / "db.sqlite3").exists()  # stopped before the database was opened
        app = create_app(Settings(database_path=tmp_path / "db.sqlite3", pseudonym_key="k" * 32), auth_settings=auth_on)
        app.state.store.close()
        off = create_app(
            Settings(database_path=tmp_path / "db.sqlite3"), auth_settings=AuthSettings(auth_enabled=False)
        )
        assert pseudonyms.uses_development_key()  # development (authentication off) keeps working
        off.state.store.close()
    finally:
        pseudonyms.configure(None)


def test_a_cards_due_time_caps_its_suppression():
    from cds_hooks.feedback_memory import due_by

    def card(**spinecds: Any) -> dict[str, Any]:
        return {"extension": {"spinecds": spinecds}}

    assert due_by(card(dueBy="2026-03-10T14:00:00+01:00"), NOW) == datetime(2026, 3, 10, 13, 0, tzinfo=UTC)
    assert due_by(card(hoursLeft=-2.5), NOW) == NOW - timedelta(hours=2.5)  # overdue: never hidden
    assert due_by(card(deadlineHours=336), NOW) == NOW + timedelta(days=14)
    assert due_by(card(dueBy="not a time"), NOW) == NOW
    assert due_by(card(outcome="advise"), NOW) is None


def test_stored_keys_keep_their_format_and_each_card_is_hashed_once_per_call(tmp_path, monkeypatch):
    """The keys are the keyed hashes of the same texts as before (stored rows must keep matching), and
    one call hashes each card identity once although hides() and rows() both need it."""
    import hashlib
    import hmac

    from cds_hooks import feedback_memory, first_seen, pseudonyms
    from cds_hooks.store import ClientId, SqliteStore
    from engine.card_merge import flatten_merged

    def expected(text: str) -> str:
        return hmac.new(pseudonyms._current_key(), text.encode(), hashlib.sha256).hexdigest()

    client = ClientId("https://ehr.example.org", "t-1")
    identity = {"ruleId": "sins-referral", "outcome": "potential", "indicator": "warning", "decisive": ["Obs/s@1"]}
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    assert feedback_memory.identity_key(identity) == expected("identity|" + canonical)
    assert feedback_memory.person_key("user", client, "Practitioner/a") == expected(
        json.dumps(["user", client.iss, "t-1", "Practitioner/a"], separators=(",", ":"))
    )
    assert first_seen.condition_key(client, None, "p1", "Condition/c1") == expected(
        json.dumps(["first-seen", client.iss, "t-1", "", "p1", "Condition/c1"], separators=(",", ":"))
    )

    p13, _ = hook_request_for("spinecds-p13", "patient-view", NOW)
    result = get_engine().evaluate(request_from_hook_call(p13, NOW))
    store = SqliteStore(tmp_path / "keys.sqlite3")
    recall = FeedbackMemory(store, 7).recall(client, "Practitioner/a", "spinecds-p13", NOW)
    assert recall is not None
    hashed: list[str] = []
    counting = pseudonyms.pseudonym

    def count(value: str) -> str:
        hashed.append(value)
        return counting(value)

    monkeypatch.setattr(feedback_memory, "pseudonym", count)
    items = [item for host in result.shown for item in [host, *flatten_merged(host)]]
    assert not any(recall.hides(item.identity()) for item in items)
    rows = recall.rows("hook-1", result)["card"]
    assert len(hashed) == len({json.dumps(item.identity(), sort_keys=True) for item in items}) == len(rows)
    assert [row[4] for row in rows] == [feedback_memory.identity_key(item.identity()) for item in items]
    store.close()
