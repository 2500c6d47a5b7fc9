"""Durable storage of card feedback and the evaluation audit trail.

`Store` is the interface (a PostgreSQL implementation can follow it later); `SqliteStore` is the one
we ship: WAL mode, one connection per thread, a schema version table. Every write is committed
before the HTTP answer, so a restart loses nothing that was acknowledged. Nothing here stores FHIR
resources or patient identifiers: feedback is keyed by card uuid, the audit by hookInstance.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    service_id TEXT NOT NULL,
    card_uuid TEXT NOT NULL,
    outcome TEXT NOT NULL,
    outcome_timestamp TEXT NOT NULL,
    accepted_suggestions TEXT,          -- JSON list of suggestion uuids
    override_reason TEXT,               -- JSON Coding
    user_comment TEXT,
    received_at TEXT NOT NULL,
    UNIQUE (card_uuid, outcome)
);
CREATE TABLE IF NOT EXISTS evaluation (
    id INTEGER PRIMARY KEY,
    evaluated_at TEXT NOT NULL,
    hook_instance TEXT NOT NULL,
    service_id TEXT NOT NULL,
    fired TEXT NOT NULL,                -- JSON list of {ruleId, ruleVersion, outcome}
    card_uuids TEXT NOT NULL            -- JSON list
);
CREATE INDEX IF NOT EXISTS evaluation_hook_instance ON evaluation (hook_instance);
"""

