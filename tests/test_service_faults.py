"""Faults and hostile bodies: the database going away, oversized and deeply nested JSON."""

from __future__ import annotations

from typing import Any

import pytest

from cds_hooks.app import FEEDBACK_RETRY_AFTER_SECONDS, create_app
from cds_hooks.auth_settings import AuthSettings
from cds_hooks.settings import Settings
from cds_hooks.store import SqliteStore, StoreError
from cds_hooks.validation import nesting_within
from tests.service_fixtures import FIXED_NOW, issue_cards
from tests.synthetic_requests import hook_request_for

HOOK = "/cds-services/spinecds-patient-view"
FEEDBACK = HOOK + "/feedback"
ITEM = {
    "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
    "outcome": "accepted",
    "outcomeTimestamp": "2026-03-02T09:31:00Z",
}


class DownStore:
    """A store whose database is gone: every call raises what the real stores raise then."""

    def __getattr__(self, name: str) -> Any:
        if name == "close":
            return lambda: None

        def unavailable(*_: Any, **__: Any) -> Any:
            raise StoreError("SQLite store unavailable: OperationalError")

        return unavailable


def _client(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from cds_hooks.clock import get_now

    app.dependency_overrides[get_now] = lambda: FIXED_NOW
    return TestClient(app, raise_server_exceptions=False)


def test_database_down_hooks_still_answer_with_cards_and_count_the_lost_audit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(
        Settings(database_path=tmp_path / "unused.sqlite3"),
        store=DownStore(),  # type: ignore[arg-type]
        auth_settings=AuthSettings(auth_enabled=False),
    )
    client = _client(app)
    body, _ = hook_request_for("spinecds-p06", "patient-view", FIXED_NOW)
    response = client.post(HOOK, json=body)
    assert response.status_code == 200
    assert response.json()["cards"], "p06 (MESCC) must get cards with or without a database"
    assert "spinecds_audit_records_lost_total 1.0" in client.get("/metrics").text


def test_database_down_feedback_is_503_with_retry_after_never_a_false_200(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    app = create_app(
        Settings(database_path=tmp_path / "unused.sqlite3"),
        store=DownStore(),  # type: ignore[arg-type]
        auth_settings=AuthSettings(auth_enabled=False),
    )
    response = _client(app).post(FEEDBACK, json={"feedback": [ITEM]})
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(FEEDBACK_RETRY_AFTER_SECONDS)
    assert response.headers["content-type"].startswith("application/fhir+json")
    (issue,) = response.json()["issue"]
    assert issue["code"] == "transient" and "not stored" in issue["diagnostics"]
    assert any(r.getMessage() == "feedback not stored: database unavailable" for r in caplog.records)


def test_database_down_ready_is_503_naming_the_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(
        Settings(database_path=tmp_path / "unused.sqlite3"),
        store=DownStore(),  # type: ignore[arg-type]
        auth_settings=AuthSettings(auth_enabled=False),
    )
    with _client(app) as client:
        response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "error: StoreError"
    assert response.json()["checks"]["rules"] == "ok"


def test_unwritable_sqlite_file_is_a_store_error_and_a_503(tmp_path, make_client) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "blocker").write_text("a file where the database folder should be")
    path = tmp_path / "blocker" / "db.sqlite3"
    with pytest.raises(StoreError, match="SQLite store unavailable"):
        SqliteStore(path).record_feedback("svc", [ITEM], FIXED_NOW)
    client = make_client(database_path=path)
    assert client.post(FEEDBACK, json={"feedback": [ITEM]}).status_code == 503
    assert client.get("/ready").status_code == 503


def test_feedback_label_lookup_failing_after_storing_still_acknowledges(make_client, engine_spy, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    store = client.app.state.store
    (card,) = issue_cards(client, engine_spy)  # feedback is taken only for cards the service returned

    def down(_: str) -> None:
        raise StoreError("SQLite store unavailable: OperationalError")

    # Feedback is accepted only on a card the service returned (to this, the development, client).
    store.record_evaluation(FIXED_NOW, "hook-1", "svc", [], [ITEM["card"]], [(ITEM["card"], "rule-a", "1.0.0")])
    monkeypatch.setattr(store, "rule_of_card", down)
    assert client.post(FEEDBACK, json={"feedback": [{**ITEM, "card": card}]}).status_code == 200
    assert [f["card"] for f in store.list_feedback()] == [card]


@pytest.mark.parametrize("path", [HOOK, FEEDBACK])
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deeply_nested_json_is_400_not_a_recursion_error(client, path: str, opener: str) -> None:  # type: ignore[no-untyped-def]
    closer = "]" if opener == "[" else "}"
    body = (opener * 10_000 + "1" + closer * 10_000).encode()
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert "deeper than 64 levels" in response.json()["issue"][0]["diagnostics"]


def test_nesting_limit_is_configurable_and_counts_real_nesting_only(make_client, engine_spy) -> None:  # type: ignore[no-untyped-def]
    from cds_hooks.prefetch_templates import prefetch_templates
    from tests.service_fixtures import hook_request

    no_data = {key: None for key in prefetch_templates()}
    assert nesting_within(b'[[["]]]]]]]]]", "[[[[[[[["]]]', 3)  # brackets inside strings do not count
    assert not nesting_within(b"[[[[]]]]", 3) and nesting_within(b"[[[]]]", 3)
    assert not nesting_within(b'{"a": [1, {"b": [2, {"c": []}]}]}', 4)
    client = make_client(max_json_depth=8)
    body = hook_request(prefetch=no_data, padding=[[[[[[[["deep"]]]]]]]])  # 9 levels with the envelope
    response = client.post(HOOK, json=body)
    assert response.status_code == 400 and "deeper than 8 levels" in response.text
    assert client.post(HOOK, json=hook_request(prefetch=no_data, padding=[[[[[[["ok"]]]]]]])).status_code == 200


def test_oversized_feedback_is_413_with_a_configured_limit(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(max_body_bytes=2048)
    response = client.post(FEEDBACK, json={"feedback": [{**ITEM, "padding": "x" * 4096}]})
    assert response.status_code == 413
    assert response.json()["issue"][0]["code"] == "too-long"
    assert client.app.state.store.list_feedback() == []
