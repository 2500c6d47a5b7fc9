"""Rule files -> checked, staged outcomes and durable-rules JSON rulesets.

Each outcome of each active rule becomes one durable-rules rule whose action name is
`<rule-id>#<outcome-id>`. Outcomes that read another rule's published facts (`mri-urgency.tier`)
run in a later stage; each stage is one durable-rules ruleset, asserted once per evaluation.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from engine.conditions import (
    AllOf,
    Condition,
    ConditionError,
    Member,
    check_condition,
    facts_named,
    parse_condition,
    to_durable,
)
from engine.rulefile import LocatedYaml, Outcome, RuleFile, RuleFileError
from engine.templates import placeholders
from engine.vocabulary import Vocabulary

SPECIAL_PLACEHOLDERS = {"now", "deadline", "service.base_url", "outcome", "order_due"}
# Computed by the engine (engine/evaluate.py) for an outcome with a clock: `deadline_hours` on a
# symptom outcome (due = presentation + the tier's hours, earliest over the findings) or
# `clock_window_hours` (due = diagnosis + the window). Later outcomes of the same rule keep them.
DUE_NAMES = ("due_by", "due_local", "hours_left", "due_text", "due_finding")
CLOCK_SETS = ("deadline_hours", "clock_window_hours")
CATCH_ALL_ACTION = "spinecds#catch-all"


@dataclass(frozen=True)
class LoadedRule:
    rule: RuleFile
    path: Path
    located: LocatedYaml

    def error(self, path: tuple[Any, ...], message: str) -> RuleFileError:
        return RuleFileError(self.path, self.located.line_of(path), self.rule.id, message)


@dataclass(frozen=True)
class CompiledOutcome:
    rule: RuleFile
    outcome: Outcome
    order: int  # position in the rule: earlier outcomes win
    conditions: tuple[Condition, ...]  # hook filter + rule preconditions + outcome conditions
    stage: int
    references: frozenset[str]  # rule ids whose published facts it reads
    bullet_conditions: tuple[tuple[Condition, ...], ...] = ()  # per card bullet, the conditions that show it

    @functools.cached_property  # read ~100 times per evaluation (a frozen dataclass still has __dict__)
    def action(self) -> str:
        return f"{self.rule.id}#{self.outcome.id}"


@dataclass(frozen=True)
class CompiledRules:
    rules: tuple[RuleFile, ...]  # active rules, in id order
    all_rules: tuple[LoadedRule, ...]  # every valid file, drafts and retired included
    outcomes: tuple[CompiledOutcome, ...]
    stages: tuple[dict[str, Any], ...]  # durable-rules ruleset bodies, one per stage
    used_facts: frozenset[str] = frozenset()  # every fact a condition reads: all durable-rules needs to see

    def outcomes_of(self, rule_id: str) -> list[CompiledOutcome]:
        return self._by_rule.get(rule_id, [])

    def outcomes_in_stage(self, stage: int) -> list[CompiledOutcome]:
        return self._by_stage.get(stage, [])

    @cached_property
    def _by_rule(self) -> dict[str, list[CompiledOutcome]]:
        # Built once per rule set, not per evaluation.
        grouped: dict[str, list[CompiledOutcome]] = {}
        for outcome in self.outcomes:
            grouped.setdefault(outcome.rule.id, []).append(outcome)
        return grouped

    @cached_property
    def _by_stage(self) -> dict[int, list[CompiledOutcome]]:
        grouped: dict[int, list[CompiledOutcome]] = {}
        for outcome in self.outcomes:
            grouped.setdefault(outcome.stage, []).append(outcome)
        return grouped


def published_names(rule: RuleFile) -> set[str]:
    names = {"fired", "outcome"}
    for outcome in rule.outcomes:
        names.update(outcome.sets)
    if names & set(CLOCK_SETS):
        names.update(DUE_NAMES)
    return names


def compile_rules(loaded: list[LoadedRule], vocabulary: Vocabulary, include_drafts: bool = False) -> CompiledRules:
    """Check every condition and template against the vocabulary and stage the outcomes.

    `include_drafts` runs draft rules as if active (`spinecds rules test`, never the service), so a
    rule proves its cases before it is switched on. Raises the first RuleFileError found, located.
    """
    if include_drafts:
        loaded = [
            LoadedRule(rule=item.rule.model_copy(update={"status": "active"}), path=item.path, located=item.located)
            if item.rule.status == "draft"
            else item
            for item in loaded
        ]
    active = [item for item in loaded if item.rule.status == "active"]
    published = {item.rule.id: published_names(item.rule) for item in loaded}
    drafts = {item.rule.id for item in loaded if item.rule.status != "active"}

    parsed: list[tuple[LoadedRule, int, Outcome, tuple[Condition, ...]]] = []
    bullets: dict[tuple[str, str], tuple[tuple[Condition, ...], ...]] = {}
    for item in loaded:
        rule = item.rule
        preconditions = _parse_all(item, rule.when, ("when",), "patient", vocabulary, published)
        for index, outcome in enumerate(rule.outcomes):
            base = ("outcomes", index)
            own = _parse_all(item, outcome.when, base + ("when",), outcome.scope, vocabulary, published)
            _check_templates(item, outcome, base, vocabulary, published)
            bullets[(rule.id, outcome.id)] = tuple(
                _parse_all(
                    item, bullet.when, base + ("card", "bullets", number, "when"), outcome.scope, vocabulary, published
                )
                for number, bullet in enumerate(outcome.card.bullets)
            )
            hook_filter = Member(fact="hook", values=tuple(rule.hooks), negated=False)
            conditions = (hook_filter, *preconditions, *own)
            referenced = _references(conditions, published)
            for ref in referenced:
                if ref in drafts and rule.status == "active":
                    raise item.error(base + ("when",), f"reads rule '{ref}', which is not active")
            parsed.append((item, index, outcome, conditions))

    stages = _assign_stages(parsed, published)
    compiled = tuple(
        CompiledOutcome(
            rule=item.rule,
            outcome=outcome,
            order=index,
            conditions=conditions,
            stage=stages[(item.rule.id, outcome.id)],
            references=frozenset(_references(conditions, published)),
            bullet_conditions=bullets[(item.rule.id, outcome.id)],
        )
        for item, index, outcome, conditions in parsed
        if item.rule.status == "active"
    )
    return CompiledRules(
        rules=tuple(sorted((item.rule for item in active), key=lambda r: r.id)),
        all_rules=tuple(loaded),
        outcomes=compiled,
        stages=_durable_stages(compiled),
        used_facts=frozenset(name for outcome in compiled for c in outcome.conditions for name in facts_named(c)),
    )


def _parse_all(
    item: LoadedRule,
    specs: list[Any],
    path: tuple[Any, ...],
    scope: str,
    vocabulary: Vocabulary,
    published: dict[str, set[str]],
) -> tuple[Condition, ...]:
    conditions = []

    def is_fact(name: str) -> bool:
        rule_id, _, member = name.partition(".")
        return vocabulary.get(name) is not None or bool(member and rule_id in published)

    for index, spec in enumerate(specs):
        where = path + (index,)
        try:
            condition = parse_condition(spec, where, is_fact)
            check_condition(condition, vocabulary, scope, published, where)
        except ConditionError as error:
            raise item.error(error.path or where, str(error)) from None
        conditions.append(condition)
    return tuple(conditions)


def _references(conditions: tuple[Condition, ...], published: dict[str, set[str]]) -> set[str]:
    refs = set()
    for condition in conditions:
        for name in facts_named(condition):
            rule_id, _, member = name.partition(".")
            if member and rule_id in published:
                refs.add(rule_id)
    return refs


def _check_templates(
    item: LoadedRule, outcome: Outcome, base: tuple[Any, ...], vocabulary: Vocabulary, published: dict[str, set[str]]
) -> None:
    templated = {
        "card": outcome.card.model_dump(mode="json"),
        "sets": outcome.sets,
        "outcome": outcome.outcome,
    }
    for name, path in placeholders(templated):
        full_path = base + path
        if name in SPECIAL_PLACEHOLDERS:
            if name == "deadline" and "deadline_hours" not in outcome.sets:
                raise item.error(full_path, "'{deadline}' needs 'deadline_hours' in this outcome's sets")
            continue
        if name.startswith("sets."):
            if name[5:] in DUE_NAMES and name[5:] in published[item.rule.id]:
                continue
            if name[5:] not in outcome.sets:
                raise item.error(
                    full_path,
                    f"'{{{name}}}': this outcome sets no '{name[5:]}' "
                    f"(it sets: {', '.join(sorted(outcome.sets)) or 'nothing'})",
                )
            continue
        rule_id, _, member = name.partition(".")
        if member and rule_id in published:
            if member not in published[rule_id]:
                raise item.error(full_path, f"rule '{rule_id}' publishes no '{member}'")
            continue
        fact = vocabulary.get(name)
        if fact is None:
            hint = vocabulary.suggest(name)
            suffix = f" - did you mean '{{{hint}}}'?" if hint else " - see the fact vocabulary in rules/README.md"
            raise item.error(full_path, f"unknown placeholder '{{{name}}}'{suffix}")
        if fact.scope not in ("patient", "any", outcome.scope):
            raise item.error(
                full_path, f"'{{{name}}}' exists only on {fact.scope} subjects; this outcome has scope {outcome.scope}"
            )
    if outcome.prefer_highest is not None:
        fact = vocabulary.get(outcome.prefer_highest)
        if fact is None or fact.type != "number" or fact.scope not in (outcome.scope, "any"):
            raise item.error(
                base + ("prefer_highest",),
                f"prefer_highest names a number fact of the {outcome.scope} subject, e.g. lesion.sins_max",
            )
    for name in outcome.card.missing_from:
        fact = vocabulary.get(name)
        if fact is None or fact.type != "list":
            raise item.error(base + ("card", "missing_from"), f"missing_from names list facts; '{name}' is not one")
    if outcome.card.extension.get("sins") not in (None, "lesion"):
        raise item.error(base + ("card", "extension", "sins"), "write 'sins: lesion' (the deciding lesion)")
    if "sins" in outcome.card.extension and outcome.scope != "lesion":
        raise item.error(base + ("card", "extension"), "'sins: lesion' needs 'scope: lesion' on this outcome")
    for index, suggestion in enumerate(outcome.card.suggestions):
        for number, action in enumerate(suggestion.actions):
            where = base + ("card", "suggestions", index, "actions", number)
            if action.type == "create" and action.resource is None:
                raise item.error(where, "a create action needs a 'resource' template")
            if action.type == "update" and action.resource is None and action.from_subject is None:
                raise item.error(where, "an update action needs 'resource' or 'from_subject: order' with a 'patch'")
            if action.from_subject == "order" and outcome.scope != "order":
                raise item.error(where, "from_subject: order needs 'scope: order' on this outcome")
            if action.type == "delete" and not action.resource_id:
                raise item.error(where, "a delete action needs 'resource_id', e.g. ServiceRequest/{order.id}")


def _assign_stages(
    parsed: list[tuple[LoadedRule, int, Outcome, tuple[Condition, ...]]], published: dict[str, set[str]]
) -> dict[tuple[str, str], int]:
    by_rule: dict[str, list[tuple[str, tuple[Condition, ...], LoadedRule, int]]] = {}
    for item, index, outcome, conditions in parsed:
        by_rule.setdefault(item.rule.id, []).append((outcome.id, conditions, item, index))
    stages: dict[tuple[str, str], int] = {}
    visiting: set[tuple[str, str]] = set()

    def stage_of(rule_id: str, outcome_id: str, conditions: tuple[Condition, ...], item: LoadedRule, index: int) -> int:
        key = (rule_id, outcome_id)
        if key in stages:
            return stages[key]
        if key in visiting:
            raise item.error(
                ("outcomes", index, "when"),
                "this outcome depends on itself through other rules' published facts; break the cycle",
            )
        visiting.add(key)
        stage = 0
        for ref in _references(conditions, published):
            for other_id, other_conditions, other_item, other_index in by_rule.get(ref, []):
                if (ref, other_id) == key:
                    continue
                # Outcomes that read their own rule's result wait for the outcomes that decide it,
                # not for each other (they are alternatives, tried in the listed order).
                if ref == rule_id and rule_id in _references(other_conditions, published):
                    continue
                stage = max(stage, 1 + stage_of(ref, other_id, other_conditions, other_item, other_index))
        visiting.discard(key)
        stages[key] = stage
        return stage

    for item, index, outcome, conditions in parsed:
        stage_of(item.rule.id, outcome.id, conditions, item, index)
    return stages


def _durable_stages(outcomes: tuple[CompiledOutcome, ...]) -> tuple[dict[str, Any], ...]:
    count = 1 + max((o.stage for o in outcomes), default=0)
    stages: list[dict[str, Any]] = [{} for _ in range(count)]
    for outcome in outcomes:
        match = to_durable(AllOf(outcome.conditions))
        scope_test = {"kind": outcome.outcome.scope}
        expression = {"$and": [scope_test, match]}
        stages[outcome.stage][outcome.action] = {"all": [{"m": expression}], "run": outcome.action}
    for stage in stages:
        # A fact that matches no rule makes durable-rules raise MessageNotHandledException.
        stage[CATCH_ALL_ACTION] = {"all": [{"m": {"$ex": {"kind": 1}}}], "run": CATCH_ALL_ACTION}
    return tuple(stages)
