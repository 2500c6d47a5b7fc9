"""Score tables (rules/scores/*.yaml) as data, and the three generic ways to compute them.

Formats (documented for authors in rules/scores/README.md):
- ``additive``: components add points; an input is looked up in ``points`` (with optional
  ``default``) or in ``thresholds`` (first ``min`` reached). Missing inputs give a min/max range.
  ``bands`` turn a total into a category / group. Used by SINS and Van der Linden.
- ``lookup``: inputs are classified (``map`` or ``thresholds``) and the first matching row gives a
  group; a row that does not name an input does not need it. Used by Bollen.
- ``mapping``: one value to another. Used by ECOG -> KPS.

Tables load once (``load_scores``) and are validated; a broken table raises ``ScoreTableError``
with ``file:line: table-id: what is wrong``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

DEFAULT_DIRECTORY = Path(__file__).resolve().parent.parent / "rules" / "scores"
TABLE_FILES = {
    "sins": "sins.yaml",
    "vdl": "van-der-linden.yaml",
    "bollen": "bollen.yaml",
    "ecog_to_kps": "ecog-to-kps.yaml",
    "criteria": "surgery-criteria.yaml",
}


class ScoreTableError(ValueError):
    """A score table is broken; the message is ``file:line: id: problem``."""


# ---------------------------------------------------------------- YAML with line numbers


def _line_index(node: yaml.Node, path: tuple = (), index: dict | None = None) -> dict[tuple, int]:
    """Map every path in the document (('components', 0, 'points')) to its 1-based line."""
    index = {} if index is None else index
    index[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            _line_index(value_node, path + (key_node.value,), index)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, path + (i,), index)
    return index


class _Source:
    """A parsed table plus the means to complain about a place in it."""

    def __init__(self, path: Path):
        self.path = path
        try:
            text = path.read_text(encoding="utf-8")
            self.data = yaml.safe_load(text)
            node = yaml.compose(text) if self.data is not None else None
            self.lines = _line_index(node) if node is not None else {}
        except OSError as exc:
            raise ScoreTableError(f"{path}: cannot read: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise ScoreTableError(f"{path}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
        if not isinstance(self.data, dict):
            raise ScoreTableError(f"{path}:1: expected a mapping with id, version, type ...")
        self.id = self.data.get("id", path.stem)

    def error(self, where: tuple, message: str) -> ScoreTableError:
        probe = where
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe, 1)
        shown = ".".join(str(p) for p in where) or "(top)"
        return ScoreTableError(f"{self.path}:{line}: {self.id}: {shown}: {message}")

    def need(self, where: tuple, value: Any, kind: type | tuple, what: str) -> Any:
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            raise self.error(where, f"expected {what}, found {value!r}")
        return value


def _as_tuple(kind: type | tuple) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


# ---------------------------------------------------------------- table models


@dataclass(frozen=True)
class Band:
    min: int
    max: int
    name: str  # category (SINS) or group (Van der Linden)
    label: str
    median_months: float | None = None
    note: str | None = None  # plain-words reading of the group, shown on cards


@dataclass(frozen=True)
class Component:
    id: str
    label: str
    input: str
    code: str | None = None  # SF code of the SINS component
    points: Mapping[Any, int] = field(default_factory=dict)
    default: int | None = None
    thresholds: tuple[tuple[float, int], ...] = ()  # (min, points), highest min first

    @property
    def possible(self) -> list[int]:
        values = list(self.points.values()) + [p for _, p in self.thresholds]
        if self.default is not None:
            values.append(self.default)
        return values

    def score(self, value: Any) -> int | None:
        if self.thresholds:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            for minimum, points in self.thresholds:
                if value >= minimum:
                    return points
            return None
        if value in self.points:
            return self.points[value]
        return self.default


@dataclass(frozen=True)
class AdditiveResult:
    total: int | None  # set when every input is known
    min: int
    max: int
    band: Band | None  # set when min and max fall in the same band
    missing: list[str]  # labels of the missing components
    unknown_answers: list[str]  # components whose value is not in the table


@dataclass(frozen=True)
class AdditiveTable:
    id: str
    version: str
    status: str
    citation: Mapping[str, Any]
    components: tuple[Component, ...]
    bands: tuple[Band, ...]
    not_applicable: Mapping[str, tuple]

    def component(self, component_id: str) -> Component:
        return next(c for c in self.components if c.id == component_id)

    def band_of(self, total: int) -> Band | None:
        return next((b for b in self.bands if b.min <= total <= b.max), None)

    def applicable(self, inputs: Mapping[str, Any]) -> bool:
        return not any(inputs.get(name) in values for name, values in self.not_applicable.items())

    def compute(self, inputs: Mapping[str, Any]) -> AdditiveResult:
        low = high = 0
        missing: list[str] = []
        unknown: list[str] = []
        for comp in self.components:
            value = inputs.get(comp.input)
            points = None if value is None else comp.score(value)
            if points is None:
                if value is not None:
                    unknown.append(comp.label)
                missing.append(comp.label)
                low += min(comp.possible)
                high += max(comp.possible)
            else:
                low += points
                high += points
        first, last = self.band_of(low), self.band_of(high)
        band = first if first is not None and first == last else None
        return AdditiveResult(
            total=low if not missing else None, min=low, max=high, band=band, missing=missing, unknown_answers=unknown
        )


@dataclass(frozen=True)
class LookupInput:
    name: str
    label: str
    source: str  # fact name
    map: Mapping[Any, str] | None = None
    thresholds: tuple[tuple[float, str], ...] = ()

    def classify(self, value: Any) -> Any:
        if value is None:
            return None
        if self.map is not None:
            return self.map.get(value)
        if self.thresholds:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            return next((v for minimum, v in self.thresholds if value >= minimum), None)
        return value


@dataclass(frozen=True)
class LookupResult:
    group: str | None
    median_months: float | None
    classified: dict[str, Any]  # input name -> class (e.g. profile -> favourable)
    missing: list[str]  # labels of inputs still needed
    unclassified: list[str]  # labels of inputs present but not in the table


@dataclass(frozen=True)
class LookupTable:
    id: str
    version: str
    status: str
    draft_reason: str | None
    citation: Mapping[str, Any]
    inputs: tuple[LookupInput, ...]
    rows: tuple[Mapping[str, Any], ...]
    medians: Mapping[str, float]
    not_applicable: Mapping[str, tuple]

    def applicable(self, facts: Mapping[str, Any]) -> bool:
        return not any(facts.get(name) in values for name, values in self.not_applicable.items())

    def compute(self, facts: Mapping[str, Any]) -> LookupResult:
        classified: dict[str, Any] = {}
        unclassified: list[str] = []
        for inp in self.inputs:
            raw = facts.get(inp.source)
            cls = inp.classify(raw)
            if cls is None and raw is not None:
                unclassified.append(inp.label)
            classified[inp.name] = cls
        candidates = [
            row
            for row in self.rows
            if all(classified.get(k) is None or classified[k] == v for k, v in row.items() if k != "group")
        ]
        groups = {row["group"] for row in candidates}
        if len(groups) == 1 and not unclassified:
            group = groups.pop()
            return LookupResult(group, self.medians[group], classified, [], [])
        needed = {k for row in candidates for k in row if k != "group" and classified.get(k) is None}
        missing = [inp.label for inp in self.inputs if inp.name in needed and inp.label not in unclassified]
        return LookupResult(None, None, classified, missing, unclassified)


@dataclass(frozen=True)
class MappingTable:
    id: str
    version: str
    citation: Mapping[str, Any]
    mapping: Mapping[Any, Any]

    def get(self, value: Any) -> Any:
        return self.mapping.get(value)


@dataclass(frozen=True)
class SurgeryCriteria:
    """rules/scores/surgery-criteria.yaml: the guideline's surgery criteria and the uncertainty rules."""

    id: str
    version: str
    citation: Mapping[str, Any]
    single_months: float
    combined_months: float
    poor_below: int
    recent_days: float
    discuss_below: int
    range_when_unknown: tuple[int, int]
    old_after_days: float
    old_floor: int
    deficit_codes: frozenset[str]
    deficit_mescc: bool
    outdated_codes: frozenset[str]
    outdated_progressive_codes: frozenset[str]
    outdated_bilateral_codes: frozenset[str]
    outdated_mescc: bool


