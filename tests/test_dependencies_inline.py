"""No request pays a thread hop for a dependency: FastAPI runs a plain `def` dependency (or endpoint)
on the thread pool, which cost ~0.3 ms of CPU each on the hook path (docs/performance.md)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute

from cds_hooks.app import create_app
from cds_hooks.auth_settings import AuthSettings
from cds_hooks.settings import Settings


def _calls(dependant: Any) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def _service_routes(tmp_path: Any) -> list[APIRoute]:
    app = create_app(Settings(database_path=tmp_path / "db.sqlite3"), auth_settings=AuthSettings(auth_enabled=False))
    routes = [r for r in app.routes if isinstance(r, APIRoute) and r.path.startswith("/cds-services")]
    app.state.store.close()
    return routes


def test_the_cds_service_routes_are_all_there(tmp_path: Any) -> None:
    paths = {(route.path, method) for route in _service_routes(tmp_path) for method in route.methods}
    assert {("/cds-services", "GET"), ("/cds-services/{service_id}", "POST")} <= paths
    assert ("/cds-services/{service_id}/feedback", "POST") in paths


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_cds_service_endpoints_and_their_dependencies_run_on_the_event_loop(tmp_path: Any, method: str) -> None:
    for route in _service_routes(tmp_path):
        if method not in route.methods:
            continue
        assert inspect.iscoroutinefunction(route.endpoint), route.path
        for call in _calls(route.dependant):
            assert inspect.iscoroutinefunction(call), f"{route.path}: {call.__qualname__} would run on the thread pool"
