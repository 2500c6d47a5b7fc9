"""Pydantic models of a CDS Hooks 2.0 service request, with the context each of our hooks needs.

Resources inside the request (prefetch, draftOrders) stay raw dicts: the engine filters and validates
them. Only the request-level shape is checked here.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Matched with fullmatch, never match + `$`: `$` also matches before a trailing newline, so "p1\n"
# would pass and reach the audit trail, pseudonym keys and FHIR URLs.
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
REFERENCE = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}")


def valid_fhir_id(value: str) -> bool:
    """The FHIR id grammar, and not dots only: an id is substituted into FHIR URLs, and "." or ".."
    would be a path segment of its own ("Patient/..")."""
    return bool(FHIR_ID.fullmatch(value)) and bool(value.strip("."))


class FhirAuthorization(BaseModel):
    model_config = ConfigDict(extra="allow")

    access_token: str = Field(min_length=1)
    token_type: Literal["Bearer"]
    expires_in: int = Field(ge=0)
    scope: str = Field(min_length=1)
    subject: str = Field(min_length=1)
    patient: str | None = None

    def __repr__(self) -> str:  # never let the token reach a log line through a repr
        return "FhirAuthorization(access_token=***)"

    __str__ = __repr__


class PatientContext(BaseModel):
    """patient-view context (and the part every hook shares)."""

    model_config = ConfigDict(extra="allow")

    userId: str = Field(min_length=1)
    patientId: str
    encounterId: str | None = None

    @field_validator("patientId")
    @classmethod
    def _fhir_id(cls, value: str) -> str:
        # The id is substituted into FHIR query URLs: only a valid FHIR id may get there, and not one
        # of dots only, which the grammar admits but which is a path segment of its own ("Patient/..").
        if not valid_fhir_id(value):
            raise ValueError("must be a FHIR id ([A-Za-z0-9-.], 1-64 characters, not only dots)")
        return value


class OrderSignContext(PatientContext):
    draftOrders: dict[str, Any]

    @field_validator("draftOrders")
    @classmethod
    def _bundle(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("resourceType") != "Bundle":
            raise ValueError("must be a FHIR Bundle (resourceType 'Bundle')")
        entries = value.get("entry", [])
        if not isinstance(entries, list):
            raise ValueError("Bundle.entry must be a list")
        for index, entry in enumerate(entries):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                raise ValueError(f"Bundle.entry[{index}].resource must be a FHIR resource")
        return value

    def draft_resources(self) -> list[dict[str, Any]]:
        return [entry["resource"] for entry in self.draftOrders.get("entry", [])]


class OrderSelectContext(OrderSignContext):
    selections: list[str] = Field(min_length=1)

    @field_validator("selections")
    @classmethod
    def _references(cls, value: list[str]) -> list[str]:
        for item in value:
            if not REFERENCE.fullmatch(item):
                raise ValueError(f"'{item}' is not a reference like 'ServiceRequest/123'")
        return value

    @model_validator(mode="after")
    def _selected_in_drafts(self) -> OrderSelectContext:
        drafts = {f"{r['resourceType']}/{r.get('id')}" for r in self.draft_resources()}
        unknown = [item for item in self.selections if item not in drafts]
        if unknown:
            raise ValueError(f"selections {unknown} are not resources in context.draftOrders")
        return self


CONTEXT_MODELS: dict[str, type[PatientContext]] = {
    "patient-view": PatientContext,
    "order-select": OrderSelectContext,
    "order-sign": OrderSignContext,
}


class HookRequest(BaseModel):
    """The request envelope; `context` is validated separately against the service's hook."""

    model_config = ConfigDict(extra="allow")

    hook: str = Field(min_length=1)
    hookInstance: str = Field(min_length=1, max_length=128)
    # A plain string: fhir_server_policy parses it strictly and refuses anything outside the caller's
    # allowlist with one neutral message (a URL type here would normalise it first and answer in detail).
    fhirServer: str | None = Field(None, min_length=1, max_length=2048, json_schema_extra={"format": "uri"})
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None

    @field_validator("hookInstance")
    @classmethod
    def _uuid(cls, value: str) -> str:
        # The spec says "a UUID"; the audit trail is keyed by it, so nothing else gets in.
        if not UUID.fullmatch(value):
            raise ValueError("must be a UUID (8-4-4-4-12 hexadecimal digits)")
        return value

    @model_validator(mode="after")
    def _authorization_needs_server(self) -> HookRequest:
        if self.fhirAuthorization is not None and self.fhirServer is None:
            raise ValueError("fhirAuthorization requires fhirServer")
        return self
