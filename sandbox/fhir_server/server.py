"""The FHIR server app: read/create/update Patient, Condition, Observation, Procedure; search by patient and code.

Storage is in memory (a `ResourceStore`), loadable from fixture resources or Bundles. Searches page
with `_count` and a `next` link carrying `_offset`, like HAPI's paging, so clients must follow links.
`Faults` lets a test make the server slow or failing without restarting it.
"""

# No `from __future__ import annotations`: fhirstarter inspects real annotation objects.
import asyncio
import copy
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.domainresource import DomainResource
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.provenance import Provenance
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhirstarter import FHIRProvider, FHIRStarter, InteractionContext
from fhirstarter.exceptions import FHIRBadRequestError, FHIRResourceNotFoundError

from .. import fhir_search

DEFAULT_COUNT = 50
MAX_COUNT = 500

_CONFIG = b"""
[app.external-documentation-examples]
enabled = false

[search-parameters.Condition._offset]
type = "number"
description = "Paging offset used in next links"
uri = "http://spinecds.org/fhir/SearchParameter/offset"
include-in-capability-statement = false

[search-parameters.Observation._offset]
type = "number"
description = "Paging offset used in next links"
uri = "http://spinecds.org/fhir/SearchParameter/offset"
include-in-capability-statement = false

[search-parameters.Procedure._offset]
type = "number"
description = "Paging offset used in next links"
uri = "http://spinecds.org/fhir/SearchParameter/offset"
include-in-capability-statement = false

[search-parameters.ImagingStudy._offset]
type = "number"
description = "Paging offset used in next links"
uri = "http://spinecds.org/fhir/SearchParameter/offset"
include-in-capability-statement = false

[search-parameters.DiagnosticReport._offset]
type = "number"
description = "Paging offset used in next links"
uri = "http://spinecds.org/fhir/SearchParameter/offset"
include-in-capability-statement = false

[search-parameters.ServiceRequest._offset]
type = "number"
description = "Paging offset used in next links"
uri = "http://spinecds.org/fhir/SearchParameter/offset"
include-in-capability-statement = false
"""


@dataclass
class Faults:
    """Misbehaviour switched on by fault tests; `reset()` returns to a healthy server."""

    delay_seconds: float = 0.0
    status: int | None = None  # answer every request with this HTTP status + OperationOutcome
    garbage: bool = False  # answer 200 with a body that is not JSON
    refuse_transactions: bool = False  # refuse every transaction Bundle with 422 (a write the EHR refuses)

    def reset(self) -> None:
        self.delay_seconds, self.status, self.garbage = 0.0, None, False
        self.refuse_transactions = False


