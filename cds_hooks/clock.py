"""The service's clock, a FastAPI dependency so tests pin `now` with `app.dependency_overrides`."""

from datetime import UTC, datetime


def get_now() -> datetime:
    """Current time, timezone-aware UTC (the engine never reads the clock itself)."""
    return datetime.now(UTC)
