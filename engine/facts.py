"""FHIR resources -> the clinical facts of rules/README.md ("Fact vocabulary").

Every fact is a JSON scalar or a list of strings (durable-rules facts). A value that cannot be
derived is absent, never None. Where missing data must be read the urgent way (laterality,
course, onset), the subject's ``missing`` list says which assumption was taken, in plain words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.cancer import cancer_facts
from engine.definitions import Definitions, load_definitions
from engine.imaging import spine_imaging
from engine.localtime import clock_text, date_text, zone
from engine.mescc_facts import diagnosis_time, mescc_treatment
from engine.parse import (
    CONDITION_CLINICAL,
    CONDITION_VERIFICATION,
    SF,
    SYMPTOM_CODES,
    Entry,
    Parsed,
    component_answer,
    observation_number,
    parse_resources,
    status_code,
    to_instant,
)
from engine.scores import ScoreTables, load_scores
from engine.surgery_facts import surgery_facts
from engine.symptom_timing import SymptomTiming
from fhir_profiles.terminology import Terminology, load_terminology

COURSE_URL = "http://spinecds.org/fhir/StructureDefinition/symptom-course"
COURSES = ("progressive", "stable", "improving")
DECIDING_STATUS = frozenset({"final", "amended", "corrected"})  # preliminary never decides
ACTIVE_CLINICAL = frozenset({None, "active", "recurrence", "relapse"})
EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
SUSPECTED_VERIFICATION = frozenset({"unconfirmed", "provisional", "differential"})

# primary fact value per concept, in the order used to break ties
PRIMARY_CONCEPTS = {
    "primary-breast": "breast",
    "primary-prostate": "prostate",
    "primary-lung": "lung",
    "primary-kidney": "kidney",
    "primary-thyroid": "thyroid",
    "myeloma": "myeloma",
    "lymphoma": "lymphoma",
    "primary-germ-cell": "germ-cell",
    "primary-unknown": "unknown",
}
CANCER_CONCEPTS = frozenset(
    {"malignancy", "secondary-malignancy", "spinal-metastasis", "visceral-metastasis", *PRIMARY_CONCEPTS}
)
NOT_A_PRIMARY = frozenset({"secondary-malignancy", "spinal-metastasis", "visceral-metastasis"})
# Symptoms whose laterality / course / onset change the MRI tier: only they get a `missing` item.
LATERALITY_MATTERS = frozenset({"radicular-pain", "radicular-deficit", "radiating-pain"})
# Left and right are read across these codes together: left radicular pain + right radiating pain is bilateral.
LATERAL_GROUP = frozenset({"radicular-pain", "radiating-pain", "radicular-deficit"})
PAIN_PATTERN_URL = "http://spinecds.org/fhir/StructureDefinition/pain-pattern"
SPINAL_PAIN_CODES = frozenset(
    {"local-back-pain", "interscapular-pain", "nocturnal-back-pain", "radiating-pain", "radicular-pain"}
)
# Coded bladder/bowel findings read as the sphincter symptom, with how they qualify for tier 1.
SPHINCTER_KINDS = {"sphincter-code-recent": "recent", "sphincter-code-companion": "companion"}
COURSE_MATTERS = frozenset({"radicular-deficit"})
ONSET_MATTERS = frozenset({"radicular-deficit"})
DEFICIT_CODES = frozenset({"radicular-deficit", "leg-weakness", "limb-control-difficulty", "unable-to-walk"})
ORDER_KINDS = (
    "spinal-surgery-combined",
    "spinal-surgery",
    "mri-spine",
    "spine-surgery-referral",
    "spine-radiotherapy",
)  # first match wins
PRIORITY_RANK = {"stat": 1, "asap": 2, "urgent": 3, "routine": 4}


@dataclass
class Facts:
    patient: dict[str, Any]  # vocabulary name -> value; absent values are omitted
    symptoms: list[dict[str, Any]]  # "symptom.*" keys + "missing"
    lesions: list[dict[str, Any]]  # "lesion.*" keys + "missing"
    orders: list[dict[str, Any]]  # "order.*" keys
    order_resources: dict[str, dict] = field(default_factory=dict)  # order.id -> raw draft ServiceRequest
    provenance: dict[str, list[str]] = field(default_factory=dict)  # fact -> ["Condition/c1", ...]
    data_quality: list[dict[str, str]] = field(default_factory=list)
    validated: int = 0  # resources that reached model_validate (diagnostics)


# ---------------------------------------------------------------- small readers


def _clinical(entry: Entry) -> str | None:
    return status_code(entry.model.clinicalStatus, CONDITION_CLINICAL)[0]


def _verification(entry: Entry) -> str | None:
    return status_code(entry.model.verificationStatus, CONDITION_VERIFICATION)[0]


def _excluded(entry: Entry) -> bool:
    return _verification(entry) in EXCLUDED_VERIFICATION


def _counts(entry: Entry) -> bool:
    """A finding counts when active / recurrence / relapse (or no clinicalStatus) and not refuted / EIE."""
    return _clinical(entry) in ACTIVE_CLINICAL and not _excluded(entry)


def _condition_time(entry: Entry) -> datetime | None:
    model = entry.model
    return to_instant(model.onsetDateTime) or to_instant(model.recordedDate)


def _observation_time(entry: Entry) -> datetime | None:
    model = entry.model
    return to_instant(model.effectiveDateTime) or to_instant(model.effectiveInstant) or to_instant(model.issued)


_OLDEST = datetime.min.replace(tzinfo=UTC)


def _latest_first(entries: Iterable[Entry]) -> list[Entry]:
    """Deciding Observations, newest first (undated ones last)."""
    usable = [e for e in entries if e.model.status in DECIDING_STATUS]
    return sorted(usable, key=lambda e: _observation_time(e) or _OLDEST, reverse=True)


def _number(entry: Entry) -> float:
    """The number of an Observation the caller already kept only when it has one."""
    value = observation_number(entry.model)
    assert value is not None, "callers filter on observation_number(...) is not None"
    return value


def _hours(later: datetime, earlier: datetime) -> float:
    return round((later - earlier).total_seconds() / 3600.0, 2)


class _Deriver:
    def __init__(
        self,
        parsed: Parsed,
        term: Terminology,
        tables: ScoreTables,
        now: datetime,
        tz_name: str | None = None,
        first_seen: Mapping[str, datetime] | None = None,
        lookback_days: float | None = None,
        definitions: Definitions | None = None,
    ):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.parsed = parsed
        self.term = term
        self.tables = tables
        self.now = now
        self.tz = zone(tz_name)
        self.first_seen = dict(first_seen or {})
        self.definitions = definitions or load_definitions()
        self.lookback_days = self.definitions.lookback_days if lookback_days is None else lookback_days
        self.imaging = spine_imaging(parsed, term, self.tz, now, self.definitions.whole_spine_combine_hours)
        self.cancer = cancer_facts(parsed, term)
        self.patient: dict[str, Any] = {}
        self.provenance: dict[str, list[str]] = {}
        self.mescc_timing: Any = None
        self.mescc_treatment: Any = None

    def put(self, name: str, value: Any, sources: Iterable[Entry] = ()) -> None:
        if value is None:
            return
        self.patient[name] = value
        refs = [e.ref for e in sources]
        if refs:
            self.provenance[name] = refs

    def conditions(self, concept: str) -> list[Entry]:
        return [e for e in self.parsed.conditions if concept in e.concepts]

    def observations(self, concept: str) -> list[Entry]:
        return [e for e in self.parsed.observations if concept in e.concepts]

    # -------------------------------------------------------- diagnoses
    def diagnoses(self) -> None:
        # "With cancer" (engine/cancer.py): C44 alone does not count; a MESCC coded as such or a
        # spinal metastasis does, even without a malignancy code.
        self.put("cancer", bool(self.cancer.cancer), self.cancer.cancer)
        self.put("primary_known", bool(self.cancer.primaries), self.cancer.primaries)
        malignant = [e for e in self.parsed.conditions if e.concepts & CANCER_CONCEPTS and not _excluded(e)]
        malignant = [e for e in malignant if e in self.cancer.cancer]

        found: list[tuple[datetime, int, str, Entry]] = []
        order = list(PRIMARY_CONCEPTS.values()) + ["other"]
        for entry in malignant:
            names = [PRIMARY_CONCEPTS[c] for c in PRIMARY_CONCEPTS if c in entry.concepts]
            if not names and "malignancy" in entry.concepts and not entry.concepts & NOT_A_PRIMARY:
                names = ["other"]
            for name in names:
                found.append((_condition_time(entry) or _OLDEST, order.index(name), name, entry))
        known = [f for f in found if f[2] != "unknown"] or found
        if known:
            # the most recently diagnosed primary decides; ties go to the vocabulary order
            latest = max(known, key=lambda f: (f[0], -f[1]))
            self.put("primary", latest[2], [latest[3]])
            names = sorted({f[2] for f in found}, key=order.index)
            self.put("primaries", names, [f[3] for f in found])
        haem = [f[3] for f in found if f[2] in ("myeloma", "lymphoma")]
        self.put("haematological", bool(haem), haem)
        chemo = [f[3] for f in found if f[2] in ("myeloma", "lymphoma", "germ-cell")]
        self.put("chemo_sensitive", bool(chemo), chemo)

        spinal = [e for e in self.cancer.spinal_metastases if _counts(e)]
        self.put("spinal_metastasis", bool(spinal), spinal)
        elsewhere = [e for e in self.cancer.bone_elsewhere if _counts(e)]
        self.put("bone_metastasis_elsewhere", bool(elsewhere), elsewhere)
        for entry in self.cancer.unexplained_compression:
            self.parsed.data_quality.append(
                {"resource": entry.ref, "issue": "cord/cauda compression, cause not recorded (no cancer recorded)"}
            )
        self.visceral()

    def visceral(self) -> None:
        conditions = [e for e in self.conditions("visceral-metastasis") if _verification(e) != "entered-in-error"]
        active = [e for e in conditions if _counts(e)]
        if active:
            self.put("visceral_metastases", True, active)
            return
        staging = _latest_first(self.observations("visceral-metastases-staging"))
        staging = [e for e in staging if e.model.valueBoolean is not None]
        if staging:
            self.put("visceral_metastases", bool(staging[0].model.valueBoolean), staging[:1])
            return
        # A refuted or explicitly inactive visceral metastasis Condition says "absent".
        negative = [e for e in conditions if _excluded(e) or _clinical(e) in ("inactive", "remission", "resolved")]
        if negative:
            self.put("visceral_metastases", False, negative)

    # -------------------------------------------------------- observations
    def measurements(self) -> None:
        kps = _latest_first(e for e in self.observations("kps") if observation_number(e.model) is not None)
        ecog = _latest_first(e for e in self.observations("ecog") if observation_number(e.model) is not None)
        if ecog:
            self.put("ecog", int(_number(ecog[0])), ecog[:1])
        if kps:  # the KPS range (ECOG band, old values) is derived in engine/performance.py
            self.put("kps", round(_number(kps[0])), kps[:1])
        nrs = _latest_first(e for e in self.observations("pain-nrs") if observation_number(e.model) is not None)
        if nrs:
            self.put("nrs", int(_number(nrs[0])), nrs[:1])
        if len(nrs) > 1:
            self.put("nrs_previous", int(_number(nrs[1])), nrs[1:2])
            self.put("nrs_rising", self.patient["nrs"] > self.patient["nrs_previous"], nrs[:2])

    # -------------------------------------------------------- MESCC and symptoms
    def mescc(self) -> list[Entry]:
        counted = [e for e in self.cancer.mescc if _counts(e)]
        confirmed = [e for e in counted if _verification(e) in (None, "confirmed")]
        suspected = [e for e in counted if _verification(e) in SUSPECTED_VERIFICATION]
        self.put("mescc_confirmed", bool(confirmed), confirmed)
        self.put("mescc_suspected", bool(suspected) and not confirmed, suspected)
        results = [e for e in self.conditions("mescc") if _verification(e) in (None, "confirmed", "refuted")]
        self.put("mescc_result_recorded", bool(results), results)
        if not confirmed:
            return suspected
        defs = self.definitions
        timings = [
            diagnosis_time(e, self.imaging, self.tz, self.first_seen, self.now, defs.diagnosis_mri_before_hours)
            for e in confirmed
        ]
        # several confirmed diagnoses: the clock started at the earliest
        timing = min(timings, key=lambda t: t.diagnosed_at)
        self.mescc_timing = timing
        self.put("mescc.hours_since_diagnosis", _hours(self.now, timing.diagnosed_at), [timing.entry])
        self.put("mescc.days_since_diagnosis", round(_hours(self.now, timing.diagnosed_at) / 24.0, 2), [timing.entry])
        self.put("mescc.whole_days_since_diagnosis", int(_hours(self.now, timing.diagnosed_at) // 24))
        self.put("mescc.diagnosis_time_recorded", timing.recorded)
        self.put("mescc.diagnosed", f"{clock_text(timing.diagnosed_at, self.now, self.tz)}")
        treatment = mescc_treatment(
            self.parsed,
            self.term,
            timing.diagnosed_at,
            {e.ref for e in confirmed},
            bool(self.patient.get("haematological")),
            self.tz,
            defs.treatment_before_diagnosis_hours,
        )
        self.mescc_treatment = treatment
        started = [e for e in self.parsed.procedures if e.ref in treatment.refs]
        self.put("mescc.treatment_started", treatment.started_at is not None, started)
        if treatment.started_at is not None:
            self.put("mescc.treatment", f"{treatment.words} since {date_text(treatment.started_at, self.tz)}")
            self.put("mescc.treatment_site_recorded", treatment.site_recorded)
        decided = [e for e in self.parsed.procedures if e.ref in treatment.decision_refs]
        self.put("mescc.decision_not_to_treat", treatment.decision is not None, decided)
        if treatment.decision is not None:
            when = f", {date_text(treatment.decision_at, self.tz)}" if treatment.decision_at else ""
            self.put("mescc.decision", f"{treatment.decision}{when}")
        return []

    def _sides(self, entry: Entry) -> set[str]:
        sides = set()
        for site in entry.model.bodySite or ():
            for concept in self.term.concepts(site.coding):
                if concept.startswith("laterality-"):
                    sides.add(concept[len("laterality-") :])
        return sides

    def _band_like(self, entry: Entry) -> bool:
        return any(ext.url == PAIN_PATTERN_URL and ext.valueCode == "band-like" for ext in entry.model.extension or ())

    def _symptom(self, entry: Entry, code: str, group_sides: set[str], timing: SymptomTiming) -> dict[str, Any]:
        display = self.term.display(SF, code) or code
        name = display[0].lower() + display[1:] if code != "lhermitte-sign" else display
        missing: list[str] = []
        sides = self._sides(entry)
        if (
            self._band_like(entry)
            or "bilateral" in sides
            or {"left", "right"} <= (sides | group_sides if sides else set())
        ):
            laterality, known = "bilateral", True
        elif sides:
            laterality, known = "unilateral", True
        else:
            laterality, known = "bilateral", False
            if code in LATERALITY_MATTERS:
                missing.append(f"laterality of {name} unknown: read as bilateral")
        course = next(
            (
                ext.valueCode
                for ext in entry.model.extension or ()
                if ext.url == COURSE_URL and ext.valueCode in COURSES
            ),
            None,
        )
        if course is None and code in COURSE_MATTERS:
            missing.append(f"course of {name} unknown: read as progressive")
        onset = to_instant(entry.model.onsetDateTime) or (
            to_instant(entry.model.onsetPeriod.start) if entry.model.onsetPeriod else None
        )
        if onset is None and code in ONSET_MATTERS:
            missing.append(f"onset of {name} unknown: read as within 7 days")
        onset_days = max(0.0, round((self.now - onset).total_seconds() / 86400.0, 2)) if onset else 0.0
        treated_at = timing.treated_at
        before_treatment = treated_at is not None and any(
            timing.presented(e.ref, e.raw) < treated_at
            for e in self.parsed.conditions
            if f"symptom-{code}" in e.concepts and _counts(e)
        )
        timed, timing_missing = timing.facts(entry.ref, entry.raw, course or "progressive", before_treatment)
        subject = {
            "symptom.code": code,
            "symptom.display": display,
            "symptom.laterality": laterality,
            "symptom.laterality_known": known,
            "symptom.course": course or "progressive",
            "symptom.course_known": course is not None,
            "symptom.onset_days": onset_days,
            "symptom.onset_known": onset is not None,
            "symptom.resource": entry.ref,
            "symptom.sphincter_kind": "specific",
            **timed,
            "missing": missing + timing_missing,
        }
        if subject["missing"]:
            subject["symptom.assumptions"] = "; ".join(subject["missing"])
        return subject

    def symptoms(self, suspected_mescc: list[Entry]) -> list[dict[str, Any]]:
        active = [e for e in self.parsed.conditions if _counts(e)]
        by_code: dict[str, list[Entry]] = {}
        for entry in active:
            for code in SYMPTOM_CODES:
                if f"symptom-{code}" in entry.concepts:
                    by_code.setdefault(code, []).append(entry)
        timing = SymptomTiming(
            tz=self.tz,
            now=self.now,
            first_seen=self.first_seen,
            imaging=self.imaging,
            term=self.term,
            lookback_days=self.lookback_days,
            mescc_window_days=self.definitions.mescc_window_days,
            diagnosed_at=self.mescc_timing.diagnosed_at if self.mescc_timing else None,
            treated_at=self.mescc_treatment.started_at if self.mescc_treatment else None,
        )
        group = [e for code in LATERAL_GROUP for e in by_code.get(code, [])]
        group_sides = set().union(*(self._sides(e) for e in group)) if group else set()
        subjects: list[dict[str, Any]] = []
        for code in SYMPTOM_CODES:
            entries = by_code.get(code, [])
            union = (
                group_sides
                if code in LATERAL_GROUP
                else set().union(*(self._sides(e) for e in entries))
                if entries
                else set()
            )
            subjects.extend(self._symptom(e, code, union, timing) for e in entries)
        # Coded bladder/bowel findings (ICD-10-CM R32, R33.x, R15.x): the sphincter symptom, with the
        # conditions under which they reach tier 1 (rules/mri-urgency) carried in symptom.sphincter_kind.
        for entry in active:
            kind = next((k for c, k in SPHINCTER_KINDS.items() if c in entry.concepts), None)
            if kind is None or "symptom-sphincter-dysfunction" in entry.concepts:
                continue
            subject = self._symptom(entry, "sphincter-dysfunction", set(), timing)
            subject["symptom.sphincter_kind"] = kind
            by_code.setdefault("sphincter-dysfunction", []).append(entry)
            subjects.append(subject)
        count = len(subjects)
        for entry in suspected_mescc:
            subjects.append(self._symptom(entry, "mescc-suspected", set(), timing))
        self.put("symptom_count", count, [e for es in by_code.values() for e in es])
        deficit = [s for s in subjects if s["symptom.code"] in DEFICIT_CODES and s["symptom.course"] == "progressive"]
        self.put("progressive_deficit", bool(deficit))
        if deficit:
            self.provenance["progressive_deficit"] = [s["symptom.resource"] for s in deficit]
        spinal_pain = [e for code in SPINAL_PAIN_CODES for e in by_code.get(code, [])]
        self.put("spinal_pain", bool(spinal_pain), spinal_pain)
        self.walking(by_code.get("unable-to-walk", []), subjects)
        return subjects

    def walking(self, unable: list[Entry], subjects: list[dict[str, Any]]) -> None:
        """For the MESCC card: whether the patient still walks, and since when the symptoms run."""
        self.put("unable_to_walk", bool(unable), unable)
        if unable:
            since = min(to_instant(e.model.onsetDateTime) or self.now for e in unable)
            self.put("walking", f"unable to walk since {date_text(since, self.tz)}")
        else:
            self.put("walking", "no inability to walk recorded")
        onsets = [
            t
            for e in self.parsed.conditions
            if _counts(e) and e.concepts & {f"symptom-{c}" for c in SYMPTOM_CODES}
            if (t := to_instant(e.model.onsetDateTime) or to_instant(e.model.recordedDate)) is not None
        ]
        if onsets:
            self.put("symptoms_since", date_text(min(onsets), self.tz))

    def imaging_facts(self) -> None:
        imaging = self.imaging
        self.put("mri.ordered", bool(imaging.order_refs))
        if imaging.order_due is not None:
            self.put("mri.order_due_hours", _hours(imaging.order_due, self.now))
            self.put("mri.order_due", clock_text(imaging.order_due, self.now, self.tz))
        self.put("mri.contraindicated", imaging.contraindication is not None)
        if imaging.contraindication is not None:
            self.put("mri.contraindication", imaging.contraindication)
            self.provenance["mri.contraindicated"] = list(imaging.contraindication_refs)
        if imaging.whole_spine:
            self.put("mri.whole_spine_done", date_text(imaging.whole_spine[-1][0], self.tz))

    # -------------------------------------------------------- SINS lesions
    def _level(self, entry: Entry) -> str:
        site = entry.model.bodySite
        if site is not None:
            if site.text:
                return site.text.strip()
            code = next((c.display or c.code for c in site.coding or () if c.code), None)
            if code:
                return code
        return entry.model.id or entry.ref

    def _answers(self, entry: Entry) -> dict[str, str]:
        """component SF code -> answer SF code, from Observation.component and member Observations."""
        answers: dict[str, str] = {}
        members = {e.ref: e for e in self.parsed.observations if "sins-component" in e.concepts}
        for comp in entry.model.component or ():
            name, answer = component_answer(self.term, comp)
            if name and answer:
                answers[name] = answer
        for ref in [r.reference for r in (entry.model.hasMember or []) + (entry.model.derivedFrom or [])]:
            member = members.get(ref or "")
            if member is not None and member.model.status in DECIDING_STATUS:
                name, answer = component_answer(self.term, member.model)
                if name and answer:
                    answers.setdefault(name, answer)
        return answers

    def lesions(self) -> list[dict[str, Any]]:
        table = self.tables.sins
        latest: dict[str, Entry] = {}
        for entry in _latest_first(self.observations("sins")):
            latest.setdefault(self._level(entry), entry)
        lesions = []
        for level, entry in latest.items():
            answers = self._answers(entry)
            stated = entry.model.valueInteger
            inputs = {
                c.input: answers.get(c.code) for c in table.components if c.code is not None and answers.get(c.code)
            }
            result = table.compute(inputs)
            lesion: dict[str, Any] = {"lesion.level": level, "lesion.resource": entry.ref}
            if not inputs and stated is not None:
                # only a total was recorded: use it, and say the components are missing
                band = table.band_of(stated)
                lesion.update(
                    {
                        "lesion.sins_total": stated,
                        "lesion.sins_min": stated,
                        "lesion.sins_max": stated,
                        "lesion.sins_complete": False,
                        "lesion.total_source": "stated",
                        "lesion.stated_total": stated,
                        "lesion.discordant": False,
                        "missing": ["SINS components not recorded: stated total used"],
                    }
                )
                if band is not None:
                    lesion["lesion.sins_category"] = band.name
            else:
                lesion.update(
                    {
                        "lesion.sins_min": result.min,
                        "lesion.sins_max": result.max,
                        "lesion.sins_complete": result.total is not None,
                        "lesion.total_source": "components",
                        "missing": [f"SINS {label} component missing" for label in result.missing],
                    }
                )
                if result.total is not None:
                    lesion["lesion.sins_total"] = result.total
                if result.band is not None:
                    lesion["lesion.sins_category"] = result.band.name
                if stated is not None:
                    lesion["lesion.stated_total"] = stated
                    lesion["lesion.discordant"] = not (result.min <= stated <= result.max)
            lesions.append(lesion)
        lesions.sort(key=lambda les: (-les["lesion.sins_min"], -les["lesion.sins_max"], les["lesion.level"]))
        self.put("sins.count", len(lesions))
        if lesions:
            refs = [les["lesion.resource"] for les in lesions]
            self.patient["sins.max_min"] = max(les["lesion.sins_min"] for les in lesions)
            self.patient["sins.max_max"] = max(les["lesion.sins_max"] for les in lesions)
            self.patient["sins.lesions"] = "; ".join(self._describe(les) for les in lesions)
            for name in ("sins.count", "sins.max_min", "sins.max_max", "sins.lesions"):
                self.provenance[name] = refs
        return lesions

    def _describe(self, lesion: dict[str, Any]) -> str:
        labels = {b.name: b.label for b in self.tables.sins.bands}
        low, high = lesion["lesion.sins_min"], lesion["lesion.sins_max"]
        score = str(low) if low == high else f"{low}-{high}"
        notes = []
        if "lesion.sins_category" in lesion:
            notes.append(labels[lesion["lesion.sins_category"]])
        if not lesion["lesion.sins_complete"] and lesion["lesion.total_source"] == "components":
            notes.append("incomplete")
        if lesion.get("lesion.discordant"):
            notes.append(f"stated {lesion['lesion.stated_total']}")
        return f"{lesion['lesion.level']}: {score}" + (f" ({', '.join(notes)})" if notes else "")

    # -------------------------------------------------------- draft orders
    def orders(self, hook: str, selections: Iterable[str]) -> tuple[list[dict[str, Any]], dict[str, dict]]:
        selected = set(selections or ())
        orders, resources = [], {}
        for entry in self.parsed.orders:
            model = entry.model
            kind = next((k for k in ORDER_KINDS if k in entry.concepts), "other")
            oid = model.id or entry.ref
            order: dict[str, Any] = {
                "order.kind": kind,
                "order.id": oid,
                "order.resource": entry.ref,
                "order.selected": hook == "order-sign" or entry.ref in selected or oid in selected,
            }
            if model.priority:
                order["order.priority"] = model.priority
                order["order.priority_rank"] = PRIORITY_RANK[model.priority]
            period_end = model.occurrencePeriod.end if model.occurrencePeriod else None
            due = to_instant(period_end) or to_instant(model.occurrenceDateTime)
            if due is not None:
                order["order.deadline_hours"] = _hours(due, self.now)
            orders.append(order)
            resources[oid] = entry.raw
        kinds = {o["order.kind"]: o["order.resource"] for o in orders}
        self.put("draft.mri", "mri-spine" in kinds)
        self.put("draft.spinal_surgery", bool({"spinal-surgery", "spinal-surgery-combined"} & kinds.keys()))
        self.put("draft.combined_surgery", "spinal-surgery-combined" in kinds)
        return orders, resources


def derive_facts(
    resources: list[dict],
    now: datetime,
    hook: str,
    patient_id: str,
    draft_orders: Iterable[dict] = (),
    selections: Iterable[str] = (),
    terminology: Terminology | None = None,
    scores: ScoreTables | None = None,
    first_seen: Mapping[str, datetime] | None = None,
    timezone: str | None = None,
    lookback_days: float | None = None,
    definitions: Definitions | None = None,
) -> Facts:
    """Filter, validate and derive every fact of the vocabulary for one hook call."""
    term = terminology or load_terminology()
    tables = scores or load_scores()
    parsed = parse_resources(resources, term, patient_id, draft_orders)
    d = _Deriver(parsed, term, tables, now, timezone, first_seen, lookback_days, definitions)
    patient_ref = parsed.patient.model.id if parsed.patient is not None else None
    d.put("patient.id", patient_id or patient_ref)
    d.put("hook", hook)
    patient_raw = parsed.patient.raw if parsed.patient is not None else {}
    d.put("deceased", bool(patient_raw.get("deceasedBoolean") or patient_raw.get("deceasedDateTime")))
    d.diagnoses()
    d.measurements()
    suspected = d.mescc()
    symptoms = d.symptoms(suspected)
    lesions = d.lesions()
    d.imaging_facts()
    d.put(
        "spinal_involvement",
        bool(
            d.patient.get("spinal_metastasis")
            or lesions
            or symptoms
            or d.patient.get("mescc_confirmed")
            or d.patient.get("mescc_suspected")
        ),
    )
    orders, order_resources = d.orders(hook, selections)
    derived, provenance = surgery_facts(parsed, term, tables, d.patient, symptoms, lesions, now, resources)
    for name, value in derived.items():
        d.put(name, value)
    d.provenance.update(provenance)
    d.put("data_quality", [f"{item['resource']}: {item['issue']}" for item in parsed.data_quality])
    return Facts(
        patient=d.patient,
        symptoms=symptoms,
        lesions=lesions,
        orders=orders,
        order_resources=order_resources,
        provenance=d.provenance,
        data_quality=list(parsed.data_quality),
        validated=parsed.validated,
    )
