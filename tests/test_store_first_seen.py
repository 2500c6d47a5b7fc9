"""SqliteStore.first_seen: the first time is kept; a chart seen before is answered with a read only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cds_hooks.store import SqliteStore

T0 = datetime(2026, 11, 30, 8, tzinfo=UTC)


def test_first_time_is_kept_and_a_known_chart_needs_no_write(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = SqliteStore(tmp_path / "s.sqlite3")
    assert store.first_seen(["a", "b"], T0) == {"a": T0, "b": T0}
    connection = store._connection()
    writes = connection.total_changes
    later = T0 + timedelta(hours=5)
    assert store.first_seen(["a", "b"], later) == {"a": T0, "b": T0}
    assert connection.total_changes == writes, "every key known: read only"
    # One new key: written with the new time, the old ones keep theirs.
    assert store.first_seen(["a", "c", "c"], later) == {"a": T0, "c": later}
    assert connection.total_changes == writes + 1
    assert store.first_seen([], later) == {}
