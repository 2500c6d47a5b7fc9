"""Print CDS Hooks cards for a person at a terminal: indicator, summary, detail, suggestions, links.

Card detail is markdown; here it becomes plain text wrapped at the terminal width: emphasis marks
and backslash escapes dropped, bullets with a hanging indent, tables as aligned columns.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from typing import Any
from urllib.parse import urlencode

_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1|(?<![\w*\\])\*(?!\s)(.+?)(?<![\s\\])\*(?!\w)")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_BULLET = re.compile(r"^\s{0,3}([-*+]|\d+[.)])\s+")


def width() -> int:
    return max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))


def inline(text: str) -> str:
    """Markdown inline text as plain text: **bold** and *em* lose their marks, `\\*` becomes `*`."""
    text = _EMPHASIS.sub(lambda m: m.group(2) if m.group(2) is not None else m.group(3), text)
    return _ESCAPE.sub(r"\1", text)


def markdown_text(source: str, indent: str = "", columns: int | None = None) -> str:
    """Paragraphs, bullets and tables of card markdown as wrapped plain text."""
    columns = columns or width()
    out: list[str] = []
    for block in re.split(r"\n\s*\n", source.strip()):
        lines = block.splitlines()
        if (
            len(lines) >= 2
            and lines[0].lstrip().startswith("|")
            and set(lines[1].replace("|", "").strip()) <= set("-: ")
        ):
            out.extend(_table(lines, indent))
        else:
            out.extend(_paragraphs(lines, indent, columns))
        out.append("")
    return "\n".join(out).rstrip()


def _paragraphs(lines: list[str], indent: str, columns: int) -> list[str]:
    items: list[tuple[str, str]] = []  # (bullet marker or "", text)
    for line in lines:
        bullet = _BULLET.match(line)
        if bullet:
            items.append((bullet.group(1), line[bullet.end() :].strip()))
        elif items:
            items[-1] = (items[-1][0], items[-1][1] + " " + line.strip())
        else:
            items.append(("", line.strip()))
    out = []
    for marker, text in items:
        mark = "-" if marker in ("-", "*", "+") else marker
        first = indent + (f"{mark} " if mark else "")
        rest = indent + (" " * (len(mark) + 1) if mark else "")
        out.extend(textwrap.wrap(inline(text), columns, initial_indent=first, subsequent_indent=rest) or [first])
    return out


def _table(lines: list[str], indent: str) -> list[str]:
    rows = [
        [inline(cell.strip()) for cell in line.strip().strip("|").split("|")] for i, line in enumerate(lines) if i != 1
    ]
    widths = [max(len(row[i]) if i < len(row) else 0 for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]


_MARK = {"critical": "!!!", "warning": " ! ", "info": " i ", "hard-stop": "XXX"}


def _indent(text: str, prefix: str) -> str:
    return textwrap.indent(text.rstrip(), prefix)


def _action(action: dict[str, Any]) -> str:
    resource = action.get("resource") or {}
    what = resource.get("resourceType", action.get("resourceId", ""))
    code = ((resource.get("code") or {}).get("coding") or [{}])[0]
    parts = [f"{action.get('type', '?')} {what}".rstrip()]
    if code.get("code"):
        parts.append(f"code {code.get('code')}" + (f" ({code['display']})" if code.get("display") else ""))
    for key in ("priority", "intent", "status"):
        if resource.get(key):
            parts.append(f"{key} {resource[key]}")
    end = (resource.get("occurrencePeriod") or {}).get("end") or resource.get("occurrenceDateTime")
    if end:
        parts.append(f"due by {end}")
    line = ", ".join(parts)
    if action.get("description"):
        line = f"{action['description']} [{line}]"
    return line


def render_card(card: dict[str, Any], number: int) -> str:
    indicator = str(card.get("indicator", "?"))
    lines = [f"[{_MARK.get(indicator, ' ? ')}] {number}. {indicator.upper()}: {inline(str(card.get('summary', '')))}"]
    source = card.get("source") or {}
    topic = source.get("topic") or {}
    label = source.get("label", "")
    if topic:
        label += f" (rule {topic.get('code', '?')}" + (f" v{topic['version']}" if topic.get("version") else "") + ")"
    if source.get("url"):
        label += f" <{source['url']}>"
    lines.append(f"    source: {label}")
    spinecds = (card.get("extension") or {}).get("spinecds")
    if isinstance(spinecds, dict):
        facts = [
            f"{key}={json.dumps(value, ensure_ascii=False)}"
            for key, value in spinecds.items()
            if key not in ("ruleVersion", "merged")
        ]
        lines.append(f"    outcome: {', '.join(facts)}")
        merged = [m for m in spinecds.get("merged") or [] if isinstance(m, dict)]
        if merged:
            lines.append(
                "    merged: " + "; ".join(f"{m.get('ruleId')} ({json.dumps(m.get('outcome'))})" for m in merged)
            )
    if card.get("detail"):
        lines.append("    detail:")
        lines.append(markdown_text(str(card["detail"]), "      "))
    for n, suggestion in enumerate(card.get("suggestions") or [], start=1):
        flag = " (recommended)" if suggestion.get("isRecommended") else ""
        lines.append(f"    suggestion {n}: {inline(str(suggestion.get('label', '')))}{flag}")
        for action in suggestion.get("actions") or []:
            lines.append(f"      - {_action(action)}")
    for link in card.get("links") or []:
        lines.append(f"    link: {link.get('label', '')} <{link.get('url', '')}> ({link.get('type', '?')})")
    reasons = card.get("overrideReasons") or []
    if reasons:
        lines.append("    override reasons: " + "; ".join(r.get("display") or r.get("code", "") for r in reasons))
    if card.get("uuid"):
        lines.append(f"    uuid: {card['uuid']}")
    return "\n".join(_wrap(line) for line in lines)


def _wrap(line: str) -> str:
    """A long line (source, outcome, action) wrapped with its continuation indented under it; detail
    text is wrapped already and tables keep their columns."""
    columns = width()
    if len(line) <= columns or "\n" in line:
        return line
    indent = " " * (len(line) - len(line.lstrip()))
    return "\n".join(textwrap.wrap(line, columns, subsequent_indent=indent + "    ", break_on_hyphens=False))


def smart_launch_urls(body: dict[str, Any], fhir_base: str, patient_id: str) -> list[str]:
    """The local FHIR server's EHR-launch URL for each distinct `smart` link: what an EHR opens on a click."""
    urls: list[str] = []
    for card in body.get("cards") or []:
        for link in card.get("links") or []:
            if link.get("type") != "smart":
                continue
            query = urlencode(
                {"app": link.get("url", ""), "patient": patient_id, "appContext": link.get("appContext", "")}
            )
            url = f"{fhir_base}/auth/launch?{query}"
            if url not in urls:
                urls.append(url)
    return urls


def render_response(body: dict[str, Any]) -> str:
    cards = body.get("cards") or []
    out = [f"{len(cards)} card{'s' if len(cards) != 1 else ''}"]
    out.extend(render_card(card, n) for n, card in enumerate(cards, start=1))
    for action in body.get("systemActions") or []:
        out.append(f"system action: {_action(action)}")
    return "\n\n".join(out)
