"""The Store contract, run against both backends: SQLite (a temporary file) and PostgreSQL (a real
server started for this session from Debian's binaries; tests/postgres_server.py).

Without the PostgreSQL binaries the postgres cases are SKIPPED with the reason, never passed.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from cds_hooks.settings import Settings
from cds_hooks.store import (
    BASE_SCHEMA,
    DEVELOPMENT_CLIENT,
    SCHEMA_VERSION,
    SQLITE_ID_COLUMN,
    ClientId,
    SchemaVersionError,
    SqliteStore,
    Store,
    StoreError,
    open_store,
    statements,
)
from tests.postgres_server import PostgresServer, start_postgres
from tests.service_fixtures import FIXED_NOW

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
_database_names = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = start_postgres()
    except LookupError as missing:
        pytest.skip(str(missing))
    yield server
    server.stop()


@dataclass
class Backend:
    """One empty database and how to open a store on it (again) and run raw SQL against it."""

    name: str
    open: Callable[[], Store]
    execute: Callable[[str], list[tuple[Any, ...]]]
    id_column: str


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path) -> Iterator[Backend]:  # type: ignore[no-untyped-def]
    opened: list[Store] = []
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite3"

        def open_sqlite() -> Store:
            opened.append(SqliteStore(path))
            return opened[-1]

        def execute_sqlite(sql: str) -> list[tuple[Any, ...]]:
            with sqlite3.connect(path) as raw:
                return [tuple(row) for row in raw.execute(sql).fetchall()]

        yield Backend("sqlite", open_sqlite, execute_sqlite, SQLITE_ID_COLUMN)
    else:
        import psycopg

        from cds_hooks.store_postgres import POSTGRES_ID_COLUMN, PostgresStore

        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.create_database(f"store_{next(_database_names)}")

        def open_postgres() -> Store:
            opened.append(PostgresStore(url, max_size=4))
            return opened[-1]

        def execute_postgres(sql: str) -> list[tuple[Any, ...]]:
            with psycopg.connect(url, autocommit=True) as raw:
                cursor = raw.execute(sql)
                return [tuple(row) for row in cursor.fetchall()] if cursor.description else []

        yield Backend("postgres", open_postgres, execute_postgres, POSTGRES_ID_COLUMN)
    for store in opened:
        store.close()


def test_store_feedback_is_stored_in_spec_shape(backend: Backend) -> None:
    store = backend.open()
    assert store.record_feedback("svc", [ACCEPTED, OVERRIDDEN], FIXED_NOW) == 2
    first, second = store.list_feedback()
    assert (first["card"], first["outcome"], second["outcome"]) == (ACCEPTED["card"], "accepted", "overridden")
    assert first["acceptedSuggestions"] == ACCEPTED["acceptedSuggestions"]
    assert second["overrideReason"] == OVERRIDDEN["overrideReason"]
    assert first["serviceId"] == "svc" and first["receivedAt"] == FIXED_NOW.isoformat()
    assert store.list_feedback("other-service") == []


def test_store_feedback_is_idempotent_per_card_and_outcome(backend: Backend) -> None:
    store = backend.open()
    assert store.record_feedback("svc", [ACCEPTED], FIXED_NOW) == 1
    assert store.record_feedback("svc", [ACCEPTED, ACCEPTED], FIXED_NOW) == 0
    assert store.record_feedback("svc", [ACCEPTED, OVERRIDDEN], FIXED_NOW) == 1
    assert [f["outcome"] for f in store.list_feedback()] == ["accepted", "overridden"]


def test_store_feedback_survives_reopening(backend: Backend) -> None:
    first = backend.open()
    first.record_feedback("svc", [OVERRIDDEN], FIXED_NOW)
    first.record_evaluation(FIXED_NOW, "hook-1", "svc", [], ["card-1"], [("card-1", "rule-a", "1.0.0")])
    first.close()
    second = backend.open()
    (item,) = second.list_feedback("svc")
    assert item["overrideReason"]["userComment"] == "discussed in clinic"
    assert second.rule_of_card("card-1") == ("rule-a", "1.0.0")
    assert second.record_feedback("svc", [OVERRIDDEN], FIXED_NOW) == 0


def test_store_audit_rows_and_rule_of_card(backend: Backend) -> None:
    store = backend.open()
    fired = [{"ruleId": "mri-urgency", "ruleVersion": "1.0.0", "outcome": 2}]
    store.record_evaluation(
        FIXED_NOW,
        "hook-1",
        "svc",
        fired,
        ["card-1", "card-2"],
        [("card-1", "mri-urgency", "1.0.0"), ("card-2", "sins", "2.0.0")],
    )
    store.record_evaluation(FIXED_NOW, "hook-2", "svc", [], [])
    assert store.list_evaluations("hook-1") == [
        {
            "evaluatedAt": FIXED_NOW.isoformat(),
            "hookInstance": "hook-1",
            "serviceId": "svc",
            "fired": fired,
            "cardUuids": ["card-1", "card-2"],
            "client": {"iss": "", "tenant": None},
        }
    ]
    assert [row["hookInstance"] for row in store.list_evaluations()] == ["hook-1", "hook-2"]
    assert store.rule_of_card("card-2") == ("sins", "2.0.0")
    assert store.rule_of_card("never-returned") is None
    # A card row is written once: a later evaluation naming the same uuid (another client reusing a
    # hookInstance) neither changes its rule version nor rebinds it to the other client.
    other = ClientId("https://other-ehr.example.org", "t-2")
    store.record_evaluation(FIXED_NOW, "hook-1", "svc", [], ["card-2"], [("card-2", "sins", "2.1.0")], client=other)
    assert store.rule_of_card("card-2") == ("sins", "2.0.0")
    assert store.cards_issued_to(["card-1", "card-2", "nope"], DEVELOPMENT_CLIENT, "svc") == {"card-1", "card-2"}
    assert store.cards_issued_to(["card-1", "card-2"], other, "svc") == set()
    assert store.cards_issued_to(["card-1", "card-2"], DEVELOPMENT_CLIENT, "another-svc") == set()  # other service
    first, second = store.list_evaluations("hook-1")  # both audit rows kept, each with its own client
    assert (first["client"], second["client"]) == ({"iss": "", "tenant": None}, {"iss": other.iss, "tenant": "t-2"})


def _memory_card_row(card_uuid: str, rule_id: str) -> tuple[Any, ...]:
    return (card_uuid, rule_id, "patient-key", "user-key", "identity-key", "info", None, FIXED_NOW.isoformat())


def test_store_audit_and_memory_rows_are_one_transaction(backend: Backend) -> None:
    """The audit row, its card rows and the feedback memory's rows of a hook call: all or none."""
    store = backend.open()
    memory = {
        "card": [
            _memory_card_row("card-1", "mri-urgency"),
            _memory_card_row("card-1", "mdt-consultation"),
            _memory_card_row("card-1", "mri-urgency"),  # a repeat within the call is skipped, not an error
        ],
        "hidden": [(FIXED_NOW.isoformat(), "hook-1", 7, "sins-referral")],
    }
    store.record_evaluation(
        FIXED_NOW, "hook-1", "svc", [], ["card-1"], [("card-1", "mri-urgency", "1.0.0")], memory=memory
    )
    assert [row["hookInstance"] for row in store.list_evaluations()] == ["hook-1"]
    assert [row["rule_id"] for row in store.memory_read("cards", ("card-1",))] == ["mdt-consultation", "mri-urgency"]
    assert [(row["suppression_id"], row["rule_id"]) for row in store.memory_read("hidden")] == [(7, "sins-referral")]

    # A memory row the database refuses (here: NULL in a NOT NULL column) undoes the call's record.
    broken = {"card": [_memory_card_row("card-2", "sins"), (*_memory_card_row("card-2", "x")[:-1], None)]}
    with pytest.raises(StoreError):
        store.record_evaluation(
            FIXED_NOW, "hook-2", "svc", [], ["card-2"], [("card-2", "sins", "2.0.0")], memory=broken
        )
    assert store.list_evaluations("hook-2") == []
    assert store.rule_of_card("card-2") is None
    assert store.memory_read("cards", ("card-2",)) == []
    # ...and the store goes on working (the failed transaction was rolled back, not left open).
    store.record_evaluation(FIXED_NOW, "hook-3", "svc", [], [], memory={"card": [_memory_card_row("card-3", "a")]})
    assert [row["hookInstance"] for row in store.list_evaluations()] == ["hook-1", "hook-3"]
    assert len(store.memory_read("cards", ("card-3",))) == 1


