"""When the service first saw a Condition: the presentation time of last resort.

A Condition with neither recordedDate nor onset has no time of its own. Reading it as "now" at every
chart view would restart its MRI deadline each time, so the service keeps the first time it saw it,
under a keyed hash of (calling client, FHIR server, patient, Condition id) (cds_hooks/pseudonyms.py),
never the ids. The client (JWT `iss` and `tenant`) is in the key because prefetch-only clients send no
FHIR server: without it any client could pre-seed when another client's undated `Condition/c1` of a
`p1` was "first seen", ageing that MRI deadline (the less urgent direction).
The engine gets the times as an input (`EvaluationRequest.first_seen`) and never touches the store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .pseudonyms import pseudonym
from .store import ClientId, Store, StoreError

log = logging.getLogger("spinecds.first_seen")
# The text json.dumps(..., separators=(",", ":")) gives, without building an encoder per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def _undated(resource: dict[str, Any]) -> bool:
    period = resource.get("onsetPeriod")
    return not (
        resource.get("recordedDate")
        or resource.get("onsetDateTime")
        or (isinstance(period, dict) and period.get("start"))
    )


def undated_conditions(resources: Iterable[dict[str, Any]]) -> list[str]:
    """`Condition/<id>` of every Condition with no recordedDate and no onset (only those need a time)."""
    refs = []
    for resource in resources:
        rid = resource.get("id")
        if resource.get("resourceType") == "Condition" and isinstance(rid, str) and rid and _undated(resource):
            refs.append(f"Condition/{rid}")
    return sorted(set(refs))


def condition_key(client: ClientId, fhir_server: str | None, patient_id: str, ref: str) -> str:
    """The keyed hash a first-seen time is stored under (JSON: no id can shift a field boundary)."""
    parts = ["first-seen", client.iss, client.tenant, fhir_server or "", patient_id, ref]
    return pseudonym(_COMPACT.encode(parts))


def first_seen_times(
    store: Store,
    client: ClientId,
    resources: Iterable[dict[str, Any]],
    patient_id: str,
    fhir_server: str | None,
    now: datetime,
) -> dict[str, datetime]:
    """`Condition/<id>` -> first time seen (now for a new one). A store failure gives {}: the engine then
    reads "now", the card says "presentation time not recorded", and the failure is logged."""
    refs = undated_conditions(resources)
    if not refs:
        return {}
    keys = {condition_key(client, fhir_server, patient_id, ref): ref for ref in refs}
    try:
        stored = store.first_seen(list(keys), now)
    except StoreError as error:
        log.error("first-seen times unavailable", extra={"error": str(error), "conditions": len(refs)})
        return {}
    return {keys[key]: when for key, when in stored.items() if key in keys}
