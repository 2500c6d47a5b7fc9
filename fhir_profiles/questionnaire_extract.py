"""Assessment Questionnaires: pre-fill from the chart, and extract answers to the resources the engine reads.

The four Questionnaires in ``questionnaires/`` (SINS per lesion, performance status, staging, red-flag
symptoms) each name, per item, the profile element an answer fills (``item.definition``). This module
is the SDC definition-based extraction for them, written out by hand because each target has a
rule the generic algorithm cannot know:

- SINS: one Observation per lesion, with ``valueInteger`` only when all six components are answered.
- Performance status: a KPS (multiple of 10, 0-100) or an ECOG grade 0-4, never both in one answer.
- Staging: the engine reads one boolean "visceral or brain metastases"; it is written only when the
  two answers decide it (any present -> true; both absent -> false). One unknown answer and no
  present one writes nothing, so the status stays unknown and is read both ways.
- Symptoms: a group pre-filled from a recorded Condition updates that Condition (PUT); a new group
  creates one. Side, course and onset left unknown are left out (read the urgent way).

A pre-filled answer the user did not change is not written again: a new Observation with today's
date would make an old KPS look fresh. Every extracted resource is checked against the
StructureDefinitions before it is returned; problems name the item (``questionnaire/linkId[n]``)
and never echo patient data.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from fhir_profiles.profile_checks import check_resource

QUESTIONNAIRE_DIR = Path(__file__).parent / "questionnaires"
SF = "http://spinecds.org/fhir/CodeSystem/spine-findings"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
YES_NO = "http://terminology.hl7.org/CodeSystem/v2-0136"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
SD = "http://spinecds.org/fhir/StructureDefinition/"
COURSE_URL = SD + "symptom-course"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
COND_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
KPS_CODE, ECOG_CODE = "89243-0", "89247-1"
ECOG_GRADES = {"LA9622-7": 0, "LA9623-5": 1, "LA9624-3": 2, "LA9625-0": 3, "LA9626-8": 4}
VISCERAL_COMPONENTS = {"visceral": "Visceral metastases", "brain": "Brain metastases"}

SINS_Q, PERFORMANCE_Q, STAGING_Q, RED_FLAGS_Q = (
    "spinecds-sins",
    "spinecds-performance-status",
    "spinecds-staging",
    "spinecds-red-flags",
)


@lru_cache(maxsize=1)
def questionnaires() -> dict[str, dict[str, Any]]:
    """The Questionnaires by id (read once)."""
    found = {}
    for path in sorted(QUESTIONNAIRE_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        found[data["id"]] = data
    return found


def _items(questionnaire: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """linkId -> item, nested items included."""
    found: dict[str, dict[str, Any]] = {}

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            found[item["linkId"]] = item
            walk(item.get("item") or [])

    walk(questionnaire.get("item") or [])
    return found


@dataclass(frozen=True)
class Problem:
    where: str  # "spinecds-performance-status/kps" or "spinecds-sins/lesion[2]/level"
    message: str

    def as_json(self) -> dict[str, str]:
        return {"where": self.where, "message": self.message}


@dataclass
class Extraction:
    creates: list[dict[str, Any]] = field(default_factory=list)  # new resources (ids are drafts)
    updates: list[dict[str, Any]] = field(default_factory=list)  # chart resources, completed
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was deliberately not written, and why

    @property
    def resources(self) -> list[dict[str, Any]]:
        return self.creates + self.updates


# ------------------------------------------------------------------------------ reading answers


class _Answers:
    """The answers of one QuestionnaireResponse group (or the root), by linkId."""

    def __init__(
        self, qid: str, where: str, items: list[Any], known: dict[str, dict[str, Any]], problems: list[Problem]
    ):
        self.qid, self.where, self.known, self.problems = qid, where, known, problems
        self.by_link: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("linkId"), str):
                problems.append(Problem(f"{qid}{where}", "an item without a linkId"))
                continue
            self.by_link.setdefault(item["linkId"], []).append(item)

    def at(self, link: str) -> str:
        return f"{self.qid}{self.where}/{link}"

    def groups(self, link: str) -> list[_Answers]:
        return [
            _Answers(self.qid, f"{self.where}/{link}[{n}]", g.get("item") or [], self.known, self.problems)
            for n, g in enumerate(self.by_link.get(link, []), start=1)
        ]

    def value(self, link: str) -> Any:
        """The single answer's value (Coding dict, int, str) or None; unknown linkIds are problems."""
        if link not in self.known:
            return None
        items = self.by_link.get(link) or []
        answers = [a for item in items for a in item.get("answer") or [] if isinstance(a, dict)]
        if not answers:
            return None
        if len(answers) > 1:
            self.problems.append(Problem(self.at(link), "only one answer is allowed"))
            return None
        values = [v for k, v in answers[0].items() if k.startswith("value")]
        return values[0] if len(values) == 1 else None

    def coding(self, link: str) -> dict[str, Any] | None:
        """A Coding answer, checked against the item's answerOptions."""
        value = self.value(link)
        if value is None:
            return None
        options = [o.get("valueCoding") or {} for o in self.known[link].get("answerOption") or []]
        if isinstance(value, dict):
            for option in options:
                if option.get("system") == value.get("system") and option.get("code") == value.get("code"):
                    return option
        allowed = ", ".join(str(o.get("display") or o.get("code")) for o in options)
        self.problems.append(Problem(self.at(link), f"not one of the allowed answers ({allowed})"))
        return None

    def string_option(self, link: str) -> str | None:
        value = self.value(link)
        if value is None:
            return None
        allowed = [o.get("valueString") for o in self.known[link].get("answerOption") or []]
        if value not in allowed:
            self.problems.append(Problem(self.at(link), f"not one of {allowed[0]}..{allowed[-1]}"))
            return None
        return str(value)

    def integer(self, link: str, low: int, high: int, step: int = 1) -> int | None:
        value = self.value(link)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
            self.problems.append(Problem(self.at(link), "must be a whole number"))
            return None
        number = int(value)
        if not low <= number <= high or number % step:
            every = f" in steps of {step}" if step > 1 else ""
            self.problems.append(Problem(self.at(link), f"out of range: must be {low}-{high}{every}"))
            return None
        return number

    def day(self, link: str, today: date) -> str | None:
        value = self.value(link)
        if value is None:
            return None
        try:
            parsed = date.fromisoformat(str(value)[:10])
        except ValueError:
            self.problems.append(Problem(self.at(link), "must be a date (YYYY-MM-DD)"))
            return None
        if parsed > today:
            self.problems.append(Problem(self.at(link), "lies in the future"))
            return None
        return parsed.isoformat()

    def reference(self, link: str) -> str | None:
        value = self.value(link)
        return value.get("reference") if isinstance(value, dict) else None


