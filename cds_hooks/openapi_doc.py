"""What the OpenAPI document (`GET /openapi.json`) says about the hook and feedback request bodies.

The two POST endpoints read the raw body themselves (size and nesting limits first, then pydantic
with OperationOutcome errors), so FastAPI cannot see their models. `openapi_extra` on the routes
names the request body schemas, `install_component_schemas` adds those schemas to the document, and
the path parameters list the service ids and sheet names. Documentation only: nothing here changes
how a request is handled.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .feedback_models import FeedbackRequest
from .request_models import HookRequest

REF_TEMPLATE = "#/components/schemas/{model}"
DOCUMENTED_MODELS: tuple[type[BaseModel], ...] = (HookRequest, FeedbackRequest)

HOOK_EXAMPLE: dict[str, Any] = {
    "hook": "patient-view",
    "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    "context": {"userId": "Practitioner/example", "patientId": "example"},
    "prefetch": {"patient": {"resourceType": "Patient", "id": "example", "gender": "female"}},
}
FEEDBACK_EXAMPLE: dict[str, Any] = {
    "feedback": [
        {
            "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
            "outcomeTimestamp": "2026-03-02T09:31:00Z",
        }
    ],
}


def request_body(model: type[BaseModel], example: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` for a route that parses `model` from the raw JSON body."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=model.__name__)}, "example": example}
            },
        }
    }


def install_component_schemas(app: FastAPI, path_values: dict[str, list[str]]) -> None:
    """Wrap `app.openapi` so the generated document carries the request models and lists the values
    each path parameter can take (`path_values`: parameter name -> the ids that exist)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        _, definitions = models_json_schema(
            [(model, "validation") for model in DOCUMENTED_MODELS], ref_template=REF_TEMPLATE
        )
        document.setdefault("components", {}).setdefault("schemas", {}).update(definitions.get("$defs", {}))
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                for parameter in operation.get("parameters", []):
                    if parameter.get("in") == "path" and parameter.get("name") in path_values:
                        parameter["schema"] = {**parameter["schema"], "enum": list(path_values[parameter["name"]])}
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
