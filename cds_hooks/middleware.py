"""ASGI middleware: request id + access log + last-resort error answer, and the body size limit."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .logging_json import request_id_var
from .operation_outcome import FHIR_JSON, operation_outcome

log = logging.getLogger("spinecds.http")
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9\-_.]{1,64}$")


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
        request_id = incoming if _CLIENT_REQUEST_ID.match(incoming) else uuid.uuid4().hex
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


class BodySizeLimitMiddleware:
    """413 for bodies over `max_bytes`: checks Content-Length, and counts chunked bodies while buffering."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_large = f"request body larger than {self.max_bytes} bytes"
        if declared is not None:
            try:
                if int(declared) > self.max_bytes:
                    await _send_outcome(send, 413, "too-long", too_large)
                    return
            except ValueError:
                await _send_outcome(send, 400, "invalid", "Content-Length is not a number")
                return
        # Buffer the body (bounded) so a chunked upload cannot exceed the limit either.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _send_outcome(send, 413, "too-long", too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