@dataclass(frozen=True)
class ScoreTables:
    sins: AdditiveTable
    vdl: AdditiveTable
    bollen: LookupTable
    ecog_to_kps: MappingTable
    criteria: SurgeryCriteria


# ---------------------------------------------------------------- loading + validation


def _header(src: _Source, expected_type: str) -> dict[str, Any]:
    d = src.data
    for key in ("id", "version", "citation", "type"):
        if key not in d:
            raise src.error((), f"missing '{key}'")
    src.need(("id",), d["id"], str, "a string id")
    if not isinstance(d["version"], str):
        raise src.error(("version",), "version must be a quoted semver string like '1.0.0'")
    citation = src.need(("citation",), d["citation"], dict, "a mapping with source (and url, passage)")
    if not isinstance(citation.get("source"), str):
        raise src.error(("citation",), "citation needs a 'source'")
    if d["type"] != expected_type:
        raise src.error(("type",), f"this table must be of type '{expected_type}', found {d['type']!r}")
    status = d.get("status", "active")
    if status not in ("active", "draft", "retired"):
        raise src.error(("status",), f"status must be active, draft or retired, found {status!r}")
    if status == "draft" and not isinstance(d.get("draft_reason"), str):
        raise src.error(("status",), "a draft table needs a 'draft_reason'")
    return d


