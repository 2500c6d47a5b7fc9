"""The spec's "Use of JSON": no null and no empty values anywhere in what we send."""

from __future__ import annotations

from typing import Any


def strip_empty(value: Any) -> Any:
    """Recursively drop null, "", [] and {} members (a list or dict emptied this way goes too).
    One pass per level, no helper calls: it runs on every card of every answer."""
    if isinstance(value, dict):
        cleaned: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                item = strip_empty(item)
                if not item:
                    continue
            elif item is None or (isinstance(item, str) and not item):
                continue
            cleaned[key] = item
        return cleaned
    if isinstance(value, list):
        kept: list[Any] = []
        for item in value:
            if isinstance(item, (dict, list)):
                item = strip_empty(item)
                if not item:
                    continue
            elif item is None or (isinstance(item, str) and not item):
                continue
            kept.append(item)
        return kept
    return value
