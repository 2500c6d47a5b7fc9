"""`POST /cds-services/{service_id}`: one hook call through the hook pipeline."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ..auth import VerifiedClient
from ..clock import get_now
from ..fhir_server_policy import FhirServerRefused
from ..hook_pipeline import HookPipeline
from ..openapi_doc import HOOK_EXAMPLE, request_body
from ..request_models import HookRequest
from ..responses import FastJSONResponse
from ..service_parts import RulesEngine, ServiceParts, log_fields, rules_engine, service_named, service_parts
from ..service_parts import verified_client as authenticated

log = logging.getLogger("spinecds.service")

TRACE_HEADER = "x-spinecds-trace"
router = APIRouter()


async def hook_pipeline(
    parts: ServiceParts = Depends(service_parts), engine: RulesEngine = Depends(rules_engine)
) -> HookPipeline:
    return HookPipeline(parts, engine)


@router.post("/cds-services/{service_id}", openapi_extra=request_body(HookRequest, HOOK_EXAMPLE))
async def call_service(
    service_id: str,
    request: Request,
    now: datetime = Depends(get_now),
    client: VerifiedClient | None = Depends(authenticated),
    pipeline: HookPipeline = Depends(hook_pipeline),
) -> JSONResponse:
    # Dependencies run first: the body is read only after the caller is authenticated.
    started = time.perf_counter()
    service = service_named(service_id)
    log_fields(request, serviceId=service.id, hook=service.hook)
    settings = pipeline.parts.settings
    try:
        try:
            call = pipeline.validate(
                service,
                await request.body(),
                client=client,
                now=now,
                base_url=str(settings.external_base_url or request.base_url),
                want_trace=settings.allow_trace and request.headers.get(TRACE_HEADER, "").lower() == "true",
            )
        except FhirServerRefused as refused:
            log_fields(request, fhirServerRefused=refused.reason)
            log.warning("fhirServer refused", extra={"reason": refused.reason})
            raise
        log_fields(request, hookInstance=call.request.hookInstance)
        answer = await pipeline.run(call)
        log_fields(request, **answer.log_fields)
        return FastJSONResponse(answer.body)
    finally:
        pipeline.parts.metrics.observe_hook(service.id, service.hook, time.perf_counter() - started)
