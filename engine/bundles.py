"""Raw FHIR JSON plumbing shared by the service, the CLI and the case runner."""

from __future__ import annotations

from typing import Any, Iterable


def flatten(values: Iterable[Any]) -> list[dict[str, Any]]:
    """Resources from prefetch values: Bundles give their entries; null and OperationOutcome nothing."""
    resources: list[dict[str, Any]] = []
    for value in values:
        if not isinstance(value, dict):
            continue
        kind = value.get("resourceType")
        if kind == "Bundle":
            for entry in value.get("entry") or []:
                resource = entry.get("resource") if isinstance(entry, dict) else None
                if isinstance(resource, dict) and resource.get("resourceType") not in (None, "OperationOutcome"):
                    resources.append(resource)
        elif kind and kind != "OperationOutcome":
            resources.append(value)
    return resources


def draft_orders(context: dict[str, Any]) -> list[dict[str, Any]]:
    bundle = context.get("draftOrders")
    return flatten([bundle]) if isinstance(bundle, dict) else []
