"""What one app instance is made of, and how a request reaches it (FastAPI dependencies).

`create_app` builds one `ServiceParts` and puts it, and the rule engine, on `app.state`; routes get
them through the dependencies below, never through module globals. Tests replace the engine with
`app.dependency_overrides[rules_engine] = ...` (tests/service_fixtures.py's engine_spy).

Every dependency is `async def`: FastAPI runs a plain `def` dependency on the thread pool, a thread
hop per dependency per request (three of them cost ~1 ms a hook call; tests/test_dependencies_inline.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from engine import api as engine_api
from engine.api import EvaluationRequest, EvaluationResult

from .auth import ClientAuthenticator, VerifiedClient
from .auth_settings import AuthSettings
from .evaluation_threads import EvaluationThreads
from .feedback_memory import FeedbackMemory
from .metrics import ServiceMetrics
from .operation_outcome import ApiError
from .services import SERVICES, CdsService
from .settings import Settings
from .store import DEVELOPMENT_CLIENT, ClientId, Store


class RulesEngine:
    """The rule engine as the service uses it. The rules themselves live in engine.api (loaded once
    per process, hot-reloadable); this is the seam routes and tests see."""

    def evaluate(self, request: EvaluationRequest) -> EvaluationResult:
        return engine_api.evaluate(request)

    def rule_versions(self) -> dict[str, str]:
        return engine_api.get_engine().rule_versions

    def is_loaded(self) -> bool:
        return engine_api.is_loaded()


@dataclass(frozen=True)
class ServiceParts:
    settings: Settings
    auth_settings: AuthSettings
    store: Store
    metrics: ServiceMetrics
    memory: FeedbackMemory
    authenticator: ClientAuthenticator
    evaluation: EvaluationThreads


async def service_parts(request: Request) -> ServiceParts:
    parts: ServiceParts = request.app.state.parts
    return parts


async def rules_engine(request: Request) -> RulesEngine:
    engine: RulesEngine = request.app.state.engine
    return engine


async def verified_client(request: Request) -> VerifiedClient | None:
    """CDS Hooks "Trusting CDS Clients": the caller's verified JWT (None with authentication off), else 401."""
    return await (await service_parts(request)).authenticator(request)


def client_id(client: VerifiedClient | None) -> ClientId:
    """The audit trail's name for the caller; the development client when authentication is off."""
    return DEVELOPMENT_CLIENT if client is None else ClientId(client.iss, client.tenant)


def service_named(service_id: str) -> CdsService:
    service = SERVICES.get(service_id)
    if service is None:
        raise ApiError(404, "not-found", f"unknown CDS service '{service_id}'; see GET /cds-services")
    return service


def log_fields(request: Request, **fields: Any) -> None:
    """Fields for the access-log line written by RequestContextMiddleware (ids, counts, timings only)."""
    request.scope.setdefault("state", {}).setdefault("log_fields", {}).update(fields)
