"""One generic test runs every example case under rules/: a new case is a new file, not new code."""

from __future__ import annotations

import pytest

from cds_hooks.card_models import Card
from cds_hooks.cards import prepare_card
from engine.cases import CASE_BASE_URL, case_files, run_case
from engine.vocabulary import RULES_DIR

CASES = case_files(RULES_DIR)


@pytest.fixture(scope="module")
def engine():
    from engine.api import build_engine

    return build_engine(run_cases=False)


@pytest.mark.parametrize(("rule_id", "path"), CASES, ids=[f"{r}/{p.stem}" for r, p in CASES])
def test_rule_case(engine, rule_id, path):
    result = run_case(engine, rule_id, path)
    assert result.passed, "\n".join([f"{path}: {result.title}", *result.report()])
    # Every card must also pass the service's card model, or the service would drop it.
    for card in result.cards:
        Card.model_validate(prepare_card(card, CASE_BASE_URL))
