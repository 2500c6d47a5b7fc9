"""The FastAPI app, assembled from parts: `create_app` builds the service's parts (settings, store,
authenticator, metrics, feedback memory, the rule engine), puts them on `app.state` and mounts one
router per concern (cds_hooks/routes/, health, metrics), the middleware and the error handlers.

Run: `python -m cds_hooks` (see cds_hooks/serving.py). Tests build their own instance with
`create_app(Settings(...))` and replace the engine through `app.dependency_overrides[rules_engine]`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from engine import api as engine_api
from engine.model_cache import MODEL_CACHE
from engine.reloader import RulesWatcher, install_sighup_reload

from . import pseudonyms
from .auth import ClientAuthenticator
from .auth_settings import AuthSettings
from .error_handlers import install_error_handlers
from .evaluation_threads import EvaluationThreads, threads_for
from .feedback_memory import FeedbackMemory
from .health import health_router
from .heap import settle_heap
from .logging_json import configure_logging
from .metrics import ServiceMetrics, metrics_router
from .middleware import BodySizeLimitMiddleware, RequestContextMiddleware, SecurityHeadersMiddleware
from .openapi_doc import install_component_schemas
from .proxy_headers import TrustedProxyHeadersMiddleware
from .routes import discovery, feedback, hooks, sheets
from .routes.feedback import FEEDBACK_RETRY_AFTER_SECONDS
from .service_parts import RulesEngine, ServiceParts
from .services import SERVICES
from .settings import Settings
from .smart_app import install_smart_app
from .store import SqliteStore, Store, open_store
from .version import SERVICE_VERSION

log = logging.getLogger("spinecds.service")

TRY_PAGE_MODULE = "sandbox.try_page"

__all__ = ["FEEDBACK_RETRY_AFTER_SECONDS", "app", "create_app"]  # noqa: F822 - `app` comes from __getattr__


def create_app(
    settings: Settings | None = None, store: Store | None = None, auth_settings: AuthSettings | None = None
) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    engine_api.use_rules_dir(settings.rules_dir)
    MODEL_CACHE.resize(settings.model_cache_size)
    parts = build_parts(settings, store, auth_settings or AuthSettings())
    engine = RulesEngine()
    # No /docs or /redoc (Swagger UI and ReDoc load their scripts from a CDN); the OpenAPI document
    # itself only when SPINECDS_API_DOCS asks for it.
    app = FastAPI(
        title="spinecds CDS Hooks service",
        version=SERVICE_VERSION,
        lifespan=lifespan(parts),
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.api_docs else None,
    )
    app.state.parts, app.state.engine = parts, engine
    app.state.settings, app.state.store, app.state.metrics = settings, parts.store, parts.metrics
    # Operations endpoints: unauthenticated (probes and scrapers carry no EHR token), no patient data.
    app.include_router(metrics_router(parts.metrics))
    checks = {"rules": lambda: engine.is_loaded() or "rules not loaded", "database": parts.store.ping}
    app.include_router(health_router(app.version, checks))
    for routes in (sheets, discovery, hooks, feedback):
        app.include_router(routes.router)
    if settings.try_page:
        _install_try_page(app)
    if settings.smart_app:
        install_smart_app(app, settings, parts.auth_settings)
    install_middleware(app, settings, parts.auth_settings.trust_proxy_headers)
    install_error_handlers(app)
    install_component_schemas(app, {"service_id": list(SERVICES), "sheet": list(sheets.PATIENT_SHEETS)})
    return app


class PseudonymKeyError(RuntimeError):
    """Authentication is on but SPINECDS_PSEUDONYM_KEY is missing or too short."""


def build_parts(settings: Settings, store: Store | None, auth_settings: AuthSettings) -> ServiceParts:
    pseudonyms.configure(settings.pseudonym_key.get_secret_value() if settings.pseudonym_key else None)
    problem = pseudonyms.production_key_problem() if auth_settings.auth_enabled else None
    if problem:
        # Hashes of guessable ids under a known or short key can be reversed: no real patient may
        # get one. Stop here rather than run with pseudonyms that are not.
        message = (
            f"{problem}: with authentication on, the service needs a secret of at least "
            f"{pseudonyms.MIN_KEY_BYTES} bytes for the keyed hashes of patient and user ids "
            "(e.g. the output of `python -c 'import secrets; print(secrets.token_urlsafe(48))'`, "
            "kept in a secret store); refusing to start. See docs/deployment.md."
        )
        log.critical(message)
        raise PseudonymKeyError(message)
    store = store or open_store(settings)
    return ServiceParts(
        settings=settings,
        auth_settings=auth_settings,
        store=store,
        metrics=ServiceMetrics(),
        memory=FeedbackMemory(store, settings.feedback_memory_days),
        # CDS Hooks 2.0 "Trusting CDS Clients": discovery, hooks and feedback require the EHR's JWT.
        # Built once per app: it owns the key-set cache and the jti replay cache.
        authenticator=ClientAuthenticator(auth_settings),
        evaluation=EvaluationThreads(threads_for(settings.evaluation_threads, not isinstance(store, SqliteStore))),
    )


def lifespan(parts: ServiceParts) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def run(_: FastAPI) -> AsyncIterator[None]:
        # Rules are loaded, compiled and proven on their own cases before the first request: a broken
        # rule file stops start-up here with file:line messages instead of failing patients later.
        try:
            engine = await run_in_threadpool(engine_api.get_engine)
        except engine_api.RuleLoadError as error:
            for line in error.errors:
                log.critical("rules cannot be served: %s", line)
            raise
        log.info("rules loaded", extra={"rules": engine.rule_versions})
        settle_heap()  # after the engine is built: the collector stops re-scanning start-up objects

        def on_reload(report: engine_api.ReloadReport) -> None:
            parts.metrics.count_reload(report.ok)
            if report.ok:
                settle_heap()  # lets the collector free the replaced engine, then freezes the new one

        watcher = None
        if parts.settings.rules_watch:
            interval = parts.settings.rules_watch_interval_seconds
            watcher = RulesWatcher(engine.rules_dir, interval=interval, on_reload=on_reload).start()
        install_sighup_reload(on_reload)
        try:
            yield
        finally:
            if watcher is not None:
                watcher.stop()
            parts.store.close()

    return run


def install_middleware(app: FastAPI, settings: Settings, trust_proxy_headers: bool) -> None:
    # Added innermost first: RequestContext is outermost so even a 413 or a 500 carries X-Request-ID.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.allowed_origins:  # no CORS at all unless origins are configured
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID", "X-SpineCDS-Trace"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware)
    if trust_proxy_headers:  # outermost: forwarded headers only from SPINECDS_FORWARDED_ALLOW_IPS
        app.add_middleware(TrustedProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)


def _install_try_page(app: FastAPI) -> None:
    """The try-it page belongs to the sandbox kit, which the production image leaves out: it is
    found by name, so the service does not depend on it."""
    try:
        module = importlib.import_module(TRY_PAGE_MODULE)
    except ModuleNotFoundError as error:
        raise RuntimeError("SPINECDS_TRY_PAGE=true, but this build has no sandbox kit (sandbox/)") from error
    module.install_try_page(app)


def __getattr__(name: str) -> FastAPI:
    """`cds_hooks.app:app`, built on first use: uvicorn and gunicorn look it up by name, so a server
    still fails at start-up on a bad configuration (e.g. authentication on without a pseudonym key),
    while tools and tests that import `create_app` do not build an app from the environment."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    built = create_app()
    globals()["app"] = built
    return built
