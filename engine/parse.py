"""Raw FHIR R4 JSON -> the validated R4B resources a rule can use, plus data-quality items.

Order of work, cheapest first:
1. filter on the raw JSON: keep Patient, and Condition / Observation / Procedure whose code is in a
   concept the rules use (fhir_profiles ValueSets); draft orders are always kept (kind ``other``
   is a valid order subject). Everything else never reaches pydantic.
2. ``model_validate`` with ``fhir.resources.R4B``; failures become data-quality items.
3. our own checks of what fhir.resources does not check: required-binding status codes and the
   subject; then the spinecds profiles (fhir_profiles/structuredefinitions, checked by
   fhir_profiles.profile_checks): value ranges, SINS components and answers, symptom laterality and
   course, MESCC date. The numbers live in the StructureDefinitions, not here.

Nothing here raises on bad input, and no issue text contains a patient value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import orjson
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.domainresource import DomainResource
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from engine.model_cache import MODEL_CACHE
from fhir_profiles.profile_checks import ProfileSet, load_profiles
from fhir_profiles.terminology import ICD10_SYSTEMS, SNOMED, Terminology, icd10_ancestors, normalise_code

SF = "http://spinecds.org/fhir/CodeSystem/spine-findings"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

SYMPTOM_CODES = (
    "local-back-pain",
    "interscapular-pain",
    "nocturnal-back-pain",
    "radiating-pain",
    "radicular-pain",
    "radicular-deficit",
    "lhermitte-sign",
    "leg-weakness",
    "limb-control-difficulty",
    "unsteady-gait",
    "sensory-level",
    "unable-to-walk",
    "sphincter-dysfunction",
    "saddle-anaesthesia",
)
SINS_COMPONENTS = (
    "sins-location",
    "sins-pain",
    "sins-bone-lesion",
    "sins-alignment",
    "sins-collapse",
    "sins-posterolateral",
)

# The concepts a rule can use, per resource type: the filter keeps a resource only if its code
# belongs to one of these.
CONDITION_CONCEPTS = frozenset(
    {
        "malignancy",
        "secondary-malignancy",
        "primary-unknown",
        "primary-breast",
        "primary-prostate",
        "primary-lung",
        "primary-kidney",
        "primary-thyroid",
        "primary-germ-cell",
        "myeloma",
        "lymphoma",
        "spinal-metastasis",
        "visceral-metastasis",
        "mescc",
        "cord-compression-generic",
        "malignancy-excluded",
        "sphincter-code-recent",
        "sphincter-code-companion",
        "mri-contraindication",
        *(f"symptom-{s}" for s in SYMPTOM_CODES),
    }
)
OBSERVATION_CONCEPTS = frozenset({"kps", "ecog", "pain-nrs", "sins", "sins-component", "visceral-metastases-staging"})
PROCEDURE_CONCEPTS = frozenset(
    {"spinal-surgery", "spinal-surgery-combined", "spine-radiotherapy", "mri-spine-done", "systemic-therapy"}
)
IMAGING_CONCEPTS = frozenset({"mri-spine-done"})
RECORD_ORDER_CONCEPTS = frozenset({"mri-spine"})  # spine MRI already ordered (engine/imaging.py)
RELEVANT = {
    "Condition": CONDITION_CONCEPTS,
    "Observation": OBSERVATION_CONCEPTS,
    "Procedure": PROCEDURE_CONCEPTS,
    "ImagingStudy": IMAGING_CONCEPTS,
    "DiagnosticReport": IMAGING_CONCEPTS,
    "ServiceRequest": RECORD_ORDER_CONCEPTS,
}
MODELS: dict[str, type[DomainResource]] = {
    "Patient": Patient,
    "Condition": Condition,
    "Observation": Observation,
    "Procedure": Procedure,
    "ServiceRequest": ServiceRequest,
    "ImagingStudy": ImagingStudy,
    "DiagnosticReport": DiagnosticReport,
}

# "Nothing relevant dropped silently": a Condition or Observation whose code matches no concept but lies
# in an ICD-10 category the rules care about, or whose SNOMED CT display names such a finding (no
# SNOMED CT hierarchy is shipped, so the words stand in for the roots neoplastic disease, back pain
# and neurological finding), is reported as "not recognised" so a site can map it.
NEAR_ICD10 = frozenset(
    {"G95", "G83", "M54", "M50.1", "M51.1", "M47.2", "M48.5", "M84.5", "R15", "R20", "R26", "R29", "R32", "R33"}
)
NOT_NEAR_ICD10 = frozenset({"C44"})  # non-melanoma skin cancer: left out on purpose, not unrecognised
NEAR_SNOMED_WORDS = re.compile(
    r"neoplasm|malignan|cancer|carcinom|sarcom|lymphom|myelom|leuk[a]?emi|metasta|tumou?r|melanom|"
    r"back pain|backache|lumbago|sciatica|radicul|spine|spinal|vertebra|cauda equina|cord compression|"
    r"neck pain|paresis|plegia|weakness|numbness|paraesthesia|paresthesia|incontinence|retention of urine|"
    r"urinary retention|gait|ataxi|lhermitte|saddle",
    re.I,
)
# Displays come from the record and end up in card markdown: letters, digits and a little punctuation
# only, so they can add no markup, link (no dots, slashes or colons: no autolinks), HTML or bidi control.
# An Observation in LOINC that names a score the rules read (a KPS or ECOG panel code, another pain
# scale) but is in no ValueSet: reported too, so a performance status is never dropped silently.
NEAR_LOINC_WORDS = re.compile(r"karnofsky|ecog|performance status|pain severity|pain intensity|numeric rating", re.I)
LOINC = "http://loinc.org"
_UNSAFE = re.compile(r"[^0-9A-Za-z\u00C0-\u024F ,()'-]+")


def _near_concept(coding: Any, text: Any) -> bool:
    if not isinstance(coding, dict):
        return False
    system, code, display = coding.get("system"), coding.get("code"), coding.get("display")
    if not isinstance(system, str) or not isinstance(code, str) or not code.strip():
        return False
    return _near(system, code, display if isinstance(display, str) else None, text if isinstance(text, str) else None)


@lru_cache(maxsize=4096)
def _near(system: str, code: str, display: str | None, text: str | None) -> bool:
    """Memoised: a prefetch repeats the same unrelated codes (vital signs, labs) many times."""
    if system in ICD10_SYSTEMS:
        ancestors = set(icd10_ancestors(normalise_code(system, code)))
        if ancestors & NOT_NEAR_ICD10:
            return False
        return bool(ancestors & NEAR_ICD10) or normalise_code(system, code).startswith("C")
    words = " ".join(w for w in (display, text) if w)
    if system == SNOMED:
        return bool(NEAR_SNOMED_WORDS.search(words))
    if system == LOINC:
        return bool(NEAR_LOINC_WORDS.search(words))
    return False


def not_recognised(concept_json: Any) -> str | None:
    """'not recognised: system|code display' for the first coding that sits near a concept, else None.
    The display is the code system's text as the record carries it, reduced to plain characters
    (it goes into card markdown) and cut at 80."""
    text = concept_json.get("text") if isinstance(concept_json, dict) else None
    for coding in codings_of(concept_json):
        if _near_concept(coding, text):
            display = coding.get("display") if isinstance(coding.get("display"), str) else text
            plain = " ".join(_UNSAFE.sub(" ", display or "").split())[:80]
            # system is one of the ICD-10 / SNOMED CT URIs above (compared exactly); the code is cut to
            # the characters codes use
            code = re.sub(r"[^0-9A-Za-z.-]", "", coding["code"])[:20]
            return f"not recognised: {coding['system']}|{code}" + (f" {plain}" if plain else "")
    return None


CLINICAL_STATUS = frozenset({"active", "recurrence", "relapse", "inactive", "remission", "resolved"})
VERIFICATION_STATUS = frozenset(
    {"unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error"}
)
OBSERVATION_STATUS = frozenset(
    {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}
)
PROCEDURE_STATUS = frozenset(
    {"preparation", "in-progress", "not-done", "on-hold", "stopped", "completed", "entered-in-error", "unknown"}
)
IMAGING_STUDY_STATUS = frozenset({"registered", "available", "cancelled", "entered-in-error", "unknown"})
REPORT_STATUS = frozenset(
    {
        "registered",
        "partial",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "appended",
        "cancelled",
        "entered-in-error",
        "unknown",
    }
)
IMAGING_STATUS = {"ImagingStudy": IMAGING_STUDY_STATUS, "DiagnosticReport": REPORT_STATUS}
REQUEST_STATUS = frozenset({"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"})
REQUEST_PRIORITY = frozenset({"routine", "urgent", "asap", "stat"})
# Scores that must carry a number once final (their ranges are in the StructureDefinitions).
SCORED = ("kps", "ecog", "pain-nrs")
DECIDING = ("final", "amended", "corrected")


@dataclass(frozen=True)
class Entry:
    """One validated resource with what the filter already learnt about it."""

    ref: str  # "Condition/c1"
    model: Any  # the R4B model
    raw: dict[str, Any]  # the JSON it came from (read-only by convention)
    concepts: frozenset[str]  # concepts of its code


@dataclass
class Parsed:
    patient: Entry | None = None
    conditions: list[Entry] = field(default_factory=list)
    observations: list[Entry] = field(default_factory=list)
    procedures: list[Entry] = field(default_factory=list)
    imaging: list[Entry] = field(default_factory=list)  # ImagingStudy and DiagnosticReport of the spine
    record_orders: list[Entry] = field(default_factory=list)  # ServiceRequests already in the record
    orders: list[Entry] = field(default_factory=list)
    data_quality: list[dict[str, str]] = field(default_factory=list)
    validated: int = 0  # how many resources reached model_validate (the filter's effect)


def unbundle(resources: Iterable[Any]) -> list[dict[str, Any]]:
    """Resources with any Bundle, nested ones too, replaced by its entries' resources (no de-duplication:
    engine.bundles.flatten already merged the prefetch keys)."""
    out: list[dict[str, Any]] = []
    for res in resources or ():
        if not isinstance(res, dict):
            continue
        if res.get("resourceType") == "Bundle":
            for entry in res.get("entry") or ():
                if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                    out.extend(unbundle([entry["resource"]]))
        else:
            out.append(res)
    return out


def codings_of(concept_json: Any) -> list[Any]:
    """The coding list of a raw CodeableConcept (tolerates junk: validation reports it later)."""
    if isinstance(concept_json, dict):
        codings = concept_json.get("coding")
        if isinstance(codings, list):
            return codings
    return []


def resource_codings(rtype: str, raw: dict[str, Any]) -> list[Any]:
    """The codings that say what a resource is: ImagingStudy names its procedure in procedureCode
    (a list), every other type we read in code."""
    if rtype == "ImagingStudy":
        codes = raw.get("procedureCode")
        return (
            [c for concept in codes if isinstance(concept, dict) for c in codings_of(concept)]
            if isinstance(codes, list)
            else []
        )
    return codings_of(raw.get("code"))


def to_instant(value: Any) -> datetime | None:
    """A FHIR date/dateTime/instant (model value or string) as an aware datetime; partial dates
    read as their first moment, times without zone as UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 4:
                return datetime(int(text), 1, 1, tzinfo=UTC)
            if len(text) == 7:
                return datetime(int(text[:4]), int(text[5:7]), 1, tzinfo=UTC)
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _validate(model: type[DomainResource], raw: dict[str, Any]) -> Any:
    """The one place resources are validated (tests count calls here). The model comes from the
    bounded cache of validated models when the same JSON was validated before: it is read-only."""
    return MODEL_CACHE.validate(model, raw)


