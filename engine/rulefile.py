"""The rule-file schema (pydantic) and a YAML reader that remembers line numbers.

Rule authors are clinicians: every problem is reported as `file:line: rule-id: message` with what
to write instead, never as a traceback.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

HOOKS = ("patient-view", "order-select", "order-sign")
SCOPES = ("patient", "symptom", "lesion", "order")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")
_RULE_ID = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


class RuleFileError(Exception):
    """One problem in one rule file, located for the author."""

    def __init__(self, file: Path | str, line: int | None, rule_id: str | None, message: str):
        self.file, self.line, self.rule_id, self.message = str(file), line, rule_id, message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        who = f" {self.rule_id}:" if self.rule_id else ""
        return f"{where}:{who} {self.message}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Citation(_Strict):
    source: str = Field(min_length=3, description="guideline name and publication")
    section: str = Field(min_length=2, description="section, table or figure of the guideline")
    url: str = Field(pattern=r"^https?://", description="where a reader finds the source")
    passage: str = Field(min_length=10, description="the quoted guideline passage the rule implements")


class LinkTemplate(_Strict):
    label: str
    url: str
    type: Literal["absolute", "smart"] = "absolute"
    app_context: str | None = None

    @field_validator("app_context")
    @classmethod
    def _smart_only(cls, value: str | None, info: Any) -> str | None:
        if value is not None and info.data.get("type") != "smart":
            raise ValueError("app_context is only allowed on links of type smart")
        return value


class ActionTemplate(_Strict):
    type: Literal["create", "update", "delete"]
    description: str = Field(min_length=3)
    resource: dict[str, Any] | None = None
    from_subject: Literal["order"] | None = None
    patch: dict[str, Any] | None = None
    resource_id: str | None = None

    @field_validator("patch")
    @classmethod
    def _patch_needs_subject(cls, value: dict[str, Any] | None, info: Any) -> dict[str, Any] | None:
        if value is not None and info.data.get("from_subject") is None:
            raise ValueError("patch needs from_subject: order (the draft order it changes)")
        return value


class SuggestionTemplate(_Strict):
    label: str = Field(min_length=3)
    is_recommended: bool = False
    actions: list[ActionTemplate] = Field(min_length=1)


class OverrideReason(_Strict):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    display: str = Field(min_length=3)


class BulletTemplate(_Strict):
    text: str = Field(min_length=3, description="one line of the card's detail (markdown, placeholders allowed)")
    when: list[Any] = Field(default=[], description="conditions on the deciding subject; the line shows when all hold")


class CardTemplate(_Strict):
    indicator: Literal["info", "warning", "critical"]
    summary: str = Field(min_length=5)
    detail: str = Field(min_length=5)
    bullets: list[BulletTemplate] = Field(
        default=[], description="lines after the detail, each shown only when its conditions hold (at most five show)"
    )
    footer: str = Field(default="", description="text after the bullets, e.g. the guideline passage in short")
    suggestions: list[SuggestionTemplate] = []
    selection_behavior: Literal["at-most-one", "any"] = "at-most-one"
    links: list[LinkTemplate] = []
    override_reasons: list[OverrideReason] = []
    extension: dict[Literal["sins", "survival"], Any] = {}
    missing_from: list[str] = []


class Outcome(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    scope: Literal["patient", "symptom", "lesion", "order"] = "patient"
    when: list[Any] = []
    outcome: str | int
    sets: dict[str, Any] = {}
    prefer_highest: str | None = None  # when several subjects match, the one with the highest value decides
    card: CardTemplate


class RuleFile(_Strict):
    id: str = Field(description="equals the folder name")
    version: str
    status: Literal["draft", "active", "retired"]
    title: str = Field(min_length=5)
    hooks: list[Literal["patient-view", "order-select", "order-sign"]] = Field(min_length=1)
    citation: Citation
    when: list[Any] = []
    outcomes: list[Outcome] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _rule_id(cls, value: str) -> str:
        if not _RULE_ID.match(value):
            raise ValueError("a rule id is lowercase words joined by dashes, e.g. sins-referral")
        return value

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        if not _SEMVER.match(value):
            raise ValueError("version is semver, e.g. 1.0.0")
        return value

    @field_validator("outcomes")
    @classmethod
    def _unique_outcomes(cls, value: list[Outcome]) -> list[Outcome]:
        seen: set[str] = set()
        for outcome in value:
            if outcome.id in seen:
                raise ValueError(f"outcome id '{outcome.id}' is used twice; outcome ids are unique in a rule")
            seen.add(outcome.id)
        return value


def rule_file_json_schema() -> dict[str, Any]:
    """The JSON Schema of rule.yaml, committed as rules/rule.schema.json for editors (YAML LSP)."""
    schema = RuleFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "http://spinecds.org/schema/rule.schema.json"
    return schema


# ---------------------------------------------------------------- YAML with line numbers


class LocatedYaml:
    """Plain data from a YAML file plus the line of every mapping key and list item."""

    def __init__(self, data: Any, lines: dict[tuple[Any, ...], int]):
        self.data, self.lines = data, lines

    def line_of(self, path: tuple[Any, ...]) -> int | None:
        for cut in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:cut]))
            if line is not None:
                return line
        return None


def read_located_yaml(path: Path) -> LocatedYaml:
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(error, "problem", None) or str(error)
        raise RuleFileError(path, line, None, f"not valid YAML: {problem}") from None
    if node is None:
        raise RuleFileError(path, 1, None, "the file is empty")
    lines: dict[tuple[Any, ...], int] = {}
    loader = yaml.SafeLoader("")
    data = _construct(node, (), lines, loader)
    return LocatedYaml(data, lines)


def _construct(node: yaml.Node, path: tuple[Any, ...], lines: dict, loader: yaml.SafeLoader) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # YAML merge keys (`<<: *anchor`) let a rule reuse a block of sets
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            child = path + (key,)
            result[key] = _construct(value_node, child, lines, loader)
            lines[child] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, path + (i,), lines, loader) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _model_fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names allowed where an unknown key was written, for 'did you mean'."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        candidates = [a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return []
        current = candidates[0]
    return list(getattr(current, "model_fields", {}))


def parse_rule_file(path: Path) -> tuple[RuleFile, LocatedYaml]:
    try:
        located = read_located_yaml(path)
    except RuleFileError as error:
        # Broken YAML has no readable id; the folder name is the rule's id.
        raise RuleFileError(error.file, error.line, path.parent.name, error.message) from None
    data = located.data
    rule_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(data, dict):
        raise RuleFileError(path, 1, None, "a rule file is a mapping with id, version, status, title, ...")
    try:
        rule = RuleFile.model_validate(data)
    except ValidationError as error:
        # A misspelt key also makes the right key "missing": report the typo, it explains both.
        errors = sorted(error.errors(), key=lambda e: e["type"] != "extra_forbidden")
        first = errors[0]
        loc = tuple(first["loc"])
        message = first["msg"]
        where = ".".join(str(part) for part in loc) or "(top level)"
        if first["type"] == "extra_forbidden":
            allowed = _model_fields_at(RuleFile, loc)
            hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            message = f"unknown key '{loc[-1]}'" + (
                f" - did you mean '{hint[0]}'?" if hint else f"; allowed here: {', '.join(allowed)}"
            )
        elif first["type"] == "missing":
            message = f"'{loc[-1]}' is required"
        else:
            message = f"{where}: {message}"
        raise RuleFileError(path, located.line_of(loc), rule_id, message) from None
    if rule.id != path.parent.name:
        raise RuleFileError(
            path, located.line_of(("id",)), rule.id, f"id '{rule.id}' must equal the folder name '{path.parent.name}'"
        )
    return rule, located