def _not_applicable(src: _Source) -> dict[str, tuple]:
    raw = src.data.get("not_applicable") or {}
    src.need(("not_applicable",), raw, dict, "a mapping input -> list of values")
    result = {}
    for name, values in raw.items():
        src.need(("not_applicable", name), values, list, "a list of values")
        result[name] = tuple(values)
    return result


def _bands(src: _Source) -> tuple[Band, ...]:
    raw = src.need(("bands",), src.data.get("bands"), list, "a list of bands {min, max, ...}")
    bands: list[Band] = []
    for i, b in enumerate(raw):
        where = ("bands", i)
        src.need(where, b, dict, "a band {min, max, category|group}")
        lo = src.need(where + ("min",), b.get("min"), int, "an integer min")
        hi = src.need(where + ("max",), b.get("max"), int, "an integer max")
        if lo > hi:
            raise src.error(where, f"min {lo} is above max {hi}")
        name = b.get("category", b.get("group"))
        src.need(where, name, str, "a 'category' or 'group' name")
        median = b.get("median_months")
        if median is not None:
            src.need(where + ("median_months",), median, (int, float), "a number of months")
        if bands and lo != bands[-1].max + 1:
            raise src.error(where, f"bands must be contiguous: expected min {bands[-1].max + 1}, found {lo}")
        note = b.get("note")
        if note is not None:
            src.need(where + ("note",), note, str, "a sentence")
        bands.append(Band(lo, hi, name, str(b.get("label", name)), None if median is None else float(median), note))
    if not bands:
        raise src.error(("bands",), "at least one band is needed")
    return tuple(bands)


def _additive(src: _Source) -> AdditiveTable:
    d = _header(src, "additive")
    raw = src.need(("components",), d.get("components"), list, "a list of components")
    components = []
    for i, c in enumerate(raw):
        where = ("components", i)
        src.need(where, c, dict, "a component {id, label, points|thresholds}")
        cid = src.need(where + ("id",), c.get("id"), str, "a component id")
        points = c.get("points") or {}
        src.need(where + ("points",), points, dict, "a mapping answer -> points")
        for answer, value in points.items():
            src.need(where + ("points", answer), value, int, f"integer points for {answer!r}")
        thresholds = []
        for j, t in enumerate(c.get("thresholds") or []):
            tw = where + ("thresholds", j)
            src.need(tw, t, dict, "a row {min, points}")
            minimum = src.need(tw + ("min",), t.get("min"), (int, float), "a numeric min")
            thresholds.append((minimum, src.need(tw + ("points",), t.get("points"), int, "integer points")))
        if bool(points) == bool(thresholds):
            raise src.error(where, "give either 'points' or 'thresholds'")
        if [m for m, _ in thresholds] != sorted((m for m, _ in thresholds), reverse=True):
            raise src.error(where + ("thresholds",), "thresholds must be listed from the highest min down")
        default = c.get("default")
        if default is not None:
            src.need(where + ("default",), default, int, "integer default points")
        components.append(
            Component(
                id=cid,
                label=str(c.get("label", cid)),
                input=str(c.get("input", cid)),
                code=c.get("code"),
                points=dict(points),
                default=default,
                thresholds=tuple(thresholds),
            )
        )
    if not components:
        raise src.error(("components",), "at least one component is needed")
    table = AdditiveTable(
        id=d["id"],
        version=d["version"],
        status=d.get("status", "active"),
        citation=d["citation"],
        components=tuple(components),
        bands=_bands(src),
        not_applicable=_not_applicable(src),
    )
    lowest = sum(min(c.possible) for c in components)
    highest = sum(max(c.possible) for c in components)
    if table.bands[0].min > lowest or table.bands[-1].max < highest:
        raise src.error(("bands",), f"bands must cover every possible total {lowest}-{highest}")
    return table


