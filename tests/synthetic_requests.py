"""Hook requests for the sandbox's synthetic patients, built offline (no FHIR server): the prefetch a
CDS client would send for the service's templates, and order hooks with a draft order."""

from __future__ import annotations

import copy
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from cds_hooks.prefetch_templates import RECORD_GROUPS, observation_code_groups
from fhir_profiles.terminology import load_terminology
from sandbox.hook_client import build_request
from sandbox.patients import build_resources, patient_ids


def _searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": copy.deepcopy(r)} for r in resources],
    }


def prefetch_for(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """Prefetch keys -> data, as the templates of cds_hooks/prefetch_templates.py would return it."""
    (patient,) = [r for r in resources if r["resourceType"] == "Patient"]
    prefetch: dict[str, Any] = {
        "patient": copy.deepcopy(patient),
        "conditions": _searchset([r for r in resources if r["resourceType"] == "Condition"]),
    }
    for key, codes in observation_code_groups().items():
        wanted = set(codes)
        prefetch[key] = _searchset(
            [r for r in resources if r["resourceType"] == "Observation" and _coded_as(r, wanted)]
        )
    terminology = load_terminology()
    for key, (resource_type, concepts) in RECORD_GROUPS.items():
        # The record keys (procedures, imaging, reports, orders) as their templates search them.
        wanted = {code for concept in concepts for code in terminology.codes(concept)}
        prefetch[key] = _searchset(
            [r for r in resources if r["resourceType"] == resource_type and (not concepts or _coded_as(r, wanted))]
        )
    return prefetch


def _coded_as(resource: dict[str, Any], wanted: set[tuple[str, str]]) -> bool:
    return any((c.get("system"), c.get("code")) in wanted for c in (resource.get("code") or {}).get("coding") or [])


def hook_request_for(
    patient_id: str, hook: str, now: datetime, *, fhir_server: str | None = None, fhir_token: str | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(request body, the patient's resources). With `fhir_server` the request has no prefetch
    (the service fetches); otherwise it carries the full prefetch."""
    resources = build_resources(patient_id, now)
    request = build_request(
        hook,
        patient_id,
        now=now,
        prefetch=None if fhir_server else prefetch_for(resources),
        fhir_server=fhir_server,
        fhir_token=fhir_token,
    )
    request["hookInstance"] = str(uuid.uuid4())
    return request, resources


ORDERS_DIR = Path(__file__).resolve().parents[1] / "sandbox" / "orders"


def every_hook_call(now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """(label, request) for every synthetic patient on patient-view, and on order-select and
    order-sign with the built-in draft MRI and with every sample order of sandbox/orders/."""
    calls = []
    order_files: list[str | None] = [None, *(str(path) for path in sorted(ORDERS_DIR.glob("*.json")))]
    for patient_id in patient_ids():
        resources = build_resources(patient_id, now)
        prefetch = prefetch_for(resources)
        calls.append((f"{patient_id} patient-view", _request("patient-view", patient_id, now, prefetch, None)))
        for hook in ("order-select", "order-sign"):
            for order in order_files:
                label = f"{patient_id} {hook} {Path(order).stem if order else 'default-order'}"
                calls.append((label, _request(hook, patient_id, now, prefetch, order)))
    return calls


def _request(hook: str, patient_id: str, now: datetime, prefetch: dict[str, Any], order: str | None) -> dict[str, Any]:
    request = build_request(
        hook,
        patient_id,
        now=now,
        prefetch=copy.deepcopy(prefetch),
        fhir_server=None,
        fhir_token=None,
        draft_order_file=order,
    )
    request["hookInstance"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{patient_id}|{hook}|{order}"))
    return request
