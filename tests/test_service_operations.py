"""Operations through the real app: metrics after real hooks and feedback, readiness, audit trail."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from cds_hooks.store import SCHEMA_VERSION, SqliteStore

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "patient-view-suspected-mescc.json"


def _metric(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no series {line_start!r} in /metrics")


def test_metrics_count_cards_prefetch_and_feedback_by_rule(client):
    body = json.loads(EXAMPLE.read_text())
    cards = client.post("/cds-services/spinecds-patient-view", json=body).json()["cards"]
    mri = next(c for c in cards if c["extension"]["spinecds"]["ruleId"] == "mri-urgency")
    feedback = {
        "feedback": [
            {
                "card": mri["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": mri["suggestions"][0]["uuid"]}],
                "outcomeTimestamp": "2026-11-20T08:01:00Z",
            }
        ]
    }
    assert client.post("/cds-services/spinecds-patient-view/feedback", json=feedback).status_code == 200

    text = client.get("/metrics").text
    assert _metric(text, 'spinecds_cards_total{indicator="critical",rule_id="mri-urgency"}') == 1
    assert _metric(text, 'spinecds_prefetch_keys_total{key="conditions",outcome="prefetched"}') == 1
    assert _metric(text, 'spinecds_prefetch_keys_total{key="pain",outcome="null"}') == 1
    assert _metric(text, 'spinecds_feedback_total{outcome="accepted",rule_id="mri-urgency"}') == 1
    assert (
        _metric(
            text, 'spinecds_hook_request_duration_seconds_count{hook="patient-view",service_id="spinecds-patient-view"}'
        )
        == 1
    )


def test_a_412_is_counted(client):
    body = json.loads(EXAMPLE.read_text())
    del body["prefetch"]["conditions"]  # absent and no fhirServer to fetch it from
    assert client.post("/cds-services/spinecds-patient-view", json=body).status_code == 412
    text = client.get("/metrics").text
    assert _metric(text, 'spinecds_precondition_failed_responses_total{service_id="spinecds-patient-view"}') == 1
    assert _metric(text, 'spinecds_prefetch_keys_total{key="conditions",outcome="failed"}') == 1


def test_ready_reports_rules_and_database(client):
    response = client.get("/ready")
    assert response.status_code == 200
    assert set(response.json()["checks"]) == {"rules", "database"}
    assert client.get("/health").json()["status"] == "ok"


def test_a_card_is_traceable_to_the_rule_version_that_produced_it(client):
    body = json.loads(EXAMPLE.read_text())
    cards = client.post("/cds-services/spinecds-patient-view", json=body).json()["cards"]
    store = client.app.state.store
    for card in cards:
        outcome = card["extension"]["spinecds"]
        assert store.rule_of_card(card["uuid"]) == (outcome["ruleId"], outcome["ruleVersion"])


def test_a_version_1_database_is_migrated_without_losing_feedback(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as raw:  # the shipped version-1 schema, with one feedback row
        raw.executescript("""
            CREATE TABLE schema_version (version INTEGER NOT NULL);
            INSERT INTO schema_version VALUES (1);
            CREATE TABLE feedback (id INTEGER PRIMARY KEY, service_id TEXT NOT NULL, card_uuid TEXT NOT NULL,
                outcome TEXT NOT NULL, outcome_timestamp TEXT NOT NULL, accepted_suggestions TEXT,
                override_reason TEXT, user_comment TEXT, received_at TEXT NOT NULL, UNIQUE (card_uuid, outcome));
            INSERT INTO feedback (service_id, card_uuid, outcome, outcome_timestamp, received_at)
                VALUES ('spinecds-patient-view', 'c-1', 'overridden', '2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z');
        """)
    store = SqliteStore(path)
    assert [item["card"] for item in store.list_feedback()] == ["c-1"]
    store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert raw.execute("SELECT count(*) FROM card").fetchone() == (0,)
