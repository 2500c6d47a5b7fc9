"""The SMART on FHIR assessment app (`/smart/`) and its engine preview (`POST /smart/api/assess`).

Mounted only when `Settings.smart_app` is true. The app itself is static files in
cds_hooks/static/smart/ (its libraries vendored, no network at run time). It reads the chart from
the EHR's FHIR server with the user's token, and sends the chart plus the draft answers here; this
endpoint pre-fills the Questionnaires, extracts the answers to FHIR resources, runs the same engine
on the chart before and after, and returns the transaction Bundle the app then writes to the EHR.

Nothing is stored and nothing from the body is logged: the answer is a function of the request.

The endpoint is guarded (cds_hooks/smart_launch.py): it needs the app's SMART access token, verified
with the EHR, before a byte of the body is read; JSON only; at most MAX_ASSESS_BODY_BYTES; and at
most MAX_CONCURRENT_ASSESSMENTS at a time per process (503 beyond), so hook calls keep the engine.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from engine.api import EvaluationRequest, evaluate
from fhir_profiles import questionnaire_extract as qx

from .auth_settings import AuthSettings
from .clock import get_now
from .operation_outcome import ApiError, outcome_response
from .request_models import valid_fhir_id
from .settings import Settings
from .smart_launch import SmartLaunchCheck
from .validation import parse_json_body, validate

SMART_DIR = Path(__file__).parent / "static" / "smart"
APP_NAME = "spinecds assessment (SMART on FHIR)"
# The EHR's FHIR server is on another origin the app only learns at launch (iss): https anywhere, and
# plain http only on the loopback interface for the local sandbox. Scripts and styles: own files only.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' https: http://127.0.0.1:* http://localhost:*; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors "
)


def page_headers(frame_ancestors: list[str]) -> dict[str, str]:
    """The app's pages: only the EHR origins an operator listed may frame them (none by default)."""
    headers = {
        "Content-Security-Policy": PAGE_POLICY + (" ".join(frame_ancestors) or "'none'"),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    if not frame_ancestors:
        headers["X-Frame-Options"] = "DENY"  # the same for browsers without CSP level 2
    return headers


PAGES = {"": "index.html", "index.html": "index.html", "launch.html": "launch.html"}
ASSETS = {
    "app.js": "text/javascript",
    "launch.js": "text/javascript",
    "form.js": "text/javascript",
    "app.css": "text/css",
    "vendor/fhir-client.pure.min.js": "text/javascript",
}
SCOPES = (
    "launch openid fhirUser patient/Patient.read patient/Condition.read patient/Observation.read "
    "patient/Condition.write patient/Observation.write patient/Provenance.write"
)
MAX_CHART_RESOURCES = 5000
MAX_ASSESS_BODY_BYTES = 512 * 1024  # a real chart of a few hundred resources is well under this
MAX_CONCURRENT_ASSESSMENTS = 2  # per process: the engine is shared with the hook calls
BUSY_RETRY_AFTER_SECONDS = 2


class AssessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patientId: str
    chart: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_CHART_RESOURCES)
    answers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    levels: list[str] = Field(default_factory=list, max_length=30)  # lesions a card asked about
    user: str | None = Field(None, max_length=256)  # fhirUser of the signed-in user, for the Provenance
    userName: str | None = Field(None, max_length=256)

    @field_validator("patientId")
    @classmethod
    def _fhir_id(cls, value: str) -> str:
        if not valid_fhir_id(value):
            raise ValueError("must be a FHIR id ([A-Za-z0-9-.], 1-64 characters, not only dots)")
        return value


def _summary(resources: list[dict[str, Any]], patient_id: str, now: datetime, base_url: str) -> dict[str, Any]:
    """What the cards would say: per rule its outcome, SINS, survival groups and the data still missing."""
    result = evaluate(
        EvaluationRequest(
            hook="patient-view",
            hook_instance="smart-preview",
            patient_id=patient_id,
            resources=resources,
            now=now,
            base_url=base_url,
        )
    )
    cards, missing = [], []
    for card in result.cards:
        ext = (card.get("extension") or {}).get("spinecds") or {}
        entry = {
            "ruleId": ext.get("ruleId"),
            "outcome": ext.get("outcome"),
            "indicator": card.get("indicator"),
            "summary": card.get("summary"),
        }
        for key in ("sins", "survival", "missing", "merged"):
            if ext.get(key):
                entry[key] = ext[key]
        cards.append(entry)
        for item in ext.get("missing") or []:
            if item not in missing:
                missing.append(item)
    return {"cards": cards, "missing": missing}


def _merge(chart: list[dict[str, Any]], extraction: qx.Extraction) -> list[dict[str, Any]]:
    replaced = {(r["resourceType"], r.get("id")) for r in extraction.updates}
    kept = [r for r in chart if (r.get("resourceType"), r.get("id")) not in replaced]
    return kept + extraction.resources