# ------------------------------------------------------------------------------ the chart, as answers


def _codes(concept: Any) -> set[tuple[str, str]]:
    if not isinstance(concept, dict):
        return set()
    return {
        (str(c["system"]), str(c["code"]))
        for c in concept.get("coding") or []
        if isinstance(c, dict) and c.get("system") and c.get("code")
    }


def _when(resource: dict[str, Any]) -> str:
    return str(resource.get("effectiveDateTime") or resource.get("issued") or "")


def _final(resource: dict[str, Any]) -> bool:
    return resource.get("status") in ("final", "amended", "corrected")


def _of_patient(resource: dict[str, Any], patient_id: str) -> bool:
    subject = resource.get("subject")
    return isinstance(subject, dict) and subject.get("reference") in (f"Patient/{patient_id}", patient_id)


def _valid(resource: dict[str, Any]) -> bool:
    """Only valid R4 resources are read (as the engine does): the readers below can trust their shape."""
    from fhir.resources.R4B.condition import Condition
    from fhir.resources.R4B.domainresource import DomainResource
    from fhir.resources.R4B.observation import Observation

    models: dict[str, type[DomainResource]] = {"Observation": Observation, "Condition": Condition}
    model = models.get(str(resource.get("resourceType")))
    if model is None:
        return False
    try:
        model.model_validate(resource)
    except (ValueError, TypeError):  # pydantic's ValidationError is a ValueError
        return False
    return True


