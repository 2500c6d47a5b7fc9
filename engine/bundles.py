"""Raw FHIR JSON plumbing shared by the service, the CLI and the case runner."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def flatten(values: Iterable[Any]) -> list[dict[str, Any]]:
    """Resources from prefetch values: Bundles give their entries, each resource once (two prefetch
    keys may return the same resource); null and OperationOutcome (search warnings) give nothing."""
    resources: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()

    def add(resource: Any) -> None:
        if not isinstance(resource, dict) or resource.get("resourceType") in (None, "OperationOutcome"):
            return
        if isinstance(resource.get("id"), str):
            identity = (resource["resourceType"], resource["id"])
            if identity in seen:
                return
            seen.add(identity)
        resources.append(resource)

    for value in values:
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            for entry in value.get("entry") or []:
                add(entry.get("resource") if isinstance(entry, dict) else None)
        else:
            add(value)
    return resources


def draft_orders(context: dict[str, Any]) -> list[dict[str, Any]]:
    bundle = context.get("draftOrders")
    return flatten([bundle]) if isinstance(bundle, dict) else []
