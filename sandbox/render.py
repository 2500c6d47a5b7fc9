"""Print CDS Hooks cards for a person at a terminal: indicator, summary, detail, suggestions, links."""

from __future__ import annotations

import json
import textwrap
from typing import Any
from urllib.parse import urlencode

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
    lines = [f"[{_MARK.get(indicator, ' ? ')}] {number}. {indicator.upper()}: {card.get('summary', '')}"]
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
            if key not in ("ruleVersion",)
        ]
        lines.append(f"    outcome: {', '.join(facts)}")
    if card.get("detail"):
        lines.append("    detail:")
        lines.append(_indent(str(card["detail"]), "      "))
    for n, suggestion in enumerate(card.get("suggestions") or [], start=1):
        flag = " (recommended)" if suggestion.get("isRecommended") else ""
        lines.append(f"    suggestion {n}: {suggestion.get('label', '')}{flag}")
        for action in suggestion.get("actions") or []:
            lines.append(f"      - {_action(action)}")
    for link in card.get("links") or []:
        lines.append(f"    link: {link.get('label', '')} <{link.get('url', '')}> ({link.get('type', '?')})")
    reasons = card.get("overrideReasons") or []
    if reasons:
        lines.append("    override reasons: " + "; ".join(r.get("display") or r.get("code", "") for r in reasons))
    if card.get("uuid"):
        lines.append(f"    uuid: {card['uuid']}")
    return "\n".join(lines)


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