def _lookup(src: _Source) -> LookupTable:
    d = _header(src, "lookup")
    raw_inputs = src.need(("inputs",), d.get("inputs"), dict, "a mapping of inputs")
    inputs = []
    for name, spec in raw_inputs.items():
        where = ("inputs", name)
        src.need(where, spec, dict, "an input {from, map|thresholds}")
        source = src.need(where + ("from",), spec.get("from"), str, "the fact name in 'from'")
        mapping = spec.get("map")
        if mapping is not None:
            src.need(where + ("map",), mapping, dict, "a mapping value -> class")
        thresholds = []
        for j, t in enumerate(spec.get("thresholds") or []):
            tw = where + ("thresholds", j)
            src.need(tw, t, dict, "a row {min, value}")
            thresholds.append((src.need(tw + ("min",), t.get("min"), (int, float), "a numeric min"), t.get("value")))
        inputs.append(
            LookupInput(
                name=name, label=str(spec.get("label", name)), source=source, map=mapping, thresholds=tuple(thresholds)
            )
        )
    groups_raw = src.need(("groups",), d.get("groups"), dict, "a mapping group -> {median_months}")
    medians = {}
    for group, spec in groups_raw.items():
        src.need(("groups", group), spec, dict, "{median_months: number}")
        medians[str(group)] = float(
            src.need(("groups", group, "median_months"), spec.get("median_months"), (int, float), "a number of months")
        )
    rows = src.need(("rows",), d.get("rows"), list, "a list of rows")
    names = {i.name for i in inputs}
    for i, row in enumerate(rows):
        src.need(("rows", i), row, dict, "a row {input: class, ..., group}")
        if row.get("group") not in medians:
            raise src.error(("rows", i), f"group {row.get('group')!r} is not defined under 'groups'")
        for key in row:
            if key != "group" and key not in names:
                raise src.error(("rows", i), f"unknown input {key!r}; inputs are {sorted(names)}")
    return LookupTable(
        id=d["id"],
        version=d["version"],
        status=d.get("status", "active"),
        draft_reason=d.get("draft_reason"),
        citation=d["citation"],
        inputs=tuple(inputs),
        rows=tuple(rows),
        medians=medians,
        not_applicable=_not_applicable(src),
    )


def _mapping(src: _Source) -> MappingTable:
    d = _header(src, "mapping")
    mapping = src.need(("mapping",), d.get("mapping"), dict, "a mapping value -> value")
    for key, value in mapping.items():
        if isinstance(value, list):  # a band [low, high]
            ok = len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            if not ok or value[0] > value[1]:
                raise src.error(("mapping", key), f"expected a band [low, high] of integers, found {value!r}")
    return MappingTable(
        id=d["id"],
        version=d["version"],
        citation=d["citation"],
        mapping={k: tuple(v) if isinstance(v, list) else v for k, v in mapping.items()},
    )


def _codes(src: _Source, where: tuple, value: Any) -> frozenset[str]:
    src.need(where, value, list, "a list of SF codes")
    for i, code in enumerate(value):
        src.need(where + (i,), code, str, "an SF code")
    return frozenset(value)


