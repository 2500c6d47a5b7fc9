"""A minimal CDS Hooks 2.0 client: discovery, prefetch resolution against a FHIR server, the call.

It does what an EHR does when a hook fires, so a service can be tested against a FHIR sandbox
without an EHR: find the service for the hook in `{service}/cds-services`, fill its prefetch
templates from the FHIR server (or leave prefetch out and hand over fhirServer + fhirAuthorization),
build the request and POST it.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from engine.fixtures import times

from .transport import SandboxError, call, describe_failure, json_body

SANDBOX_USER = "Practitioner/sandbox"
ORDER_HOOKS = ("order-select", "order-sign")
HOOKS = ("patient-view", *ORDER_HOOKS)
# What the service may read when it fetches itself (CDS Hooks 2.0 fhirAuthorization.scope).
FHIR_SCOPE = "patient/Patient.read patient/Condition.read patient/Observation.read patient/Procedure.read"
_TOKEN = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


@dataclass
class Prefetch:
    values: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # key -> why it was left out


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def resolve_now(value: Any, now: datetime) -> Any:
    """ "now", "in 14 days", "3 hours ago" anywhere in a draft order file -> ISO instants (as in rule cases)."""
    return times.resolve(value, now)


# ---------------------------------------------------------------- discovery


def discover(s: requests.Session, service_base: str, hook: str, service_id: str | None = None) -> dict[str, Any]:
    """The discovery entry of the service for `hook` (or with id `service_id`)."""
    url = f"{service_base.rstrip('/')}/cds-services"
    response = call(s, "GET", url, "CDS service discovery")
    body = json_body(response)
    if not response.ok or not isinstance(body, dict) or not isinstance(body.get("services"), list):
        raise SandboxError(f"CDS service discovery at {url} failed: {describe_failure(response)}")
    services = [svc for svc in body["services"] if isinstance(svc, dict)]
    if service_id:
        chosen = [svc for svc in services if svc.get("id") == service_id]
    else:
        chosen = [svc for svc in services if svc.get("hook") == hook]
    if not chosen:
        offered = ", ".join(f"{svc.get('id')} ({svc.get('hook')})" for svc in services) or "none"
        wanted = f"id {service_id!r}" if service_id else f"hook {hook!r}"
        raise SandboxError(f"no CDS service for {wanted} at {url}; offered: {offered}")
    return chosen[0]


# ---------------------------------------------------------------- prefetch


def fill_template(template: str, context: dict[str, Any]) -> str | None:
    """Replace {{context.x}} tokens; None when a token cannot be filled (then the key is left out)."""
    missing = False

    def replace(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1)
        value = context.get(name.removeprefix("context.")) if name.startswith("context.") else None
        if name == "userPractitionerId" and str(context.get("userId", "")).startswith("Practitioner/"):
            value = context["userId"].split("/", 1)[1]
        if not isinstance(value, str):
            missing = True
            return ""
        return value

    filled = _TOKEN.sub(replace, template)
    return None if missing else filled


def resolve_prefetch(
    s: requests.Session, fhir_base: str, templates: dict[str, str], context: dict[str, Any]
) -> Prefetch:
    """GET every template's relative URL on the FHIR server; a failure leaves that key out."""
    result = Prefetch()
    for key, template in templates.items():
        relative = fill_template(template, context)
        if relative is None:
            result.failed[key] = f"template {template!r} has a token this client cannot fill"
            continue
        url = f"{fhir_base.rstrip('/')}/{relative.lstrip('/')}"
        try:
            response = call(s, "GET", url, f"prefetch {key}")
        except SandboxError as exc:
            result.failed[key] = str(exc)
            continue
        body = json_body(response)
        if response.ok and isinstance(body, dict) and "resourceType" in body:
            result.values[key] = body
        else:
            result.failed[key] = describe_failure(response).splitlines()[0]
    return result


# ---------------------------------------------------------------- request