def assess(body: AssessRequest, now: datetime, base_url: str, client_id: str) -> dict[str, Any]:
    chart = [r for r in body.chart if isinstance(r.get("resourceType"), str)]
    extraction = qx.extract(body.answers, chart, body.patientId, now)
    answer: dict[str, Any] = {
        "prefill": qx.prefill(chart, body.patientId, body.levels),
        "problems": [p.as_json() for p in extraction.problems],
        "notes": extraction.notes,
        "before": _summary(chart, body.patientId, now, base_url),
    }
    if extraction.problems:
        return answer
    answer["after"] = _summary(_merge(chart, extraction), body.patientId, now, base_url)
    answer["resources"] = extraction.resources
    if extraction.resources:
        answer["transaction"] = qx.transaction_bundle(
            extraction,
            body.patientId,
            now,
            app_name=APP_NAME,
            client_id=client_id,
            user_reference=body.user,
            user_display=body.userName,
        )
    return answer


def launch_check(settings: Settings, auth_settings: AuthSettings) -> SmartLaunchCheck:
    """The FHIR servers a launch may come from: every trusted client's, or the development allowlist."""
    if not auth_settings.auth_enabled:
        policy = settings.development_fhir_servers()
        return SmartLaunchCheck(policy.allowed, policy.allow_http_loopback)
    servers = tuple(server for client in auth_settings.trusted_clients for server in client.fhir_servers())
    return SmartLaunchCheck(servers, settings.fhir_allow_http_loopback)


async def read_assess_body(request: Request) -> bytes:
    """JSON only (so no page can post it cross-site as a "simple" request), at most MAX_ASSESS_BODY_BYTES."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "not-supported", "the assessment takes Content-Type: application/json")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_ASSESS_BODY_BYTES:
        raise ApiError(413, "too-long", f"the assessment body is limited to {MAX_ASSESS_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_ASSESS_BODY_BYTES:
            raise ApiError(413, "too-long", f"the assessment body is limited to {MAX_ASSESS_BODY_BYTES} bytes")
    return bytes(body)


def install_smart_app(app: FastAPI, settings: Settings, auth_settings: AuthSettings) -> None:
    """Add `/smart/*` to `app`."""
    router = APIRouter(tags=["SMART assessment app"])
    app.state.smart_launch = launch_check(settings, auth_settings)
    running = [0]  # assessments in progress in this process (one event loop: no lock needed)
    headers = page_headers(settings.smart_frame_ancestors)

    @router.get("/smart", include_in_schema=False)
    async def smart_root() -> RedirectResponse:
        return RedirectResponse("/smart/launch.html")

    @router.get("/smart/{page}", include_in_schema=False)
    async def smart_page(page: str) -> Response:
        if page in PAGES:
            return FileResponse(SMART_DIR / PAGES[page], media_type="text/html; charset=utf-8", headers=headers)
        if page == "config.json":
            return JSONResponse(
                {"clientId": settings.smart_client_id, "scope": SCOPES, "appName": APP_NAME},
                headers=headers,
            )
        return _asset(page, headers)

    @router.get("/smart/vendor/{name}", include_in_schema=False)
    async def smart_vendor(name: str) -> Response:
        return _asset(f"vendor/{name}", headers)

    @router.get("/smart/questionnaires/{qid}")
    async def questionnaire(qid: str) -> JSONResponse:
        """One of the assessment Questionnaires (FHIR R4, SDC style)."""
        found = qx.questionnaires().get(qid)
        if found is None:
            raise ApiError(404, "not-found", f"unknown questionnaire '{qid}'; one of {sorted(qx.questionnaires())}")
        return JSONResponse(found, media_type="application/fhir+json")

    @router.post("/smart/api/assess")
    async def assess_endpoint(request: Request, now=Depends(get_now)) -> Response:
        """Pre-fill, extract and preview: the engine on the chart before and after the draft answers."""
        if running[0] >= MAX_CONCURRENT_ASSESSMENTS:
            busy = outcome_response(503, "transient", "the assessment service is busy; retry in a moment")
            busy.headers["Retry-After"] = str(BUSY_RETRY_AFTER_SECONDS)
            return busy
        running[0] += 1
        try:
            return await _guarded_assess(request, now)
        finally:
            running[0] -= 1

    async def _guarded_assess(request: Request, now: datetime) -> JSONResponse:
        headers = request.headers
        check: SmartLaunchCheck = request.app.state.smart_launch
        patient_id = await run_in_threadpool(
            check.verify,
            headers.get("authorization"),
            headers.get("x-smart-fhir-server"),
            headers.get("x-smart-patient"),
        )
        raw = await read_assess_body(request)
        body = validate(AssessRequest, parse_json_body(raw, settings.max_json_depth))
        if body.patientId != patient_id:
            raise ApiError(
                403, "forbidden", "patientId is not the patient of this SMART launch", expression=["patientId"]
            )
        base_url = str(settings.external_base_url or request.base_url)
        answer = await run_in_threadpool(assess, body, now, base_url, settings.smart_client_id)
        status = 422 if answer["problems"] else 200
        return JSONResponse(answer, status_code=status, headers={"Cache-Control": "no-store"})

    app.include_router(router)


def _asset(name: str, headers: dict[str, str]) -> FileResponse:
    media = ASSETS.get(name)
    if media is None:
        raise ApiError(404, "not-found", "no such file in the SMART app")
    return FileResponse(SMART_DIR / name, media_type=f"{media}; charset=utf-8", headers=headers)