def _criteria(src: _Source) -> SurgeryCriteria:
    d = _header(src, "criteria")
    number = (int, float)

    def section(name: str) -> dict[str, Any]:
        return src.need((name,), d.get(name), dict, f"a mapping '{name}'")

    life, gate, perf = section("life_expectancy"), section("clinical_condition"), section("performance")
    deficit, outdated = section("neurological_deficit"), section("kps_outdated_by")
    unknown = src.need(("performance", "range_when_unknown"), perf.get("range_when_unknown"), list, "[low, high]")
    if len(unknown) != 2 or not all(isinstance(v, int) for v in unknown) or unknown[0] > unknown[1]:
        raise src.error(("performance", "range_when_unknown"), f"expected [low, high] integers, found {unknown!r}")
    poor = src.need(("clinical_condition", "poor_below"), gate.get("poor_below"), int, "a KPS value")
    discuss = src.need(("clinical_condition", "discuss_below"), gate.get("discuss_below"), int, "a KPS value")
    if poor > discuss:
        raise src.error(("clinical_condition",), f"poor_below {poor} must not exceed discuss_below {discuss}")
    return SurgeryCriteria(
        id=d["id"],
        version=d["version"],
        citation=d["citation"],
        single_months=src.need(("life_expectancy", "single_months"), life.get("single_months"), number, "months"),
        combined_months=src.need(("life_expectancy", "combined_months"), life.get("combined_months"), number, "months"),
        poor_below=poor,
        recent_days=src.need(("clinical_condition", "recent_days"), gate.get("recent_days"), number, "days"),
        discuss_below=discuss,
        range_when_unknown=(unknown[0], unknown[1]),
        old_after_days=src.need(("performance", "old_after_days"), perf.get("old_after_days"), number, "days"),
        old_floor=src.need(("performance", "old_floor"), perf.get("old_floor"), int, "a KPS value"),
        deficit_codes=_codes(src, ("neurological_deficit", "codes"), deficit.get("codes")),
        deficit_mescc=bool(deficit.get("mescc", False)),
        outdated_codes=_codes(src, ("kps_outdated_by", "codes"), outdated.get("codes")),
        outdated_progressive_codes=_codes(
            src, ("kps_outdated_by", "progressive_codes"), outdated.get("progressive_codes") or []
        ),
        outdated_bilateral_codes=_codes(
            src, ("kps_outdated_by", "bilateral_codes"), outdated.get("bilateral_codes") or []
        ),
        outdated_mescc=bool(outdated.get("mescc", False)),
    )


def _build(directory: Path) -> ScoreTables:
    return ScoreTables(
        sins=_additive(_Source(directory / TABLE_FILES["sins"])),
        vdl=_additive(_Source(directory / TABLE_FILES["vdl"])),
        bollen=_lookup(_Source(directory / TABLE_FILES["bollen"])),
        ecog_to_kps=_mapping(_Source(directory / TABLE_FILES["ecog_to_kps"])),
        criteria=_criteria(_Source(directory / TABLE_FILES["criteria"])),
    )


@lru_cache(maxsize=8)
def _load_cached(directory: str) -> ScoreTables:
    return _build(Path(directory))


def load_scores(directory: str | Path | None = None) -> ScoreTables:
    """Read and validate the score tables once per directory."""
    if directory is None:  # the hot path: no filesystem call per evaluation
        return _load_default()
    return _load_cached(str(Path(directory).resolve()))


@lru_cache(maxsize=1)
def _load_default() -> ScoreTables:
    return _load_cached(str(Path(DEFAULT_DIRECTORY).resolve()))


# ---------------------------------------------------------------- patient-level facts


def survival_facts(tables: ScoreTables, facts: Mapping[str, Any]) -> dict[str, Any]:
    """``vdl.*`` and ``bollen.*`` facts from the patient facts kps, primary, visceral_metastases."""
    out: dict[str, Any] = {}
    vdl = tables.vdl
    if vdl.applicable(facts):
        out["vdl.applicable"] = True
        result = vdl.compute(facts)
        missing = list(result.missing)
        if result.total is not None and result.band is not None:
            out["vdl.score"] = result.total
            out["vdl.group"] = result.band.name
            if result.band.median_months is not None:
                out["vdl.median_months"] = result.band.median_months
        out["vdl.missing"] = missing
    else:
        out["vdl.applicable"] = False
        out["vdl.missing"] = []

    bollen = tables.bollen
    out["bollen.status"] = bollen.status
    if bollen.draft_reason:
        out["bollen.draft_reason"] = " ".join(bollen.draft_reason.split())
    lookup = bollen.compute(facts)
    if not bollen.applicable(facts) or lookup.unclassified:
        out["bollen.applicable"] = False
        out["bollen.missing"] = []
        return out
    out["bollen.applicable"] = True
    if lookup.classified.get("profile"):
        out["bollen.profile"] = lookup.classified["profile"]
    if lookup.group is not None:
        out["bollen.group"] = lookup.group
        out["bollen.median_months"] = lookup.median_months
    out["bollen.missing"] = lookup.missing
    return out
