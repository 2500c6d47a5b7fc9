"""Liveness (`GET /health`) and readiness (`GET /ready`) for load balancers and Kubernetes probes.

/health answers as long as the process serves HTTP: it runs no checks, so a slow database never
gets a healthy pod restarted. /ready runs the readiness checks and answers 503 while any fails, so
the load balancer stops sending hook calls to an instance that cannot answer them (rules not yet
loaded, database unreachable) without killing it.

Both are unauthenticated (probes carry no tokens) and return no patient data: only check names,
"ok" and short fixed reasons. Probes call them every few seconds, so every check must be cheap and
fast: read a flag or run one trivial query with a short timeout (well under the probe's 1-2 s
timeout). Never evaluate rules, call the FHIR server or scan tables in a check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from fastapi import APIRouter
from fastapi.responses import JSONResponse

# A check returns True when ready, or False / a short reason ("rules not loaded") when not.
ReadinessCheck = Callable[[], bool | str]

log = logging.getLogger("spinecds.health")

_NO_STORE = {"Cache-Control": "no-store"}


def run_checks(checks: Mapping[str, ReadinessCheck]) -> tuple[bool, dict[str, str]]:
    """Run every check (no short-circuit, so the answer names all problems); never raises."""
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            outcome = check()
        except Exception as error:  # noqa: BLE001 - a failing check means "not ready", never a 500
            # The exception type only: messages can carry connection strings or paths.
            log.warning(
                "readiness check failed with an exception", extra={"check": name, "exception": type(error).__name__}
            )
            results[name] = f"error: {type(error).__name__}"
            continue
        if outcome is True:
            results[name] = "ok"
        elif isinstance(outcome, str) and outcome:
            results[name] = outcome
        else:
            results[name] = "failed"
    return all(result == "ok" for result in results.values()), results


def health_router(version: str, readiness_checks: Mapping[str, ReadinessCheck] | None = None) -> APIRouter:
    """Routes for `GET /health` and `GET /ready` (HEAD too, for load balancers that probe with HEAD)."""
    checks = dict(readiness_checks or {})
    router = APIRouter(tags=["operations"])

    @router.api_route("/health", methods=["GET", "HEAD"], include_in_schema=False)
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": version}, headers=_NO_STORE)

    # A plain `def`: FastAPI runs it in the thread pool, so a check that does I/O (a database ping)
    # never blocks the event loop serving hook calls.
    @router.api_route("/ready", methods=["GET", "HEAD"], include_in_schema=False)
    def ready() -> JSONResponse:
        ok, results = run_checks(checks)
        if ok:
            return JSONResponse({"status": "ready", "checks": results}, headers=_NO_STORE)
        return JSONResponse({"status": "not-ready", "checks": results}, status_code=503, headers=_NO_STORE)

    return router
