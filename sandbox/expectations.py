"""Compare a CDS Hooks response with a sandbox patient's `expect` block (the cards INDEX.md promises).

Keys follow the rule case files (rules/README.md, "Cases"): each expected card matches `ruleId`,
`outcome` and, when given, `indicator`, `deadlineHours`, `hoursLeft`, `sins` and `survival`;
`presentRules` must fire, `absentRules` must not. A rule merged into another card (listed in its
`extension.spinecds.merged`) counts as fired; its indicator is not in the entry, so an expected
indicator is checked only on cards of their own. A card of a rule the expectation does not name is
a problem: the patient promises exactly the cards a clinician will see.
"""

from __future__ import annotations

from typing import Any

# The MESCC clock starts when the patients are loaded; firing later eats into it.
HOURS_LEFT_TOLERANCE = 1.0


def _spinecds(card: dict[str, Any]) -> dict[str, Any]:
    ext = (card.get("extension") or {}).get("spinecds")
    return ext if isinstance(ext, dict) else {}


def compare(expect: dict[str, Any], cards: list[dict[str, Any]]) -> list[str]:
    """Every way the cards differ from the expectation; empty when they match."""
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for card in cards:
        by_rule.setdefault(str(_spinecds(card).get("ruleId")), []).append(card)
        for merged in _spinecds(card).get("merged") or []:
            if isinstance(merged, dict):
                by_rule.setdefault(str(merged.get("ruleId")), []).append({"extension": {"spinecds": merged}})
    problems = []
    named = {want["ruleId"] for want in expect.get("cards") or []} | set(expect.get("presentRules") or [])
    for card in cards:
        rule = str(_spinecds(card).get("ruleId"))
        if rule not in named and rule not in (expect.get("absentRules") or []):
            problems.append(f"{rule}: unexpected extra card (outcome {_spinecds(card).get('outcome')})")
    for want in expect.get("cards") or []:
        rule = want["ruleId"]
        candidates = by_rule.get(rule) or []
        if not candidates:
            problems.append(f"{rule}: no card (expected outcome {want['outcome']})")
            continue
        # Several cards of one rule (order hooks): the expectation may match any of them.
        mismatches = [_card_problems(want, card) for card in candidates]
        if all(mismatches):
            closest: list[str] = min(mismatches, key=len)
            problems.extend(closest)
    for rule in expect.get("presentRules") or []:
        if rule not in by_rule:
            problems.append(f"{rule}: no card (expected one)")
    for rule in expect.get("absentRules") or []:
        if rule in by_rule:
            outcome = _spinecds(by_rule[rule][0]).get("outcome")
            problems.append(f"{rule}: unexpected card (outcome {outcome})")
    return problems


def _card_problems(want: dict[str, Any], card: dict[str, Any]) -> list[str]:
    rule, ext, problems = want["ruleId"], _spinecds(card), []
    if ext.get("outcome") != want["outcome"]:
        problems.append(f"{rule}: outcome {ext.get('outcome')!r}, expected {want['outcome']!r}")
    if want.get("indicator") and "indicator" in card and card.get("indicator") != want["indicator"]:
        problems.append(f"{rule}: indicator {card.get('indicator')!r}, expected {want['indicator']!r}")
    if "deadlineHours" in want and not _close(ext.get("deadlineHours"), want["deadlineHours"], 0.01):
        problems.append(f"{rule}: deadlineHours {ext.get('deadlineHours')}, expected {want['deadlineHours']}")
    if "hoursLeft" in want and not _close(ext.get("hoursLeft"), want["hoursLeft"], HOURS_LEFT_TOLERANCE):
        problems.append(
            f"{rule}: hoursLeft {ext.get('hoursLeft')}, expected {want['hoursLeft']} "
            f"(+-{HOURS_LEFT_TOLERANCE:g} h; reload the patients to restart the clock)"
        )
    sins = ext.get("sins")
    if not isinstance(sins, dict):
        sins = {}
    for key, value in (want.get("sins") or {}).items():
        if sins.get(key) != value:
            problems.append(f"{rule}: sins.{key} {sins.get(key)!r}, expected {value!r}")

    # an estimate carries `group` when one group is reachable, else `groups` (several, no median)
    def estimate(s: dict[str, Any]) -> tuple[Any, Any]:
        groups = s.get("groups")
        return s.get("model"), s.get("group") or (tuple(groups) if isinstance(groups, list) else None)

    got_groups = {estimate(s) for s in ext.get("survival") or [] if isinstance(s, dict)}
    for model in want.get("survival") or []:
        if estimate(model) not in got_groups:
            wanted = model.get("group") or "/".join(model.get("groups") or [])
            problems.append(
                f"{rule}: survival {model['model']} group {wanted} missing (got {sorted(got_groups, key=str)})"
            )
    return problems


def _close(value: Any, want: float, tolerance: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value - want) <= tolerance
