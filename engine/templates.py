"""Placeholder filling for card text and FHIR resource templates: `{fact}` and nothing else.

No expressions, no attribute access, no format specs: a template can only read named values, so a
rule file can never run code.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_.\-]*)\}")
UNKNOWN = "unknown"
# Values the service itself supplies (not the record): they may form links on purpose.
SERVICE_VALUES = frozenset({"service.base_url"})
# Every character that can start or end markdown or HTML markup, CommonMark-escaped with a backslash
# (an escaped ASCII punctuation character renders as itself): emphasis, code, links, images, raw HTML,
# autolinks, entities, tables, strikethrough, headings and footnotes.
_MARKUP = re.compile(r"([\\`*_\[\]<>|~#&!{}])")
# GitHub-flavoured renderers turn bare URLs, www. names and e-mail addresses into links after the
# markdown is parsed, so backslash escapes cannot stop them. They are "defanged" instead, visibly,
# as security tools do: https[:]//host, www[.]host, name[@]host. Every occurrence, not only at a
# word boundary: GFM links after `_`, `*`, `~` or `(`, and micromark after any non-letter (a digit
# too), while Python's `\b` sees no boundary between `_` or a digit and a letter. A false positive
# only shows `[:]`.
_SCHEME = re.compile(r"(?i)(https?|ftp|mailto|javascript|vbscript|data|file|tel|sms|xmpp):")
_WWW = re.compile(r"(?i)(www)\.")
_EMAIL = re.compile(r"([\w.+-])@([\w-])")
# Right-to-left and left-to-right embeddings, overrides and isolates, the Arabic letter mark and
# zero-width joiners: they can make a card read differently from what it says.
_DIRECTION = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")

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


# Pure str -> str and the same record values recur on every card of every request: remembered.
@functools.lru_cache(maxsize=4096)
def plain(text: str) -> str:
    """Record text made safe to show: no control, direction-override, zero-width or other invisible
    format characters, and no line breaks (a value can never start a new markdown block)."""
    text = _DIRECTION.sub("", text)
    # Every other invisible format character goes too (tag characters can carry hidden text).
    text = "".join(
        " " if unicodedata.category(char) in ("Cc", "Zl", "Zp") else char
        for char in text
        if unicodedata.category(char) != "Cf"
    )
    return " ".join(text.split())


def defang(text: str) -> str:
    """URLs, www. names and e-mail addresses that no renderer will turn into a link."""
    text = _SCHEME.sub(r"\1[:]", text)
    text = _WWW.sub(r"\1[.]", text)
    return _EMAIL.sub(r"\1[@]\2", text)


@functools.lru_cache(maxsize=4096)
def escape_markdown(text: str) -> str:
    """Record text as literal markdown: whatever it holds renders as the same characters, never as
    markup, a link, an image or HTML."""
    escaped = _MARKUP.sub(r"\\\1", defang(plain(text)))
    # Not a list item or a heading underline when the value starts a line.
    return re.sub(r"^(\d+)([.)])(?=\s|$)", r"\1\\\2", re.sub(r"^([-+=])(?=\s|$)", r"\\\1", escaped))


# Templates come from the rule files (a few hundred, fixed until a reload): each is split once.
@functools.lru_cache(maxsize=4096)
def compiled(template: str) -> tuple[str, ...]:
    """The template as literal text and placeholder names alternating (literal first and last), so
    that filling is a join instead of a regex scan with a callback per placeholder."""
    return tuple(PLACEHOLDER.split(template))


def render_text(template: str, lookup: Lookup) -> str:
    """Fill a template whose result is not markdown (URLs, FHIR resource text); record values still
    lose control and direction-override characters."""
    parts = compiled(template)
    if len(parts) == 1:
        return template
    out = list(parts)
    for index in range(1, len(out), 2):
        out[index] = plain(show(lookup(out[index])))
    return "".join(out)


def render_card_text(template: str, lookup: Lookup) -> str:
    """Fill card text a clinician reads (summary, detail, labels, descriptions): every value from the
    record is escaped, so it shows as written and can add no markup."""
    parts = compiled(template)
    if len(parts) == 1:
        return template
    out = list(parts)
    for index in range(1, len(out), 2):
        name = out[index]
        value = lookup(name)
        if name in SERVICE_VALUES or isinstance(value, (bool, int, float)):
            out[index] = show(value)  # numbers and yes/no cannot carry markup
        else:
            out[index] = escape_markdown(show(value))
    return "".join(out)


def render_value(template: Any, lookup: Lookup) -> Any:
    """Fill a JSON-like template. A string that is exactly one placeholder keeps the value's type."""
    if isinstance(template, str):
        parts = compiled(template)
        if len(parts) == 3 and not parts[0] and not parts[2]:  # exactly one placeholder, nothing around it
            value = lookup(parts[1])
            return UNKNOWN if value is None else value
        return render_text(template, lookup)
    if isinstance(template, dict):
        return {key: render_value(value, lookup) for key, value in template.items()}
    if isinstance(template, list):
        return [render_value(value, lookup) for value in template]
    return template


def compile_value(template: Any) -> Callable[[Lookup], Any]:
    """render_value(template, ·) as a function built once: the walk over a JSON-like template (a FHIR
    resource of a suggestion) is decided ahead, and only the placeholders are filled per card. The
    template must not change afterwards (rule templates never do)."""
    if isinstance(template, str):
        parts = compiled(template)
        if len(parts) == 1:
            return lambda lookup: template
        if len(parts) == 3 and not parts[0] and not parts[2]:
            name = parts[1]

            def whole(lookup: Lookup) -> Any:
                value = lookup(name)
                return UNKNOWN if value is None else value

            return whole
        return lambda lookup: render_text(template, lookup)
    if isinstance(template, dict):
        members = [(key, compile_value(value)) for key, value in template.items()]
        return lambda lookup: {key: fill(lookup) for key, fill in members}
    if isinstance(template, list):
        items = [compile_value(value) for value in template]
        return lambda lookup: [fill(lookup) for fill in items]
    return lambda lookup: template


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