def test_store_first_seen_keeps_the_first_time(backend: Backend) -> None:
    store = backend.open()
    later = FIXED_NOW + timedelta(hours=5)
    assert store.first_seen(["a", "b"], FIXED_NOW) == {"a": FIXED_NOW, "b": FIXED_NOW}
    assert store.first_seen(["a", "b"], later) == {"a": FIXED_NOW, "b": FIXED_NOW}  # known: read only
    assert store.first_seen(["a", "c", "c"], later) == {"a": FIXED_NOW, "c": later}  # one new key
    assert store.first_seen([], later) == {}
    assert sorted(backend.execute("SELECT resource_key FROM condition_first_seen")) == [("a",), ("b",), ("c",)]


def test_postgres_multi_row_inserts_chunk_and_keep_the_statement_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    from cds_hooks import store_postgres

    monkeypatch.setattr(store_postgres, "MULTI_ROW_CHUNK", 2)
    statement = "INSERT INTO t (a, b) VALUES (%s,%s) ON CONFLICT DO NOTHING"
    chunks = list(store_postgres.multi_row_inserts(statement, [(1, 2), (3, 4), (5, 6)]))
    assert chunks == [
        ("INSERT INTO t (a, b) VALUES (%s,%s),(%s,%s) ON CONFLICT DO NOTHING", [1, 2, 3, 4]),
        ("INSERT INTO t (a, b) VALUES (%s,%s) ON CONFLICT DO NOTHING", [5, 6]),
    ]
    assert list(store_postgres.multi_row_inserts(statement, [])) == []


