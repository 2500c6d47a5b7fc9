"""Turn pydantic validation errors into a 400 OperationOutcome that names every bad field."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .operation_outcome import ApiError

M = TypeVar("M", bound=BaseModel)


def field_path(prefix: str, loc: tuple[Any, ...]) -> str:
    parts = [prefix] if prefix else []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts) or "(body)"


def issues_from(error: ValidationError, prefix: str = "") -> list[dict[str, Any]]:
    issues = []
    for item in error.errors(include_url=False, include_input=False):
        # Model-level validators report loc (); the message says what is wrong.
        path = field_path(prefix, tuple(item["loc"]))
        message = item["msg"].removeprefix("Value error, ")
        issues.append({"severity": "error", "code": "required" if item["type"] == "missing" else "invalid",
                       "diagnostics": f"{path}: {message}", "expression": [path]})
    return issues


def validate(model: type[M], data: Any, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid", "invalid request", issues=issues_from(exc, prefix)) from None


def parse_json_body(body: bytes) -> Any:
    if not body:
        raise ApiError(400, "invalid", "request body is empty; expected JSON")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        position = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ApiError(400, "structure", f"request body is not valid JSON{position}") from None