class ResourceStore:
    """Thread-safe in-memory resources by type and id (raw JSON dicts, validated on write)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, dict[str, Any]]] = {}
        self.requests: list[dict[str, Any]] = []  # method, path, query, authorization (for assertions)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.requests.clear()

    def load(self, *items: dict[str, Any]) -> None:
        """Load resources or Bundles (their entries) as they are; ids are kept, missing ids assigned."""
        for item in items:
            if item.get("resourceType") == "Bundle":
                self.load(*(e["resource"] for e in item.get("entry", []) if "resource" in e))
            else:
                self.put(item)

    def put(self, resource: dict[str, Any]) -> str:
        resource = copy.deepcopy(resource)
        resource.setdefault("id", str(uuid.uuid4()))
        with self._lock:
            self._data.setdefault(resource["resourceType"], {})[resource["id"]] = resource
        return resource["id"]

    def put_all(self, resources: list[dict[str, Any]]) -> None:
        """Store several resources in one step: readers see all of them or none (transactions)."""
        copies = [copy.deepcopy(r) for r in resources]
        with self._lock:
            for resource in copies:
                self._data.setdefault(resource["resourceType"], {})[resource["id"]] = resource

    def get(self, resource_type: str, id_: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._data.get(resource_type, {}).get(id_)
            return copy.deepcopy(found) if found else None

    def all(self, resource_type: str) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(r) for r in self._data.get(resource_type, {}).values()]

    def of_patient(self, resource_type: str, patient: str | None) -> list[dict[str, Any]]:
        """Copies of the resources of one patient (all when None): filtering before copying keeps
        searches fast with thousands of preloaded Observations."""
        with self._lock:
            return [
                copy.deepcopy(r)
                for r in self._data.get(resource_type, {}).values()
                if fhir_search.matches_patient(r, patient)
            ]


def _searchset(request: Request, resources: list[dict[str, Any]], count: str | None, offset: str | None) -> Bundle:
    try:
        page_size = min(int(count), MAX_COUNT) if count else DEFAULT_COUNT
        start = int(offset) if offset else 0
    except ValueError as exc:
        raise FHIRBadRequestError(code="invalid", details_text="_count and _offset must be integers") from exc
    if page_size < 1 or start < 0:
        raise FHIRBadRequestError(code="invalid", details_text="_count must be >= 1 and _offset >= 0")
    page = resources[start : start + page_size]
    base = str(request.url.remove_query_params("_offset")).split("?")[0]
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "_offset"]
    links = [{"relation": "self", "url": str(request.url)}]
    if start + page_size < len(resources):
        links.append({"relation": "next", "url": f"{base}?{urlencode(params + [('_offset', start + page_size)])}"})
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(resources),
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{str(request.base_url).rstrip('/')}/{r['resourceType']}/{r['id']}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in page
            ]
            or None,
        }
    )


def _search(
    store: ResourceStore,
    context: InteractionContext,
    resource_type: str,
    patient: str | None,
    code: list[str] | None,
    _sort: str | None,
    _count: str | None,
    _offset: str | None,
) -> Bundle:
    try:
        found = fhir_search.select(store.of_patient(resource_type, patient), patient, code, _sort)
    except ValueError as exc:
        raise FHIRBadRequestError(code="not-supported", details_text=str(exc)) from exc
    return _searchset(context.request, found, _count, _offset)


def build_app(store: ResourceStore | None = None, faults: Faults | None = None) -> FHIRStarter:
    """A FHIR server over `store`; `app.state.store` and `app.state.faults` expose both to tests."""
    import io

    store = store or ResourceStore()
    faults = faults or Faults()
    app = FHIRStarter(title="spinecds test FHIR server", config_file=io.BytesIO(_CONFIG))
    app.state.store, app.state.faults = store, faults

    @app.middleware("http")
    async def record_and_misbehave(request: Request, call_next):
        store.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": str(request.url.query),
                "authorization": request.headers.get("authorization"),
            }
        )
        if faults.delay_seconds:
            await asyncio.sleep(faults.delay_seconds)
        if faults.garbage:
            return PlainTextResponse("<html>this is not FHIR JSON", media_type="application/fhir+json")
        if faults.status:
            return JSONResponse(
                {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "exception", "diagnostics": "injected fault"}],
                },
                status_code=faults.status,
                media_type="application/fhir+json",
            )
        return await call_next(request)

    # Browser-based clients (the public CDS Hooks Sandbox, SMART apps) read this server from their own
    # origin; synthetic data on a local port, so any origin may read it.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "PUT", "OPTIONS"],
        allow_headers=["Accept", "Authorization", "Content-Type", "Prefer"],
    )

    provider = FHIRProvider()
    models: dict[str, type[DomainResource]] = {
        "Patient": Patient,
        "Condition": Condition,
        "Observation": Observation,
        "Procedure": Procedure,
        "Provenance": Provenance,  # written by the SMART app's transactions
        "ImagingStudy": ImagingStudy,
        "DiagnosticReport": DiagnosticReport,
        "ServiceRequest": ServiceRequest,
    }

    def register_crud(resource_type: str) -> None:
        model = models[resource_type]

        @provider.read(model)
        def read(context: InteractionContext, id_: str):
            found = store.get(resource_type, id_)
            if found is None:
                raise FHIRResourceNotFoundError
            return model.model_validate(found)

        @provider.create(model)
        def create(context: InteractionContext, resource):
            data = resource.model_dump(mode="json", exclude_none=True)
            data.pop("id", None)
            return store.put(data)

        @provider.update(model)
        def update(context: InteractionContext, id_: str, resource):
            data = resource.model_dump(mode="json", exclude_none=True)
            data["id"] = id_
            store.put(data)  # update-as-create: sandbox tools load data with PUT and known ids
            return id_

        read.__annotations__["return"] = model
        create.__annotations__["resource"] = model
        create.__annotations__["return"] = str
        update.__annotations__["resource"] = model
        update.__annotations__["return"] = str

    for resource_type in models:
        register_crud(resource_type)

    @provider.search_type(Condition)
    def condition_search(
        context: InteractionContext,
        patient: str | None,
        code: list[str] | None,
        _sort: str | None,
        _count: str | None,
        _offset: str | None,
    ) -> Bundle:
        return _search(store, context, "Condition", patient, code, _sort, _count, _offset)

    @provider.search_type(Observation)
    def observation_search(
        context: InteractionContext,
        patient: str | None,
        code: list[str] | None,
        _sort: str | None,
        _count: str | None,
        _offset: str | None,
    ) -> Bundle:
        return _search(store, context, "Observation", patient, code, _sort, _count, _offset)

    # Procedures (MESCC treatment, prior radiotherapy, spine MRIs done), imaging studies, reports and
    # orders: the service's prefetch keys procedures, imagingStudies, diagnosticReports, serviceRequests.
    @provider.search_type(Procedure)
    def procedure_search(
        context: InteractionContext,
        patient: str | None,
        code: list[str] | None,
        _sort: str | None,
        _count: str | None,
        _offset: str | None,
    ) -> Bundle:
        return _search(store, context, "Procedure", patient, code, _sort, _count, _offset)

    @provider.search_type(ImagingStudy)
    def imaging_study_search(
        context: InteractionContext,
        patient: str | None,
        _sort: str | None,
        _count: str | None,
        _offset: str | None,
    ) -> Bundle:
        return _search(store, context, "ImagingStudy", patient, None, _sort, _count, _offset)

    @provider.search_type(DiagnosticReport)
    def diagnostic_report_search(
        context: InteractionContext,
        patient: str | None,
        code: list[str] | None,
        _sort: str | None,
        _count: str | None,
        _offset: str | None,
    ) -> Bundle:
        return _search(store, context, "DiagnosticReport", patient, code, _sort, _count, _offset)

    @provider.search_type(ServiceRequest)
    def service_request_search(
        context: InteractionContext,
        patient: str | None,
        code: list[str] | None,
        _sort: str | None,
        _count: str | None,
        _offset: str | None,
    ) -> Bundle:
        return _search(store, context, "ServiceRequest", patient, code, _sort, _count, _offset)

    app.add_providers(provider)
    # SMART on FHIR: a development authorisation server and transaction Bundles (the assessment app).
    from .smart_auth import install_smart
    from .transaction import install_transactions

    install_transactions(app, store, install_smart(app, store), faults)
    return app
