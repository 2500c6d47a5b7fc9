"""The narrow boundary between the CDS Hooks service and the engine.

The service resolves prefetch (or fetches from the FHIR server) and hands over raw FHIR JSON; the
engine filters, validates, derives facts, evaluates the rules and returns CDS card dicts. Nothing
in here knows about HTTP.

The current engine is held in one reference that a reload swaps atomically, and only after the
new rules have passed every example case: a broken edit never replaces working rules.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from engine.cards import render_cards
from engine.compiler import CompiledRules
from engine.definitions import DefinitionsError, definitions_for
from engine.durable_runner import DurableRunner
from engine.evaluate import decide
from engine.goals_of_care import add_goals_of_care_line, expectations_first
from engine.loader import RuleLoadError, load_rules
from engine.request import EvaluationRequest, EvaluationResult
from engine.templates import escape_markdown
from engine.vocabulary import RULES_DIR

log = logging.getLogger("spinecds.engine")
__all__ = ["Engine", "EvaluationRequest", "EvaluationResult", "ReloadReport", "RuleLoadError", "build_engine"]


class Engine:
    """Compiled rules plus their durable-rules runner. Immutable once built."""

    def __init__(self, compiled: CompiledRules, rules_dir: Path = RULES_DIR):
        self.compiled = compiled
        self.rules_dir = rules_dir
        self.runner = DurableRunner(compiled.stages)
        self.definitions = definitions_for(rules_dir)  # a broken file stops the build, like a rule file

    @property
    def rule_versions(self) -> dict[str, str]:
        return {rule.id: rule.version for rule in self.compiled.rules}

    def evaluate(self, request: EvaluationRequest, use_durable: bool = True) -> EvaluationResult:
        from engine.facts import derive_facts  # heavy import (fhir.resources) kept off CLI start-up

        facts = derive_facts(
            request.resources,
            request.now,
            hook=request.hook,
            patient_id=request.patient_id,
            draft_orders=request.draft_orders,
            selections=request.selections,
            first_seen=request.first_seen,
            timezone=request.timezone,
            lookback_days=request.lookback_days,
            definitions=self.definitions,
        )
        if facts.patient.get("deceased"):
            # A patient who has died gets no cards at all (no rule is evaluated).
            return EvaluationResult(cards=[], data_quality=list(facts.data_quality))
        extra = {"service.base_url": request.base_url.rstrip("/")}
        decision = decide(
            self.compiled,
            self.runner if use_durable else None,
            facts,
            extra,
            request.want_trace,
            now=request.now,
            timezone=request.timezone,
        )
        card_set = render_cards(
            decision.fired,
            decision.published,
            request.now,
            request.hook_instance,
            request.base_url,
            facts.order_resources,
            timezone=request.timezone,
            hook=request.hook,
            provenance=facts.provenance,
            versions=LazyVersions([*request.resources, *request.draft_orders]),
            hides=request.hides,
        )
        cards, merged_cards = card_set.cards, card_set.merged_cards  # the same card dicts each time: once
        # one goals-of-care line on every card the clinician sees (and on merged rules' own cards)
        expectations_first(cards, merged_cards, facts.patient)
        add_goals_of_care_line([*cards, *merged_cards], facts.patient)
        if facts.data_quality:
            _note_unused_data(cards, facts.data_quality)
        fired = [
            {
                "ruleId": item.outcome.rule.id,
                "ruleVersion": item.outcome.rule.version,
                "outcome": item.value,
                "outcomeId": item.outcome.outcome.id,
            }
            for item in decision.fired
        ]
        trace = None
        if request.want_trace:
            trace = {
                "facts": {
                    "patient": facts.patient,
                    "symptoms": facts.symptoms,
                    "lesions": facts.lesions,
                    "orders": facts.orders,
                },
                "provenance": facts.provenance,
                "published": decision.published,
                "rules": decision.trace,
            }
        return EvaluationResult(
            cards=cards,
            data_quality=list(facts.data_quality),
            fired=fired,
            trace=trace,
            merged_cards=merged_cards,
            shown=card_set.shown,
            hidden=card_set.hidden,
        )


def resource_versions(resources: list[dict[str, Any]]) -> dict[str, str]:
    """ "Type/id" -> meta.versionId, else meta.lastUpdated, else a digest of the content: a resource
    edited without version metadata still counts as changed (the safe direction for feedback memory)."""
    versions = {}
    for resource in resources:
        if not isinstance(resource, dict) or not resource.get("resourceType") or not resource.get("id"):
            continue
        versions[f"{resource['resourceType']}/{resource['id']}"] = _version_of(resource)
    return versions


def _version_of(resource: dict[str, Any]) -> str:
    meta = resource.get("meta")
    version = (meta.get("versionId") or meta.get("lastUpdated")) if isinstance(meta, dict) else None
    return str(version) if version else _content_version(resource)


# orjson refuses what it cannot write exactly (subclasses, datetimes, dataclasses, huge ints, non-str keys):
# those resources take the direct path.
_CANONICAL = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def _content_version(resource: dict[str, Any]) -> str:
    """The content digest of a resource without version metadata. The same resources arrive with every
    hook call of a chart, so the digest is remembered per orjson canonical form, which determines the
    JSON value exactly (and so json.dumps' output) once `null` is ruled out: orjson writes NaN and
    Infinity as null too."""
    try:
        canonical = orjson.dumps(resource, option=_CANONICAL)
    except (TypeError, orjson.JSONEncodeError):
        return _json_digest(resource)
    if b"null" in canonical:
        return _json_digest(resource)
    return _digest_of_canonical(canonical)


@lru_cache(maxsize=2048)  # as many as the validated-model cache: keys are whole resources
def _digest_of_canonical(canonical: bytes) -> str:
    return _json_digest(orjson.loads(canonical))


def _json_digest(resource: Any) -> str:
    """The digest feedback memory has always stored: it must never change for the same content."""
    canonical = json.dumps(resource, sort_keys=True, default=str).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()[:16]


class LazyVersions(Mapping[str, str]):
    """resource_versions(resources), each entry computed when first asked for: a card rests on a
    handful of resources, and digesting every resource of a sloppy 300-resource prefetch (vitals
    carry no meta) cost ~2 ms per request."""

    def __init__(self, resources: list[dict[str, Any]]):
        index: dict[str, dict[str, Any]] = {}
        for resource in resources:
            if isinstance(resource, dict):
                kind, rid = resource.get("resourceType"), resource.get("id")
                if kind and rid:
                    index[f"{kind}/{rid}"] = resource  # the last one wins
        self._resources = index
        self._versions: dict[str, str] = {}

    def __getitem__(self, ref: str) -> str:
        version = self._versions.get(ref)
        if version is None:
            version = self._versions[ref] = resource_versions([self._resources[ref]])[ref]
        return version

    def get(self, ref: str, default: Any = None) -> Any:
        # Mapping.get would go through a raised and caught KeyError for every unknown reference.
        return self[ref] if ref in self._resources else default

    def __iter__(self) -> Iterator[str]:
        return iter(self._resources)

    def __len__(self) -> int:
        return len(self._resources)


def _note_unused_data(cards: list[dict[str, Any]], data_quality: list[dict[str, Any]]) -> None:
    """Clinical safety: a card decided without some of the record says so, next to its reasoning.
    The resource is named by its type only: a raw id means nothing to a clinician. Codes no ValueSet
    knows are named by their code and display (escaped), so the site can map them."""
    unknown = [item for item in data_quality if str(item.get("issue", "")).startswith(NOT_RECOGNISED)]
    invalid = [item for item in data_quality if item not in unknown]
    note = ""
    if invalid:
        items = "; ".join(
            f"{_resource_kind(item.get('resource'))} ({escape_markdown(str(item.get('issue', 'invalid')))})"
            for item in invalid
        )
        note += f"\n\n**Data not used** (failed validation, so it did not count): {items}."
    if unknown:
        codes = "; ".join(escape_markdown(str(item["issue"])[len(NOT_RECOGNISED) :]) for item in unknown)
        note += f"\n\n**Codes not recognised** (not used; the site can add them to a ValueSet): {codes}."
    for card in cards:
        card["detail"] = card.get("detail", "") + note


NOT_RECOGNISED = "not recognised: "


def _resource_kind(reference: Any) -> str:
    kind = str(reference or "").split("/", 1)[0]
    if not kind.isalpha():
        return "a resource"
    return f"{'an' if kind[0] in 'AEIOU' else 'a'} {kind}"


@dataclass
class ReloadReport:
    ok: bool
    errors: list[str]
    rule_versions: dict[str, str]


def build_engine(rules_dir: Path = RULES_DIR, run_cases: bool = True) -> Engine:
    """Load, compile and (by default) prove the rules on their own cases; raise RuleLoadError if not."""
    try:
        engine = Engine(load_rules(rules_dir), rules_dir)
    except DefinitionsError as error:  # rules/definitions.yaml: reported like a broken rule file
        raise RuleLoadError([str(error)]) from None
    if run_cases:
        from engine.cases import run_all_cases

        failures = [f"{result.path}: {line}" for result in run_all_cases(engine) for line in result.report()]
        if failures:
            raise RuleLoadError(failures)
    return engine


_current: Engine | None = None
_swap_lock = threading.Lock()
_rules_dir: Path = RULES_DIR


def use_rules_dir(rules_dir: Path | None) -> None:
    """Serve the rules of another folder (SPINECDS_RULES_DIR) from the next load on."""
    global _rules_dir, _current
    _rules_dir = rules_dir or RULES_DIR
    with _swap_lock:
        if _current is not None and _current.rules_dir != _rules_dir:
            _current = None  # loaded from another folder: the next get_engine() loads these rules


def is_loaded() -> bool:
    """Readiness: rules are loaded and proven (does not trigger loading)."""
    return _current is not None


def get_engine() -> Engine:
    global _current
    engine = _current
    if engine is None:
        with _swap_lock:
            if _current is None:
                _current = build_engine(_rules_dir)
            engine = _current
    return engine


def reload(rules_dir: Path | None = None) -> ReloadReport:
    """Build a new engine from disk; swap it in only if every rule compiles and every case passes."""
    global _current
    target = rules_dir or (_current.rules_dir if _current else _rules_dir)
    try:
        fresh = build_engine(target)
    except Exception as error:  # noqa: BLE001 - whatever went wrong, the old rules keep serving
        errors = error.errors if isinstance(error, RuleLoadError) else [f"{type(error).__name__}: {error}"]
        log.error("rule reload rejected; still serving the previous rules", extra={"errors": errors})
        current = _current
        return ReloadReport(ok=False, errors=errors, rule_versions=current.rule_versions if current else {})
    with _swap_lock:
        _current = fresh
    log.info("rules reloaded", extra={"rules": fresh.rule_versions})
    return ReloadReport(ok=True, errors=[], rule_versions=fresh.rule_versions)


def evaluate(request: EvaluationRequest) -> EvaluationResult:
    return get_engine().evaluate(request)
