"""The FHIR search subset the sandbox needs, on plain resource dicts (no server, no fhirstarter).

Shared by the local FHIR server (sandbox/fhir_server) and by the try-it page, which answers the
service's prefetch templates from a synthetic patient without any server: both must select the
same resources for `Observation?patient=X&code=a|b,c|d&_sort=-date&_count=50`, or the page would
show cards a real EHR would not.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

# The search parameters both implement; anything else is refused rather than silently ignored.
SUPPORTED_PARAMS = frozenset({"patient", "code", "_sort", "_count"})


def matches_patient(resource: dict[str, Any], patient: str | None) -> bool:
    if patient is None:
        return True
    wanted = patient if "/" in patient else f"Patient/{patient}"
    return (resource.get("subject") or {}).get("reference") == wanted


def matches_code(resource: dict[str, Any], code: list[str] | None) -> bool:
    """FHIR token search: `system|code`, `code` or `system|`; comma means OR, repeats mean AND."""
    if not code:
        return True
    codings = (resource.get("code") or {}).get("coding") or []
    return all(any(token_matches(alt, codings) for alt in param.split(",")) for param in code)


def token_matches(token: str, codings: list[dict[str, Any]]) -> bool:
    if "|" in token:
        system, _, value = token.partition("|")
        return any(c.get("system") == system and (not value or c.get("code") == value) for c in codings)
    return any(c.get("code") == token for c in codings)


def sort_key(resource: dict[str, Any]) -> str:
    """The clinical date `_sort=date` orders by (ISO strings of one time zone sort as text)."""
    return str(
        resource.get("effectiveDateTime")
        or (resource.get("effectivePeriod") or {}).get("start")
        or resource.get("recordedDate")
        or resource.get("onsetDateTime")
        or resource.get("performedDateTime")
        or (resource.get("performedPeriod") or {}).get("start")
        or resource.get("started")
        or resource.get("issued")
        or resource.get("authoredOn")
        or ""
    )


def select(
    resources: list[dict[str, Any]], patient: str | None, code: list[str] | None, sort: str | None
) -> list[dict[str, Any]]:
    """The matches in search order; ValueError for a `_sort` other than date / -date."""
    found = [r for r in resources if matches_patient(r, patient) and matches_code(r, code)]
    if sort in ("-date", "date"):
        found.sort(key=sort_key, reverse=sort == "-date")
    elif sort:
        raise ValueError(f"_sort={sort} is not supported")
    else:
        found.sort(key=lambda r: r["id"])  # stable order so pages never overlap
    return found


def searchset(resources: list[dict[str, Any]], total: int | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources) if total is None else total,
    }
    if resources:
        bundle["entry"] = [
            {"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}} for r in resources
        ]
    return bundle


def answer(relative_url: str, resources: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What a FHIR server holding `resources` answers to a relative read or search URL, first page only.

    `Patient/x` -> the resource (None when absent); `Type?params` -> a searchset Bundle.
    """
    parts = urlsplit(relative_url)
    path = parts.path.strip("/")
    if "/" in path:
        rtype, _, rid = path.partition("/")
        return next((r for r in resources if r.get("resourceType") == rtype and r.get("id") == rid), None)
    params: dict[str, list[str]] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        params.setdefault(key, []).append(value)
    unknown = set(params) - SUPPORTED_PARAMS
    if unknown:
        raise ValueError(f"search parameters {sorted(unknown)} are not supported")
    of_type = [r for r in resources if r.get("resourceType") == path]
    patient = params["patient"][-1] if params.get("patient") else None
    sort = params["_sort"][-1] if params.get("_sort") else None
    found = select(of_type, patient, params.get("code"), sort)
    count = int(params["_count"][-1]) if params.get("_count") else len(found)
    return searchset(found[:count], total=len(found))
