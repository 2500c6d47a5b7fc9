"""Durable storage of card feedback and the evaluation audit trail.

`Store` is the interface. `SqliteStore` (the default: WAL mode, one connection per thread) and
`PostgresStore` (cds_hooks/store_postgres.py, chosen by SPINECDS_DATABASE_URL; see `open_store`)
share the schema and the versioned migrations below. Every write is committed before the HTTP
answer, so a restart loses nothing that was acknowledged. A database that cannot be reached or
written raises `StoreError`; the service answers 503 for it rather than pretending success. Nothing here stores FHIR
resources or patient identifiers: feedback is keyed by card uuid, the audit by hookInstance.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

if TYPE_CHECKING:
    from .settings import Settings

SCHEMA_VERSION = 5
P = ParamSpec("P")
R = TypeVar("R")

# Version 1, written in the SQL both SQLite and PostgreSQL accept; only the auto-numbered key
# differs ({id_column}). Existing SQLite files keep their tables (IF NOT EXISTS).
BASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
    id {id_column},
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
    id {id_column},
    evaluated_at TEXT NOT NULL,
    hook_instance TEXT NOT NULL,
    service_id TEXT NOT NULL,
    fired TEXT NOT NULL,                -- JSON list of {ruleId, ruleVersion, outcome}
    card_uuids TEXT NOT NULL            -- JSON list
);
CREATE INDEX IF NOT EXISTS evaluation_hook_instance ON evaluation (hook_instance);
"""

SQLITE_ID_COLUMN = "INTEGER PRIMARY KEY"
_SCHEMA = BASE_SCHEMA.replace("{id_column}", SQLITE_ID_COLUMN)

# Versioned migrations: MIGRATIONS[n] takes a database from version n to n + 1. Never edit a shipped
# migration; add the next one, in SQL both dialects accept (or give it a dialect-specific variant).
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
    # v3: the client (JWT iss and tenant) each evaluation answered and each card was issued to, so
    # feedback is accepted only from that client. Rows from before v3 have NULL: no client can claim
    # them. '' is the development client (authentication off).
    2: """
ALTER TABLE evaluation ADD COLUMN client_iss TEXT;
ALTER TABLE evaluation ADD COLUMN client_tenant TEXT;
ALTER TABLE card ADD COLUMN client_iss TEXT;
ALTER TABLE card ADD COLUMN client_tenant TEXT
""",
    # Version 4: when the service first saw a Condition that has neither recordedDate nor onset, so
    # its presentation time (the start of every MRI deadline) does not restart at each chart view.
    # Keyed by a keyed hash (cds_hooks/pseudonyms.py) of the FHIR server, patient and Condition ids.
    3: """
CREATE TABLE IF NOT EXISTS condition_first_seen (
    resource_key TEXT PRIMARY KEY,
    first_seen TEXT NOT NULL
)
""",
    # Feedback memory (cds_hooks/feedback_memory.py). Patients, users and resource ids only as keyed
    # hashes (cds_hooks/pseudonyms.py). memory_card: what each returned card (and each rule merged
    # into it) was; memory_suppression: a card set aside by a user, until when and why;
    # memory_hidden: every time a suppression held a card back (the audit trail).
    4: """
CREATE TABLE IF NOT EXISTS memory_card (
    card_uuid TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    patient_key TEXT NOT NULL,
    user_key TEXT NOT NULL,
    identity_key TEXT NOT NULL,
    indicator TEXT NOT NULL,
    due_by TEXT,
    evaluated_at TEXT NOT NULL,
    PRIMARY KEY (card_uuid, rule_id)
);
CREATE TABLE IF NOT EXISTS memory_suppression (
    id {id_column},
    patient_key TEXT NOT NULL,
    user_key TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    identity_key TEXT NOT NULL,
    card_uuid TEXT NOT NULL,
    indicator TEXT NOT NULL,
    created_at TEXT NOT NULL,
    hidden_until TEXT NOT NULL,
    reason TEXT,
    UNIQUE (card_uuid, rule_id)
);
CREATE INDEX IF NOT EXISTS memory_suppression_who ON memory_suppression (patient_key, user_key, hidden_until);
CREATE TABLE IF NOT EXISTS memory_hidden (
    id {id_column},
    evaluated_at TEXT NOT NULL,
    hook_instance TEXT NOT NULL,
    suppression_id INTEGER NOT NULL,
    rule_id TEXT NOT NULL
)
""",
}


