"""POST /cds-services/{id}/feedback: validated, bounded, bound to the client the card was returned to,
idempotent, durable across restarts.

Feedback is accepted only for cards this service returned (to the same client), so each test first
has the service issue cards (engine_spy) and then sends feedback on their uuids."""

from __future__ import annotations

import sqlite3
import threading
import uuid

from cds_hooks.app import create_app
from cds_hooks.settings import Settings
from cds_hooks.store import SCHEMA_VERSION, SqliteStore
from engine.api import EvaluationResult
from tests.service_fixtures import FIXED_NOW, hook_request, issue_cards

FEEDBACK_URL = "/cds-services/spinecds-patient-view/feedback"
ACCEPTED = {
    "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
    "outcome": "accepted",
    "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
    "outcomeTimestamp": "2026-03-02T09:31:00Z",
}
OVERRIDDEN = {
    "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
    "outcome": "overridden",
    "overrideReason": {
        "reason": {"code": "patient-refused", "system": "http://example.org/reasons", "display": "Patient refused"},
        "userComment": "discussed in clinic",
    },
    "outcomeTimestamp": "2026-03-02T09:32:00Z",
}


def on(card: str, item: dict) -> dict:  # type: ignore[type-arg]
    return {**item, "card": card}


def test_service_feedback_is_stored(client, engine_spy) -> None:  # type: ignore[no-untyped-def]
    (card,) = issue_cards(client, engine_spy)
    response = client.post(FEEDBACK_URL, json={"feedback": [on(card, ACCEPTED), on(card, OVERRIDDEN)]})
    assert response.status_code == 200 and response.content == b""
    stored = client.app.state.store.list_feedback()
    assert [(f["card"], f["outcome"]) for f in stored] == [(card, "accepted"), (card, "overridden")]
    assert stored[0]["acceptedSuggestions"] == ACCEPTED["acceptedSuggestions"]
    assert stored[1]["overrideReason"] == OVERRIDDEN["overrideReason"]
    assert stored[0]["serviceId"] == "spinecds-patient-view" and stored[0]["receivedAt"] == FIXED_NOW.isoformat()


def test_service_feedback_is_idempotent_per_card_and_outcome(client, engine_spy) -> None:  # type: ignore[no-untyped-def]
    (card,) = issue_cards(client, engine_spy)
    for _ in range(3):
        assert client.post(FEEDBACK_URL, json={"feedback": [on(card, ACCEPTED)]}).status_code == 200
    assert len(client.app.state.store.list_feedback()) == 1


