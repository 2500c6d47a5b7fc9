"""/health (liveness) and /ready (readiness) as probes and load balancers see them."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import FastAPI
from fastapi.testclient import TestClient

from cds_hooks.health import health_router


def client(checks: Mapping[str, Callable[[], bool | str]] | None = None, version: str = "0.1.0") -> TestClient:
    app = FastAPI()
    app.include_router(health_router(version, checks or {}))
    return TestClient(app)


def broken_database() -> bool:
    raise ConnectionError("could not connect to postgresql://spinecds:secret@db/spinecds")


def test_health_reports_status_and_version_only() -> None:
    response = client(version="1.2.3").get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": "1.2.3"}
    assert response.headers["cache-control"] == "no-store"


def test_health_runs_no_readiness_checks() -> None:
    calls: list[str] = []

    def check() -> bool:
        calls.append("ran")
        return False

    assert client({"rules": check}).get("/health").status_code == 200
    assert calls == []


def test_ready_when_every_check_passes() -> None:
    response = client({"rules": lambda: True, "database": lambda: True}).get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"rules": "ok", "database": "ok"}}


def test_ready_without_checks_is_ready() -> None:
    response = client().get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {}}


def test_not_ready_names_every_failing_check_with_its_reason() -> None:
    response = client(
        {
            "rules": lambda: "rules not loaded",
            "database": lambda: False,
            "clock": lambda: True,
        }
    ).get("/ready")
    assert response.status_code == 503
    assert response.json() == {
        "status": "not-ready",
        "checks": {"rules": "rules not loaded", "database": "failed", "clock": "ok"},
    }
    assert response.headers["cache-control"] == "no-store"


def test_a_check_that_raises_means_not_ready_and_leaks_no_message() -> None:
    response = client({"database": broken_database, "rules": lambda: True}).get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "error: ConnectionError", "rules": "ok"}
    assert "secret" not in response.text


def test_readiness_follows_the_check_on_every_call() -> None:
    state = {"loaded": False}
    probe = client({"rules": lambda: True if state["loaded"] else "rules not loaded"})
    assert probe.get("/ready").status_code == 503
    state["loaded"] = True
    assert probe.get("/ready").status_code == 200


def test_head_probes_are_answered() -> None:
    probe = client({"rules": lambda: "rules not loaded"})
    assert probe.head("/health").status_code == 200
    assert probe.head("/ready").status_code == 503


def test_probes_stay_out_of_the_openapi_schema() -> None:
    schema = client().get("/openapi.json").json()
    assert "/health" not in schema["paths"] and "/ready" not in schema["paths"]