def _latest(resources: list[dict[str, Any]], system: str, code: str) -> list[dict[str, Any]]:
    found = [
        r
        for r in resources
        if r.get("resourceType") == "Observation" and (system, code) in _codes(r.get("code")) and _valid(r)
    ]
    return sorted((r for r in found if _final(r)), key=_when, reverse=True)


@dataclass
class ChartState:
    """What the chart already says, in the Questionnaires' terms (the basis for pre-fill and change detection)."""

    lesions: dict[str, dict[str, str]]  # level -> component linkId -> SF answer code
    kps: int | None
    ecog: int | None
    staging: dict[str, str]  # visceral / brain -> "Y" | "N" | "UNK"
    symptoms: dict[str, dict[str, Any]]  # "Condition/id" -> the resource


def _symptom_codes() -> set[str]:
    item = _items(questionnaires()[RED_FLAGS_Q])["code"]
    return {o["valueCoding"]["code"] for o in item["answerOption"]}


def _sins_components() -> dict[str, str]:
    """SF component code -> linkId."""
    return {
        item["code"][0]["code"]: link
        for link, item in _items(questionnaires()[SINS_Q]).items()
        if item.get("code") and item["type"] == "choice"
    }


def read_chart(chart: list[dict[str, Any]], patient_id: str) -> ChartState:
    mine = [r for r in chart if isinstance(r, dict) and _of_patient(r, patient_id)]
    lesions: dict[str, dict[str, str]] = {}
    components = _sins_components()
    for obs in _latest(mine, SF, "sins"):
        level = str(((obs.get("bodySite") or {}).get("text")) or "").strip()
        if not level or level in lesions:
            continue
        answers = {}
        for comp in obs.get("component") or []:
            name = next((components[c] for s, c in _codes(comp.get("code")) if s == SF and c in components), None)
            answer = next((c for s, c in _codes(comp.get("valueCodeableConcept")) if s == SF), None)
            if name and answer:
                answers[name] = answer
        lesions[level] = answers
    kps = next((o.get("valueInteger") for o in _latest(mine, LOINC, KPS_CODE) if "valueInteger" in o), None)
    ecog = next((o.get("valueInteger") for o in _latest(mine, LOINC, ECOG_CODE) if "valueInteger" in o), None)
    staging: dict[str, str] = {}
    latest_staging = _latest(mine, SF, "visceral-metastases")
    if latest_staging:
        obs = latest_staging[0]
        for comp in obs.get("component") or []:
            name = next(
                (k for k, text in VISCERAL_COMPONENTS.items() if (comp.get("code") or {}).get("text") == text), None
            )
            answer = next((c for _s, c in _codes(comp.get("valueCodeableConcept"))), None)
            if name and answer:
                staging[name] = answer
        if not staging and obs.get("valueBoolean") is False:
            staging = {"visceral": "N", "brain": "N"}
    symptoms = {}
    codes = _symptom_codes()
    for cond in mine:
        if cond.get("resourceType") != "Condition" or not cond.get("id"):
            continue
        if {c for s, c in _codes(cond.get("code")) if s == SF} & codes and _active(cond) and _valid(cond):
            symptoms[f"Condition/{cond['id']}"] = cond
    return ChartState(lesions, kps, ecog, staging, symptoms)


def _active(cond: dict[str, Any]) -> bool:
    clinical = {c for _s, c in _codes(cond.get("clinicalStatus"))}
    verification = {c for _s, c in _codes(cond.get("verificationStatus"))}
    return not clinical - {"active", "recurrence", "relapse"} and not verification & {"refuted", "entered-in-error"}


# ------------------------------------------------------------------------------ pre-fill


def _option(qid: str, link: str, code: str) -> dict[str, Any] | None:
    item = _items(questionnaires()[qid])[link]
    return next(
        (o["valueCoding"] for o in item.get("answerOption") or [] if o.get("valueCoding", {}).get("code") == code),
        None,
    )