# Versioned migrations: MIGRATIONS[n] takes a database from version n to n + 1. Never edit a shipped
# migration; add the next one.
MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE IF NOT EXISTS card (
    card_uuid TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    rule_version TEXT NOT NULL,
    hook_instance TEXT NOT NULL,
    evaluated_at TEXT NOT NULL
)
""",
}


def _json_or_none(value: list[Any]) -> str | None:
    return json.dumps(value) if value else None


class Store(Protocol):
    def record_feedback(self, service_id: str, items: list[dict[str, Any]], received_at: datetime) -> int:
        """Store feedback items (spec shape); returns how many were new. Repeats are ignored."""

    def list_feedback(self, service_id: str | None = None) -> list[dict[str, Any]]: ...

    def record_evaluation(self, evaluated_at: datetime, hook_instance: str, service_id: str,
                          fired: list[dict[str, Any]], card_uuids: list[str],
                          card_rules: list[tuple[str, str, str]] = ()) -> None: ...

    def rule_of_card(self, card_uuid: str) -> tuple[str, str] | None:
        """(rule id, rule version) of a card this service returned, for feedback and audits."""

    def ping(self) -> bool: ...

    def list_evaluations(self, hook_instance: str | None = None) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class SchemaVersionError(RuntimeError):
    pass


class SqliteStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._initialised = False

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=5.0, isolation_level=None,
                                         check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA busy_timeout=5000")
            connection.execute("PRAGMA synchronous=FULL")  # acknowledged means on disk
            with self._lock:
                self._connections.append(connection)
                if not self._initialised:
                    # WAL is a property of the file: switch once, under the lock. Switching from many
                    # threads at once fails with "database is locked" regardless of busy_timeout.
                    connection.execute("PRAGMA journal_mode=WAL")
                    self._migrate(connection)
                    self._initialised = True
            self._local.connection = connection
        return connection

    def _migrate(self, connection: sqlite3.Connection) -> None:
        connection.execute("BEGIN IMMEDIATE")
        try:
            # Statement by statement: executescript() would commit the open transaction.
            for statement in filter(str.strip, _SCHEMA.split(";")):
                connection.execute(statement)
            row = connection.execute("SELECT version FROM schema_version").fetchone()
            version = 1 if row is None else row["version"]
            if row is None:
                connection.execute("INSERT INTO schema_version (version) VALUES (1)")
            if version > SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"{self.path}: schema version {version} is newer than this code ({SCHEMA_VERSION})")
            while version < SCHEMA_VERSION:
                for statement in filter(str.strip, MIGRATIONS[version].split(";")):
                    connection.execute(statement)
                version += 1
                connection.execute("UPDATE schema_version SET version = ?", (version,))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def record_feedback(self, service_id: str, items: list[dict[str, Any]], received_at: datetime) -> int:
        connection = self._connection()
        stored = 0
        connection.execute("BEGIN IMMEDIATE")
        try:
            for item in items:
                override = item.get("overrideReason") or {}
                cursor = connection.execute(
                    "INSERT OR IGNORE INTO feedback (service_id, card_uuid, outcome, outcome_timestamp, "
                    "accepted_suggestions, override_reason, user_comment, received_at) VALUES (?,?,?,?,?,?,?,?)",
                    (
                        service_id, item["card"], item["outcome"], item["outcomeTimestamp"],
                        _json_or_none([s["id"] for s in item.get("acceptedSuggestions") or []]),
                        json.dumps(override["reason"]) if override.get("reason") else None,
                        override.get("userComment"),
                        received_at.isoformat(),
                    ),
                )
                stored += cursor.rowcount
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return stored

    def list_feedback(self, service_id: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM feedback" + (" WHERE service_id = ?" if service_id else "") + " ORDER BY id"
        rows = self._connection().execute(query, (service_id,) if service_id else ()).fetchall()
        result = []
        for row in rows:
            item: dict[str, Any] = {
                "serviceId": row["service_id"], "card": row["card_uuid"], "outcome": row["outcome"],
                "outcomeTimestamp": row["outcome_timestamp"], "receivedAt": row["received_at"],
            }
            accepted = json.loads(row["accepted_suggestions"] or "[]")
            if accepted:
                item["acceptedSuggestions"] = [{"id": uuid} for uuid in accepted]
            override: dict[str, Any] = {}
            if row["override_reason"]:
                override["reason"] = json.loads(row["override_reason"])
            if row["user_comment"]:
                override["userComment"] = row["user_comment"]
            if override:
                item["overrideReason"] = override
            result.append(item)
        return result

    def record_evaluation(self, evaluated_at: datetime, hook_instance: str, service_id: str,
                          fired: list[dict[str, Any]], card_uuids: list[str],
                          card_rules: list[tuple[str, str, str]] = ()) -> None:
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute(
                "INSERT INTO evaluation (evaluated_at, hook_instance, service_id, fired, card_uuids) "
                "VALUES (?,?,?,?,?)",
                (evaluated_at.isoformat(), hook_instance, service_id, json.dumps(fired), json.dumps(card_uuids)),
            )
            connection.executemany(
                "INSERT OR REPLACE INTO card (card_uuid, rule_id, rule_version, hook_instance, evaluated_at) "
                "VALUES (?,?,?,?,?)",
                [(uuid, rule_id, version, hook_instance, evaluated_at.isoformat()) for uuid, rule_id, version in card_rules],
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def rule_of_card(self, card_uuid: str) -> tuple[str, str] | None:
        row = self._connection().execute(
            "SELECT rule_id, rule_version FROM card WHERE card_uuid = ?", (card_uuid,)).fetchone()
        return (row["rule_id"], row["rule_version"]) if row else None

    def ping(self) -> bool:
        """Readiness: the database answers a trivial query."""
        self._connection().execute("SELECT 1").fetchone()
        return True

    def list_evaluations(self, hook_instance: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM evaluation" + (" WHERE hook_instance = ?" if hook_instance else "") + " ORDER BY id"
        rows = self._connection().execute(query, (hook_instance,) if hook_instance else ()).fetchall()
        return [
            {"evaluatedAt": r["evaluated_at"], "hookInstance": r["hook_instance"], "serviceId": r["service_id"],
             "fired": json.loads(r["fired"]), "cardUuids": json.loads(r["card_uuids"])}
            for r in rows
        ]

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()