def _validation_issue(exc: ValidationError) -> str:
    """First error's location and kind, never the offending value."""
    errors = exc.errors()
    if not errors:
        return "does not validate as FHIR R4"
    first = errors[0]
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__") or "resource"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid FHIR R4: {loc}: {first.get('type', 'invalid')}{more}"


def status_code(concept: Any, system: str) -> tuple[str | None, bool]:
    """(code, present) of a status CodeableConcept model: its coding in ``system`` (or without a system)."""
    if concept is None:
        return None, False
    for coding in concept.coding or ():
        if coding.system in (system, None) and coding.code:
            return coding.code, True
    return None, True


def component_answer(terminology: Terminology, component: Any) -> tuple[str | None, str | None]:
    """(component concept name, answer code) of a SINS component (Observation.component or member)."""
    name = next((c.code for c in (component.code.coding or ()) if c.system == SF and c.code in SINS_COMPONENTS), None)
    value = getattr(component, "valueCodeableConcept", None)
    answer = None
    if name and value is not None:
        # Answers score by their SF code (rules/scores/sins.yaml), so an answer must carry one.
        answer = next(
            (
                c.code
                for c in value.coding or ()
                if c.system == SF and c.code and name in terminology.concepts_of(SF, c.code)
            ),
            None,
        )
    return name, answer


