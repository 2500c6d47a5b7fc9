"""The condition vocabulary of rule files: parse, check, compile to durable-rules, evaluate.

A condition is written by a rule author as a string (`sins.max_min >= 7`) or a one-key mapping
(`has: cancer`, `any: [...]`, `not: ...`). It is parsed once at load time into a small tree that
can (1) compile to a durable-rules JSON expression, which is what decides at run time, and
(2) evaluate in plain Python, which only the trace and the benchmark baseline use. Both follow the
same rule: a comparison with a fact that has no value is false.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from engine.vocabulary import Vocabulary

Facts = dict[str, Any]


class ConditionError(ValueError):
    """A condition a rule author wrote that cannot be used; `path` locates it in the YAML."""

    def __init__(self, message: str, path: tuple[Any, ...] = ()):
        super().__init__(message)
        self.path = path


@functools.lru_cache(maxsize=4096)  # ~100 lookups per evaluation over a fixed vocabulary
def durable_key(name: str) -> str:
    """durable-rules field names: dots and dashes are not safe there, so flatten them."""
    return name.replace(".", "__").replace("-", "_")


_COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_DURABLE_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "!=": "$neq"}
_INVERSE = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}


@dataclass(frozen=True)
class FactRef:
    """The right-hand side of a comparison that names another fact.

    Example: `order.deadline_hours > mri-urgency.deadline_hours`.
    """

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Compare:
    fact: str
    op: str
    value: Any

    def text(self) -> str:
        return f"{self.fact} {self.op} {_show(self.value)}"


@dataclass(frozen=True)
class Member:
    fact: str
    values: tuple[Any, ...]
    negated: bool

    def text(self) -> str:
        word = "not in" if self.negated else "in"
        return f"{self.fact} {word} [{', '.join(_show(v) for v in self.values)}]"


@dataclass(frozen=True)
class Truth:
    kind: str  # has | lacks | known | missing
    fact: str

    def text(self) -> str:
        return f"{self.kind}: {self.fact}"


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Condition, ...]

    def text(self) -> str:
        return "any of (" + "; ".join(c.text() for c in self.children) + ")"


@dataclass(frozen=True)
class AllOf:
    children: tuple[Condition, ...]

    def text(self) -> str:
        return "all of (" + "; ".join(c.text() for c in self.children) + ")"


@dataclass(frozen=True)
class Not:
    child: Condition

    def text(self) -> str:
        return f"not ({self.child.text()})"


Condition = Compare | Member | Truth | AnyOf | AllOf | Not


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------- parsing

_COMPARISON = re.compile(
    r"^\s*(?P<fact>[A-Za-z][\w.\-]*)\s*(?P<op>==|!=|<=|>=|<|>|\bnot\s+in\b|\bin\b|=)\s*(?P<value>.*?)\s*$"
)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_TRUTH_KEYS = ("has", "lacks", "known", "missing")
_GROUP_KEYS = ("any", "all", "not")


def parse_value(raw: str) -> Any:
    raw = raw.strip()
    if _NUMBER.match(raw):
        return float(raw) if "." in raw else int(raw)
    if raw in ("true", "false"):
        return raw == "true"
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


def parse_condition(
    spec: Any, path: tuple[Any, ...] = (), is_fact: Callable[[str], bool] = lambda name: False
) -> Condition:
    """Parse one condition. `is_fact` tells a bare word that names a fact from a plain value."""
    if isinstance(spec, str):
        return _parse_comparison(spec, path, is_fact)
    if isinstance(spec, dict):
        if len(spec) != 1:
            raise ConditionError(
                f"a condition mapping has exactly one key, got {sorted(spec)}; write one condition per list item",
                path,
            )
        ((key, body),) = spec.items()
        if key in _TRUTH_KEYS:
            if not isinstance(body, str) or not body.strip():
                raise ConditionError(f"'{key}:' takes one fact name, e.g. '{key}: cancer'", path + (key,))
            return Truth(kind=key, fact=body.strip())
        if key in ("any", "all"):
            if not isinstance(body, list) or not body:
                raise ConditionError(f"'{key}:' takes a non-empty list of conditions", path + (key,))
            children = tuple(parse_condition(item, path + (key, i), is_fact) for i, item in enumerate(body))
            return AnyOf(children) if key == "any" else AllOf(children)
        if key == "not":
            return Not(parse_condition(body, path + (key,), is_fact))
        raise ConditionError(
            f"unknown condition '{key}:'; write one of {', '.join(_TRUTH_KEYS + _GROUP_KEYS)} "
            "or a comparison such as 'kps >= 70'",
            path,
        )
    if isinstance(spec, list):
        return AllOf(tuple(parse_condition(item, path + (i,), is_fact) for i, item in enumerate(spec)))
    raise ConditionError(
        f"a condition is a string like 'kps >= 70' or a mapping like 'has: cancer', got {spec!r}", path
    )


def _parse_comparison(text: str, path: tuple[Any, ...], is_fact: Callable[[str], bool]) -> Condition:
    match = _COMPARISON.match(text)
    if not match:
        raise ConditionError(
            f"cannot read condition '{text}'; write 'fact op value' (op: == != < <= > >= in 'not in'), or 'has: fact'",
            path,
        )
    fact, op, raw = match["fact"], re.sub(r"\s+", " ", match["op"]), match["value"]
    if op == "=":
        raise ConditionError(f"'{text}': write '==' to compare, not '='", path)
    if not raw:
        raise ConditionError(f"'{text}': the value after '{op}' is missing", path)
    if op in ("in", "not in"):
        if not (raw.startswith("[") and raw.endswith("]")):
            raise ConditionError(f"'{text}': '{op}' takes a list, e.g. '{fact} {op} [a, b]'", path)
        items = [parse_value(item) for item in raw[1:-1].split(",") if item.strip()]
        if not items:
            raise ConditionError(f"'{text}': the list after '{op}' is empty", path)
        return Member(fact=fact, values=tuple(items), negated=(op == "not in"))
    value = parse_value(raw)
    if isinstance(value, str) and raw == value and is_fact(value):
        return Compare(fact=fact, op=op, value=FactRef(value))
    return Compare(fact=fact, op=op, value=value)


# ---------------------------------------------------------------- checking


def facts_named(condition: Condition) -> Iterable[str]:
    if isinstance(condition, (Compare, Member, Truth)):
        yield condition.fact
        if isinstance(condition, Compare) and isinstance(condition.value, FactRef):
            yield condition.value.name
    elif isinstance(condition, (AnyOf, AllOf)):
        for child in condition.children:
            yield from facts_named(child)
    elif isinstance(condition, Not):
        yield from facts_named(condition.child)


def check_condition(
    condition: Condition,
    vocabulary: Vocabulary,
    scope: str,
    published: dict[str, set[str]],
    path: tuple[Any, ...] = (),
) -> None:
    """Raise ConditionError for unknown facts, wrong scope or a value of the wrong type.

    `published` maps a rule id to the names its outcomes publish (`sets` keys and `fired`).
    """
    if isinstance(condition, (AnyOf, AllOf)):
        for child in condition.children:
            check_condition(child, vocabulary, scope, published, path)
        return
    if isinstance(condition, Not):
        check_condition(condition.child, vocabulary, scope, published, path)
        return
    name = condition.fact
    rule_id, _, member = name.partition(".")
    if rule_id in published and member:
        if member not in published[rule_id]:
            options = ", ".join(sorted(published[rule_id]))
            raise ConditionError(f"rule '{rule_id}' publishes no '{member}' (it publishes: {options})", path)
        if isinstance(condition, Compare):
            _check_engine_range(condition.value, path)
        return
    fact = vocabulary.get(name)
    if fact is None:
        hint = vocabulary.suggest(name)
        suffix = f" - did you mean '{hint}'?" if hint else " - see the fact vocabulary in rules/README.md"
        raise ConditionError(f"unknown fact '{name}'{suffix}", path)
    if fact.scope not in ("patient", "any", scope):
        raise ConditionError(
            f"fact '{name}' exists only on {fact.scope} subjects; set 'scope: {fact.scope}' on this outcome",
            path,
        )
    if isinstance(condition, Compare) and isinstance(condition.value, FactRef):
        other = vocabulary.get(condition.value.name)
        if other is not None and other.type != fact.type:
            raise ConditionError(f"cannot compare '{name}' ({fact.type}) with '{other.name}' ({other.type})", path)
        if condition.op in ("<", "<=", ">", ">=") and fact.type != "number":
            raise ConditionError(f"'{name}' is a {fact.type}; '{condition.op}' needs a number fact", path)
    elif isinstance(condition, Compare):
        _check_value_type(name, fact.type, condition.op, condition.value, path)
    elif isinstance(condition, Member):
        for value in condition.values:
            _check_value_type(name, fact.type, "in", value, path)
    elif condition.kind in ("has", "lacks") and fact.type != "bool":
        raise ConditionError(
            f"'{condition.kind}: {name}' needs a true/false fact but '{name}' is a {fact.type}; "
            f"write 'known: {name}' or a comparison",
            path,
        )


def _check_value_type(name: str, fact_type: str, op: str, value: Any, path: tuple[Any, ...]) -> None:
    if fact_type == "list":
        raise ConditionError(f"'{name}' is a list and cannot be compared; test a scalar fact instead", path)
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if op in ("<", "<=", ">", ">=") and fact_type != "number":
        raise ConditionError(f"'{name}' is a {fact_type}; '{op}' needs a number fact", path)
    if fact_type == "number" and not is_number:
        raise ConditionError(f"'{name}' is a number; compare it with a number, not {value!r}", path)
    if fact_type == "bool" and not isinstance(value, bool):
        raise ConditionError(f"'{name}' is true/false; write 'has: {name}' or compare with true/false", path)
    if fact_type == "string" and not isinstance(value, str):
        raise ConditionError(f"'{name}' is text; compare it with a word, e.g. {name} == unilateral", path)
    _check_engine_range(value, path)


def _check_engine_range(value: Any, path: tuple[Any, ...]) -> None:
    if isinstance(value, float) and not (value == 0 or 1e-4 <= abs(value) < 1e16):
        # durable-rules cannot read a number Python writes with an exponent (1e-05), nor infinity.
        raise ConditionError(
            f"{value!r} is out of the rule engine's range: compare with a number from 0.0001 up to "
            "10,000,000,000,000,000 (or 0); use another unit (hours instead of days) if needed",
            path,
        )


# ---------------------------------------------------------------- durable-rules JSON


def to_durable(condition: Condition, negate: bool = False) -> dict[str, Any]:
    """Compile to a durable-rules expression. durable-rules has no `not`: negation is pushed down."""
    if isinstance(condition, Not):
        return to_durable(condition.child, not negate)
    if isinstance(condition, (AnyOf, AllOf)):
        is_any = isinstance(condition, AnyOf) != negate  # De Morgan
        parts = [to_durable(child, negate) for child in condition.children]
        return parts[0] if len(parts) == 1 else {("$or" if is_any else "$and"): parts}
    key = durable_key(condition.fact)
    present = {"$ex": {key: 1}}
    absent = {"$nex": {key: 1}}
    if isinstance(condition, Truth):
        kind = condition.kind
        if negate:
            kind = {"has": "lacks", "lacks": "has", "known": "missing", "missing": "known"}[kind]
        if kind == "has":
            return {key: True}
        if kind == "lacks":
            return {"$or": [{key: False}, absent]}
        return present if kind == "known" else absent
    if isinstance(condition, Compare):
        op = _INVERSE[condition.op] if negate else condition.op
        value: Any = condition.value
        keys = [key]
        if isinstance(value, FactRef):
            keys.append(durable_key(value.name))
            value = {"$m": keys[1]}
        test = {key: value} if op == "==" else {_DURABLE_OPS[op]: {key: value}}
        if op == "!=" or len(keys) > 1:
            test = {"$and": [*({"$ex": {k: 1}} for k in keys), test]}
        # The negation of a comparison also holds when a fact has no value.
        if negate:
            return {"$or": [*({"$nex": {k: 1}} for k in keys), test]}
        return test
    # Member
    negated = condition.negated != negate
    if not negated:
        options = [{key: value} for value in condition.values]
        test = options[0] if len(options) == 1 else {"$or": options}
    else:
        test = {"$and": [present] + [{"$neq": {key: value}} for value in condition.values]}
    # Like every comparison, a membership test is false without a value, so its negation is true.
    return {"$or": [absent, test]} if negate else test


# ---------------------------------------------------------------- plain Python


def holds(condition: Condition, facts: Facts) -> bool:
    if isinstance(condition, AllOf):
        return all(holds(child, facts) for child in condition.children)
    if isinstance(condition, AnyOf):
        return any(holds(child, facts) for child in condition.children)
    if isinstance(condition, Not):
        return not holds(condition.child, facts)
    value = facts.get(condition.fact)
    if isinstance(condition, Compare) and isinstance(condition.value, FactRef):
        other = facts.get(condition.value.name)
        if value is None or other is None:
            return False
        try:
            return _COMPARATORS[condition.op](value, other)
        except TypeError:
            return False
    if isinstance(condition, Truth):
        return {
            "has": value is True,
            "lacks": value is not True,
            "known": value is not None,
            "missing": value is None,
        }[condition.kind]
    if value is None:
        return False
    if isinstance(condition, Member):
        return (value not in condition.values) if condition.negated else (value in condition.values)
    try:
        return _COMPARATORS[condition.op](value, condition.value)
    except TypeError:
        return False


def first_failure(conditions: Iterable[Condition], facts: Facts) -> Condition | None:
    """The first top-level condition that does not hold, for the trace ('why did this not fire')."""
    for condition in conditions:
        if not holds(condition, facts):
            return condition
    return None
