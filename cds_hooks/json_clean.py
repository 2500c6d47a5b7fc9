"""The spec's "Use of JSON": no null and no empty values anywhere in what we send."""

from __future__ import annotations

from typing import Any

_EMPTY: tuple[Any, ...] = (None, "", [], {})


def strip_empty(value: Any) -> Any:
    """Recursively drop null, "", [] and {} members (a list or dict emptied this way goes too)."""
    if isinstance(value, dict):
        cleaned = {k: strip_empty(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if not _is_empty(v)}
    if isinstance(value, list):
        cleaned_list = [strip_empty(v) for v in value]
        return [v for v in cleaned_list if not _is_empty(v)]
    return value


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and len(value) == 0)
