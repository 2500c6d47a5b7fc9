"""The try-it page (`GET /`, files in sandbox/static/) and its synthetic-patient endpoints.

Part of the sandbox kit, not of the service: the service mounts it only when `Settings.try_page`
is true (development and demos), by module name, so the production image can leave `sandbox/` out
and nothing in `cds_hooks` imports it. Like /patient-sheets these routes are unauthenticated: they
hand out synthetic patients only, never anything from a request. Card markdown is rendered by a
vendored markdown-it (static/markdown-it.min.js, MIT licence beside it) with raw HTML off.

- `GET /try/patients`: id, name, age, story and expected cards of every synthetic patient.
- `GET /try/orders`: the sample draft orders (sandbox/orders/*.json) for the order hooks.
- `GET /try/patients/{id}/request?hook=...&order=...`: a complete CDS Hooks request for that
  patient at the current time, its prefetch answered from the patient's synthetic record exactly
  as the service's templates ask (sandbox.fhir_search), with a draft order for order hooks; the
  id of the service to call is in the X-SpineCDS-Service-Id header. The page shows it and POSTs
  it to /cds-services/{id} itself, as an EHR would.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from cds_hooks.clock import get_now
from cds_hooks.operation_outcome import ApiError
from cds_hooks.services import SERVICES

from . import fhir_search, hook_client, patients

STATIC_DIR = Path(__file__).parent / "static"
SERVICE_HEADER = "X-SpineCDS-Service-Id"
# The page loads only its own files: even a rendering slip cannot pull in or run foreign code.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def _service_for(hook: str) -> dict[str, Any]:
    for service in SERVICES.values():
        if service.hook == hook:
            return {"id": service.id, "prefetch": dict(service.prefetch)}
    hooks = ", ".join(sorted({s.hook for s in SERVICES.values()}))
    raise ApiError(400, "invalid", f"unknown hook '{hook}'; one of: {hooks}", expression=["hook"])


def install_try_page(app: FastAPI) -> None:
    """Add `/`, `/static/*` and `/try/*` to `app`."""
    orders_dir = Path(patients.__file__).parent / "orders"
    order_files = {path.stem: path for path in sorted(orders_dir.glob("*.json"))}
    router = APIRouter(tags=["try-it page"])

    @router.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    @router.get("/try/patients")
    async def list_patients() -> JSONResponse:
        listed = []
        for desc in patients.descriptions():
            expect = desc.get("expect") or {}
            listed.append(
                {
                    "id": patients.ID_PREFIX + desc["id"],
                    "name": desc.get("name"),
                    "gender": desc.get("gender"),
                    "age": desc.get("age"),
                    "story": " ".join(str(desc.get("story", "")).split()),
                    "expectedCards": [patients.describe_card(card) for card in expect.get("cards") or []],
                }
            )
        return JSONResponse({"patients": listed})

    @router.get("/try/orders")
    async def list_orders() -> JSONResponse:
        listed = []
        for name, path in order_files.items():
            resource = json.loads(path.read_text(encoding="utf-8"))
            listed.append(
                {
                    "id": name,
                    "text": (resource.get("code") or {}).get("text") or name,
                    "priority": resource.get("priority"),
                }
            )
        return JSONResponse({"orders": listed})

    @router.get("/try/patients/{patient_id}/request")
    async def hook_request(
        patient_id: str,
        hook: str = Query("patient-view"),
        order: str | None = Query(None),
        now: datetime = Depends(get_now),
    ) -> JSONResponse:
        service = _service_for(hook)
        try:
            desc = patients.description(patient_id)
        except KeyError:
            raise ApiError(
                404, "not-found", f"unknown synthetic patient '{patient_id}'; see GET /try/patients"
            ) from None
        if order is not None and order not in order_files:
            raise ApiError(
                400, "invalid", f"unknown draft order '{order}'; one of: {', '.join(order_files)}", expression=["order"]
            )
        if order is not None and hook not in hook_client.ORDER_HOOKS:
            raise ApiError(
                400, "invalid", f"a draft order applies to order-select / order-sign, not {hook}", expression=["order"]
            )
        pid = patients.ID_PREFIX + desc["id"]
        resources = patients.build_resources(pid, now)
        context = {"userId": hook_client.SANDBOX_USER, "patientId": pid}
        prefetch = {}
        for key, template in service["prefetch"].items():
            relative = hook_client.fill_template(template, context)
            # A template this page cannot answer is left out, as an EHR would: the service then says so.
            if relative is not None:
                try:
                    prefetch[key] = fhir_search.answer(relative, resources)
                except ValueError:
                    continue
        request = hook_client.build_request(
            hook,
            pid,
            now=now,
            prefetch=prefetch,
            fhir_server=None,
            fhir_token=None,
            draft_order_file=str(order_files[order]) if order else None,
        )
        # The body is the request itself (curl it, POST it); the service to call travels in a header.
        return JSONResponse(request, headers={SERVICE_HEADER: service["id"]})

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