def test_service_feedback_survives_restart(make_client, engine_spy, tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = make_client(database_path=tmp_path / "durable.sqlite3")
    (card,) = issue_cards(first, engine_spy)
    assert first.post(FEEDBACK_URL, json={"feedback": [on(card, OVERRIDDEN)]}).status_code == 200
    # A new app instance on the same file (no shutdown of the first: a crash loses nothing either).
    second = make_client(database_path=tmp_path / "durable.sqlite3")
    (item,) = second.app.state.store.list_feedback("spinecds-patient-view")
    assert item["card"] == card and item["overrideReason"]["userComment"] == "discussed in clinic"
    assert second.post(FEEDBACK_URL, json={"feedback": [on(card, OVERRIDDEN)]}).status_code == 200
    assert len(second.app.state.store.list_feedback()) == 1


def test_service_feedback_validation_errors_are_400(client) -> None:  # type: ignore[no-untyped-def]
    cases = [
        ({}, "feedback"),
        ({"feedback": []}, "feedback"),
        ({"feedback": [{**ACCEPTED, "outcome": "ignored"}]}, "feedback[0].outcome"),
        ({"feedback": [{k: v for k, v in ACCEPTED.items() if k != "card"}]}, "feedback[0].card"),
        ({"feedback": [{**ACCEPTED, "outcomeTimestamp": "yesterday"}]}, "feedback[0].outcomeTimestamp"),
        (
            {"feedback": [{**OVERRIDDEN, "overrideReason": {"reason": {"code": "x"}}}]},
            "feedback[0].overrideReason.reason.system",
        ),
    ]
    for body, path in cases:
        response = client.post(FEEDBACK_URL, json=body)
        assert response.status_code == 400, (body, response.text)
        assert [path] in [issue["expression"] for issue in response.json()["issue"]], response.text
    assert client.post(FEEDBACK_URL, content=b"{").status_code == 400
    assert client.app.state.store.list_feedback() == []


def test_service_evaluation_audit_trail(client, engine_spy) -> None:  # type: ignore[no-untyped-def]
    from cds_hooks.prefetch_templates import prefetch_templates

    engine_spy.result = EvaluationResult(
        cards=[{"uuid": "card-1", "summary": "Order MRI", "indicator": "warning", "source": {"label": "spinecds"}}],
        fired=[{"ruleId": "mri-urgency", "ruleVersion": "1.0.0", "outcome": 2}],
    )
    body = hook_request(prefetch={k: None for k in prefetch_templates()})
    response = client.post("/cds-services/spinecds-patient-view", json=body)
    assert response.status_code == 200
    (card,) = response.json()["cards"]
    assert card["uuid"] != "card-1"  # the service issues its own random uuids
    (row,) = client.app.state.store.list_evaluations(body["hookInstance"])
    assert row == {
        "evaluatedAt": FIXED_NOW.isoformat(),
        "hookInstance": body["hookInstance"],
        "serviceId": "spinecds-patient-view",
        "fired": [{"ruleId": "mri-urgency", "ruleVersion": "1.0.0", "outcome": 2}],
        "cardUuids": [card["uuid"]],
        "client": {"iss": "", "tenant": None},  # authentication off: the development client
    }


def test_service_store_uses_wal_and_schema_version(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = SqliteStore(tmp_path / "s.sqlite3")
    store.list_feedback()
    store.close()
    with sqlite3.connect(tmp_path / "s.sqlite3") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_service_store_concurrent_writers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = SqliteStore(tmp_path / "s.sqlite3")

    def write(n: int) -> None:
        for i in range(20):
            store.record_feedback("svc", [{**ACCEPTED, "card": f"card-{n}-{i}"}], FIXED_NOW)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.list_feedback()) == 80
    store.close()


def test_service_import_creates_no_files(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    create_app(Settings())
    assert list(tmp_path.iterdir()) == []  # the database opens on first use, not at import


def test_service_feedback_on_cards_never_issued_is_404_and_not_stored(client, engine_spy) -> None:  # type: ignore[no-untyped-def]
    (card,) = issue_cards(client, engine_spy)
    never = str(uuid.uuid4())
    response = client.post(FEEDBACK_URL, json={"feedback": [on(card, ACCEPTED), on(never, OVERRIDDEN)]})
    assert response.status_code == 404
    (issue,) = response.json()["issue"]
    assert issue["expression"] == ["feedback[1].card"]
    assert client.app.state.store.list_feedback() == []  # not even the valid item: all or nothing


def test_feedback_is_accepted_only_at_the_service_that_issued_the_card(client, engine_spy) -> None:  # type: ignore[no-untyped-def]
    (card,) = issue_cards(client, engine_spy)  # a patient-view card
    elsewhere = client.post("/cds-services/spinecds-order-sign/feedback", json={"feedback": [on(card, OVERRIDDEN)]})
    assert elsewhere.status_code == 404
    assert elsewhere.json()["issue"][0]["expression"] == ["feedback[0].card"]
    assert client.app.state.store.list_feedback() == []  # not stored under the wrong service either
    assert client.post(FEEDBACK_URL, json={"feedback": [on(card, OVERRIDDEN)]}).status_code == 200
    assert [item["card"] for item in client.app.state.store.list_feedback("spinecds-patient-view")] == [card]


def test_service_feedback_is_bounded(client, engine_spy) -> None:  # type: ignore[no-untyped-def]
    cards = issue_cards(client, engine_spy, count=2)
    too_many = {"feedback": [on(cards[n % 2], ACCEPTED) for n in range(101)]}
    response = client.post(FEEDBACK_URL, json=too_many)
    assert response.status_code == 413 and response.json()["resourceType"] == "OperationOutcome"
    long_comment = on(cards[0], OVERRIDDEN)
    long_comment["overrideReason"] = {**OVERRIDDEN["overrideReason"], "userComment": "x" * 2001}
    for body, path in (
        ({"feedback": [long_comment]}, "feedback[0].overrideReason.userComment"),
        ({"feedback": [on("c" * 129, ACCEPTED)]}, "feedback[0].card"),
        (
            {"feedback": [{**on(cards[0], ACCEPTED), "acceptedSuggestions": [{"id": "s" * 129}]}]},
            "feedback[0].acceptedSuggestions[0].id",
        ),
    ):
        response = client.post(FEEDBACK_URL, json=body)
        assert response.status_code == 400, response.text
        assert [path] in [issue["expression"] for issue in response.json()["issue"]]
    assert client.app.state.store.list_feedback() == []
    # 100 items is within the limit.
    assert client.post(FEEDBACK_URL, json={"feedback": too_many["feedback"][:100]}).status_code == 200