def default_draft_mri(patient_id: str, now: datetime) -> dict[str, Any]:
    """A routine MRI spine order due in 14 days: late for every tier but 5, so order hooks have work."""
    return {
        "resourceType": "ServiceRequest",
        "id": "sandbox-draft-mri",
        "status": "draft",
        "intent": "order",
        "priority": "routine",
        "code": {
            "coding": [
                {
                    "system": "http://spinecds.org/fhir/CodeSystem/spine-findings",
                    "code": "mri-whole-spine",
                    "display": "MRI whole spine",
                }
            ],
            "text": "MRI whole spine (T1 + T2)",
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": _instant(now),
        "occurrencePeriod": {"start": _instant(now), "end": _instant(now + timedelta(days=14))},
        "requester": {"reference": SANDBOX_USER},
    }


def draft_orders(patient_id: str, now: datetime, path: str | None) -> dict[str, Any]:
    """The draftOrders Bundle: from a file (a resource or a Bundle; "in 14 days" allowed) or the built-in MRI."""
    if path is None:
        resources: list[Any] = [default_draft_mri(patient_id, now)]
    else:
        try:
            loaded = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SandboxError(f"--draft-order {path}: cannot read JSON: {exc}") from None
        loaded = resolve_now(loaded, now)
        if not isinstance(loaded, dict) or "resourceType" not in loaded:
            raise SandboxError(f"--draft-order {path}: expected a FHIR resource or Bundle")
        if loaded["resourceType"] == "Bundle":
            # Checked one by one below, so a bad entry is reported with its number.
            resources = [entry.get("resource") for entry in loaded.get("entry") or [] if isinstance(entry, dict)]
        else:
            resources = [loaded]
        for n, resource in enumerate(resources, start=1):
            if not isinstance(resource, dict) or "resourceType" not in resource:
                raise SandboxError(f"--draft-order {path}: entry {n} is not a FHIR resource")
            resource.setdefault("id", f"sandbox-draft-{n}")
            resource.setdefault("status", "draft")
            # The file is patient-independent: the order is for the patient the hook fires on.
            resource["subject"] = {"reference": f"Patient/{patient_id}"}
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": resource} for resource in resources]}


def fhir_authorization(token: str) -> dict[str, Any]:
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": FHIR_SCOPE,
        "subject": "spinecds-sandbox",
    }


def build_request(
    hook: str,
    patient_id: str,
    *,
    now: datetime | None = None,
    prefetch: dict[str, Any] | None,
    fhir_server: str | None,
    fhir_token: str | None,
    draft_order_file: str | None = None,
) -> dict[str, Any]:
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    context: dict[str, Any] = {"userId": SANDBOX_USER, "patientId": patient_id}
    if hook in ORDER_HOOKS:
        orders = draft_orders(patient_id, now, draft_order_file)
        context["draftOrders"] = orders
        if hook == "order-select":
            context["selections"] = [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in orders["entry"]]
    request: dict[str, Any] = {"hookInstance": str(uuid.uuid4()), "hook": hook, "context": context}
    if fhir_server:
        request["fhirServer"] = fhir_server.rstrip("/")
        if fhir_token:
            request["fhirAuthorization"] = fhir_authorization(fhir_token)
    if prefetch is not None:
        request["prefetch"] = prefetch
    return request


def post_hook(s: requests.Session, service_base: str, service_id: str, request: dict[str, Any]) -> requests.Response:
    url = f"{service_base.rstrip('/')}/cds-services/{service_id}"
    return call(
        s, "POST", url, f"calling CDS service {service_id}", json=request, headers={"Content-Type": "application/json"}
    )


# ---------------------------------------------------------------- one hook, as an EHR fires it


@dataclass
class HookCall:
    request: dict[str, Any]  # what was sent (fhirAuthorization's token included: mask before showing)
    response: requests.Response
    body: Any  # the parsed JSON answer, None when it is not JSON
    prefetch_failed: dict[str, str] = field(default_factory=dict)  # key -> why it was left out


def fire(
    service_session: requests.Session,
    service_base: str,
    service: dict[str, Any],
    hook: str,
    patient_id: str,
    *,
    fhir_session: requests.Session,
    fhir_base: str,
    prefetch: bool = True,
    send_fhir_server: bool = False,
    fhir_token: str | None = None,
    draft_order_file: str | None = None,
    now: datetime | None = None,
) -> HookCall:
    """Resolve the service's prefetch on the FHIR server (unless `prefetch` is False), build the
    request (with fhirServer + fhirAuthorization when `send_fhir_server`) and POST it."""
    context = {"userId": SANDBOX_USER, "patientId": patient_id}
    values: dict[str, Any] | None = None
    failed: dict[str, str] = {}
    if prefetch:
        resolved = resolve_prefetch(fhir_session, fhir_base, service.get("prefetch") or {}, context)
        values, failed = resolved.values, resolved.failed
    request = build_request(
        hook,
        patient_id,
        now=now,
        prefetch=values,
        fhir_server=fhir_base if send_fhir_server else None,
        fhir_token=fhir_token,
        draft_order_file=draft_order_file,
    )
    response = post_hook(service_session, service_base, service["id"], request)
    return HookCall(request, response, json_body(response), failed)
