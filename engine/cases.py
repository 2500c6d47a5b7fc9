"""Run the example cases that sit beside each rule (rules/<id>/cases/*.yaml).

A case describes a patient in clinical terms and the cards its rule must return (engine.case_file).
The same runner serves the generic pytest test, `spinecds rules test`, and the self-check before the
engine serves or swaps. A failing case says what differed AND why: the rule's outcomes with the
condition that failed, from the same trace `spinecds rules explain` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from engine.bundles import draft_orders, flatten
from engine.case_file import CaseFileError, hook_call, read_case
from engine.compiler import CompiledRules
from engine.request import EvaluationRequest, EvaluationResult


class Engine(Protocol):
    """What the runner needs of engine.api.Engine (named here so that cases never imports api)."""

    compiled: CompiledRules
    rules_dir: Path

    def evaluate(self, request: EvaluationRequest) -> EvaluationResult: ...


# Cases are pinned to one instant so that a failure is reproducible; "3 days ago" is relative to it.
CASE_NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
CASE_BASE_URL = "https://cds.example.org"
CASE_SUFFIX = ".yaml"


@dataclass
class CaseResult:
    path: Path
    rule_id: str
    title: str
    problems: list[str] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)
    why: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def report(self) -> list[str]:
        """What failed, then why (the rule's outcomes and the condition each one failed on)."""
        return [
            *self.problems,
            *(["why (the rule trace, as `spinecds rules explain` shows it):"] if self.why else []),
            *self.why,
        ]


def case_files(rules_dir: Path) -> list[tuple[str, Path]]:
    """Every case file, and every other file in a cases/ folder, so that none is silently skipped."""
    return sorted(
        (path.parent.parent.name, path)
        for path in rules_dir.glob("*/cases/*")
        if path.is_file() and not path.name.startswith(".")
    )


def request_from_hook_call(
    body: dict[str, Any],
    now: datetime,
    base_url: str = CASE_BASE_URL,
    want_trace: bool = False,
    timezone: str | None = None,
) -> EvaluationRequest:
    context = body.get("context") or {}
    prefetch = body.get("prefetch") or {}
    return EvaluationRequest(
        hook=body.get("hook", ""),
        hook_instance=body.get("hookInstance", "case"),
        patient_id=str(context.get("patientId", "")),
        resources=flatten(prefetch.values()),
        now=now,
        draft_orders=draft_orders(context),
        selections=list(context.get("selections") or []),
        want_trace=want_trace,
        base_url=base_url,
        timezone=timezone,
    )


def run_case(engine: Engine, rule_id: str, path: Path, now: datetime = CASE_NOW) -> CaseResult:
    if path.suffix != CASE_SUFFIX:
        hint = (
            " (the old generated format: write it as YAML, see rules/README.md, Cases)"
            if path.suffix == ".json"
            else ""
        )
        return CaseResult(path, rule_id, path.stem, [f"not a case file: cases/ holds only *{CASE_SUFFIX}{hint}"])
    try:
        case = read_case(path)
        body = hook_call(case, rule_id, now)
    except (OSError, CaseFileError) as error:
        return CaseResult(path, rule_id, path.stem, [f"cannot read case: {error}"])
    result = CaseResult(path, rule_id, case.title)
    try:
        evaluation = engine.evaluate(request_from_hook_call(body, now, timezone=case.timezone))
    except Exception as error:  # noqa: BLE001 - one broken case must not hide the others
        result.problems.append(f"evaluation failed: {type(error).__name__}: {error}")
        return result
    result.cards = evaluation.cards
    # A rule merged into another card (engine/card_merge.py) still fired: its complete card counts
    # as that rule's card here, so a case can assert its outcome, indicator and text.
    result.problems = compare(rule_id, case.expect, evaluation.cards + evaluation.merged_cards, now)
    if result.problems:
        result.why = explain_rule(engine, rule_id, body, now, case.timezone)
    return result


def explain_rule(
    engine: Engine, rule_id: str, body: dict[str, Any], now: datetime, timezone: str | None = None
) -> list[str]:
    """The trace lines of `rule_id` (and of rules named in the failure) for a failing case."""
    traced = engine.evaluate(request_from_hook_call(body, now, want_trace=True, timezone=timezone))
    lines = []
    for entry in (traced.trace or {}).get("rules", []):
        if entry["rule"] != rule_id:
            continue
        verdict = "FIRED" if entry["matched"] else "no   "
        why = f"  (failed: {entry['failedCondition']})" if "failedCondition" in entry else ""
        lines.append(f"  {verdict} {entry['rule']}#{entry['outcome']} on {entry['subject']}{why}")
    for item in traced.data_quality or []:
        lines.append(f"  data quality: {item.get('resource', '?')}: {item.get('issue', '')}")
    return lines


def run_all_cases(engine: Engine, now: datetime = CASE_NOW) -> list[CaseResult]:
    active = {rule.id for rule in engine.compiled.rules}
    return [run_case(engine, rule_id, path, now) for rule_id, path in case_files(engine.rules_dir) if rule_id in active]


def _spinecds(card: dict[str, Any]) -> dict[str, Any]:
    return card.get("extension", {}).get("spinecds", {})


def compare(rule_id: str, expect: dict[str, Any], cards: list[dict[str, Any]], now: datetime = CASE_NOW) -> list[str]:
    problems: list[str] = []
    own = [card for card in cards if _spinecds(card).get("ruleId") == rule_id]
    wanted = expect.get("cards", [])
    if len(own) != len(wanted):
        got = ", ".join(f"{_spinecds(c).get('outcome')} ({c['indicator']})" for c in own) or "no card"
        problems.append(f"expected {len(wanted)} {rule_id} card(s), got {len(own)}: {got}")
        return problems
    for card, want in zip(own, wanted, strict=True):
        problems.extend(_compare_card(card, want, now))
    present = {_spinecds(card).get("ruleId") for card in cards}
    for other in expect.get("absentRules", []):
        if other in present:
            problems.append(f"rule {other} must not fire, but it returned a card")
    for other in expect.get("presentRules", []):
        if other not in present:
            problems.append(f"rule {other} must fire, but returned no card")
    for card in cards:
        if len(card["summary"]) >= 140:
            problems.append(f"{_spinecds(card).get('ruleId')}: summary has {len(card['summary'])} characters (< 140)")
    return problems


def _same_instant(expected: Any, actual: Any, now: datetime) -> bool:
    """dueBy: the expected value is an instant or a relative time ("in 12 hours", "2 hours ago")."""
    from engine.fixtures import times
    from engine.localtime import moment

    if not isinstance(actual, str):
        return False
    want = times.at(expected, now, "dueBy") if times.is_relative(expected) else expected
    return moment(want) == moment(actual)


def _compare_card(card: dict[str, Any], want: dict[str, Any], now: datetime = CASE_NOW) -> list[str]:
    problems = []
    extension = _spinecds(card)

    def check(label: str, expected: Any, actual: Any) -> None:
        if expected != actual:
            problems.append(f"{label}: expected {expected!r}, got {actual!r}")

    check("indicator", want.get("indicator"), card.get("indicator"))
    check("outcome", want.get("outcome"), extension.get("outcome"))
    for key in ("deadlineHours", "hoursLeft"):
        if key in want:
            check(key, want[key], extension.get(key))
    if "dueBy" in want and not _same_instant(want["dueBy"], extension.get("dueBy"), now):
        problems.append(f"dueBy: expected {want['dueBy']!r}, got {extension.get('dueBy')!r}")
    if "sins" in want:
        for key, value in want["sins"].items():
            check(f"sins.{key}", value, extension.get("sins", {}).get(key))
    if "survival" in want:
        # an entry carries `group` when one group is reachable, else `groups` (a list, no median)
        def estimate(s: dict[str, Any]) -> tuple[Any, ...]:
            return (s.get("model"), s.get("group"), tuple(s.get("groups") or ()))

        check("survival", [estimate(s) for s in want["survival"]], [estimate(s) for s in extension.get("survival", [])])
        for wanted, got_entry in zip(want["survival"], extension.get("survival", []), strict=False):
            if "medianMonths" in wanted:
                check("survival medianMonths", wanted["medianMonths"], got_entry.get("medianMonths"))
    for item in want.get("missing", []):
        if not any(item.lower() in entry.lower() for entry in extension.get("missing", [])):
            problems.append(f"missing: expected an item mentioning {item!r}, got {extension.get('missing', [])}")
    for key, field_name in (("summaryContains", "summary"), ("detailContains", "detail")):
        expected = want.get(key)
        for fragment in [expected] if isinstance(expected, str) else (expected or []):
            if fragment.lower() not in card.get(field_name, "").lower():
                problems.append(f"{field_name} should contain {fragment!r}: {card.get(field_name, '')[:160]!r}")
    suggestions = card.get("suggestions", [])
    first_action = suggestions[0]["actions"][0] if suggestions and suggestions[0].get("actions") else {}
    if "suggestionResource" in want:
        check("suggestion resource", want["suggestionResource"], first_action.get("resource", {}).get("resourceType"))
    if "suggestionAction" in want:
        check("suggestion action", want["suggestionAction"], first_action.get("type"))
    if "suggestionPriority" in want:
        check("suggestion priority", want["suggestionPriority"], first_action.get("resource", {}).get("priority"))
    if "overrideReasons" in want and len(card.get("overrideReasons", [])) < want["overrideReasons"]:
        problems.append(
            f"override reasons: expected at least {want['overrideReasons']}, got {len(card.get('overrideReasons', []))}"
        )
    return problems
