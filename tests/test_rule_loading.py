"""Rule files: every broken file stops loading with file:line, rule id and what to write instead."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from engine.loader import RuleLoadError, load_rules
from engine.vocabulary import load_vocabulary

FIXTURES = Path(__file__).parent / "fixtures" / "rules"
VOCABULARY = load_vocabulary()


def test_fixture_rules_compile_into_stages():
    compiled = load_rules(FIXTURES, VOCABULARY)
    stages = {o.action: o.stage for o in compiled.outcomes}
    assert stages["demo-sins#unstable"] == 0
    # reads demo-sins' published facts, so it must run after demo-sins
    assert stages["demo-followup#draft-too-late"] == 1
    assert len(compiled.stages) == 2
    assert {rule.id for rule in compiled.rules} == {"demo-sins", "demo-followup"}


def _broken(tmp_path: Path, body: str, folder: str = "broken-rule") -> Path:
    shutil.copytree(FIXTURES, tmp_path / "rules")
    path = tmp_path / "rules" / folder / "rule.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


HEADER = """\
id: broken-rule
version: 1.0.0
status: active
title: A rule with a mistake in it
hooks: [patient-view]
citation:
  source: Test
  section: Test
  url: https://example.org
  passage: A passage long enough to be a passage.
"""


def _load_error(tmp_path: Path, body: str, folder: str = "broken-rule") -> str:
    path = _broken(tmp_path, body, folder)
    with pytest.raises(RuleLoadError) as caught:
        load_rules(path.parent.parent, VOCABULARY)
    assert len(caught.value.errors) == 1
    return caught.value.errors[0]


def test_unknown_fact_names_file_line_rule_and_suggestion(tmp_path):
    error = _load_error(
        tmp_path,
        HEADER
        + textwrap.dedent("""\
        outcomes:
          - id: unstable
            when:
              - sins.max_mim >= 7
            outcome: advise
            card: {indicator: info, summary: "Some summary", detail: "Some detail"}
        """),
    )
    assert error.endswith(
        "broken-rule/rule.yaml:14: broken-rule: unknown fact 'sins.max_mim' - did you mean 'sins.max_min'?"
    )


def test_yaml_syntax_error_gives_its_line_and_the_rule(tmp_path):
    error = _load_error(tmp_path, HEADER + "outcomes:\n  - id: [unclosed\n")
    assert "broken-rule/rule.yaml:13: broken-rule: not valid YAML" in error


def test_a_misspelt_required_key_is_reported_as_the_typo(tmp_path):
    # `indicater` also leaves `indicator` missing; the typo is what the author must see.
    error = _load_error(
        tmp_path,
        HEADER
        + textwrap.dedent("""\
        outcomes:
          - id: a
            outcome: advise
            card:
              summary: "Some summary"
              detail: "Some detail"
              indicater: info
        """),
    )
    assert error.endswith("broken-rule/rule.yaml:17: broken-rule: unknown key 'indicater' - did you mean 'indicator'?")


def test_unknown_key_suggests_the_right_one(tmp_path):
    error = _load_error(
        tmp_path,
        HEADER
        + textwrap.dedent("""\
        outcomes:
          - id: a
            outcome: advise
            card: {indicator: info, summary: "Some summary", detial: "x", detail: "Some detail"}
        """),
    )
    assert ":14: broken-rule: unknown key 'detial' - did you mean 'detail'?" in error


def test_bad_indicator_is_located(tmp_path):
    error = _load_error(
        tmp_path,
        HEADER
        + textwrap.dedent("""\
        outcomes:
          - id: a
            outcome: advise
            card:
              indicator: urgent
              summary: "Some summary"
              detail: "Some detail"
        """),
    )
    assert ":15: broken-rule: outcomes.0.card.indicator:" in error and "'info', 'warning' or 'critical'" in error


def test_missing_required_field(tmp_path):
    error = _load_error(
        tmp_path,
        HEADER.replace("status: active\n", "")
        + textwrap.dedent("""\
        outcomes:
          - id: a
            outcome: advise
            card: {indicator: info, summary: "Some summary", detail: "Some detail"}
        """),
    )
    assert "broken-rule: 'status' is required" in error


def test_id_must_match_folder(tmp_path):
    error = _load_error(
        tmp_path,
        HEADER
        + textwrap.dedent("""\
        outcomes:
          - id: a
            outcome: advise
            card: {indicator: info, summary: "Some summary", detail: "Some detail"}
        """),
        folder="other-name",
    )
    assert ":1: broken-rule: id 'broken-rule' must equal the folder name 'other-name'" in error


def test_unknown_placeholder_in_card(tmp_path):
    error = _load_error(
        tmp_path,
        HEADER
        + textwrap.dedent("""\
        outcomes:
          - id: a
            outcome: advise
            card: {indicator: info, summary: "KPS {kpss}", detail: "Some detail"}
        """),
    )
    assert "unknown placeholder '{kpss}' - did you mean '{kps}'?" in error


def test_deadline_placeholder_needs_deadline_hours(tmp_path):
    error = _load_error(
        tmp_path,
        HEADER
        + textwrap.dedent("""\
        outcomes:
          - id: a
            outcome: advise
            card: {indicator: info, summary: "By {deadline}", detail: "Some detail"}
        """),
    )
    assert "needs 'deadline_hours' in this outcome's sets" in error


def test_subject_fact_outside_its_scope(tmp_path):
    error = _load_error(
        tmp_path,
        HEADER
        + textwrap.dedent("""\
        outcomes:
          - id: a
            when: ["symptom.onset_days <= 7"]
            outcome: advise
            card: {indicator: info, summary: "Some summary", detail: "Some detail"}
        """),
    )
    assert "set 'scope: symptom' on this outcome" in error


def test_create_suggestion_needs_a_resource(tmp_path):
    error = _load_error(
        tmp_path,
        HEADER
        + textwrap.dedent("""\
        outcomes:
          - id: a
            outcome: advise
            card:
              indicator: info
              summary: "Some summary"
              detail: "Some detail"
              suggestions:
                - label: Do it
                  actions:
                    - {type: create, description: Create something}
        """),
    )
    assert ":21: broken-rule: a create action needs a 'resource' template" in error


def test_draft_rules_are_validated_but_not_evaluated(tmp_path):
    path = _broken(
        tmp_path,
        HEADER.replace("status: active", "status: draft")
        + textwrap.dedent("""\
        outcomes:
          - id: a
            outcome: advise
            card: {indicator: info, summary: "Some summary", detail: "Some detail"}
        """),
    )
    compiled = load_rules(path.parent.parent, VOCABULARY)
    assert "broken-rule" not in {rule.id for rule in compiled.rules}
    assert "broken-rule" in {item.rule.id for item in compiled.all_rules}


def test_every_broken_file_is_reported_not_only_the_first(tmp_path):
    _broken(tmp_path, "id: [", folder="one-broken")
    second = tmp_path / "rules" / "two-broken" / "rule.yaml"
    second.parent.mkdir()
    second.write_text("just a string\n", encoding="utf-8")
    with pytest.raises(RuleLoadError) as caught:
        load_rules(tmp_path / "rules", VOCABULARY)
    assert len(caught.value.errors) == 2


def test_outcomes_reading_their_own_rule_wait_for_the_deciding_ones_not_for_each_other(tmp_path):
    path = _broken(
        tmp_path,
        HEADER
        + textwrap.dedent("""\
        outcomes:
          - id: draft-late
            scope: order
            when: ["order.deadline_hours > broken-rule.deadline_hours"]
            outcome: late
            card: {indicator: warning, summary: "Some summary", detail: "Some detail"}
          - id: draft-on-time
            scope: order
            when: [{not: "order.deadline_hours > broken-rule.deadline_hours"}, {known: broken-rule.deadline_hours}]
            outcome: on-time
            card: {indicator: info, summary: "Some summary", detail: "Some detail"}
          - id: decide
            when: [{has: cancer}]
            outcome: decided
            sets: {deadline_hours: 12}
            card: {indicator: info, summary: "Some summary", detail: "Some detail"}
        """),
    )
    compiled = load_rules(path.parent.parent, VOCABULARY)
    stages = {o.action: o.stage for o in compiled.outcomes if o.rule.id == "broken-rule"}
    assert stages == {"broken-rule#decide": 0, "broken-rule#draft-late": 1, "broken-rule#draft-on-time": 1}
