"""`POST /` with a transaction Bundle: all entries are written, or none.

What a real EHR checks, in small: a token from the development authorisation server that may write
each resource type (SMART scopes) for the launch patient; every entry a valid R4 resource of a type
this server keeps, conforming to the spinecds StructureDefinitions it claims or matches; `urn:uuid`
references between entries rewritten to the new ids. Any problem refuses the whole Bundle with an
OperationOutcome naming the entry; only then is anything stored (under the store's lock, in one step).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.domainresource import DomainResource
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.provenance import Provenance
from pydantic import ValidationError

from fhir_profiles.profile_checks import check_resource

from .server import Faults, ResourceStore
from .smart_auth import SmartState, may_write

MODELS: dict[str, type[DomainResource]] = {"Observation": Observation, "Condition": Condition, "Provenance": Provenance}
MAX_ENTRIES = 100


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JSONResponse:
        return JSONResponse(
            {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": self.code, "diagnostics": self.message}],
            },
            status_code=self.status,
            media_type="application/fhir+json",
        )


def _rewrite(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            k: (ids.get(v, v) if k == "reference" and isinstance(v, str) else _rewrite(v, ids))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rewrite(v, ids) for v in value]
    return value


def _subject(resource: dict[str, Any]) -> str | None:
    subject = resource.get("subject")
    return subject.get("reference") if isinstance(subject, dict) else None


def _plan(bundle: Any, grant_patient: str | None, may: Any) -> list[tuple[str, dict[str, Any], str]]:
    """(method, resource with its final id, location) per entry, or Refused."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
        raise Refused(400, "invalid", "POST to the base URL takes a Bundle of type transaction")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list) or not entries or len(entries) > MAX_ENTRIES:
        raise Refused(400, "invalid", f"a transaction needs 1-{MAX_ENTRIES} entries")
    ids: dict[str, str] = {}
    for n, entry in enumerate(entries):
        request = entry.get("request") if isinstance(entry, dict) else None
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(request, dict) or not isinstance(resource, dict):
            raise Refused(400, "invalid", f"entry[{n}] needs a resource and a request")
        rtype = resource.get("resourceType")
        if request.get("method") == "POST" and isinstance(entry.get("fullUrl"), str):
            ids[entry["fullUrl"]] = f"{rtype}/{uuid.uuid4()}"
    planned = []
    for n, entry in enumerate(entries):
        request, resource = entry["request"], _rewrite(entry["resource"], ids)
        rtype, method = resource.get("resourceType"), request.get("method")
        where = f"entry[{n}] ({rtype})"
        if rtype not in MODELS:
            raise Refused(422, "not-supported", f"{where}: this server takes Observation, Condition and Provenance")
        if not may(rtype):
            raise Refused(403, "forbidden", f"{where}: the access token's scopes do not allow writing {rtype}")
        if method == "POST":
            reference = ids.get(entry.get("fullUrl", "")) or f"{rtype}/{uuid.uuid4()}"
            resource["id"] = reference.split("/", 1)[1]
        elif method == "PUT":
            url = str(request.get("url", ""))
            if url != f"{rtype}/{resource.get('id')}":
                raise Refused(400, "invalid", f"{where}: PUT url must be {rtype}/<the resource's id>")
        else:
            raise Refused(400, "not-supported", f"{where}: only POST and PUT are supported in a transaction")
        if rtype != "Provenance" and grant_patient and _subject(resource) != f"Patient/{grant_patient}":
            raise Refused(403, "forbidden", f"{where}: the token is for another patient")
        try:
            MODELS[rtype].model_validate(resource)
        except ValidationError as exc:
            first = exc.errors(include_input=False)[0]
            place = ".".join(str(p) for p in first["loc"])
            raise Refused(422, "invalid", f"{where}: not a valid FHIR R4 {rtype}: {place}: {first['msg']}") from None
        issues = [str(i) for i in check_resource(resource) if i.severity == "error"]
        if issues:
            raise Refused(422, "invalid", f"{where}: does not conform: {'; '.join(issues)}")
        planned.append((method, resource, f"{rtype}/{resource['id']}"))
    return planned


def install_transactions(app: FastAPI, store: ResourceStore, smart: SmartState, faults: Faults) -> None:
    @app.post("/", include_in_schema=False)
    async def transaction(request: Request) -> JSONResponse:
        try:
            if faults.refuse_transactions:
                raise Refused(422, "business-rule", "the server refused the transaction (fault injected by a test)")
            grant = smart.token(request.headers.get("authorization"))
            if grant is None:
                raise Refused(
                    401, "login", "a valid access token from this server's authorisation endpoint is required"
                )
            try:
                bundle = json.loads(await request.body())
            except ValueError:
                raise Refused(400, "invalid", "the body is not JSON") from None
            planned = _plan(bundle, grant.patient, lambda rtype: may_write(grant, rtype))
        except Refused as refused:
            return refused.response()
        store.put_all([resource for _method, resource, _location in planned])
        return JSONResponse(
            {
                "resourceType": "Bundle",
                "type": "transaction-response",
                "entry": [
                    {"response": {"status": "201 Created" if method == "POST" else "200 OK", "location": location}}
                    for method, _resource, location in planned
                ],
            },
            media_type="application/fhir+json",
        )
