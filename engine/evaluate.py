"""Facts -> fired rules: build subjects, run each stage through durable-rules, pick winners.

A rule's winner is its first listed outcome that matched any subject; within that outcome the
deciding subject is the first match (or the one the outcome `prefer`s). Winners publish
`<rule-id>.fired`, `.outcome` and their `sets` for the next stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from engine.compiler import DUE_NAMES, CompiledOutcome, CompiledRules
from engine.conditions import durable_key, first_failure, holds
from engine.durable_runner import DurableRunner
from engine.localtime import due_description, moment, zone
from engine.templates import render_value

SUBJECT_KINDS = (("symptom", "symptoms"), ("lesion", "lesions"), ("order", "orders"))


class FactsLike(Protocol):
    patient: dict[str, Any]
    symptoms: list[dict[str, Any]]
    lesions: list[dict[str, Any]]
    orders: list[dict[str, Any]]


@dataclass(frozen=True)
class Subject:
    kind: str
    facts: dict[str, Any]  # patient facts merged with the subject's own


@dataclass
class Fired:
    outcome: CompiledOutcome
    subject: Subject
    sets: dict[str, Any]
    value: Any  # the rendered `outcome`
    # A later outcome of the same rule that decided on another subject keeps what the first winner
    # assumed (e.g. "laterality unknown: read as bilateral" behind an overdue card): it still holds.
    carried_missing: list[str] = field(default_factory=list)


@dataclass
class Decision:
    fired: list[Fired]  # one per rule, in rule id order
    published: dict[str, Any]
    trace: list[dict[str, Any]] = field(default_factory=list)


def build_subjects(facts: FactsLike) -> list[Subject]:
    subjects = [Subject("patient", dict(facts.patient))]
    for kind, attribute in SUBJECT_KINDS:
        for own in getattr(facts, attribute):
            subjects.append(Subject(kind, {**facts.patient, **own}))
    return subjects


def _durable_fact(index: int, subject: Subject, published: dict[str, Any], used: frozenset[str]) -> dict[str, Any]:
    """Only the facts some condition reads: each one is serialised into the C engine per subject."""
    fact: dict[str, Any] = {"kind": subject.kind, "i": index}
    for source in (subject.facts, published):
        for name, value in source.items():
            if name in used and isinstance(value, (str, int, float, bool)):  # lists never reach durable-rules
                # Exact JSON types: a subclass (numpy, an enum) could be written in a form the C reader crashes on.
                fact[durable_key(name)] = value if type(value) in _EXACT else _exact(value)
    return fact


_EXACT = (str, int, float, bool)


def _exact(value: Any) -> Any:
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str.__str__(value)


def value_lookup(subject: Subject, published: dict[str, Any], sets: dict[str, Any], extra: dict[str, Any]):
    def lookup(name: str) -> Any:
        if name in extra:
            return extra[name]
        if name.startswith("sets."):
            return sets.get(name[5:])
        if name in subject.facts:
            return subject.facts[name]
        return published.get(name)

    return lookup


def _coerce_number(value: Any) -> Any:
    """`sets` values filled from placeholders arrive as text; numbers must stay numbers."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    return value


def _choose_subject(outcome: CompiledOutcome, indexes: list[int], subjects: list[Subject]) -> Subject:
    prefer = outcome.outcome.prefer_highest
    candidates = [subjects[i] for i in sorted(set(indexes))]
    if isinstance(prefer, str):
        ranked = [s for s in candidates if isinstance(s.facts.get(prefer), (int, float))]
        if ranked:
            return max(ranked, key=lambda s: s.facts[prefer])
    return candidates[0]


