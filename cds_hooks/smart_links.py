"""A `smart` link to the assessment app on every card that lacks data (non-empty `missing`, its own or
that of a rule merged into it).

CDS Hooks 2.0: a link of type `smart` is a SMART launch URL; the EHR launches it with `launch` and
`iss`, and hands `appContext` to the app in the token response. Ours is a small JSON object naming
what to ask, so the app opens on the right questions:

    {"ruleId": "sins-referral", "questions": ["sins"], "levels": ["T12"], "missing": ["SINS pain component missing"]}
"""

from __future__ import annotations

import json
from typing import Any

LAUNCH_PATH = "/smart/launch.html"
LABEL = "Complete the assessment (SMART app)"
# Which questionnaire settles a missing item: words in the item, then the rule that asked.
QUESTIONS_BY_WORD = (
    ("sins", "sins"),
    ("kps", "performance"),
    ("ecog", "performance"),
    ("performance", "performance"),
    ("visceral", "staging"),
    ("brain", "staging"),
    ("laterality", "symptoms"),
    ("course", "symptoms"),
    ("onset", "symptoms"),
    ("side", "symptoms"),
)
QUESTIONS_BY_RULE = {
    "sins-referral": ["sins"],
    "surgery-eligibility": ["performance", "staging", "sins"],
    "survival-estimate": ["performance", "staging"],
    "mri-urgency": ["symptoms"],
}
MAX_APP_CONTEXT = 2000  # keep the launch URL and the token response small


def _questions(rule_id: str, missing: list[str]) -> list[str]:
    found: list[str] = []
    for item in missing:
        lowered = item.lower()
        for word, question in QUESTIONS_BY_WORD:
            if word in lowered and question not in found:
                found.append(question)
    for question in QUESTIONS_BY_RULE.get(rule_id, []):
        if question not in found and (not found or rule_id != "mri-urgency"):
            found.append(question)
    return found or ["sins", "performance", "staging", "symptoms"]


def _missing(spinecds: dict[str, Any]) -> list[str]:
    """What the card lacks: its own missing items and those of the rules merged into it."""
    found: list[str] = []
    for part in [spinecds, *[m for m in spinecds.get("merged") or [] if isinstance(m, dict)]]:
        for item in part.get("missing") or []:
            if str(item) not in found:
                found.append(str(item))
    return found


def app_context(spinecds: dict[str, Any]) -> str:
    missing = _missing(spinecds)
    context: dict[str, Any] = {
        "ruleId": spinecds.get("ruleId"),
        "questions": _questions(str(spinecds.get("ruleId")), missing),
    }
    level = (spinecds.get("sins") or {}).get("level")
    if level:
        context["levels"] = [str(level)]
    context["missing"] = missing
    text = json.dumps(context, separators=(",", ":"))
    while len(text) > MAX_APP_CONTEXT and context["missing"]:
        context["missing"].pop()
        text = json.dumps(context, separators=(",", ":"))
    return text


def add_smart_links(cards: list[dict[str, Any]], base_url: str) -> list[dict[str, Any]]:
    """Append the app link to each card whose outcome lacks data; other cards are left as they are."""
    url = base_url.rstrip("/") + LAUNCH_PATH
    for card in cards:
        spinecds = (card.get("extension") or {}).get("spinecds") or {}
        if not isinstance(spinecds, dict) or not _missing(spinecds):
            continue
        links = [link for link in card.get("links") or [] if link.get("type") != "smart" or link.get("url") != url]
        links.append({"label": LABEL, "url": url, "type": "smart", "appContext": app_context(spinecds)})
        card["links"] = links
    return cards