# Feedback memory's statements, in SQL both dialects accept (`?` becomes `%s` for PostgreSQL).
# The store knows the tables; cds_hooks/feedback_memory.py knows what the rows mean.
MEMORY_WRITES = {
    "card": "INSERT INTO memory_card (card_uuid, rule_id, patient_key, user_key, identity_key, indicator, due_by, "
    "evaluated_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
    "suppression": "INSERT INTO memory_suppression (patient_key, user_key, rule_id, identity_key, card_uuid, "
    "indicator, created_at, hidden_until, reason) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
    "hidden": "INSERT INTO memory_hidden (evaluated_at, hook_instance, suppression_id, rule_id) VALUES (?,?,?,?)",
}
# Memory writes that answer feedback the EHR was told is stored: on disk (synchronous FULL) before
# the answer. The others (what each card was, what was held back) are audit rows, written with the
# evaluation audit's NORMAL (see SqliteStore.record_evaluation).
DURABLE_MEMORY_WRITES = frozenset({"suppression"})
MemoryRows = Mapping[str, Sequence[tuple[Any, ...]]]
MEMORY_READS = {
    "cards": "SELECT * FROM memory_card WHERE card_uuid = ? ORDER BY rule_id",
    "active": "SELECT id, rule_id, identity_key, hidden_until FROM memory_suppression "
    "WHERE patient_key = ? AND user_key = ? AND hidden_until > ? ORDER BY id",
    "suppressions": "SELECT * FROM memory_suppression ORDER BY id",
    "hidden": "SELECT * FROM memory_hidden ORDER BY id",
}


def statements(script: str) -> Iterator[str]:
    """The statements of a schema script, one by one (none of ours has a `;` inside a statement)."""
    return (statement for statement in script.split(";") if statement.strip())


def migrate_schema(
    execute: Callable[..., Any], schema: str, placeholder: str, where: str, id_column: str = "INTEGER PRIMARY KEY"
) -> None:
    """Create the tables and bring schema_version up to SCHEMA_VERSION, inside the caller's transaction.

    Shared by both stores; `placeholder` is the driver's parameter marker (`?` or `%s`)."""
    for statement in statements(schema):
        execute(statement)
    row = execute("SELECT version FROM schema_version").fetchone()
    version = 1 if row is None else row["version"]
    if row is None:
        execute("INSERT INTO schema_version (version) VALUES (1)")
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(f"{where}: schema version {version} is newer than this code ({SCHEMA_VERSION})")
    while version < SCHEMA_VERSION:
        for statement in statements(MIGRATIONS[version].replace("{id_column}", id_column)):
            execute(statement)
        version += 1
        execute(f"UPDATE schema_version SET version = {placeholder}", (version,))


def _json_or_none(value: list[Any]) -> str | None:
    return json.dumps(value) if value else None


def feedback_row(service_id: str, item: dict[str, Any], received_at: datetime) -> tuple[Any, ...]:
    """The feedback table's columns (after `id`) for one spec-shaped feedback item."""
    override = item.get("overrideReason") or {}
    return (
        service_id,
        item["card"],
        item["outcome"],
        item["outcomeTimestamp"],
        _json_or_none([s["id"] for s in item.get("acceptedSuggestions") or []]),
        json.dumps(override["reason"]) if override.get("reason") else None,
        override.get("userComment"),
        received_at.isoformat(),
    )


