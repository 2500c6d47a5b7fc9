"""FHIR OperationOutcome bodies for every error the service returns, and the exception that carries them."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

FHIR_JSON = "application/fhir+json"


def operation_outcome(
    code: str,
    diagnostics: str,
    *,
    severity: str = "error",
    expression: list[str] | None = None,
) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_with_issues(issues: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": issues}


class ApiError(Exception):
    """An error answered with `status` and an OperationOutcome; raised anywhere in request handling."""

    def __init__(
        self,
        status: int,
        code: str,
        diagnostics: str,
        *,
        expression: list[str] | None = None,
        issues: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.headers = headers
        self.body = (
            outcome_with_issues(issues) if issues else operation_outcome(code, diagnostics, expression=expression)
        )

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, media_type=FHIR_JSON, headers=self.headers)


def outcome_response(status: int, code: str, diagnostics: str) -> JSONResponse:
    return JSONResponse(operation_outcome(code, diagnostics), status_code=status, media_type=FHIR_JSON)
