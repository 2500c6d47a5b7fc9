"""The rules and terminology as FHIR R4 knowledge artefacts, in one `collection` Bundle.

Every active rule becomes a PlanDefinition (type eca-rule), in the shape of the CQF opioid CDS
PlanDefinitions: one action per outcome, triggered by the rule's CDS Hooks (named events), with the
card's summary/detail as title/description, the indicator as priority, the conditions as text and
the guideline passage as a citation. The CodeSystems, ValueSets and StructureDefinitions of
fhir_profiles/ are added as they are on disk. Each entry's fullUrl is its canonical url.

The export is a publication for knowledge repositories and reviewers; the engine keeps reading
rule.yaml. It lives in engine/ because it reads both layers: the rules (engine) and the
terminology and profiles (fhir_profiles, which imports nothing from the engine).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from fhir_profiles.terminology import DEFAULT_DIRECTORY

PLAN_DEFINITION_URL = "http://spinecds.org/fhir/PlanDefinition/"
PLAN_DEFINITION_TYPE = "http://terminology.hl7.org/CodeSystem/plan-definition-type"
RULES_CODESYSTEM = "http://spinecds.org/fhir/CodeSystem/rules"
CONDITION_LANGUAGE = "text/x-spinecds-condition"
PRIORITY = {"critical": "stat", "warning": "urgent", "info": "routine"}
ARTEFACT_FOLDERS = ("codesystems", "valuesets", "structuredefinitions", "questionnaires")


class ExportError(ValueError):
    """The export cannot be built (a broken artefact file or an invalid result)."""


def condition_text(condition: Any) -> str:
    """A rule condition as one line in the rule-file syntax (rules/README.md, Conditions)."""
    if isinstance(condition, str):
        return condition
    if isinstance(condition, dict) and len(condition) == 1:
        ((key, value),) = condition.items()
        if key in ("any", "all") and isinstance(value, list):
            return f"{key}({'; '.join(condition_text(c) for c in value)})"
        if key == "not":
            return f"not({condition_text(value)})"
        return f"{key}: {value}"
    return json.dumps(condition, sort_keys=True)


def _name(rule_id: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^a-zA-Z0-9]+", rule_id) if part)


def plan_definition(rule: Any) -> dict[str, Any]:
    """One rule (engine.rulefile.RuleFile) as an R4 PlanDefinition (JSON)."""
    citation = rule.citation
    actions = []
    for outcome in rule.outcomes:
        card = outcome.card
        conditions = [condition_text(c) for c in (*rule.when, *outcome.when)]
        action: dict[str, Any] = {
            "id": outcome.id,
            "title": card.summary,
            "description": card.detail,
            "code": [
                {
                    "coding": [{"system": RULES_CODESYSTEM, "code": rule.id, "version": rule.version}],
                    "text": f"outcome {outcome.outcome}",
                }
            ],
            "priority": PRIORITY[card.indicator],
            "trigger": [{"type": "named-event", "name": hook} for hook in rule.hooks],
        }
        if conditions:
            action["condition"] = [
                {
                    "kind": "applicability",
                    "expression": {
                        "language": CONDITION_LANGUAGE,
                        "expression": text,
                        "description": f"evaluated on each {outcome.scope} subject",
                    },
                }
                for text in conditions
            ]
        actions.append(action)
    return {
        "resourceType": "PlanDefinition",
        "id": rule.id,
        "url": PLAN_DEFINITION_URL + rule.id,
        "version": rule.version,
        "name": _name(rule.id),
        "title": rule.title,
        "type": {"coding": [{"system": PLAN_DEFINITION_TYPE, "code": "eca-rule", "display": "ECA Rule"}]},
        "status": rule.status,  # draft | active | retired: the same codes as publication-status
        "experimental": False,
        "publisher": "spinecds",
        "description": f"{rule.title}. Outcomes are tried in the order of action[]; the first one whose "
        f"conditions hold for a subject decides the card.",
        "relatedArtifact": [
            {
                "type": "citation",
                "label": citation.section,
                "display": f"{citation.source}, {citation.section}",
                "citation": citation.passage,
                "url": citation.url,
            }
        ],
        "action": actions,
    }


def artefact_files(directory: str | Path | None = None) -> list[Path]:
    root = Path(directory or DEFAULT_DIRECTORY)
    return [path for folder in ARTEFACT_FOLDERS for path in sorted((root / folder).glob("*.json"))]


def _artefacts(directory: str | Path | None) -> Iterable[dict[str, Any]]:
    for path in artefact_files(directory):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ExportError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            raise ExportError(f"{path}: expected a FHIR resource with a canonical url")
        yield data


def build_bundle(
    rules: Iterable[Any],
    directory: str | Path | None = None,
    include_inactive: bool = False,
    bundle_id: str = "spinecds-knowledge",
) -> dict[str, Any]:
    """The collection Bundle (JSON) of the given rules (RuleFile) and every artefact in ``directory``.
    Only active rules unless ``include_inactive``. Raises ExportError if it does not validate as R4."""
    resources = list(_artefacts(directory))
    resources += [
        plan_definition(rule)
        for rule in sorted(rules, key=lambda r: r.id)
        if include_inactive or rule.status == "active"
    ]
    seen: set[str] = set()
    for resource in resources:
        if resource["url"] in seen:
            raise ExportError(f"two resources share the canonical url {resource['url']}")
        seen.add(resource["url"])
    bundle = {
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": "collection",
        "entry": [{"fullUrl": r["url"], "resource": r} for r in resources],
    }
    try:
        Bundle.model_validate(bundle)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise ExportError(f"the export does not validate as FHIR R4: {where}: {first.get('msg')}") from None
    return bundle


def export_bundle(
    rules_dir: str | Path | None = None, directory: str | Path | None = None, include_inactive: bool = False
) -> dict[str, Any]:
    """Load and validate the rule files (engine.loader) and build the Bundle. Raises RuleLoadError."""
    from engine.loader import load_rules
    from engine.vocabulary import RULES_DIR

    compiled = load_rules(Path(rules_dir) if rules_dir else RULES_DIR)
    return build_bundle([item.rule for item in compiled.all_rules], directory, include_inactive)
