"""Load sandbox patients into a FHIR server: one transaction per patient, PUT per resource as fallback.

Every entry is `PUT <type>/<id>` with a stable id, so loading twice updates instead of duplicating.
Servers that reject transactions (or say in their CapabilityStatement that they have none) get the
same resources one PUT at a time, Patient first so references resolve.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from . import patients
from .transport import FHIR_JSON, SandboxError, call, describe_failure, json_body


@dataclass
class LoadResult:
    patient_id: str
    mode: str  # transaction | put
    written: list[tuple[str, str]] = field(default_factory=list)  # (created|updated, Type/id)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (Type/id, reason)
    skipped: dict[str, int] = field(default_factory=dict)  # resource type the server lacks -> count
    fallback_reason: str | None = None


@dataclass
class Capabilities:
    transaction: bool | None = None  # None: the server did not say (then just try)
    resource_types: set[str] | None = None  # None: the server did not list them


def capabilities(s: requests.Session, base: str) -> Capabilities:
    """What the CapabilityStatement says about transactions and resource types; unknown when absent."""
    response = call(s, "GET", f"{base}/metadata", "reading the FHIR server's CapabilityStatement")
    body = json_body(response)
    if not response.ok or not isinstance(body, dict) or body.get("resourceType") != "CapabilityStatement":
        return Capabilities()
    rests = [rest for rest in body.get("rest") or [] if rest.get("mode", "server") == "server"]
    if not rests:
        return Capabilities()
    transaction = any(
        i.get("code") in ("transaction", "batch-transaction") for rest in rests for i in rest.get("interaction") or []
    )
    types = {r.get("type") for rest in rests for r in rest.get("resource") or [] if r.get("type")}
    return Capabilities(transaction, types or None)


def _outcome(status: str) -> str:
    return "created" if str(status).startswith("201") else "updated"


def _post_transaction(
    s: requests.Session, base: str, bundle: dict[str, Any]
) -> tuple[list[tuple[str, str]] | None, str]:
    """Written resources, or None and the reason when the server rejected the transaction."""
    response = call(
        s,
        "POST",
        base,
        "posting the transaction Bundle",
        json=bundle,
        headers={"Content-Type": FHIR_JSON, "Prefer": "return=minimal"},
    )
    if not response.ok:
        return None, describe_failure(response)
    body = json_body(response)
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        return None, f"HTTP {response.status_code} but the answer is not a transaction-response Bundle"
    entries = body.get("entry") or []
    if len(entries) != len(bundle["entry"]):
        return None, f"transaction-response has {len(entries)} entries for {len(bundle['entry'])} requests"
    written = []
    for request_entry, response_entry in zip(bundle["entry"], entries, strict=True):
        status = (response_entry.get("response") or {}).get("status", "")
        written.append((_outcome(status), request_entry["request"]["url"]))
    return written, ""


def _put_each(s: requests.Session, base: str, bundle: dict[str, Any], result: LoadResult) -> None:
    for entry in bundle["entry"]:
        url = entry["request"]["url"]
        response = call(
            s,
            "PUT",
            f"{base}/{url}",
            f"PUT {url}",
            json=entry["resource"],
            headers={"Content-Type": FHIR_JSON, "Prefer": "return=minimal"},
        )
        if response.ok:
            result.written.append((_outcome(str(response.status_code)), url))
        else:
            result.failed.append((url, describe_failure(response)))


def load_patients(
    base: str,
    s: requests.Session,
    patient_ids: list[str],
    now: datetime | None = None,
    force_put: bool = False,
    progress: Callable[[LoadResult], None] | None = None,
) -> list[LoadResult]:
    """Load each patient; raises SandboxError when the server cannot be reached."""
    base = base.rstrip("/")
    caps = capabilities(s, base)
    use_transaction = not force_put and caps.transaction is not False
    results = []
    for pid in patient_ids:
        bundle = patients.build_bundle(pid, now, base_url=base)
        result = LoadResult(pid, "transaction" if use_transaction else "put")
        if caps.resource_types is not None:
            # A server without e.g. Procedure would reject the whole transaction: leave those out.
            kept = []
            for entry in bundle["entry"]:
                rtype = entry["resource"]["resourceType"]
                if rtype in caps.resource_types:
                    kept.append(entry)
                else:
                    result.skipped[rtype] = result.skipped.get(rtype, 0) + 1
            bundle["entry"] = kept
        if not use_transaction:
            result.fallback_reason = (
                "forced with --put" if force_put else "the server's CapabilityStatement lists no transaction"
            )
            _put_each(s, base, bundle, result)
        else:
            written, reason = _post_transaction(s, base, bundle)
            if written is None:
                result.mode, result.fallback_reason = "put", f"transaction rejected: {reason}"
                _put_each(s, base, bundle, result)
            else:
                result.written = written
        if progress:
            progress(result)
        results.append(result)
    return results


def resolve_patient_ids(requested: list[str] | None) -> list[str]:
    """Accept p01 / spinecds-p01 / Patient/spinecds-p01; no list means every sandbox patient."""
    if not requested:
        return patients.patient_ids()
    ids = []
    for item in requested:
        try:
            ids.append(patients.ID_PREFIX + patients.description(item)["id"])
        except KeyError as exc:
            raise SandboxError(str(exc.args[0])) from None
    return ids