def test_store_migrates_to_the_current_schema_version(backend: Backend) -> None:
    store = backend.open()
    assert store.ping() is True
    assert store.schema_version() == SCHEMA_VERSION
    assert backend.execute("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]


def test_store_upgrades_a_version_1_database_keeping_its_rows(backend: Backend) -> None:
    for statement in statements(BASE_SCHEMA.replace("{id_column}", backend.id_column)):
        backend.execute(statement)
    backend.execute("INSERT INTO schema_version (version) VALUES (1)")
    backend.execute(
        "INSERT INTO feedback (service_id, card_uuid, outcome, outcome_timestamp, received_at) "
        "VALUES ('svc', 'old-card', 'accepted', '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z')"
    )
    store = backend.open()
    assert [f["card"] for f in store.list_feedback()] == ["old-card"]
    assert store.schema_version() == SCHEMA_VERSION
    store.record_evaluation(FIXED_NOW, "hook-1", "svc", [], ["card-1"], [("card-1", "rule-a", "1.0.0")])
    assert store.rule_of_card("card-1") == ("rule-a", "1.0.0")  # the version-2 card table exists
    # New rows get ids after the old one (the identity/rowid sequence survived the migration).
    assert store.record_feedback("svc", [ACCEPTED], FIXED_NOW) == 1
    assert [f["card"] for f in store.list_feedback()] == ["old-card", ACCEPTED["card"]]


def test_store_refuses_a_database_newer_than_the_code(backend: Backend) -> None:
    backend.open().ping()
    backend.execute(f"UPDATE schema_version SET version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaVersionError, match="newer than this code"):
        backend.open().ping()


def test_store_concurrent_writers_lose_nothing(backend: Backend) -> None:
    store = backend.open()

    def write(n: int) -> None:
        for i in range(15):
            store.record_feedback(
                "svc", [{**ACCEPTED, "card": f"card-{n}-{i}"}, {**ACCEPTED, "card": "shared"}], FIXED_NOW
            )
            store.record_evaluation(
                FIXED_NOW, f"hook-{n}-{i}", "svc", [], [f"card-{n}-{i}"], [(f"card-{n}-{i}", "rule-a", "1.0.0")]
            )

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.list_feedback()) == 6 * 15 + 1  # "shared" once: idempotent under races too
    assert len(store.list_evaluations()) == 6 * 15


def test_open_store_chooses_postgres_by_database_url(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(open_store(Settings(database_path=tmp_path / "x.sqlite3")), SqliteStore)
    from cds_hooks.store_postgres import PostgresStore

    store = open_store(Settings(database_url="postgresql://user:secret@127.0.0.1:1/db"))
    assert isinstance(store, PostgresStore)
    assert "secret" not in repr(store)
    assert list(tmp_path.iterdir()) == []  # neither store connects before first use


def test_postgres_store_unreachable_raises_store_error_quickly() -> None:
    import time

    from cds_hooks.store_postgres import PostgresStore
    from tests.service_fixtures import closed_port

    store = PostgresStore(f"postgresql://spinecds:secret@127.0.0.1:{closed_port()}/db", timeout=1.0)
    started = time.monotonic()
    with pytest.raises(StoreError) as raised:
        store.record_feedback("svc", [ACCEPTED], FIXED_NOW)
    assert time.monotonic() - started < 5
    assert "secret" not in str(raised.value) and "127.0.0.1" not in str(raised.value)
    store.close()


def test_service_feedback_goes_to_postgres(postgres_server: PostgresServer) -> None:
    from fastapi.testclient import TestClient

    from cds_hooks.app import create_app
    from cds_hooks.auth_settings import AuthSettings
    from cds_hooks.store_postgres import PostgresStore

    url = postgres_server.create_database("service_feedback")
    app = create_app(Settings(database_url=url), auth_settings=AuthSettings(auth_enabled=False))
    assert isinstance(app.state.store, PostgresStore)
    # Feedback is accepted only on a card the service returned: record one as an evaluation would
    # (of the service the feedback goes to: cards are bound to the service that issued them).
    app.state.store.record_evaluation(
        FIXED_NOW, "hook-1", "spinecds-patient-view", [], [ACCEPTED["card"]], [(ACCEPTED["card"], "r", "1")]
    )
    with TestClient(app) as client:
        response = client.post("/cds-services/spinecds-patient-view/feedback", json={"feedback": [ACCEPTED]})
        assert response.status_code == 200
        assert client.get("/ready").json()["checks"]["database"] == "ok"
        other = {**ACCEPTED, "card": "never-returned"}
        assert (
            client.post("/cds-services/spinecds-patient-view/feedback", json={"feedback": [other]}).status_code == 404
        )
    reopened = PostgresStore(url)
    assert [f["card"] for f in reopened.list_feedback("spinecds-patient-view")] == [ACCEPTED["card"]]
    reopened.close()


def test_missing_postgres_binaries_are_reported_not_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.postgres_server as postgres

    monkeypatch.setattr(postgres, "find_bin_dir", lambda: None)
    with pytest.raises(LookupError, match="install Debian package postgresql"):
        postgres.start_postgres()


def test_sqlite_store_keeps_feedback_on_disk_and_switches_synchronous_only_when_needed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Feedback and suppressions are written with synchronous=FULL, audit rows with NORMAL (WAL), and
    the PRAGMA runs only when the level changes, not before every write."""
    store = SqliteStore(tmp_path / "store.sqlite3")
    connection = store._connection()
    statements_run: list[str] = []
    connection.set_trace_callback(statements_run.append)

    def level_of(write: Callable[[], Any]) -> str:
        statements_run.clear()
        write()
        (level,) = connection.execute("PRAGMA synchronous").fetchone()
        return {1: "NORMAL", 2: "FULL"}[level]

    def pragmas() -> int:
        return sum(statement.startswith("PRAGMA synchronous=") for statement in statements_run)

    assert level_of(lambda: store.record_evaluation(FIXED_NOW, "hook-1", "svc", [], [])) == "NORMAL"
    assert pragmas() == 1
    assert level_of(lambda: store.record_evaluation(FIXED_NOW, "hook-2", "svc", [], [])) == "NORMAL"
    assert pragmas() == 0
    assert level_of(lambda: store.record_feedback("svc", [ACCEPTED], FIXED_NOW)) == "FULL"
    assert level_of(lambda: store.memory_write("card", [])) == "NORMAL"
    assert level_of(lambda: store.memory_write("suppression", [])) == "FULL"
    assert level_of(lambda: store.memory_write("suppression", [])) == "FULL" and pragmas() == 0
    suppression = {"suppression": [("p", "u", "rule", "identity", "card-1", "info", "t0", "t1", None)]}
    assert level_of(lambda: store.record_evaluation(FIXED_NOW, "hook-3", "svc", [], [], memory=suppression)) == "FULL"
    store.close()