def feedback_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored feedback row back in spec shape (plus serviceId and receivedAt)."""
    item: dict[str, Any] = {
        "serviceId": row["service_id"],
        "card": row["card_uuid"],
        "outcome": row["outcome"],
        "outcomeTimestamp": row["outcome_timestamp"],
        "receivedAt": row["received_at"],
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
    return item


def evaluation_item(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "evaluatedAt": row["evaluated_at"],
        "hookInstance": row["hook_instance"],
        "serviceId": row["service_id"],
        "fired": json.loads(row["fired"]),
        "cardUuids": json.loads(row["card_uuids"]),
        "client": {"iss": row["client_iss"], "tenant": row["client_tenant"]},
    }


@dataclass(frozen=True)
class ClientId:
    """Who an evaluation answered: the verified JWT `iss` and `tenant` ('' and None with auth off)."""

    iss: str = ""
    tenant: str | None = None


DEVELOPMENT_CLIENT = ClientId()


def card_rows(
    evaluated_at: datetime, hook_instance: str, card_rules: Sequence[tuple[str, str, str]], client: ClientId
) -> list[tuple[str, str, str, str, str, str, str | None]]:
    return [
        (uuid, rule_id, version, hook_instance, evaluated_at.isoformat(), client.iss, client.tenant)
        for uuid, rule_id, version in card_rules
    ]


def _is_client(row: Mapping[str, Any], client: ClientId) -> bool:
    return row["client_iss"] is not None and (row["client_iss"], row["client_tenant"]) == (client.iss, client.tenant)


def issued_to(rows: Iterable[Mapping[str, Any]], client: ClientId) -> set[str]:
    """The card uuids among `rows` (card_uuid, client_iss, client_tenant) issued to `client`."""
    return {row["card_uuid"] for row in rows if _is_client(row, client)}


def returned_by_service(evaluations: Iterable[Mapping[str, Any]], client: ClientId) -> set[str]:
    """The card uuids that evaluations (rows of one service: card_uuids, client_iss, client_tenant)
    returned to `client`: feedback is accepted only at the service that issued the card."""
    return {uuid for row in evaluations if _is_client(row, client) for uuid in json.loads(row["card_uuids"])}


# Card rows are written once: a later evaluation (another client reusing a hookInstance, or a uuid
# collision) never rebinds a card to someone else.
INSERT_CARD = (
    "INSERT INTO card (card_uuid, rule_id, rule_version, hook_instance, evaluated_at, client_iss, client_tenant) "
    "VALUES ({p},{p},{p},{p},{p},{p},{p}) ON CONFLICT (card_uuid) DO NOTHING"
)
INSERT_EVALUATION = (
    "INSERT INTO evaluation (evaluated_at, hook_instance, service_id, fired, card_uuids, client_iss, client_tenant) "
    "VALUES ({p},{p},{p},{p},{p},{p},{p})"
)


def evaluation_row(
    evaluated_at: datetime, hook_instance: str, service_id: str, fired: list[Any], uuids: list[str], client: ClientId
) -> tuple[Any, ...]:
    return (
        evaluated_at.isoformat(),
        hook_instance,
        service_id,
        json.dumps(fired),
        json.dumps(uuids),
        client.iss,
        client.tenant,
    )


class Store(Protocol):
    def record_feedback(self, service_id: str, items: list[dict[str, Any]], received_at: datetime) -> int:
        """Store feedback items (spec shape); returns how many were new. Repeats are ignored."""

    def list_feedback(self, service_id: str | None = None) -> list[dict[str, Any]]: ...

    def record_evaluation(
        self,
        evaluated_at: datetime,
        hook_instance: str,
        service_id: str,
        fired: list[dict[str, Any]],
        card_uuids: list[str],
        card_rules: Sequence[tuple[str, str, str]] = (),
        client: ClientId = DEVELOPMENT_CLIENT,
        memory: MemoryRows | None = None,
    ) -> None:
        """The audit row of one evaluation, its card rows and the feedback memory's rows of the call
        (`memory`: MEMORY_WRITES statement -> rows), all in one committed transaction: all of them
        are stored or none is."""

    def rule_of_card(self, card_uuid: str) -> tuple[str, str] | None:
        """(rule id, rule version) of a card this service returned, for feedback and audits."""

    def cards_issued_to(self, card_uuids: Sequence[str], client: ClientId, service_id: str) -> set[str]:
        """The uuids among `card_uuids` of cards the CDS service `service_id` returned to `client`."""

    def ping(self) -> bool: ...

    def first_seen(self, keys: Sequence[str], now: datetime) -> dict[str, datetime]:
        """For each key (a pseudonym), when the service first saw it: stored now when new."""

    def list_evaluations(self, hook_instance: str | None = None) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...

    def schema_version(self) -> int:
        """The migration version the database is at (SCHEMA_VERSION once opened by this code)."""

    def memory_write(self, statement: str, rows: Sequence[tuple[Any, ...]]) -> int:
        """Run MEMORY_WRITES[statement] for each row in one committed transaction; rows inserted."""

    def memory_read(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Rows of MEMORY_READS[query] as dicts."""