def _reference(raw: dict[str, Any], rtype: str) -> str:
    rid = raw.get("id")
    return f"{rtype}/{rid}" if isinstance(rid, str) and rid else f"{rtype}/(no id)"


def profile_verdict(profiles: ProfileSet, raw: dict[str, Any]) -> str | None:
    """The first profile error of a resource (with how many more), or None when it conforms. The
    same resources come with every hook call of a chart: the verdict is remembered per canonical
    JSON, which fixes the content exactly once `null` is ruled out (orjson writes NaN as null too).
    The verdict is that of the JSON value: a Python caller's tuple is read as the list it stands for."""
    try:
        canonical = orjson.dumps(raw, option=_CANONICAL)
    except (TypeError, orjson.JSONEncodeError):
        return _verdict(profiles, raw)
    if b"null" in canonical:
        return _verdict(profiles, raw)
    return _remembered_verdict(profiles, canonical)


_CANONICAL = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


@lru_cache(maxsize=2048)  # as many as the validated-model cache: keys are whole resources
def _remembered_verdict(profiles: ProfileSet, canonical: bytes) -> str | None:
    return _verdict(profiles, orjson.loads(canonical))


def _verdict(profiles: ProfileSet, raw: dict[str, Any]) -> str | None:
    issues = [issue for issue in profiles.check(raw) if issue.severity == "error"]
    if not issues:
        return None
    more = f" (+{len(issues) - 1} more)" if len(issues) > 1 else ""
    return f"{issues[0]}{more}"


