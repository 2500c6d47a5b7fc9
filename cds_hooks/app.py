"""The FastAPI app: `GET /cds-services`, `POST /cds-services/{id}`, `POST /cds-services/{id}/feedback`.

Run: `uvicorn cds_hooks.app:app` (settings from SPINECDS_* environment variables, see settings.py).
Tests build their own instance with `create_app(Settings(...))`.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine import api as engine_api
from engine.api import EvaluationRequest, EvaluationResult, evaluate
from engine.model_cache import MODEL_CACHE
from engine.reloader import RulesWatcher, install_sighup_reload

from . import prefetch, pseudonyms
from .auth import ClientAuthenticator, VerifiedClient
from .auth_settings import AuthSettings
from .cards import build_cards
from .clock import get_now
from .feedback_memory import FeedbackMemory
from .feedback_models import MAX_FEEDBACK_ITEMS, FeedbackRequest
from .fhir_server_policy import FhirServerPolicy, FhirServerRefused
from .first_seen import first_seen_times
from .health import health_router
from .heap import settle_heap
from .json_clean import strip_empty
from .logging_json import configure_logging
from .metrics import ServiceMetrics, metrics_router
from .middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from .openapi_doc import FEEDBACK_EXAMPLE, HOOK_EXAMPLE, install_component_schemas, request_body
from .operation_outcome import ApiError, outcome_response
from .request_models import CONTEXT_MODELS, HookRequest, OrderSelectContext, OrderSignContext
from .responses import FastJSONResponse
from .services import SERVICES, CdsService
from .settings import Settings
from .smart_app import install_smart_app
from .smart_links import add_smart_links
from .store import DEVELOPMENT_CLIENT, ClientId, Store, StoreError, open_store
from .validation import parse_json_body, validate
from .version import SERVICE_VERSION

log = logging.getLogger("spinecds.service")

TRACE_HEADER = "x-spinecds-trace"
TRY_PAGE_MODULE = "sandbox.try_page"
FEEDBACK_RETRY_AFTER_SECONDS = 30
# Sheets are content, so they live with the rule that links to them; the URL is the stable name.
PATIENT_SHEETS = {
    "alarm-symptoms": Path("alarm-symptom-education") / "patient-sheet.html",
}


def _service(service_id: str) -> CdsService:
    service = SERVICES.get(service_id)
    if service is None:
        raise ApiError(404, "not-found", f"unknown CDS service '{service_id}'; see GET /cds-services")
    return service


def _log_fields(request: Request, **fields: Any) -> None:
    """Fields for the access-log line written by RequestContextMiddleware (ids, counts, timings only)."""
    request.scope.setdefault("state", {}).setdefault("log_fields", {}).update(fields)


def create_app(
    settings: Settings | None = None, store: Store | None = None, auth_settings: AuthSettings | None = None
) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    engine_api.use_rules_dir(settings.rules_dir)
    MODEL_CACHE.resize(settings.model_cache_size)
    store = store or open_store(settings)
    # CDS Hooks 2.0 "Trusting CDS Clients": discovery, hooks and feedback require the EHR's JWT.
    # Built once per app: it owns the key-set cache and the jti replay cache.
    auth_settings = auth_settings or AuthSettings()
    authenticate = ClientAuthenticator(auth_settings)
    metrics = ServiceMetrics()
    pseudonyms.configure(settings.pseudonym_key.get_secret_value() if settings.pseudonym_key else None)
    if auth_settings.auth_enabled and pseudonyms.uses_development_key():
        log.error("SPINECDS_PSEUDONYM_KEY is not set: feedback memory hashes ids with the public development key")
    memory = FeedbackMemory(store, settings.feedback_memory_days)

    def on_reload(report: engine_api.ReloadReport) -> None:
        metrics.count_reload(report.ok)
        if report.ok:
            settle_heap()  # lets the collector free the replaced engine, then freezes the new one

    @asynccontextmanager
    async def lifespan(_: FastAPI):
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
        watcher = None
        if settings.rules_watch:
            watcher = RulesWatcher(
                engine.rules_dir, interval=settings.rules_watch_interval_seconds, on_reload=on_reload
            ).start()
        install_sighup_reload(on_reload)
        try:
            yield
        finally:
            if watcher is not None:
                watcher.stop()
            store.close()

    app = FastAPI(title="spinecds CDS Hooks service", version=SERVICE_VERSION, lifespan=lifespan)
    app.state.settings = settings
    app.state.store = store
    app.state.metrics = metrics
    # Operations endpoints: unauthenticated (probes and scrapers carry no EHR token), no patient data.
    app.include_router(metrics_router(metrics))
    app.include_router(
        health_router(
            app.version,
            {
                "rules": lambda: engine_api.is_loaded() or "rules not loaded",
                "database": store.ping,
            },
        )
    )

    # Added innermost first: RequestContext is outermost so even a 413 or a 500 carries X-Request-ID.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.allowed_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID", "X-SpineCDS-Trace"],
        expose_headers=["X-Request-ID"],
    )
    app.add_middleware(RequestContextMiddleware)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def request_validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default is 422 with its own body; the service speaks 400 + OperationOutcome.
        issues = []
        for item in exc.errors():
            path = ".".join(str(p) for p in item.get("loc", ()))
            issues.append(
                {
                    "severity": "error",
                    "code": "invalid",
                    "diagnostics": f"{path}: {item.get('msg')}",
                    "expression": [path],
                }
            )
        return ApiError(400, "invalid", "invalid request", issues=issues).response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
        response = outcome_response(exc.status_code, code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(Exception)
    async def unexpected_error(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return outcome_response(500, "exception", "internal error; see the service log")

    @app.get("/patient-sheets/{sheet}", response_class=HTMLResponse, include_in_schema=True)
    async def patient_sheet(sheet: str) -> HTMLResponse:
        """Patient information sheets that cards link to (e.g. the Table 2 alarm symptoms)."""
        relative = PATIENT_SHEETS.get(sheet)
        path = (settings.rules_dir or engine_api.RULES_DIR) / relative if relative else None
        if path is None or not path.is_file():
            raise ApiError(404, "not-found", f"unknown patient sheet '{sheet}'")
        return HTMLResponse(path.read_text(encoding="utf-8"))

    if settings.try_page:
        _install_try_page(app)
    if settings.smart_app:
        install_smart_app(app, settings)

    @app.get("/cds-services", dependencies=[Depends(authenticate)])
    async def discovery() -> JSONResponse:
        # CDS Hooks discovery has no version member; ours rides in each service's `extension`
        # (allowed on every spec object) so integrators can see which release and rules answer them.
        rules = engine_api.get_engine().rule_versions
        return JSONResponse(
            strip_empty({"services": [s.discovery_entry(SERVICE_VERSION, rules) for s in SERVICES.values()]})
        )

    @app.post(
        "/cds-services/{service_id}",
        openapi_extra=request_body(HookRequest, HOOK_EXAMPLE),
    )
    async def call_service(
        service_id: str,
        request: Request,
        now=Depends(get_now),
        client: VerifiedClient | None = Depends(authenticate),
    ) -> JSONResponse:
        started = time.perf_counter()
        service = _service(service_id)
        _log_fields(request, serviceId=service.id, hook=service.hook)
        try:
            return await _answer_hook(service, request, now, started, client)
        finally:
            metrics.observe_hook(service.id, service.hook, time.perf_counter() - started)

    def fhir_server_policy(client: VerifiedClient | None) -> FhirServerPolicy:
        if client is None:  # authentication off: development
            return settings.development_fhir_servers()
        trusted = authenticate.settings.client_for(client.iss)
        allowed = trusted.fhir_servers() if trusted is not None else ()
        return FhirServerPolicy(allowed, settings.fhir_allow_http_loopback)

    def check_fhir_server(request: Request, hook_request: HookRequest, client: VerifiedClient | None) -> None:
        """Before any connection: the fhirServer must be one this caller may send us to."""
        if hook_request.fhirServer is None:
            return
        try:
            fhir_server_policy(client).check(hook_request.fhirServer)
        except FhirServerRefused as refused:
            _log_fields(request, fhirServerRefused=refused.reason)
            log.warning("fhirServer refused", extra={"reason": refused.reason})
            raise

    async def _answer_hook(
        service: CdsService, request: Request, now: Any, started: float, client: VerifiedClient | None
    ) -> JSONResponse:
        hook_request = validate(HookRequest, parse_json_body(await request.body(), settings.max_json_depth))
        _log_fields(request, hookInstance=hook_request.hookInstance)
        check_fhir_server(request, hook_request, client)
        if hook_request.hook != service.hook:
            raise ApiError(
                400,
                "invalid",
                f"hook '{hook_request.hook}' does not match service '{service.id}' (hook '{service.hook}')",
                expression=["hook"],
            )
        context = validate(CONTEXT_MODELS[service.hook], hook_request.context, prefix="context")
        _check_prefetched_patient(hook_request, context.patientId)

        try:
            # Fully prefetched (the common case): no FHIR call, so no thread hop either.
            resolved = prefetch.resolve_prefetched(hook_request, service.prefetch)
            if resolved is None:
                resolved = await run_in_threadpool(
                    prefetch.resolve,
                    hook_request,
                    service.prefetch,
                    budget_seconds=settings.fhir_timeout_seconds,
                    connect_timeout=settings.fhir_connect_timeout_seconds,
                    max_pages=settings.fhir_max_pages,
                    on_call=metrics.observe_fhir_call,
                )
        except ApiError as error:
            if error.status == 412:
                metrics.count_precondition_failed(service.id)
                for key in service.prefetch:
                    if key not in (hook_request.prefetch or {}):
                        metrics.count_prefetch(key, "failed")
            raise
        sent = hook_request.prefetch or {}
        for key in service.prefetch:
            if key in resolved.fetched:
                metrics.count_prefetch(key, "fetched")
            else:
                metrics.count_prefetch(key, "null" if sent.get(key) is None else "prefetched")
        fetched_at = time.perf_counter()
        resources = prefetch.flatten(resolved.data)
        want_trace = settings.allow_trace and request.headers.get(TRACE_HEADER, "").lower() == "true"
        evaluation = EvaluationRequest(
            hook=service.hook,
            hook_instance=hook_request.hookInstance,
            patient_id=context.patientId,
            resources=resources,
            now=now,
            draft_orders=context.draft_resources() if isinstance(context, OrderSignContext) else [],
            selections=list(context.selections) if isinstance(context, OrderSelectContext) else [],
            want_trace=want_trace,
            base_url=str(settings.external_base_url or request.base_url),
            timezone=settings.timezone,
            lookback_days=settings.lookback_days,
        )
        base_url = str(settings.external_base_url or request.base_url)

        def decide_and_audit() -> tuple[EvaluationResult, list[dict[str, Any]]]:
            # One worker-thread hop for the blocking work: first-seen times, the engine, card checks
            # and the audit write.
            first_seen = first_seen_times(
                store,
                resources,
                context.patientId,
                str(hook_request.fhirServer) if hook_request.fhirServer else None,
                now,
            )
            recall = memory.recall(context.userId, context.patientId, now)  # cards this user set aside
            result = evaluate(
                dataclasses.replace(evaluation, first_seen=first_seen, hides=recall.hides if recall else None)
            )
            raw_cards = add_smart_links(result.cards, base_url) if settings.smart_app else result.cards
            cards = build_cards(raw_cards, base_url)
            try:
                store.record_evaluation(
                    now,
                    hook_request.hookInstance,
                    service.id,
                    [{k: f[k] for k in ("ruleId", "ruleVersion", "outcome") if k in f} for f in result.fired],
                    [card["uuid"] for card in cards],
                    _card_rules(cards),
                    client=client_id(client),
                )
                if recall:
                    recall.remember(hook_request.hookInstance, result)
            except Exception as error:  # noqa: BLE001 - the clinician still gets the cards
                metrics.count_audit_lost()
                # The audit trail must not take the clinical answer down with it; the loss is logged
                # (and counted) so operations can see it.
                log.error(
                    "audit record lost",
                    extra={"hookInstance": hook_request.hookInstance, "error": type(error).__name__},
                )
            return result, cards

        with metrics.track_evaluation():
            result, cards = await run_in_threadpool(decide_and_audit)
        evaluated_at = time.perf_counter()
        metrics.count_cards(cards)
        body: dict[str, Any] = {"cards": cards}
        # CDS Hooks 2.0 "Extensions": an `extension` member may appear on any object the spec defines,
        # the top-level response included (the HL7 CDSHooksResponse logical model has
        # CDSHooksResponse.extension 0..1 of type CDSHooksExtensions). Card-independent information
        # (data quality, the rule trace) therefore goes to the response's extension.spinecds,
        # namespaced so clients that don't know it can ignore it.
        spinecds_extension: dict[str, Any] = {}
        data_quality = list(resolved.notes) + list(result.data_quality)
        if data_quality:
            spinecds_extension["dataQuality"] = data_quality
        if want_trace and result.trace:
            spinecds_extension["trace"] = result.trace
        if result.hidden:  # feedback memory: say which advice this user set aside, never silently
            spinecds_extension["setAside"] = [item.rule_id for item in result.hidden]
        if spinecds_extension:
            body["extension"] = {"spinecds": strip_empty(spinecds_extension)}

        _log_fields(
            request,
            prefetchKeysSent=len(hook_request.prefetch or {}),
            prefetchKeysFetched=len(resolved.fetched),
            resources=len(resources),
            draftOrders=len(evaluation.draft_orders),
            cards=len(cards),
            rulesFired=len(result.fired),
            dataQualityItems=len(data_quality),
            fetchMs=round((fetched_at - started) * 1000, 1),
            evaluateMs=round((evaluated_at - fetched_at) * 1000, 1),
        )
        # body["cards"] stays even when empty: the spec's "no guidance" answer is {"cards": []}.
        return FastJSONResponse(body)

    @app.post(
        "/cds-services/{service_id}/feedback",
        openapi_extra=request_body(FeedbackRequest, FEEDBACK_EXAMPLE),
    )
    async def feedback(
        service_id: str, request: Request, now=Depends(get_now), client: VerifiedClient | None = Depends(authenticate)
    ) -> Response:
        service = _service(service_id)
        _log_fields(request, serviceId=service.id)
        payload = validate(
            FeedbackRequest, _bounded_feedback(parse_json_body(await request.body(), settings.max_json_depth))
        )
        items = [item.model_dump(mode="json", exclude_none=True) for item in payload.feedback]
        try:
            # Only the client a card was returned to may give feedback on it; anything else (a card of
            # another client, a uuid never issued) is 404 for the whole call and nothing is stored.
            issued = await run_in_threadpool(store.cards_issued_to, [item["card"] for item in items], client_id(client))
            unknown = [index for index, item in enumerate(items) if item["card"] not in issued]
            if unknown:
                _log_fields(request, feedbackItems=len(items), feedbackStored=0, feedbackUnknownCards=len(unknown))
                raise ApiError(
                    404,
                    "not-found",
                    "feedback names a card this service did not return to this client",
                    expression=[f"feedback[{index}].card" for index in unknown],
                )
            stored = await run_in_threadpool(store.record_feedback, service.id, items, now)
        except StoreError as error:
            # Never acknowledge feedback that was not stored: the EHR may retry after Retry-After.
            log.error("feedback not stored: database unavailable", extra={"error": str(error)})
            _log_fields(request, feedbackItems=len(items), feedbackStored=0)
            response = outcome_response(503, "transient", "feedback not stored: database unavailable; retry later")
            response.headers["Retry-After"] = str(FEEDBACK_RETRY_AFTER_SECONDS)
            return response
        for item in items:
            # Label by our own rule id, looked up from the card uuid; never by client-sent strings.
            try:
                known = await run_in_threadpool(store.rule_of_card, item["card"])
            except StoreError:
                known = None  # stored already: a label lookup failing must not turn that into an error
            metrics.count_feedback(known[0] if known else None, item["outcome"])
        if memory.enabled:
            try:
                _log_fields(request, suppressions=await run_in_threadpool(memory.learn, items, now))
            except StoreError as error:  # the feedback itself is stored; only the memory of it is lost
                log.error("feedback memory not updated: database unavailable", extra={"error": str(error)})
        _log_fields(request, feedbackItems=len(items), feedbackStored=stored)
        # The spec asks only for a 200; an empty body avoids sending an empty JSON object.
        return Response(status_code=200)

    install_component_schemas(app, {"service_id": list(SERVICES), "sheet": list(PATIENT_SHEETS)})
    return app


def _install_try_page(app: FastAPI) -> None:
    """The try-it page belongs to the sandbox kit, which the production image leaves out: it is
    found by name, so the service does not depend on it."""
    try:
        module = importlib.import_module(TRY_PAGE_MODULE)
    except ModuleNotFoundError as error:
        raise RuntimeError("SPINECDS_TRY_PAGE=true, but this build has no sandbox kit (sandbox/)") from error
    module.install_try_page(app)


def client_id(client: VerifiedClient | None) -> ClientId:
    """The audit trail's name for the caller; the development client when authentication is off."""
    return DEVELOPMENT_CLIENT if client is None else ClientId(client.iss, client.tenant)