class SchemaVersionError(RuntimeError):
    pass


class StoreError(RuntimeError):
    """The database cannot be reached or written: the operation did not happen. The message names
    the database kind and the driver's error type only (never connection strings or row content)."""


def open_store(settings: Settings) -> Store:
    """PostgreSQL when SPINECDS_DATABASE_URL is set, else the SQLite file at SPINECDS_DATABASE_PATH.
    Neither connects here: the database is opened on first use."""
    if settings.database_url is not None:
        from .store_postgres import PostgresStore  # psycopg is an optional extra: import only when used

        return PostgresStore(settings.database_url.get_secret_value())
    return SqliteStore(settings.database_path)


def _sqlite_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Driver and file-system errors become StoreError (the service's 503); bugs stay what they are."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (sqlite3.Error, OSError) as error:
            raise StoreError(f"SQLite store unavailable: {type(error).__name__}") from error

    return wrapper


class SqliteStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # SQLite has one writer at a time. Threads of this process queue here rather than in
        # SQLite's busy handler, which polls with growing sleeps and under load let a writer starve
        # past busy_timeout (measured: 50 clients lost audit rows and got a feedback 503).
        # busy_timeout still arbitrates between processes.
        self._write_lock = threading.Lock()
        self._initialised = False

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA busy_timeout=5000")
            connection.execute("PRAGMA synchronous=FULL")  # acknowledged means on disk
            self._local.synchronous = "FULL"
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

    def _synchronous(self, connection: sqlite3.Connection, level: str) -> None:
        """Switch this thread's connection to `level` only when it is not there already: a PRAGMA
        per write cost a statement round each (connections are per thread, so is the record)."""
        if self._local.synchronous != level:
            connection.execute(f"PRAGMA synchronous={level}")
            self._local.synchronous = level

    def _migrate(self, connection: sqlite3.Connection) -> None:
        connection.execute("BEGIN IMMEDIATE")
        try:
            # Statement by statement: executescript() would commit the open transaction.
            migrate_schema(connection.execute, _SCHEMA, "?", str(self.path))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    @_sqlite_errors
    def record_feedback(self, service_id: str, items: list[dict[str, Any]], received_at: datetime) -> int:
        connection = self._connection()
        stored = 0
        with self._write_lock:
            self._synchronous(connection, "FULL")  # acknowledged feedback is on disk
            connection.execute("BEGIN IMMEDIATE")
            try:
                for item in items:
                    cursor = connection.execute(
                        "INSERT OR IGNORE INTO feedback (service_id, card_uuid, outcome, outcome_timestamp, "
                        "accepted_suggestions, override_reason, user_comment, received_at) VALUES (?,?,?,?,?,?,?,?)",
                        feedback_row(service_id, item, received_at),
                    )
                    stored += cursor.rowcount
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        return stored

    @_sqlite_errors
    def list_feedback(self, service_id: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM feedback" + (" WHERE service_id = ?" if service_id else "") + " ORDER BY id"
        rows = self._connection().execute(query, (service_id,) if service_id else ()).fetchall()
        return [feedback_item(row) for row in rows]

    @_sqlite_errors
    def record_evaluation(
        self,
        evaluated_at: datetime,
        hook_instance: str,
        service_id: str,
        fired: list[dict[str, Any]],
        card_uuids: list[str],
        card_rules: Sequence[tuple[str, str, str]] = (),
        client: ClientId = DEVELOPMENT_CLIENT,
        memory: MemoryRows | None = None,
    ) -> None:
        connection = self._connection()
        memory = memory or {}
        with self._write_lock:
            # Audit rows: WAL + NORMAL survives any process crash; only a power cut may lose the
            # last moments. Fsyncing every evaluation (FULL) halved throughput for no clinical
            # gain; feedback, which the EHR was told is stored, keeps FULL.
            self._synchronous(connection, "FULL" if DURABLE_MEMORY_WRITES.intersection(memory) else "NORMAL")
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.execute(
                    INSERT_EVALUATION.format(p="?"),
                    evaluation_row(evaluated_at, hook_instance, service_id, fired, card_uuids, client),
                )
                if card_rules:
                    connection.executemany(
                        INSERT_CARD.format(p="?"), card_rows(evaluated_at, hook_instance, list(card_rules), client)
                    )
                for statement, rows in memory.items():
                    connection.executemany(MEMORY_WRITES[statement], rows)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    @_sqlite_errors
    def rule_of_card(self, card_uuid: str) -> tuple[str, str] | None:
        row = (
            self._connection()
            .execute("SELECT rule_id, rule_version FROM card WHERE card_uuid = ?", (card_uuid,))
            .fetchone()
        )
        return (row["rule_id"], row["rule_version"]) if row else None

    @_sqlite_errors
    def cards_issued_to(self, card_uuids: Sequence[str], client: ClientId, service_id: str) -> set[str]:
        wanted = sorted(set(card_uuids))
        if not wanted:
            return set()
        connection = self._connection()
        rows = connection.execute(
            "SELECT card_uuid, client_iss, client_tenant, hook_instance FROM card WHERE card_uuid IN "
            f"({','.join('?' * len(wanted))})",
            wanted,
        ).fetchall()
        instances = sorted({row["hook_instance"] for row in rows})
        if not instances:
            return set()
        evaluations = connection.execute(
            "SELECT card_uuids, client_iss, client_tenant FROM evaluation WHERE service_id = ? AND hook_instance IN "
            f"({','.join('?' * len(instances))})",
            [service_id, *instances],
        ).fetchall()
        return issued_to(rows, client) & returned_by_service(evaluations, client)

    @_sqlite_errors
    def first_seen(self, keys: Sequence[str], now: datetime) -> dict[str, datetime]:
        if not keys:
            return {}
        connection = self._connection()
        select = (
            "SELECT resource_key, first_seen FROM condition_first_seen WHERE resource_key IN "
            f"({','.join('?' * len(keys))})"
        )
        # A chart seen before has every key already and a first-seen time never changes: a read, no
        # write transaction (that cost ~0.5 ms per hook call of a patient with undated Conditions).
        known = connection.execute(select, list(keys)).fetchall()
        if len(known) == len(set(keys)):
            return {row["resource_key"]: datetime.fromisoformat(row["first_seen"]) for row in known}
        with self._write_lock:
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(
                    "INSERT OR IGNORE INTO condition_first_seen (resource_key, first_seen) VALUES (?, ?)",
                    [(key, now.isoformat()) for key in keys],
                )
                rows = connection.execute(select, list(keys)).fetchall()
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        return {row["resource_key"]: datetime.fromisoformat(row["first_seen"]) for row in rows}

    @_sqlite_errors
    def ping(self) -> bool:
        """Readiness: the database answers a trivial query."""
        self._connection().execute("SELECT 1").fetchone()
        return True

    @_sqlite_errors
    def list_evaluations(self, hook_instance: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM evaluation" + (" WHERE hook_instance = ?" if hook_instance else "") + " ORDER BY id"
        rows = self._connection().execute(query, (hook_instance,) if hook_instance else ()).fetchall()
        return [evaluation_item(row) for row in rows]

    @_sqlite_errors
    def schema_version(self) -> int:
        return int(self._connection().execute("SELECT version FROM schema_version").fetchone()["version"])

    @_sqlite_errors
    def memory_write(self, statement: str, rows: Sequence[tuple[Any, ...]]) -> int:
        connection = self._connection()
        inserted = 0
        with self._write_lock:
            # See DURABLE_MEMORY_WRITES: a suppression is on disk before the answer.
            self._synchronous(connection, "FULL" if statement in DURABLE_MEMORY_WRITES else "NORMAL")
            connection.execute("BEGIN IMMEDIATE")
            try:
                inserted = connection.executemany(MEMORY_WRITES[statement], rows).rowcount
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        return inserted

    @_sqlite_errors
    def memory_read(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return [dict(row) for row in self._connection().execute(MEMORY_READS[query], params).fetchall()]

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()