class _Parser:
    def __init__(self, terminology: Terminology, patient_id: str | None, profiles: ProfileSet):
        self.term = terminology
        self.profiles = profiles
        self.patient_id = patient_id
        self.out = Parsed()

    def issue(self, ref: str, text: str) -> None:
        self.out.data_quality.append({"resource": ref, "issue": text})

    def validate(self, rtype: str, raw: dict[str, Any], ref: str) -> Any:
        self.out.validated += 1
        try:
            return _validate(MODELS[rtype], raw)
        except ValidationError as exc:
            self.issue(ref, _validation_issue(exc))
        except (TypeError, ValueError) as exc:  # fhir.resources raises a few of its own
            self.issue(ref, f"invalid FHIR R4: {type(exc).__name__}")
        return None

    def other_patient(self, model: Any, ref: str) -> bool:
        subject = getattr(model, "subject", None)
        reference = getattr(subject, "reference", None) if subject is not None else None
        if not self.patient_id or not reference or "Patient/" not in reference:
            return False  # urn:uuid, contained or logical references: cannot tell, keep
        if reference.rsplit("Patient/", 1)[1].split("/")[0] == self.patient_id:
            return False
        self.issue(ref, "subject is not the patient in context")
        return True

    def conforms(self, raw: dict[str, Any], ref: str) -> bool:
        """The spinecds profiles the resource claims or matches by code; the first error is reported.
        Warnings are not: a data-quality item means "not used", and the facts list what is missing."""
        verdict = profile_verdict(self.profiles, raw)
        if verdict is not None:
            self.issue(ref, verdict)
        return verdict is None

    def other_patient_raw(self, raw: dict[str, Any]) -> bool:
        """Another patient's resource (judged on the raw JSON, nothing validated): never reported as ours."""
        subject = raw.get("subject")
        reference = subject.get("reference") if isinstance(subject, dict) else None
        if not self.patient_id or not isinstance(reference, str) or "Patient/" not in reference:
            return False
        return reference.rsplit("Patient/", 1)[1].split("/")[0] != self.patient_id

    # -- per type checks: return False (after reporting) when the resource must not be used
    def check_condition(self, model: Condition, raw: dict[str, Any], ref: str) -> bool:
        clinical, present = status_code(model.clinicalStatus, CONDITION_CLINICAL)
        if present and clinical not in CLINICAL_STATUS:
            self.issue(ref, "clinicalStatus is not a condition-clinical code")
            return False
        verification, present = status_code(model.verificationStatus, CONDITION_VERIFICATION)
        if present and verification not in VERIFICATION_STATUS:
            self.issue(ref, "verificationStatus is not a condition-ver-status code")
            return False
        return self.conforms(raw, ref)

    def check_observation(self, model: Observation, raw: dict[str, Any], ref: str, concepts: frozenset[str]) -> bool:
        if model.status not in OBSERVATION_STATUS:
            self.issue(ref, "status is not an observation-status code")
            return False
        if not self.conforms(raw, ref):
            return False
        scored = next((c for c in SCORED if c in concepts), None)
        if scored and observation_number(model) is None and model.status in DECIDING:
            self.issue(ref, f"{scored} Observation has no numeric value")
            return False
        if "visceral-metastases-staging" in concepts and model.valueBoolean is None and model.status in DECIDING:
            self.issue(ref, "visceral metastases staging Observation has no valueBoolean")
            return False
        return True

    def check_procedure(self, model: Procedure, ref: str) -> bool:
        if model.status not in PROCEDURE_STATUS:
            self.issue(ref, "status is not an event-status code")
            return False
        return True

    def check_order(self, model: ServiceRequest, ref: str) -> bool:
        if model.status not in REQUEST_STATUS:
            self.issue(ref, "status is not a request-status code")
            return False
        if model.priority is not None and model.priority not in REQUEST_PRIORITY:
            self.issue(ref, "priority is not a request-priority code")
            return False
        return True

    def add(self, raw: dict[str, Any], draft: bool = False) -> None:
        rtype = raw.get("resourceType")
        if draft:
            if rtype != "ServiceRequest":
                return  # other draft orders are not ours to judge
            ref = _reference(raw, rtype)
            model = self.validate(rtype, raw, ref)
            if model is not None and not self.other_patient(model, ref) and self.check_order(model, ref):
                self.out.orders.append(Entry(ref, model, raw, self.term.concepts(codings_of(raw.get("code")))))
            return
        if rtype == "Patient":
            rid = raw.get("id")
            if self.out.patient is None and (not self.patient_id or rid == self.patient_id):
                ref = _reference(raw, rtype)
                model = self.validate(rtype, raw, ref)
                if model is not None:
                    self.out.patient = Entry(ref, model, raw, frozenset())
            return
        if not isinstance(rtype, str):
            return  # not a resource we read (a list here would make the lookup below raise)
        wanted = RELEVANT.get(rtype)
        if wanted is None:
            return
        known = self.term.concepts(resource_codings(rtype, raw))
        concepts = known & wanted
        if not concepts:
            if not known and rtype in ("Condition", "Observation"):
                # a code near a concept that no ValueSet knows is reported, never dropped silently
                issue = not_recognised(raw.get("code"))
                if issue is not None and not self.other_patient_raw(raw):
                    self.issue(_reference(raw, rtype), issue)
            return  # most of a sloppy prefetch (vitals) ends here, before any string is built
        ref = _reference(raw, rtype)
        model = self.validate(rtype, raw, ref)
        if model is None or self.other_patient(model, ref):
            return
        entry = Entry(ref, model, raw, concepts)
        if rtype == "Condition" and self.check_condition(model, raw, ref):
            self.out.conditions.append(entry)
        elif rtype == "Observation" and self.check_observation(model, raw, ref, concepts):
            self.out.observations.append(entry)
        elif rtype == "Procedure" and self.check_procedure(model, ref):
            self.out.procedures.append(entry)
        elif rtype in IMAGING_STATUS and self.check_status(model.status, IMAGING_STATUS[rtype], ref, rtype):
            self.out.imaging.append(entry)
        elif rtype == "ServiceRequest" and self.check_order(model, ref):
            self.out.record_orders.append(entry)

    def check_status(self, status: Any, allowed: frozenset[str], ref: str, name: str) -> bool:
        if status not in allowed:
            self.issue(ref, f"status is not a {name} status code")
            return False
        return True


def observation_number(model: Observation) -> float | None:
    """valueInteger, else valueQuantity.value (KPS is sometimes sent as a Quantity)."""
    if model.valueInteger is not None:
        return model.valueInteger
    if model.valueQuantity is not None and model.valueQuantity.value is not None:
        return float(model.valueQuantity.value)
    return None


def parse_resources(
    resources: Iterable[Any],
    terminology: Terminology,
    patient_id: str | None = None,
    draft_orders: Iterable[Any] = (),
    profiles: ProfileSet | None = None,
) -> Parsed:
    """Filter, validate and check; never raises on bad input. ``profiles`` defaults to the
    StructureDefinitions next to the default terminology, checked with ``terminology``."""
    parser = _Parser(terminology, patient_id, profiles or load_profiles(terminology=terminology))
    for raw in unbundle(resources):
        parser.add(raw)
    for raw in unbundle(draft_orders):
        parser.add(raw, draft=True)
    return parser.out
