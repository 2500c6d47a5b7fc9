"""Fired rules + card templates -> CDS Hooks 2.0 card JSON with the `extension.spinecds` outcome.

Cards are plain dicts with no null or empty members (CDS Hooks "Use of JSON"); the service
validates them against its pydantic Card model before they leave.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine.card_merge import RuleCard, arrange, finish, flatten_merged
from engine.compiler import CompiledOutcome
from engine.conditions import facts_named, holds
from engine.evaluate import Fired, value_lookup
from engine.localtime import iso_local, zone
from engine.templates import compile_value, deep_merge, placeholders, render_card_text, render_text

RULES_SYSTEM = "http://spinecds.org/fhir/CodeSystem/rules"
OVERRIDE_SYSTEM = "http://spinecds.org/fhir/CodeSystem/override-reasons"
SUMMARY_LIMIT = 140
SUBJECT_RESOURCES = ("symptom.resource", "lesion.resource", "order.resource")

# Feedback memory asks, per rule card, whether this user has set it aside (see RuleCard.identity).
HidePredicate = Callable[[dict[str, Any]], bool]


@dataclass
class CardSet:
    cards: list[dict[str, Any]]  # what the clinician sees: ranked, at most three, advice merged
    shown: list[RuleCard] = field(default_factory=list)  # the kept cards, each with its merged rules
    hidden: list[RuleCard] = field(default_factory=list)  # cards feedback memory held back

    @property
    def merged_cards(self) -> list[dict[str, Any]]:
        """The complete cards of the rules that were merged into another card (for rule cases)."""
        return [other.card for item in self.shown for other in flatten_merged(item)]


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def random_uuid() -> str:
    """A random (version 4) uuid, as str(uuid.uuid4()) gives it, without building a UUID object.
    Random: feedback names cards by uuid, so no other client may be able to compute one."""
    return next(random_uuids(1))


def random_uuids(count: int) -> Iterator[str]:
    """`count` random uuids from one read of the system's random source (one system call per answer
    instead of one per card and suggestion)."""
    octets = bytearray(os.urandom(16 * count))
    for start in range(0, 16 * count, 16):
        octets[start + 6] = (octets[start + 6] & 0x0F) | 0x40  # version 4
        octets[start + 8] = (octets[start + 8] & 0x3F) | 0x80  # RFC 4122 variant
        text = octets[start : start + 16].hex()
        yield f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def render_cards(
    fired: list[Fired],
    published: dict[str, Any],
    now: datetime,
    hook_instance: str,
    base_url: str,
    order_resources: dict[str, dict[str, Any]],
    timezone: str | None = None,
    *,
    hook: str = "patient-view",
    provenance: Mapping[str, list[str]] | None = None,
    versions: Mapping[str, str] | None = None,
    hides: HidePredicate | None = None,
) -> CardSet:
    """Cards of the fired rules, ranked and merged (engine/card_merge.py). `versions` maps
    "Type/id" to the resource's version; `hides` is feedback memory's question per rule card."""
    fixed = {"now": iso(now), "service.base_url": base_url.rstrip("/")}  # the same for every card
    ids = random_uuids(sum(1 + len(item.outcome.outcome.card.suggestions) for item in fired))
    items = [
        RuleCard(
            card=_build_card(item, published, now, fixed, ids, order_resources, timezone),
            about_order=item.subject.kind == "order",
            decisive=_decisive(item, provenance or {}, versions or {}),
        )
        for item in fired
    ]
    hidden = [item for item in items if hides is not None and hides(item.identity())]
    hidden_ids = {id(item) for item in hidden}
    shown = arrange([item for item in items if id(item) not in hidden_ids], hook)
    return CardSet(cards=[finish(item, hook) for item in shown], shown=shown, hidden=hidden)


def _decisive(item: Fired, provenance: Mapping[str, list[str]], versions: Mapping[str, str]) -> tuple[str, ...]:
    """The resources a card rests on: its subject's and those behind every fact its conditions and
    text read, each with its version, so that an edit to any of them counts as a change."""
    facts = item.subject.facts
    refs = {str(facts[name]) for name in SUBJECT_RESOURCES if name in facts}
    for name in _read_names(item.outcome):
        if name in provenance:
            refs.update(provenance[name])
    return tuple(sorted(f"{ref}@{versions.get(ref, '')}" for ref in refs))


_READ_NAMES = "_spinecds_read_names"


def _read_names(outcome: CompiledOutcome) -> frozenset[str]:
    """The facts an outcome's conditions and card text read: fixed once the rules are compiled, so
    worked out once per compiled outcome and kept on it (as functools.cached_property would)."""
    names = outcome.__dict__.get(_READ_NAMES)
    if names is None:
        found = {name for condition in outcome.conditions for name in facts_named(condition)}
        template = outcome.outcome.card
        found.update(name for name, _ in placeholders([template.summary, template.detail]))
        names = outcome.__dict__[_READ_NAMES] = frozenset(found)
    return names


def _build_card(
    item: Fired,
    published: dict[str, Any],
    now: datetime,
    fixed: dict[str, str],
    ids: Iterator[str],
    order_resources: dict[str, dict[str, Any]],
    timezone: str | None = None,
) -> dict[str, Any]:
    rule, outcome = item.outcome.rule, item.outcome.outcome
    template = outcome.card
    extra: dict[str, Any] = {**fixed, "outcome": item.value}
    deadline_hours = item.sets.get("deadline_hours")
    if isinstance(deadline_hours, (int, float)):
        extra["deadline"] = iso(now + timedelta(hours=deadline_hours))
    extra["order_due"] = _order_due(item.sets, now, timezone) or extra.get("deadline", fixed["now"])
    lookup = value_lookup(item.subject, published, item.sets, extra)

    card_id = next(ids)
    summary = render_card_text(template.summary, lookup).strip()
    if len(summary) >= SUMMARY_LIMIT:  # CDS Hooks' hard limit; cases catch this at authoring time
        summary = summary[: SUMMARY_LIMIT - 2].rstrip() + "…"
    card: dict[str, Any] = {
        "uuid": card_id,
        "summary": summary,
        "detail": _detail(item, published, lookup),
        "indicator": template.indicator,
        "source": {
            "label": f"{rule.citation.source} - {rule.citation.section}"[:200],
            "url": rule.citation.url,
            # CDS Hooks' Coding has no `version`, so the rule version rides in `display`.
            "topic": {
                "system": RULES_SYSTEM,
                "code": rule.id,
                "display": f"{rule.title} (v{rule.version})",
            },
        },
        "extension": {"spinecds": _extension(item, now)},
    }
    suggestions = [_suggestion(suggestion, lookup, item, order_resources, ids) for suggestion in template.suggestions]
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = template.selection_behavior
    if template.override_reasons:
        card["overrideReasons"] = [
            {"system": OVERRIDE_SYSTEM, "code": reason.code, "display": reason.display}
            for reason in template.override_reasons
        ]
    links = []
    for link in template.links:
        rendered = {
            "label": render_card_text(link.label, lookup),
            "url": render_text(link.url, lookup),
            "type": link.type,
        }
        if link.app_context:
            rendered["appContext"] = render_text(link.app_context, lookup)
        links.append(rendered)
    if links:
        card["links"] = links
    return card


def _order_due(sets: dict[str, Any], now: datetime, timezone: str | None) -> str | None:
    """When a suggested order is due: `order_within_hours` from now (an overdue card's new order),
    else the card's due time (`due_by`)."""
    within = sets.get("order_within_hours")
    if isinstance(within, (int, float)) and not isinstance(within, bool):
        return iso_local(now + timedelta(hours=within), zone(timezone))
    due = sets.get("due_by")
    return due if isinstance(due, str) else None


def _detail(item: Fired, published: dict[str, Any], lookup: Any) -> str:
    """The detail head, then the bullets whose conditions hold for the deciding subject, then the footer."""
    template = item.outcome.outcome.card
    parts = [render_card_text(template.detail, lookup).strip()]
    shown = []
    if template.bullets:  # the merged facts are only for the bullets' conditions
        facts = {**item.subject.facts, **published}
        shown = [
            "- " + render_card_text(bullet.text, lookup).strip()
            for bullet, conditions in zip(template.bullets, item.outcome.bullet_conditions or (), strict=False)
            if all(holds(condition, facts) for condition in conditions)
        ]
    if shown:
        parts.append("\n".join(shown))
    if template.footer:
        parts.append(render_card_text(template.footer, lookup).strip())
    return "\n\n".join(part for part in parts if part)


def _suggestion(
    template: Any, lookup: Any, item: Fired, order_resources: dict[str, dict[str, Any]], ids: Iterator[str]
) -> dict[str, Any]:
    actions = []
    for action in template.actions:
        rendered: dict[str, Any] = {"type": action.type, "description": render_card_text(action.description, lookup)}
        if action.from_subject == "order":
            draft = order_resources.get(str(item.subject.facts.get("order.id")), {})
            resource = copy.deepcopy(draft)
            if action.patch:
                resource = deep_merge(resource, _filler(item.outcome, action.patch)(lookup))
            rendered["resource"] = resource
        elif action.resource is not None:
            rendered["resource"] = _filler(item.outcome, action.resource)(lookup)
        if action.resource_id:
            rendered["resourceId"] = render_text(action.resource_id, lookup)
        actions.append(rendered)
    suggestion: dict[str, Any] = {
        "label": render_card_text(template.label, lookup),
        "uuid": next(ids),
        "actions": actions,
    }
    if template.is_recommended:
        suggestion["isRecommended"] = True
    return suggestion


_FILLERS = "_spinecds_fillers"


def _filler(outcome: CompiledOutcome, template: Any) -> Callable[[Any], Any]:
    """compile_value(template) for a resource template of the outcome's card, built once and kept on
    the compiled outcome, which owns the template (so its id cannot be reused while kept)."""
    fillers = outcome.__dict__.get(_FILLERS)
    if fillers is None:
        fillers = outcome.__dict__.setdefault(_FILLERS, {})
    entry = fillers.get(id(template))
    if entry is None or entry[0] is not template:
        entry = fillers[id(template)] = (template, compile_value(template))
    return entry[1]


def _extension(item: Fired, now: datetime) -> dict[str, Any]:
    rule, outcome = item.outcome.rule, item.outcome.outcome
    facts = item.subject.facts
    extension: dict[str, Any] = {"ruleId": rule.id, "ruleVersion": rule.version, "outcome": item.value}
    deadline = item.sets.get("deadline_hours")
    if isinstance(deadline, (int, float)):
        extension["deadlineHours"] = deadline
    window = item.sets.get("clock_window_hours")
    since = facts.get("mescc.hours_since_diagnosis")
    if isinstance(item.sets.get("hours_left"), (int, float)):
        extension["hoursLeft"] = item.sets["hours_left"]
    elif isinstance(window, (int, float)) and isinstance(since, (int, float)):
        extension["hoursLeft"] = round(window - since, 1)
    if isinstance(item.sets.get("due_by"), str):
        extension["dueBy"] = item.sets["due_by"]
    if outcome.card.extension.get("sins") == "lesion":
        extension["sins"] = _sins(facts)
    if outcome.card.extension.get("survival"):
        survival = _survival(facts)
        if survival:
            extension["survival"] = survival
    missing: list[str] = list(dict.fromkeys(item.carried_missing))
    for name in ["missing", *outcome.card.missing_from]:
        for entry in facts.get(name) or []:
            if entry not in missing:
                missing.append(entry)
    if missing:
        extension["missing"] = missing
    return extension


def _sins(facts: dict[str, Any]) -> dict[str, Any]:
    sins: dict[str, Any] = {}
    if "lesion.sins_total" in facts:
        sins["total"] = facts["lesion.sins_total"]
    else:
        for key in ("min", "max"):
            if f"lesion.sins_{key}" in facts:
                sins[key] = facts[f"lesion.sins_{key}"]
    sins["category"] = facts.get("lesion.sins_category", "incomplete")
    if "lesion.level" in facts:
        sins["level"] = facts["lesion.level"]
    return sins


def _survival(facts: dict[str, Any]) -> list[dict[str, Any]]:
    estimates = []
    for model, prefix in (("van-der-linden", "vdl"), ("bollen", "bollen")):
        group = facts.get(f"{prefix}.group")
        groups = facts.get(f"{prefix}.groups")
        if group is not None:
            estimate: dict[str, Any] = {"model": model, "group": group}
            months = facts.get(f"{prefix}.median_months")
            if months is not None:
                estimate["medianMonths"] = months
        elif groups:  # several groups reachable (range rule): no single median
            estimate = {"model": model, "groups": list(groups)}
        else:
            continue
        estimates.append(estimate)
    return estimates
