"""Survival groups and the surgery verdict over every completion of missing or uncertain data.

The range rule: each unknown input is replaced by every value it could take (visceral status
unknown -> both; a KPS range -> each class the tables and the gate distinguish; several candidate
primaries -> each). A model's group is given when one group is reachable, else the reachable
groups are listed. The surgery verdict (life expectancy by both models plus the clinical-condition
gate) is decided only when every completion gives the same verdict; otherwise it is
``undetermined`` and the inputs that would settle it are named. No number lives here: the cut-offs
come from rules/scores/*.yaml.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.performance import Performance
from engine.scores import ScoreTables

SOLID_CLASSES = ("breast", "prostate", "lung", "other")  # what an unrecorded primary could be
VERDICTS = ("eligible", "discuss", "not-eligible", "undetermined")


@dataclass(frozen=True)
class Context:
    """What the verdict needs besides the model inputs."""

    deficit_or_mescc: bool  # any active neurological deficit or MESCC (limits Van der Linden)
    recent_deficit_or_mescc: bool  # presented within the gate's recent_days
    combined: bool  # a combined procedure is drafted: the longer life-expectancy criterion


@dataclass(frozen=True)
class Completion:
    kps: int
    primary: str
    visceral: bool


@dataclass
class Outcome:
    verdict: str
    fail: list[str]
    discuss: list[str]
    failed_criteria: set[str]
    vdl_group: str | None
    vdl_score: int | None
    bollen_group: str | None


def _kps_points(tables: ScoreTables, low: int, high: int) -> list[int]:
    """One KPS value per class any table or the gate distinguishes inside [low, high]."""
    cuts: set[float] = {tables.criteria.poor_below, tables.criteria.discuss_below}
    for component in tables.vdl.components:
        cuts.update(minimum for minimum, _ in component.thresholds)
    for inp in tables.bollen.inputs:
        cuts.update(minimum for minimum, _ in inp.thresholds)
    # classification is constant between cuts: the range's low end and every cut inside it stand for
    # their whole interval
    return sorted({low} | {int(cut) for cut in cuts if low < cut <= high})


def _candidates(primaries: list[str]) -> tuple[list[str], bool]:
    """(candidates, recorded): a named primary beats "unknown" (C80.0/C80.1: no primary recorded)."""
    named = [p for p in primaries if p != "unknown"]
    if named:
        return named, True
    if primaries:
        return ["unknown"], True
    return list(SOLID_CLASSES), False


def _months(value: float) -> str:
    return f"{value:.1f}"


# Model results per completion, per loaded table (a table is immutable; a reload makes a new one).
# The key set is small and bounded (KPS 0-100 x a few primaries x visceral yes/no).
_CACHES: dict[int, tuple[object, dict[Completion, tuple]]] = {}


def _cache(table: object) -> dict[Completion, tuple]:
    entry = _CACHES.get(id(table))
    if entry is None or entry[0] is not table:
        entry = (table, {})
        _CACHES[id(table)] = entry
    return entry[1]


class _Evaluator:
    def __init__(self, tables: ScoreTables, perf: Performance, context: Context):
        self.tables = tables
        self.perf = perf
        self.context = context
        crit = tables.criteria
        self.needed = crit.combined_months if context.combined else crit.single_months

    def vdl(self, c: Completion) -> tuple[str | None, int | None, float | None]:
        cache = _cache(self.tables.vdl)
        if c not in cache:
            facts = {"kps": c.kps, "primary": c.primary, "visceral_metastases": c.visceral}
            table = self.tables.vdl
            result = table.compute(facts) if table.applicable(facts) else None
            if result is None or result.band is None or result.total is None:
                cache[c] = (None, None, None)
            else:
                cache[c] = (result.band.name, result.total, result.band.median_months)
        return cache[c]

    def bollen(self, c: Completion) -> tuple[str | None, float | None]:
        cache = _cache(self.tables.bollen)
        if c not in cache:
            facts = {"kps": c.kps, "primary": c.primary, "visceral_metastases": c.visceral}
            table = self.tables.bollen
            if not table.applicable(facts):
                cache[c] = (None, None)
            else:
                result = table.compute(facts)
                cache[c] = (result.group, result.median_months)
        return cache[c]

    def outcome(self, c: Completion) -> Outcome:
        crit = self.tables.criteria
        fail: list[str] = []
        discuss: list[str] = []
        failed: set[str] = set()
        # clinical condition (the gate)
        if c.kps < crit.poor_below:
            if self.context.recent_deficit_or_mescc:
                discuss.append(
                    f"KPS below {crit.poor_below} with a neurological deficit or MESCC presented in the last "
                    f"{crit.recent_days:g} days: a low KPS may reflect the acute deficit"
                )
            elif self.perf.from_ecog:
                discuss.append(f"ECOG suggests a KPS below {crit.poor_below}: record a KPS")
            else:
                fail.append(f"poor clinical condition (service threshold: KPS below {crit.poor_below})")
                failed.add("clinical-condition")
        elif c.kps < crit.discuss_below:
            discuss.append(f"KPS {crit.poor_below}-{crit.discuss_below - 10}: clinical condition borderline")
        # life expectancy
        vdl_group, vdl_score, vdl_months = self.vdl(c)
        bollen_group, bollen_months = self.bollen(c)
        votes: list[tuple[str, bool, bool]] = []  # (model, meets, may decide)
        if vdl_months is not None:
            votes.append(("Van der Linden", vdl_months > self.needed, not self.context.deficit_or_mescc))
        if bollen_months is not None:
            votes.append(("Bollen", bollen_months > self.needed, self.tables.bollen.status == "active"))
        needed = f"{self.needed:g} months"
        survival = "unknown"
        if votes:
            values = {meets for _, meets, _ in votes}
            if len(values) > 1:
                survival = "discuss"
                discuss.append(f"the survival models disagree on a life expectancy of {needed}")
            elif any(decides for _, _, decides in votes):
                survival = "meet" if values == {True} else "fail"
                if survival == "fail":
                    fail.append(f"life expectancy below {needed} ({' and '.join(m for m, _, _ in votes)})")
                    failed.add("life-expectancy")
            else:
                survival = "discuss"
                if self.context.deficit_or_mescc and vdl_months is not None:
                    discuss.append(
                        "with a neurological deficit or MESCC the Van der Linden model (derived in patients "
                        "without neurological impairment) cannot decide alone"
                    )
                if bollen_months is not None:
                    discuss.append("the Bollen table is provisional and cannot decide alone")
        if fail:
            verdict = "not-eligible"
        elif survival == "unknown":
            verdict = "undetermined"
        elif discuss:
            verdict = "discuss"
        else:
            verdict = "eligible"
        return Outcome(verdict, fail, discuss, failed, vdl_group, vdl_score, bollen_group)


def _matters(completions: list[Completion], values: list[Any], dim: str) -> bool:
    """True when changing only ``dim`` changes the value (completions and values are parallel)."""
    others = [f for f in ("kps", "primary", "visceral") if f != dim]
    seen: dict[tuple, set] = {}
    for c, value in zip(completions, values, strict=True):
        seen.setdefault(tuple(getattr(c, f) for f in others), set()).add(value)
    return any(len(found) > 1 for found in seen.values())


def _unique(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if value not in out:
            out.append(value)
    return out


@dataclass
class _Range:
    """Every completion of the missing or uncertain inputs and its outcome, shared by the fact groups."""

    tables: ScoreTables
    perf: Performance
    candidates: list[str]
    recorded: bool
    visceral_values: list[bool]
    completions: list[Completion]
    outcomes: list[Outcome]
    outside: list[str]

    @property
    def uncertain(self) -> dict[str, bool]:
        return {
            "kps": self.perf.low != self.perf.high,
            "primary": len(self.candidates) > 1 or not self.recorded,
            "visceral": len(self.visceral_values) > 1,
        }

    def missing(self, values: list[Any]) -> list[str]:
        """The inputs (as words) whose value alone changes `values` (parallel to the completions)."""
        return [LABELS[d] for d in LABELS if self.uncertain[d] and _matters(self.completions, values, d)]


LABELS = {"kps": "KPS", "primary": "primary tumour", "visceral": "visceral metastases status"}


def survival_and_eligibility(tables: ScoreTables, patient: Mapping[str, Any], perf: Performance, context: Context):
    """Facts of the vocabulary: vdl.*, bollen.*, eligibility.*, kps range, primary candidates."""
    out: dict[str, Any] = {}
    candidates, recorded = _candidates(list(patient.get("primaries") or []))
    visceral = patient.get("visceral_metastases")
    visceral_values = [bool(visceral)] if isinstance(visceral, bool) else [False, True]
    kps_values = _kps_points(tables, perf.low, perf.high)
    completions = [Completion(k, p, v) for k, p, v in itertools.product(kps_values, candidates, visceral_values)]
    evaluator = _Evaluator(tables, perf, context)
    outside = [p for p in candidates if not tables.vdl.applicable({"primary": p})]
    span = _Range(
        tables,
        perf,
        candidates,
        recorded,
        visceral_values,
        completions,
        [evaluator.outcome(c) for c in completions],
        outside,
    )
    _performance_facts(out, tables, perf)
    _primary_facts(out, span)
    vdl_groups = _vdl_facts(out, span)
    _bollen_facts(out, span)
    if not recorded:
        out["vdl.text"] = out["bollen.text"] = "no estimate (primary tumour unknown: outside the model)"
    _verdict_facts(out, span, context, vdl_groups)
    _primary_text_facts(out, span)
    return out


def _performance_facts(out: dict[str, Any], tables: ScoreTables, perf: Performance) -> None:
    if perf.source == "kps":
        out["kps"] = perf.recorded
    out["kps_source"] = perf.source
    out["kps_min"], out["kps_max"] = perf.low, perf.high
    out["kps_current"] = perf.source != "none" and perf.outdated is None
    out["performance.text"] = perf.text
    out["performance.ask"] = ""
    if perf.from_ecog and perf.outdated is None:
        cuts = sorted({int(m) for comp in tables.vdl.components for m, _ in comp.thresholds if m > 0})
        cuts = sorted(set(cuts) | {int(m) for inp in tables.bollen.inputs for m, _ in inp.thresholds if m > 0})
        straddled = [cut for cut in cuts if perf.low < cut <= perf.high]
        if straddled:
            out["performance.ask"] = (
                f"ECOG {perf.recorded} spans KPS {perf.low}-{perf.high}, across the survival models' cut-off at "
                f"KPS {', '.join(str(c) for c in straddled)}: record a KPS."
            )


def _primary_facts(out: dict[str, Any], span: _Range) -> None:
    out["primary_candidates"] = span.candidates if span.recorded else []
    # No primary coded, or coded as unknown (C80): outside both survival models; the guideline asks
    # for an urgent histological diagnosis. Group ranges over every possible primary would mislead.
    out["primary.unknown"] = not span.recorded or span.candidates == ["unknown"]
    if span.recorded and span.outside:
        out["primary.outside_models"] = span.outside


def _vdl_facts(out: dict[str, Any], span: _Range) -> list[str]:
    vdl = [(o.vdl_group, o.vdl_score) for o in span.outcomes]
    groups = _unique([g for g, _ in vdl if g is not None])
    out["vdl.applicable"] = bool(groups)
    out["vdl.missing"] = span.missing([g for g, _ in vdl]) if groups else []
    medians = {b.name: b.median_months for b in span.tables.vdl.bands}
    notes = {b.name: b.note for b in span.tables.vdl.bands}
    _model_facts(out, "vdl", medians, groups)
    scores = _unique([score for _, score in vdl if score is not None])
    if len(scores) == 1 and len(groups) == 1 and all(g is not None for g, _ in vdl):
        out["vdl.score"] = scores[0]
    _table_cells(out, "vdl", medians, notes, groups, out["vdl.missing"], span.outside)
    out["vdl.text"] = _model_text(medians, notes, groups, out["vdl.missing"], span.outside)
    return groups


def _bollen_facts(out: dict[str, Any], span: _Range) -> None:
    bollen = span.tables.bollen
    out["bollen.status"] = bollen.status
    if bollen.draft_reason:
        out["bollen.draft_reason"] = " ".join(bollen.draft_reason.split())
    groups = _unique([o.bollen_group for o in span.outcomes if o.bollen_group is not None])
    out["bollen.applicable"] = bool(groups)
    out["bollen.missing"] = span.missing([o.bollen_group for o in span.outcomes]) if groups else []
    profiles = _unique([p for c in span.candidates if (p := _profile(span.tables, c)) is not None])
    if len(profiles) == 1:
        out["bollen.profile"] = profiles[0]
    _model_facts(out, "bollen", dict(bollen.medians), groups)
    _table_cells(out, "bollen", dict(bollen.medians), {}, groups, out["bollen.missing"], [])
    text = _model_text(dict(bollen.medians), {}, groups, out["bollen.missing"], [])
    if not groups:
        unclassified = [c for c in span.candidates if c not in span.outside and _profile(span.tables, c) is None]
        text = "not computable" + (
            f": {', '.join(unclassified)} not classified in the table" if unclassified and span.recorded else ""
        )
    if bollen.status == "draft" and groups:
        text += " (provisional)"  # governance detail (unverified tumour profiles) lives in the rule docs
    out["bollen.text"] = text


def _verdict_facts(out: dict[str, Any], span: _Range, context: Context, vdl_groups: list[str]) -> None:
    perf, crit = span.perf, span.tables.criteria
    verdicts = _unique([o.verdict for o in span.outcomes])
    out["eligibility.months_needed"] = crit.combined_months if context.combined else crit.single_months
    out["eligibility.group_a_reachable"] = "A" in vdl_groups
    settle, settle_short, holds = _what_settles(out, span)
    if perf.source == "none":
        verdict = "undetermined"  # the clinical condition itself is unknown: never decided without a KPS
    elif len(verdicts) == 1:
        verdict = verdicts[0]
    else:
        verdict = "undetermined"
    out["eligibility.verdict"] = verdict
    reasons = _verdict_reasons(span, verdict, verdicts)
    out["eligibility.reasons"] = reasons
    failed = {kind for o in span.outcomes for kind in o.failed_criteria} if verdict == "not-eligible" else set()
    out["eligibility.failed"] = (
        "both" if len(failed) == 2 else next(iter(failed)) if failed else "none"
    )  # clinical-condition | life-expectancy | both | none
    out["eligibility.settle"] = settle if verdict == "undetermined" else []
    out["eligibility.holds_either_way"] = holds if verdict != "undetermined" else []
    out["eligibility.possible"] = verdicts
    # ready-made sentences for the cards (a template cannot leave out an empty part)
    missing_now = out["eligibility.holds_either_way"]
    note = f"{'; '.join(missing_now)}: the verdict holds either way."
    out["eligibility.note"] = note[:1].upper() + note[1:] if missing_now else ""
    out["eligibility.reasons_text"] = (" or " if verdict == "undetermined" else "; ").join(reasons)
    out["eligibility.settle_text"] = "; ".join(settle)
    out["eligibility.settle_short"] = " and ".join(settle_short) if verdict == "undetermined" else ""
    # a sentence, or nothing: a template line with an empty list would read "Other points to weigh: ."
    out["eligibility.reasons_sentence"] = f"Also weigh: {'; '.join(reasons)}." if reasons else ""
    out["eligibility.summary_reason"] = _summary_reason(perf, vdl_groups, span.tables)


def _what_settles(out: dict[str, Any], span: _Range) -> tuple[list[str], list[str], list[str]]:
    """The inputs that would settle the verdict (long and short words), and those it holds without."""
    perf, recorded, candidates = span.perf, span.recorded, span.candidates
    settle: list[str] = []
    settle_short: list[str] = []  # the same, in a few words for a summary
    short = {"kps": "a KPS", "primary": "the primary tumour", "visceral": "the visceral metastases status"}
    holds: list[str] = []
    phrases = {
        "kps": _kps_phrase(perf),
        "primary": (
            "the primary tumour"
            if not recorded
            else f"which primary tumour the spinal metastasis comes from ({', '.join(candidates)})"
        ),
        "visceral": "whether visceral or brain metastases are present",
    }
    verdict_values = [o.verdict for o in span.outcomes]
    for dim in ("kps", "primary", "visceral"):
        if not span.uncertain[dim]:
            continue
        if _matters(span.completions, verdict_values, dim) or (dim == "kps" and perf.source == "none"):
            settle.append(phrases[dim])
            settle_short.append(short[dim])
        else:
            holds.append(_missing_phrase(dim, perf, recorded, candidates))
    if out["primary.unknown"]:
        settle.append("histology (primary tumour unknown)")  # the guideline: obtain it urgently
        settle_short.append("histology")
    return settle, settle_short, holds


def _verdict_reasons(span: _Range, verdict: str, verdicts: list[str]) -> list[str]:
    if verdict == "not-eligible":
        return _unique([r for o in span.outcomes for r in o.fail])
    if verdict in ("discuss", "eligible"):
        return _unique([r for o in span.outcomes for r in o.discuss])
    # each verdict some completion gives, with its reasons: "eligible or discuss (the models disagree ...)"
    reasons = []
    for possible in verdicts:
        why = _unique([r for o in span.outcomes if o.verdict == possible for r in o.fail + o.discuss])
        reasons.append(f"{possible} ({'; '.join(why)})" if why else possible)
    if span.recorded and span.outside:
        reasons.append(f"{', '.join(span.outside)}: outside both survival models")
    return reasons


def _primary_text_facts(out: dict[str, Any], span: _Range) -> None:
    recorded, candidates, outside = span.recorded, span.candidates, span.outside
    if not recorded:
        out["primary.text"] = "primary tumour not recorded"
    elif len(candidates) == 1:
        out["primary.text"] = f"primary tumour {candidates[0]}"
    else:
        out["primary.text"] = f"several primary tumours recorded ({', '.join(candidates)}): each was tried"
    if recorded and outside:
        out["primary.text"] += f"; {', '.join(outside)} is outside both survival models"
    # said on the survival card only when it changes the reading (several primaries, one outside)
    worth_saying = recorded and len(candidates) > 1
    note = out["primary.text"]
    out["primary.note"] = f"{note[:1].upper()}{note[1:]}." if worth_saying else ""


def _summary_reason(perf: Performance, vdl_groups: list[str], tables: ScoreTables) -> str:
    """The numbers behind a verdict, short enough for a summary: "KPS 40; Van der Linden A, median 3 months"."""
    parts = []
    if perf.source == "kps" and perf.outdated is None:
        parts.append(f"KPS {perf.recorded}")
    elif perf.source != "none" and perf.outdated is None:
        parts.append(f"ECOG {perf.recorded}")
    if len(vdl_groups) == 1:
        months = {b.name: b.median_months for b in tables.vdl.bands}.get(vdl_groups[0])
        median = f", median {months:g} months" if months is not None else ""
        parts.append(f"Van der Linden {vdl_groups[0]}{median}")
    return "; ".join(parts) or "data incomplete"


def _profile(tables: ScoreTables, primary: str) -> str | None:
    profile_input = next((i for i in tables.bollen.inputs if i.name == "profile"), None)
    return None if profile_input is None else profile_input.classify(primary)


def _kps_phrase(perf: Performance) -> str:
    if perf.source == "none":
        return "a KPS (none recorded)"
    if perf.outdated is not None:
        return f"a current KPS (the last {perf.source.upper()} is {perf.outdated})"
    return f"a KPS (ECOG {perf.recorded} spans KPS {perf.low}-{perf.high})"


def _missing_phrase(dim: str, perf: Performance, recorded: bool, candidates: list[str]) -> str:
    if dim == "kps":
        return perf.text
    if dim == "primary":
        return "primary tumour not recorded" if not recorded else f"several primary tumours ({', '.join(candidates)})"
    return "visceral metastases status not recorded"


def _model_facts(out: dict[str, Any], prefix: str, medians: Mapping[str, float | None], groups: list[str]) -> None:
    if len(groups) == 1:
        out[f"{prefix}.group"] = groups[0]
        months = medians.get(groups[0])
        if months is not None:
            out[f"{prefix}.median_months"] = months
    elif groups:
        out[f"{prefix}.groups"] = sorted(groups)
    out[f"{prefix}.group_count"] = len(groups)  # lists never reach the rule engine: conditions test this


def _model_text(
    medians: Mapping[str, float | None],
    notes: Mapping[str, str | None],
    groups: list[str],
    depends_on: list[str],
    outside: list[str],
) -> str:
    if not groups:
        return f"does not apply ({', '.join(outside)})" if outside else "not computable"
    if len(groups) == 1:
        group = groups[0]
        months = medians.get(group)
        text = f"group {group}" + (f", median survival {_months(months)} months" if months is not None else "")
        note = notes.get(group)
        return text + (f": {note}" if note else "")
    ordered = sorted(groups)
    reach = ", ".join(ordered[:-1]) + f" or {ordered[-1]}"
    ranges = "; ".join(f"{g} {_months(m)} months" for g in ordered if (m := medians.get(g)) is not None)
    because = f", depending on {' and '.join(depends_on)}" if depends_on else ""
    return f"group {reach}{because} (medians {ranges})"


def _table_cells(
    out: dict[str, Any],
    prefix: str,
    medians: Mapping[str, float | None],
    notes: Mapping[str, str | None],
    groups: list[str],
    depends_on: list[str],
    outside: list[str],
) -> None:
    """Short cells for the survival card's table: group, median, what it means."""
    ordered = sorted(groups)
    months = [m for g in ordered if (m := medians.get(g)) is not None]
    if not ordered:
        out[f"{prefix}.group_text"] = "not computable"
        out[f"{prefix}.median_text"] = ""
        out[f"{prefix}.note_text"] = f"{', '.join(outside)} outside the model" if outside else ""
        return
    out[f"{prefix}.group_text"] = " or ".join(ordered)
    if len(months) == 1:
        out[f"{prefix}.median_text"] = f"{_months(months[0])} months"
    else:
        out[f"{prefix}.median_text"] = f"{_months(min(months))}-{_months(max(months))} months"
    if len(ordered) > 1:
        out[f"{prefix}.note_text"] = f"depends on {' and '.join(depends_on)}" if depends_on else ""
    else:
        out[f"{prefix}.note_text"] = notes.get(ordered[0]) or ""