def _bounded_feedback(data: Any) -> Any:
    """413 before validation when one call carries more feedback items than the service takes."""
    items = data.get("feedback") if isinstance(data, dict) else None
    if isinstance(items, list) and len(items) > MAX_FEEDBACK_ITEMS:
        raise ApiError(
            413, "too-long", f"at most {MAX_FEEDBACK_ITEMS} feedback items per call", expression=["feedback"]
        )
    return data


def _card_rules(cards: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(card uuid, rule id, rule version) for the audit trail: which rule version produced each card."""
    rows = []
    for card in cards:
        outcome = (card.get("extension") or {}).get("spinecds") or {}
        if outcome.get("ruleId") and outcome.get("ruleVersion"):
            rows.append((card["uuid"], str(outcome["ruleId"]), str(outcome["ruleVersion"])))
    return rows


def _check_prefetched_patient(hook_request: HookRequest, patient_id: str) -> None:
    """A prefetched Patient of another id means the client mixed up patients: refuse, never evaluate."""
    patient = (hook_request.prefetch or {}).get("patient")
    if (
        isinstance(patient, dict)
        and patient.get("resourceType") == "Patient"
        and patient.get("id") not in (None, patient_id)
    ):
        raise ApiError(
            400, "invalid", "prefetch.patient.id does not match context.patientId", expression=["prefetch.patient.id"]
        )


app = create_app()