def _qr(qid: str, patient_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": questionnaires()[qid]["url"],
        "status": "in-progress",
        "subject": {"reference": f"Patient/{patient_id}"},
        "item": items,
    }


def _answer(link: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"linkId": link, "answer": [value]}


def prefill(chart: list[dict[str, Any]], patient_id: str, levels: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """One in-progress QuestionnaireResponse per Questionnaire with what the chart already says.
    `levels` adds empty lesion groups for levels a card asked about but the chart has no SINS for."""
    state = read_chart(chart, patient_id)
    lesion_groups = []
    for level in list(state.lesions) + [lv for lv in levels or [] if lv not in state.lesions]:
        items = [_answer("level", {"valueString": level})]
        for link, code in state.lesions.get(level, {}).items():
            option = _option(SINS_Q, link, code)
            if option:
                items.append(_answer(link, {"valueCoding": option}))
        lesion_groups.append({"linkId": "lesion", "item": items})
    performance: list[dict[str, Any]] = []
    if state.kps is not None:
        performance = [
            _answer("scale", {"valueCoding": _option(PERFORMANCE_Q, "scale", KPS_CODE)}),
            _answer("kps", {"valueInteger": state.kps}),
        ]
    elif state.ecog is not None:
        grade = next((code for code, g in ECOG_GRADES.items() if g == state.ecog), None)
        performance = [_answer("scale", {"valueCoding": _option(PERFORMANCE_Q, "scale", ECOG_CODE)})]
        if grade:
            performance.append(_answer("ecog", {"valueCoding": _option(PERFORMANCE_Q, "ecog", grade)}))
    staging = [
        _answer(link, {"valueCoding": option})
        for link, code in state.staging.items()
        if (option := _option(STAGING_Q, link, code))
    ]
    symptom_groups = []
    for ref, cond in state.symptoms.items():
        code = next(c for s, c in _codes(cond.get("code")) if s == SF and _option(RED_FLAGS_Q, "code", c))
        items = [
            _answer("existing", {"valueReference": {"reference": ref}}),
            _answer("code", {"valueCoding": _option(RED_FLAGS_Q, "code", code)}),
        ]
        side = next((c for site in cond.get("bodySite") or [] for s, c in _codes(site) if s == SNOMED), None)
        if side and (option := _option(RED_FLAGS_Q, "side", side)):
            items.append(_answer("side", {"valueCoding": option}))
        course = next((e.get("valueCode") for e in cond.get("extension") or [] if e.get("url") == COURSE_URL), None)
        if course and (option := _option(RED_FLAGS_Q, "course", course)):
            items.append(_answer("course", {"valueCoding": option}))
        if cond.get("onsetDateTime"):
            items.append(_answer("onset", {"valueDate": str(cond["onsetDateTime"])[:10]}))
        symptom_groups.append({"linkId": "symptom", "item": items})
    return {
        SINS_Q: _qr(SINS_Q, patient_id, lesion_groups),
        PERFORMANCE_Q: _qr(PERFORMANCE_Q, patient_id, performance),
        STAGING_Q: _qr(STAGING_Q, patient_id, staging),
        RED_FLAGS_Q: _qr(RED_FLAGS_Q, patient_id, symptom_groups),
    }


# ------------------------------------------------------------------------------ extraction


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


class _Extractor:
    def __init__(self, chart: list[dict[str, Any]], patient_id: str, now: datetime):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.state = read_chart(chart, patient_id)
        self.patient_id = patient_id
        self.now = now
        self.result = Extraction()

    def observation(
        self, kind: str, code: dict[str, Any], category: str, profile: str, **values: Any
    ) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "id": f"draft-{kind}-{uuid.uuid4().hex[:8]}",
            "status": "final",
            "category": [{"coding": [{"system": OBS_CATEGORY, "code": category}]}],
            "code": code,
            "subject": {"reference": f"Patient/{self.patient_id}"},
            "effectiveDateTime": self.now.isoformat(timespec="seconds"),
            **values,
        }
        if profile:  # the staging Observation has no profile of its own
            resource["meta"] = {"profile": [SD + profile]}
        return resource

    def answers(self, qid: str, response: Any) -> _Answers | None:
        where = f"{qid}"
        if not isinstance(response, dict) or response.get("resourceType") != "QuestionnaireResponse":
            self.result.problems.append(Problem(where, "not a QuestionnaireResponse"))
            return None
        if response.get("questionnaire") not in (None, questionnaires()[qid]["url"]):
            self.result.problems.append(Problem(where, "answers another Questionnaire"))
            return None
        subject = (
            (response.get("subject") or {}).get("reference") if isinstance(response.get("subject"), dict) else None
        )
        if subject not in (None, f"Patient/{self.patient_id}"):
            self.result.problems.append(Problem(where, "is about another patient"))
            return None
        from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
        from pydantic import ValidationError

        try:
            QuestionnaireResponse.model_validate(response)
        except ValidationError as exc:
            first = exc.errors(include_input=False)[0]  # names the place, never the value sent
            item_where = _where_of(qid, response, first["loc"])
            if item_where == qid:
                place = ".".join(str(p) for p in first["loc"])
                message = f"not a valid QuestionnaireResponse: {place}: {first['msg']}"
            else:
                message = f"not a valid answer: {first['msg']}"
            self.result.problems.append(Problem(item_where, message))
            return None
        items = response.get("item") or []
        return _Answers(qid, "", items, _items(questionnaires()[qid]), self.result.problems)

    # ---------------------------------------------------------------- SINS
    def sins(self, root: _Answers) -> None:
        seen: set[str] = set()
        for group in root.groups("lesion"):
            level = group.string_option("level")
            answers = {}
            for link in _sins_components().values():
                option = group.coding(link)
                if option:
                    answers[link] = option
            if level is None:
                if answers:
                    group.problems.append(Problem(group.at("level"), "the vertebral level is required"))
                continue
            if level in seen:
                group.problems.append(Problem(group.at("level"), f"{level} is assessed twice"))
                continue
            seen.add(level)
            chart = self.state.lesions.get(level) or {}
            kept = [link for link in chart if link not in answers]
            for link in kept:  # a recorded component left unanswered stays: this form changes, never erases
                option = _option(SINS_Q, link, chart[link])
                if option:
                    answers[link] = option
            if not answers or {k: v["code"] for k, v in answers.items()} == chart:
                continue  # nothing new for this lesion
            if kept:
                self.result.notes.append(
                    f"SINS {level}: recorded components left unanswered are kept ({', '.join(kept)});"
                    " choose another answer to correct one"
                )
            components = []
            for link, option in _ordered(answers).items():
                item = _items(questionnaires()[SINS_Q])[link]["code"][0]
                components.append(
                    {
                        "code": _concept(SF, item["code"], item["display"]),
                        "valueCodeableConcept": _concept(SF, option["code"], option["display"]),
                    }
                )
            values: dict[str, Any] = {"bodySite": {"text": level}, "component": components}
            if len(answers) == len(_sins_components()):
                values["valueInteger"] = int(sum(_ordinal(o) for o in answers.values()))
            code = _concept(SF, "sins", "SINS assessment")
            self.result.creates.append(
                self.observation(f"sins-{level}", code, "imaging", "spinecds-sins-observation", **values)
            )

    # ---------------------------------------------------------------- performance status
    def performance(self, root: _Answers) -> None:
        scale = root.coding("scale")
        kps = root.integer("kps", 0, 100, step=10)
        ecog_option = root.coding("ecog")
        if scale is None:
            if kps is not None or ecog_option is not None:
                root.problems.append(Problem(root.at("scale"), "choose KPS or ECOG"))
            return
        if scale["code"] == KPS_CODE and kps is not None and kps != self.state.kps:
            code = _concept(LOINC, KPS_CODE, "Karnofsky Performance Status score")
            self.result.creates.append(
                self.observation("kps", code, "survey", "spinecds-kps-observation", valueInteger=kps)
            )
        elif scale["code"] == ECOG_CODE and ecog_option is not None:
            grade = ECOG_GRADES[ecog_option["code"]]
            if grade != self.state.ecog or self.state.kps is not None:
                code = _concept(LOINC, ECOG_CODE, "ECOG Performance Status score")
                self.result.creates.append(
                    self.observation("ecog", code, "survey", "spinecds-ecog-observation", valueInteger=grade)
                )
            if self.state.kps is not None:
                self.result.notes.append(
                    "the chart holds a KPS, which the engine prefers over an ECOG grade: record a KPS instead"
                )

    # ---------------------------------------------------------------- staging
    def staging(self, root: _Answers) -> None:
        answers = {}
        for link in VISCERAL_COMPONENTS:
            option = root.coding(link)
            if option is not None:
                answers[link] = option
        codes = {k: v["code"] for k, v in answers.items()}
        if not answers or codes == self.state.staging:
            return
        if "Y" in codes.values():
            present: bool | None = True
        elif codes.get("visceral") == "N" and codes.get("brain") == "N":
            present = False
        else:
            present = None
        if present is None:
            self.result.notes.append(
                "staging not written: with one answer unknown and none present, visceral or brain metastases stay"
                " unknown (both possibilities are considered)"
            )
            return
        components = [
            {
                "code": {"text": VISCERAL_COMPONENTS[link]},
                "valueCodeableConcept": _concept(option["system"], option["code"], option["display"]),
            }
            for link, option in answers.items()
        ]
        code = _concept(SF, "visceral-metastases", "Visceral or brain metastases (staging)")
        self.result.creates.append(
            self.observation("staging", code, "imaging", "", valueBoolean=present, component=components)
        )

    # ---------------------------------------------------------------- symptoms
    def symptoms(self, root: _Answers) -> None:
        today = self.now.date()
        for group in root.groups("symptom"):
            existing_ref = group.reference("existing")
            code = group.coding("code")
            side = group.coding("side")
            course = group.coding("course")
            onset = group.day("onset", today)
            if code is None:
                if side or course or onset:
                    group.problems.append(Problem(group.at("code"), "choose the symptom"))
                continue
            if existing_ref:
                original = self.state.symptoms.get(existing_ref)
                if original is None:
                    group.problems.append(Problem(group.at("existing"), "not an active symptom of this patient"))
                    continue
                resource = copy.deepcopy(original)
            else:
                resource = {
                    "resourceType": "Condition",
                    "id": f"draft-symptom-{uuid.uuid4().hex[:8]}",
                    "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
                    "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
                    "category": [{"coding": [{"system": COND_CATEGORY, "code": "encounter-diagnosis"}]}],
                    "subject": {"reference": f"Patient/{self.patient_id}"},
                    "recordedDate": self.now.isoformat(timespec="seconds"),
                }
            before = copy.deepcopy(resource)
            resource["meta"] = {**(resource.get("meta") or {}), "profile": [SD + "spinecds-symptom-condition"]}
            resource["code"] = _concept(SF, code["code"], code["display"])
            if side and side["system"] == SNOMED:
                resource["bodySite"] = [_concept(SNOMED, side["code"], side["display"])]
            if course and course["system"] == SF:
                others = [e for e in resource.get("extension") or [] if e.get("url") != COURSE_URL]
                resource["extension"] = [*others, {"url": COURSE_URL, "valueCode": course["code"]}]
            if onset:
                resource["onsetDateTime"] = onset
            if not existing_ref:
                self.result.creates.append(resource)
            elif _without_meta(resource) != _without_meta(before):
                self.result.updates.append(resource)


