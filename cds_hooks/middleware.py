"""ASGI middleware: request id + access log + last-resort error answer, and the body size limit."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .logging_json import request_id_var
from .operation_outcome import FHIR_JSON, ApiError, operation_outcome

log = logging.getLogger("spinecds.http")
CLIENT_CLOSED_REQUEST = 499  # the access-log status of a caller that left before its answer (as nginx logs it)
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9\-_.]{1,64}")  # fullmatch: `$` would let a trailing newline in


async def _send_outcome(send: Send, status: int, code: str, diagnostics: str, request_id: str | None = None) -> None:
    body = json.dumps(operation_outcome(code, diagnostics)).encode()
    headers = [(b"content-type", FHIR_JSON.encode()), (b"content-length", str(len(body)).encode())]
    if request_id:
        headers.append((b"x-request-id", request_id.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """Outermost layer: every answer carries X-Request-ID and is logged as one JSON line; an
    exception that escapes everything else becomes a 500 OperationOutcome without details."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _CLIENT_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder: dict[str, Any] = {}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            # The caller went away before its body arrived (an EHR that timed out, a load generator
            # stopping): nobody to answer and nothing wrong with the service. 499 in the access log.
            status_holder.setdefault("status", CLIENT_CLOSED_REQUEST)
        except Exception:
            log.exception("unhandled error", extra={"path": scope.get("path")})
            if "status" not in status_holder:
                await _send_outcome(send_with_id, 500, "exception", "internal error; see the service log", request_id)
        finally:
            state = scope.get("state", {})
            if log.isEnabledFor(logging.INFO):  # the extra dict is not built when the line is dropped
                log.info(
                    "request",
                    extra={
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": status_holder.get("status"),
                        "durationMs": round((time.perf_counter() - started) * 1000, 1),
                        **state.get("log_fields", {}),
                    },
                )
            request_id_var.reset(token)


class BodyTooLarge(ApiError):
    """Raised from `receive` once a streamed body passes the limit; answered 413 by the app's ApiError handler."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, "too-long", f"request body larger than {max_bytes} bytes")


class BodySizeLimitMiddleware:
    """413 for bodies over `max_bytes`: a declared Content-Length is checked up front, a chunked body
    is counted as the endpoint reads it. Nothing is read here: the body is read by the endpoint, after
    authentication, so an unauthenticated caller cannot make the service take in megabytes."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                if int(declared) > self.max_bytes:
                    await _send_outcome(send, 413, "too-long", f"request body larger than {self.max_bytes} bytes")
                    return
            except ValueError:
                await _send_outcome(send, 400, "invalid", "Content-Length is not a number")
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)


# Every answer: no MIME sniffing, no Referer with our URLs (they may carry ids) to other sites.
COMMON_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
# HTML that does not bring its own policy: nothing loads, nothing runs, nobody frames it.
DEFAULT_HTML_POLICY = (
    b"default-src 'none'; img-src 'self' data:; style-src 'self'; base-uri 'none'; "
    b"form-action 'none'; frame-ancestors 'none'"
)


class SecurityHeadersMiddleware:
    """Security headers on every response; a strict Content-Security-Policy (with frame-ancestors
    'none') on HTML responses that set none themselves. A page that needs more (its own scripts, or
    being framed by an EHR) sets its own policy, which is left alone."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in COMMON_HEADERS if name not in names]
                content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/html") and b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", DEFAULT_HTML_POLICY))
                    headers.append((b"x-frame-options", b"DENY"))  # the same for browsers without CSP
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
