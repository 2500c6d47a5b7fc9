"""The condition vocabulary: parsing, checking, and durable-rules agreeing with plain Python."""

from __future__ import annotations

import itertools

import pytest

from engine.compiler import CATCH_ALL_ACTION
from engine.conditions import (
    AllOf,
    AnyOf,
    Compare,
    ConditionError,
    FactRef,
    Member,
    Not,
    Truth,
    check_condition,
    durable_key,
    holds,
    parse_condition,
    to_durable,
)
from engine.durable_runner import DurableRunner
from engine.vocabulary import load_vocabulary

VOCABULARY = load_vocabulary()


def is_fact(name: str) -> bool:
    return VOCABULARY.get(name) is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kps >= 70", Compare("kps", ">=", 70)),
        ("kps<80", Compare("kps", "<", 80)),
        ("symptom.onset_days <= 7", Compare("symptom.onset_days", "<=", 7)),
        ("vdl.median_months > 2.5", Compare("vdl.median_months", ">", 2.5)),
        ("primary == breast", Compare("primary", "==", "breast")),
        ("primary != 'lung'", Compare("primary", "!=", "lung")),
        ("has_flag == true", Compare("has_flag", "==", True)),
        ("primary in [breast, prostate]", Member("primary", ("breast", "prostate"), False)),
        ("primary not in [myeloma, lymphoma]", Member("primary", ("myeloma", "lymphoma"), True)),
    ],
)
def test_every_comparison_operator_parses(text, expected):
    assert parse_condition(text) == expected


def test_mappings_parse_to_truth_and_groups():
    assert parse_condition({"has": "cancer"}) == Truth("has", "cancer")
    assert parse_condition({"lacks": "mescc_confirmed"}) == Truth("lacks", "mescc_confirmed")
    assert parse_condition({"known": "kps"}) == Truth("known", "kps")
    assert parse_condition({"missing": "kps"}) == Truth("missing", "kps")
    assert parse_condition({"any": ["kps < 50", {"has": "cancer"}]}) == AnyOf(
        (Compare("kps", "<", 50), Truth("has", "cancer"))
    )
    assert parse_condition({"all": ["kps < 50"]}) == AllOf((Compare("kps", "<", 50),))
    assert parse_condition({"not": {"has": "cancer"}}) == Not(Truth("has", "cancer"))


def test_a_bare_word_naming_a_fact_becomes_a_fact_reference():
    condition = parse_condition("nrs > nrs_previous", is_fact=is_fact)
    assert condition == Compare("nrs", ">", FactRef("nrs_previous"))
    assert holds(condition, {"nrs": 8, "nrs_previous": 5})
    assert not holds(condition, {"nrs": 8})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("kps = 70", "write '==' to compare"),
        ("kps >=", "the value after '>=' is missing"),
        ("kps is high", "cannot read condition"),
        ("primary in breast", "takes a list"),
        ("primary in []", "is empty"),
        ({"has": "cancer", "lacks": "kps"}, "exactly one key"),
        ({"whenever": "cancer"}, "unknown condition 'whenever:'"),
        ({"any": []}, "non-empty list"),
        ({"has": ""}, "takes one fact name"),
        (42, "a condition is a string"),
    ],
)
def test_malformed_conditions_say_what_to_write(spec, message):
    with pytest.raises(ConditionError, match=message):
        parse_condition(spec)


@pytest.mark.parametrize(
    ("text", "scope", "message"),
    [
        ("sins.max_mim >= 7", "patient", "did you mean 'sins.max_min'"),
        ("lesion.sins_min >= 7", "patient", "set 'scope: lesion'"),
        ("kps >= high", "patient", "compare it with a number"),
        ("primary > 3", "patient", "needs a number fact"),
        ("cancer == yes", "patient", "write 'has: cancer'"),
        ("symptom.code == 3", "symptom", "compare it with a word"),
        ("primaries == breast", "patient", "is a list"),
        # durable-rules could not create a ruleset comparing with 1e-05 (as Python writes 0.00001)
        ("nrs.age_hours < 0.00001", "patient", "out of the rule engine's range"),
        ("nrs.age_hours < 20000000000000000.0", "patient", "out of the rule engine's range"),
    ],
)
def test_checking_against_the_vocabulary(text, scope, message):
    with pytest.raises(ConditionError, match=message):
        check_condition(parse_condition(text, is_fact=is_fact), VOCABULARY, scope, {})