def _where_of(qid: str, response: dict[str, Any], loc: tuple[Any, ...]) -> str:
    """A validation error's location (item.0.item.2.answer.0.valueInteger) in the problems' terms
    (spinecds-sins/lesion[1]/pain), as far as the item structure can be followed."""
    known = _items(questionnaires()[qid])
    where, node, parts, i = qid, response, list(loc), 0
    while i + 1 < len(parts) and parts[i] == "item" and isinstance(parts[i + 1], int) and isinstance(node, dict):
        items = node.get("item")
        index = parts[i + 1]
        if not isinstance(items, list) or not 0 <= index < len(items) or not isinstance(items[index], dict):
            break
        child = items[index]
        link = child.get("linkId")
        if not isinstance(link, str) or link not in known:
            break
        if known[link].get("type") == "group":
            nth = sum(1 for c in items[: index + 1] if isinstance(c, dict) and c.get("linkId") == link)
            where += f"/{link}[{nth}]"
        else:
            where += f"/{link}"
        node, i = child, i + 2
    return where


def _ordered(answers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """SINS answers in the Questionnaire's component order (stable output, whatever order they came in)."""
    order = list(_sins_components().values())
    return {link: answers[link] for link in order if link in answers}


def _without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != "meta"}


def _ordinal(option: dict[str, Any]) -> float:
    return next(
        float(e["valueDecimal"]) for e in option.get("extension") or [] if e.get("url", "").endswith("ordinalValue")
    )


