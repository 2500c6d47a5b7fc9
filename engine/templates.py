"""Placeholder filling for card text and FHIR resource templates: `{fact}` and nothing else.

No expressions, no attribute access, no format specs: a template can only read named values, so a
rule file can never run code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_.\-]*)\}")
UNKNOWN = "unknown"

Lookup = Callable[[str], Any]


def placeholders(template: Any) -> Iterable[tuple[str, tuple[Any, ...]]]:
    """Every placeholder name in a template (string, list or mapping) with its path."""
    yield from _walk(template, ())


def _walk(template: Any, path: tuple[Any, ...]) -> Iterable[tuple[str, tuple[Any, ...]]]:
    if isinstance(template, str):
        for match in PLACEHOLDER.finditer(template):
            yield match.group(1), path
    elif isinstance(template, dict):
        for key, value in template.items():
            yield from _walk(value, path + (key,))
    elif isinstance(template, list):
        for index, value in enumerate(template):
            yield from _walk(value, path + (index,))


def show(value: Any) -> str:
    if value is None:
        return UNKNOWN
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    if isinstance(value, (list, tuple)):
        return ", ".join(show(item) for item in value) if value else "none"
    return str(value)


def render_text(template: str, lookup: Lookup) -> str:
    return PLACEHOLDER.sub(lambda match: show(lookup(match.group(1))), template)


def render_value(template: Any, lookup: Lookup) -> Any:
    """Fill a JSON-like template. A string that is exactly one placeholder keeps the value's type."""
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template)
        if whole:
            value = lookup(whole.group(1))
            return UNKNOWN if value is None else value
        return render_text(template, lookup)
    if isinstance(template, dict):
        return {key: render_value(value, lookup) for key, value in template.items()}
    if isinstance(template, list):
        return [render_value(value, lookup) for value in template]
    return template


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