def test_has_needs_a_boolean_fact():
    with pytest.raises(ConditionError, match="needs a true/false fact"):
        check_condition(parse_condition({"has": "kps"}), VOCABULARY, "patient", {})


def test_published_rule_facts_are_compared_only_with_numbers_the_engine_reads():
    published = {"mri-urgency": {"deadline_hours"}}
    with pytest.raises(ConditionError, match="out of the rule engine's range"):
        check_condition(parse_condition("mri-urgency.deadline_hours < 0.00001"), VOCABULARY, "patient", published)


def test_published_rule_facts_are_checked_by_name():
    published = {"mri-urgency": {"fired", "outcome", "deadline_hours"}}
    check_condition(
        parse_condition(
            "order.deadline_hours > mri-urgency.deadline_hours",
            is_fact=lambda n: n.startswith("mri-urgency.") or is_fact(n),
        ),
        VOCABULARY,
        "order",
        published,
    )
    with pytest.raises(ConditionError, match="publishes no 'deadline'"):
        check_condition(parse_condition({"has": "mri-urgency.deadline"}), VOCABULARY, "patient", published)


# Every condition shape, negated and not, against facts with values present, absent and of
# each boundary: durable-rules (which decides in production) must agree with plain Python.
CONDITIONS = [
    "kps >= 70",
    "kps > 70",
    "kps < 70",
    "kps <= 70",
    "kps == 70",
    "kps != 70",
    "primary in [breast, lung]",
    "primary not in [breast, lung]",
    "primary == breast",
    {"has": "cancer"},
    {"lacks": "cancer"},
    {"known": "kps"},
    {"missing": "kps"},
    {"any": ["kps < 50", {"has": "cancer"}]},
    {"all": ["kps >= 50", "primary == lung"]},
    "nrs > nrs_previous",
    "nrs == nrs_previous",
    "nrs != nrs_previous",
]
CONDITIONS += [{"not": c} for c in list(CONDITIONS)]
CONDITIONS += [{"not": {"any": [{"not": "kps >= 70"}, {"lacks": "cancer"}]}}]

FACT_VALUES = {
    "kps": [None, 40, 70, 80],
    "primary": [None, "breast", "prostate"],
    "cancer": [None, True, False],
    "nrs": [None, 5, 8],
    "nrs_previous": [None, 5],
}


def _fact_grid():
    names = list(FACT_VALUES)
    for values in itertools.product(*(FACT_VALUES[n] for n in names)):
        yield {name: value for name, value in zip(names, values, strict=True) if value is not None}


def test_durable_rules_agrees_with_plain_python_on_every_condition():
    parsed = [parse_condition(spec, is_fact=is_fact) for spec in CONDITIONS]
    stage = {
        f"c{index}": {"all": [{"m": {"$and": [{"kind": "patient"}, to_durable(condition)]}}], "run": f"c{index}"}
        for index, condition in enumerate(parsed)
    }
    stage[CATCH_ALL_ACTION] = {"all": [{"m": {"$ex": {"kind": 1}}}], "run": CATCH_ALL_ACTION}
    runner = DurableRunner((stage,))
    grid = list(_fact_grid())
    facts = [
        {"kind": "patient", "i": index, **{durable_key(k): v for k, v in values.items()}}
        for index, values in enumerate(grid)
    ]
    fired = set(runner.run(0, facts))
    disagreements = []
    for index, condition in enumerate(parsed):
        for subject, values in enumerate(grid):
            expected = holds(condition, values)
            if ((f"c{index}", subject) in fired) != expected:
                disagreements.append((CONDITIONS[index], values, expected))
    assert not disagreements, disagreements[:5]
    assert len(fired) > 100  # the grid really exercised matches, not only misses