def decide(
    compiled: CompiledRules,
    runner: DurableRunner | None,
    facts: FactsLike,
    extra: dict[str, Any],
    want_trace: bool = False,
    now: datetime | None = None,
    timezone: str | None = None,
) -> Decision:
    """Evaluate every stage. With `runner=None` the conditions are evaluated in plain Python
    (the benchmark's baseline and a cross-check in tests); production always uses durable-rules."""
    subjects = build_subjects(facts)
    published: dict[str, Any] = {}
    matches: dict[str, list[int]] = {}
    winners: dict[str, Fired] = {}
    trace: list[dict[str, Any]] = []
    stage_count = len(compiled.stages)

    for stage in range(stage_count):
        stage_outcomes = compiled.outcomes_in_stage(stage)
        if runner is not None:
            # Subjects no rule of this stage is about would only fire the catch-all rule: not sent.
            scopes = {o.outcome.scope for o in stage_outcomes}
            fired = runner.run(
                stage,
                [
                    _durable_fact(i, s, published, compiled.used_facts)
                    for i, s in enumerate(subjects)
                    if s.kind in scopes
                ],
            )
        else:
            fired = [
                (o.action, i)
                for o in stage_outcomes
                for i, s in enumerate(subjects)
                if s.kind == o.outcome.scope and all(holds(c, {**s.facts, **published}) for c in o.conditions)
            ]
        for action, index in fired:
            matches.setdefault(action, []).append(index)
        if want_trace:
            trace.extend(_trace_stage(stage, stage_outcomes, subjects, published, matches))
        for rule in compiled.rules:
            candidates = [o for o in compiled.outcomes_of(rule.id) if o.stage <= stage and o.action in matches]
            if not candidates:
                continue
            best = min(candidates, key=lambda o: o.order)
            current = winners.get(rule.id)
            if current is not None and current.outcome is best:
                continue
            subject = _choose_subject(best, matches[best.action], subjects)
            clock = None
            if now is not None:
                clock = _clock(compiled, rule.id, best, stage, subject, subjects, matches, published, now, timezone)
            fired_now = _fire(best, subject, published, extra, clock)
            if current is not None and current.subject is not subject:
                fired_now.carried_missing = [*current.carried_missing, *(current.subject.facts.get("missing") or [])]
            winners[rule.id] = fired_now
            _publish(rule.id, winners[rule.id], published)

    ordered = [winners[rule.id] for rule in compiled.rules if rule.id in winners]
    return Decision(fired=ordered, published=published, trace=trace)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _clock(
    compiled: CompiledRules,
    rule_id: str,
    best: CompiledOutcome,
    stage: int,
    subject: Subject,
    subjects: list[Subject],
    matches: dict[str, list[int]],
    published: dict[str, Any],
    now: datetime,
    timezone: str | None,
) -> dict[str, Any] | None:
    """The due time of the winning outcome, as engine/localtime.due_description describes it.

    - A symptom outcome with `deadline_hours`: every finding the rule's symptom outcomes matched is
      due at its presentation time + the hours of the first (most urgent) outcome it matched; the
      card's due time is the earliest of them (which may be another finding than the tier's).
    - An outcome with `clock_window_hours`: the MESCC diagnosis time + the window.
    - Otherwise a later outcome of the same rule keeps the due time its earlier winner published.
    """
    tz = zone(timezone)
    sets = best.outcome.sets
    if best.outcome.scope == "symptom" and _number(sets.get("deadline_hours")) is not None:
        first: dict[int, CompiledOutcome] = {}
        for outcome in compiled.outcomes_of(rule_id):
            hours = _number(outcome.outcome.sets.get("deadline_hours"))
            if outcome.stage > stage or outcome.outcome.scope != "symptom" or hours is None:
                continue
            for index in matches.get(outcome.action, []):
                if index not in first or outcome.order < first[index].order:
                    first[index] = outcome
        best_left, finding = None, None
        for index, outcome in first.items():
            facts = subjects[index].facts
            presented = moment(facts.get("symptom.presented_at"))
            ago = _number(facts.get("symptom.presented_hours_ago"))
            if presented is not None:
                ago = (now - presented) / timedelta(hours=1)
            if ago is None:
                continue
            left = float(outcome.outcome.sets["deadline_hours"]) - ago
            if best_left is None or left < best_left:
                best_left, finding = left, subjects[index].facts.get("symptom.display")
        if best_left is None:
            return None
        clock = due_description(now + timedelta(hours=best_left), now, tz)
        clock["due_finding"] = finding
        return clock
    window, since = _number(sets.get("clock_window_hours")), _number(subject.facts.get("mescc.hours_since_diagnosis"))
    if window is not None and since is not None:
        return due_description(now + timedelta(hours=window - since), now, tz)
    carried = {name: published[f"{rule_id}.{name}"] for name in DUE_NAMES if f"{rule_id}.{name}" in published}
    return carried or None


def _fire(
    outcome: CompiledOutcome,
    subject: Subject,
    published: dict[str, Any],
    extra: dict[str, Any],
    clock: dict[str, Any] | None = None,
) -> Fired:
    clock = dict(clock or {})
    lookup = value_lookup(subject, published, clock, extra)
    sets = {**clock}
    sets.update({name: _coerce_number(render_value(value, lookup)) for name, value in outcome.outcome.sets.items()})
    value = _coerce_number(render_value(outcome.outcome.outcome, value_lookup(subject, published, sets, extra)))
    return Fired(outcome=outcome, subject=subject, sets=sets, value=value)


def _publish(rule_id: str, fired: Fired, published: dict[str, Any]) -> None:
    for name in [key for key in published if key.startswith(f"{rule_id}.")]:
        del published[name]
    published[f"{rule_id}.fired"] = True
    published[f"{rule_id}.outcome"] = fired.value
    for name, value in fired.sets.items():
        published[f"{rule_id}.{name}"] = value


def _trace_stage(
    stage: int,
    outcomes: list[CompiledOutcome],
    subjects: list[Subject],
    published: dict[str, Any],
    matches: dict[str, list[int]],
) -> list[dict[str, Any]]:
    """Why each outcome fired or not, per subject of its scope, in plain words."""
    entries = []
    for outcome in outcomes:
        for index, subject in enumerate(subjects):
            if subject.kind != outcome.outcome.scope:
                continue
            matched = index in matches.get(outcome.action, [])
            failed = None if matched else first_failure(outcome.conditions, {**subject.facts, **published})
            entry: dict[str, Any] = {
                "stage": stage,
                "rule": outcome.rule.id,
                "outcome": outcome.outcome.id,
                "subject": _subject_label(subject),
                "matched": matched,
            }
            if failed is not None:
                entry["failedCondition"] = failed.text()
            entries.append(entry)
    return entries


def _subject_label(subject: Subject) -> str:
    facts = subject.facts
    for name in ("symptom.resource", "lesion.resource", "order.resource"):
        if name in facts:
            return str(facts[name])
    return f"Patient/{facts.get('patient.id', '?')}"