def extract(responses: dict[str, Any], chart: list[dict[str, Any]], patient_id: str, now: datetime) -> Extraction:
    """The resources the answers add to or change in the chart; problems instead when any answer is wrong."""
    extractor = _Extractor(chart, patient_id, now)
    result = extractor.result
    unknown = sorted(set(responses) - set(questionnaires()))
    for qid in unknown:
        result.problems.append(Problem(qid, "unknown questionnaire"))
    steps = {
        SINS_Q: extractor.sins,
        PERFORMANCE_Q: extractor.performance,
        STAGING_Q: extractor.staging,
        RED_FLAGS_Q: extractor.symptoms,
    }
    for qid, step in steps.items():
        if qid in responses:
            root = extractor.answers(qid, responses[qid])
            if root is not None:
                step(root)
    for resource in result.resources:
        for issue in check_resource(resource):
            if issue.severity == "error":
                result.problems.append(Problem(resource["resourceType"], str(issue)))
    if result.problems:
        result.creates, result.updates = [], []  # all or nothing
    return result


# ------------------------------------------------------------------------------ the write


def transaction_bundle(
    extraction: Extraction,
    patient_id: str,
    now: datetime,
    *,
    app_name: str,
    client_id: str,
    user_reference: str | None,
    user_display: str | None,
) -> dict[str, Any]:
    """One transaction: every new resource (POST, urn:uuid), every completed one (PUT), and a Provenance
    naming the app (device) and the user (author) as the agents of all of them."""
    entries, targets = [], []
    for resource in extraction.creates:
        full_url = f"urn:uuid:{uuid.uuid4()}"
        body = {k: v for k, v in resource.items() if k != "id"}
        entries.append(
            {"fullUrl": full_url, "resource": body, "request": {"method": "POST", "url": resource["resourceType"]}}
        )
        targets.append({"reference": full_url})
    for resource in extraction.updates:
        url = f"{resource['resourceType']}/{resource['id']}"
        entries.append({"fullUrl": url, "resource": resource, "request": {"method": "PUT", "url": url}})
        targets.append({"reference": url})
    agents: list[dict[str, Any]] = []
    if user_reference or user_display:
        who: dict[str, Any] = {}
        if user_reference:
            who["reference"] = user_reference
        if user_display:
            who["display"] = user_display
        agents.append(
            {
                "type": _concept(
                    "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author", "Author"
                ),
                "who": who,
            }
        )
    agents.append(
        {
            "type": _concept(
                "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "assembler", "Assembler"
            ),
            "who": {
                "identifier": {"system": "urn:ietf:rfc:6749:client_id", "value": client_id},
                "display": app_name,
            },
        }
    )
    provenance = {
        "resourceType": "Provenance",
        "target": targets,
        "recorded": now.isoformat(timespec="seconds"),
        "activity": _concept("http://terminology.hl7.org/CodeSystem/v3-DataOperation", "CREATE", "create"),
        "agent": agents,
    }
    entries.append(
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": provenance,
            "request": {"method": "POST", "url": "Provenance"},
        }
    )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
