"""`POST /cds-services/{service_id}/feedback`: what the clinician did with our cards.

Accepted only for cards this CDS service returned to the same client (404 for the whole call
otherwise, nothing stored), bounded in size, never acknowledged unless stored.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..auth import VerifiedClient
from ..clock import get_now
from ..feedback_models import MAX_FEEDBACK_ITEMS, FeedbackRequest
from ..openapi_doc import FEEDBACK_EXAMPLE, request_body
from ..operation_outcome import ApiError, outcome_response
from ..service_parts import ServiceParts, client_id, log_fields, service_named, service_parts, verified_client
from ..store import StoreError
from ..validation import parse_json_body, validate

log = logging.getLogger("spinecds.service")

FEEDBACK_RETRY_AFTER_SECONDS = 30
router = APIRouter()


@router.post("/cds-services/{service_id}/feedback", openapi_extra=request_body(FeedbackRequest, FEEDBACK_EXAMPLE))
async def feedback(
    service_id: str,
    request: Request,
    now: datetime = Depends(get_now),
    client: VerifiedClient | None = Depends(verified_client),
    parts: ServiceParts = Depends(service_parts),
) -> Response:
    service = service_named(service_id)
    log_fields(request, serviceId=service.id)
    items = feedback_items(await request.body(), parts.settings.max_json_depth)
    try:
        await check_cards_issued(parts, items, client, service.id, request)
        stored = await run_in_threadpool(parts.store.record_feedback, service.id, items, now)
    except StoreError as error:
        # Never acknowledge feedback that was not stored: the EHR may retry after Retry-After.
        log.error("feedback not stored: database unavailable", extra={"error": str(error)})
        log_fields(request, feedbackItems=len(items), feedbackStored=0)
        response = outcome_response(503, "transient", "feedback not stored: database unavailable; retry later")
        response.headers["Retry-After"] = str(FEEDBACK_RETRY_AFTER_SECONDS)
        return response
    await count_feedback(parts, items)
    await learn_from(parts, items, now, request)
    log_fields(request, feedbackItems=len(items), feedbackStored=stored)
    # The spec asks only for a 200; an empty body avoids sending an empty JSON object.
    return Response(status_code=200)


def feedback_items(body: bytes, max_json_depth: int) -> list[dict[str, Any]]:
    """The validated items, spec-shaped; 413 past MAX_FEEDBACK_ITEMS (checked before validation)."""
    data = parse_json_body(body, max_json_depth)
    items = data.get("feedback") if isinstance(data, dict) else None
    if isinstance(items, list) and len(items) > MAX_FEEDBACK_ITEMS:
        raise ApiError(
            413, "too-long", f"at most {MAX_FEEDBACK_ITEMS} feedback items per call", expression=["feedback"]
        )
    payload = validate(FeedbackRequest, data)
    return [item.model_dump(mode="json", exclude_none=True) for item in payload.feedback]


async def check_cards_issued(
    parts: ServiceParts, items: list[dict[str, Any]], client: VerifiedClient | None, service_id: str, request: Request
) -> None:
    """Only the client a card was returned to may give feedback on it, and only at the service that
    returned it; anything else (a card of another client or service, a uuid never issued) is 404
    for the whole call."""
    cards = [item["card"] for item in items]
    issued = await run_in_threadpool(parts.store.cards_issued_to, cards, client_id(client), service_id)
    unknown = [index for index, item in enumerate(items) if item["card"] not in issued]
    if unknown:
        log_fields(request, feedbackItems=len(items), feedbackStored=0, feedbackUnknownCards=len(unknown))
        raise ApiError(
            404,
            "not-found",
            "feedback names a card this service did not return to this client",
            expression=[f"feedback[{index}].card" for index in unknown],
        )


async def count_feedback(parts: ServiceParts, items: list[dict[str, Any]]) -> None:
    for item in items:
        # Label by our own rule id, looked up from the card uuid; never by client-sent strings.
        try:
            known = await run_in_threadpool(parts.store.rule_of_card, item["card"])
        except StoreError:
            known = None  # stored already: a label lookup failing must not turn that into an error
        parts.metrics.count_feedback(known[0] if known else None, item["outcome"])


async def learn_from(parts: ServiceParts, items: list[dict[str, Any]], now: datetime, request: Request) -> None:
    """Feedback memory: an override may set the card aside for this user."""
    if not parts.memory.enabled:
        return
    try:
        log_fields(request, suppressions=await run_in_threadpool(parts.memory.learn, items, now))
    except StoreError as error:  # the feedback itself is stored; only the memory of it is lost
        log.error("feedback memory not updated: database unavailable", extra={"error": str(error)})
