"""Every error the service answers is a FHIR OperationOutcome: the app's exception handlers."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .operation_outcome import ApiError, outcome_response

log = logging.getLogger("spinecds.service")


async def api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def request_validation_error(_: Request, exc: Exception) -> JSONResponse:
    # FastAPI's default is 422 with its own body; the service speaks 400 + OperationOutcome.
    assert isinstance(exc, RequestValidationError)
    issues = []
    for item in exc.errors():
        path = ".".join(str(p) for p in item.get("loc", ()))
        issues.append(
            {"severity": "error", "code": "invalid", "diagnostics": f"{path}: {item.get('msg')}", "expression": [path]}
        )
    return ApiError(400, "invalid", "invalid request", issues=issues).response()


async def http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
    response = outcome_response(exc.status_code, code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return outcome_response(500, "exception", "internal error; see the service log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, request_validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
