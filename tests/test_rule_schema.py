"""The published JSON Schema and vocabulary match what the engine enforces."""

from __future__ import annotations

import json

from engine.rulefile import rule_file_json_schema
from engine.vocabulary import RULES_DIR, load_vocabulary


def test_committed_json_schema_is_current():
    committed = json.loads((RULES_DIR / "rule.schema.json").read_text(encoding="utf-8"))
    assert committed == rule_file_json_schema(), "run: spinecds rules schema -o rules/rule.schema.json"


def test_vocabulary_is_read_from_the_authors_page():
    vocabulary = load_vocabulary()
    assert vocabulary.get("sins.max_min").type == "number"
    assert vocabulary.get("symptom.laterality").scope == "symptom"
    assert vocabulary.get("cancer").type == "bool"
    assert vocabulary.get("missing").scope == "any"  # documented for symptoms and lesions alike
    assert len(vocabulary.facts) >= 60


def test_committed_catalogue_is_current():
    from engine.catalog import render_catalog
    from engine.loader import load_rules

    committed = (RULES_DIR.parent / "docs" / "rules.md").read_text(encoding="utf-8")
    assert committed == render_catalog(load_rules(), RULES_DIR), "run: spinecds rules catalog -o docs/rules.md"
