"""Readable text of one evaluation: facts, cards, and why each outcome fired or did not."""

from __future__ import annotations

from typing import Any

from engine.templates import show


def render_explanation(result: Any) -> str:
    trace = result.trace or {}
    facts = trace.get("facts", {})
    lines = ["# Facts", ""]
    for name, value in sorted(facts.get("patient", {}).items()):
        sources = trace.get("provenance", {}).get(name)
        lines.append(f"  {name} = {show(value)}" + (f"   <- {', '.join(sources)}" if sources else ""))
    for kind in ("symptoms", "lesions", "orders"):
        for subject in facts.get(kind, []):
            own = ", ".join(f"{k}={show(v)}" for k, v in sorted(subject.items()) if k != "missing")
            lines.append(f"  [{kind[:-1]}] {own}")
            for item in subject.get("missing", []):
                lines.append(f"      assumed/missing: {item}")
    if result.data_quality:
        lines += ["", "# Data quality"]
        lines += [f"  {item.get('resource', '?')}: {item.get('issue', '')}" for item in result.data_quality]
    lines += ["", "# Cards", ""]
    if not result.cards:
        lines.append("  (no cards)")
    for card in result.cards:
        extension = card["extension"]["spinecds"]
        lines.append(f"  [{card['indicator'].upper()}] {card['summary']}")
        lines.append(f"      rule {extension['ruleId']} v{extension['ruleVersion']}, outcome {extension['outcome']}")
        for key in ("deadlineHours", "hoursLeft", "sins", "survival", "missing"):
            if key in extension:
                lines.append(f"      {key}: {extension[key]}")
        for suggestion in card.get("suggestions", []):
            lines.append(f"      suggestion: {suggestion['label']}")
    lines += ["", "# Rules", ""]
    for entry in trace.get("rules", []):
        verdict = "FIRED " if entry["matched"] else "no    "
        why = f"  (failed: {entry['failedCondition']})" if "failedCondition" in entry else ""
        lines.append(f"  {verdict} {entry['rule']}#{entry['outcome']} on {entry['subject']}{why}")
    return "\n".join(lines)
