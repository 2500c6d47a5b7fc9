"""Synthetic sandbox patients: readable YAML descriptions -> FHIR R4 transaction Bundles.

Each file in sandbox/patients/ describes one patient's clinical story (diagnoses, symptoms,
performance status, SINS assessments, prior radiotherapy) with RELATIVE times ("3 days ago"), in
the same words as the rule cases: the clinical part is built by the shared fixture builder
(engine/fixtures), this module adds the sandbox's ids and the noise. The Bundle is built at load
time, anchored at `now`, so the clinical clocks (onset to now, hours since a MESCC diagnosis) stay
meaningful whenever the patients are loaded.
It adds the noise of a real record (vital signs, labs, unrelated problems, past procedures) from a
random generator seeded by the patient id, so the same `now` always gives the same Bundle.

Every entry is `PUT <type>/<id>` with a stable id (`spinecds-p01-cond-mescc`): loading twice
updates instead of duplicating.

    python -m sandbox.patients --write-index      # regenerate sandbox/patients/INDEX.md
"""

from __future__ import annotations

import argparse
import random
import sys
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from engine.fixtures import times
from engine.fixtures.builder import FixtureError, PatientBuilder, concept_json, dotted

from . import codes as C

PATIENT_DIR = Path(__file__).parent / "patients"
INDEX_PATH = PATIENT_DIR / "INDEX.md"
ID_PREFIX = "spinecds-"

_TOP_KEYS = {
    "id",
    "name",
    "gender",
    "age",
    "city",
    "story",
    "comorbidities",
    "resolved",
    "past_procedures",
    "diagnoses",
    "symptoms",
    "kps",
    "ecog",
    "nrs",
    "visceral_metastases",
    "sins",
    "procedures",
    "imaging",
    "record_orders",
    "extra_labs",
    "profile",
    "history",
    "expect",
}


class PatientFileError(FixtureError):
    """A patient description that cannot be built; the message names the file and the field."""


# ---------------------------------------------------------------- descriptions


def parse_ago(text: Any, where: str) -> timedelta:
    """'3 days ago' / '30 hours ago' / 'now' -> how long before `now` (the repository's one time syntax)."""
    try:
        return times.ago(text, where)
    except times.RelativeTimeError as error:
        raise PatientFileError(str(error)) from None


@lru_cache(maxsize=1)
def _descriptions() -> tuple[dict[str, Any], ...]:
    found = []
    for path in sorted(PATIENT_DIR.glob("*.yaml")):
        desc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(desc, dict):
            raise PatientFileError(f"{path.name}: expected a mapping")
        unknown = set(desc) - _TOP_KEYS
        if unknown:
            raise PatientFileError(f"{path.name}: unknown keys {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
        desc["_file"] = path.name
        found.append(desc)
    ids = [d["id"] for d in found]
    if len(ids) != len(set(ids)):
        raise PatientFileError(f"duplicate patient ids in {PATIENT_DIR}: {ids}")
    return tuple(found)


def descriptions() -> list[dict[str, Any]]:
    """Every patient description, ordered by id (p01, p02, ...)."""
    return sorted(_descriptions(), key=lambda d: d["id"])


def patient_ids() -> list[str]:
    """FHIR Patient ids: spinecds-p01, ..."""
    return [ID_PREFIX + d["id"] for d in descriptions()]


def description(patient: str) -> dict[str, Any]:
    """Look up a description by 'p01' or 'spinecds-p01'."""
    short = patient.removeprefix("Patient/").removeprefix(ID_PREFIX)
    for desc in descriptions():
        if desc["id"] == short:
            return desc
    raise KeyError(f"unknown sandbox patient {patient!r}; known: {', '.join(patient_ids())}")


# ---------------------------------------------------------------- FHIR helpers


def _instant(moment: datetime) -> str:
    return times.instant(moment)


def _concept(codings: list[C.Coding], text: str | None = None) -> dict[str, Any]:
    return concept_json(codings, text)


def _category(system: str, code: str, display: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": system, "code": code, "display": display}]}]


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": C.UCUM, "code": unit}


class _Builder(PatientBuilder):
    """The shared clinical builder (engine.fixtures) with the sandbox's ids, Patient, charting habits and
    the noise of a real record; every random draw is seeded by the patient id."""

    def __init__(self, desc: dict[str, Any], now: datetime):
        self.file = desc.get("_file", desc["id"])
        super().__init__(desc, now, ID_PREFIX + desc["id"], where=lambda path: f"{self.file}: {dotted(path)}")
        self.rng = random.Random(zlib.crc32(self.pid.encode()))

    # -- how the sandbox differs from a rule case
    def fail(self, path: tuple[Any, ...], message: str) -> PatientFileError:
        return PatientFileError(f"{self.where(path)}: {message}")

    def resource_id(self, kind: str, key: str) -> str:
        return "-".join((self.pid, kind, key)).lower().replace(" ", "-")

    def symptom_key(self, item: dict[str, Any], n: int) -> str:
        return str(item.get("code"))

    def visceral_key(self) -> str:
        return "visceral-staging"

    def recorded_after(self, onset: timedelta) -> timedelta:
        # Charted a day after onset when there was time for that, else at onset.
        return onset - timedelta(days=1) if onset > timedelta(days=2) else onset

    def add(self, resource: dict[str, Any]) -> None:
        # Key order as a FHIR server would print it: meta after id. versionId: the same story loaded
        # at another time is the same version of the chart (feedback memory keys on it, as a real
        # server's version tells an edited resource from the same one).
        ordered: dict[str, Any] = {
            "resourceType": resource.pop("resourceType"),
            "id": resource.pop("id"),
            "meta": {"versionId": "1", "tag": [dict(C.SANDBOX_TAG)]},
        }
        ordered.update(resource)
        if ordered["resourceType"] != "Patient" and "subject" not in ordered:
            ordered["subject"] = self.subject()
        self.resources.append(ordered)

    # -- small helpers for the noise
    def at_ago(self, ago: timedelta) -> str:
        return _instant(self.now - ago)

    def ago_of(self, text: Any, field: str) -> timedelta:
        return parse_ago(text, f"{self.file}: {field}")

    def rid(self, *parts: str) -> str:
        return "-".join((self.pid, *parts)).lower().replace(" ", "-")

    def noise_condition(
        self, rid: str, codings: list[C.Coding], *, onset: timedelta, category: str, clinical: str = "active"
    ) -> dict[str, Any]:
        displays = {"problem-list-item": "Problem List Item", "encounter-diagnosis": "Encounter Diagnosis"}
        return {
            "resourceType": "Condition",
            "id": rid,
            "clinicalStatus": {"coding": [{"system": C.CLINICAL_STATUS, "code": clinical}]},
            "verificationStatus": {"coding": [{"system": C.VERIFICATION_STATUS, "code": "confirmed"}]},
            "category": _category(C.CONDITION_CATEGORY, category, displays[category]),
            "code": _concept(codings),
            "subject": self.subject(),
            "onsetDateTime": self.at_ago(onset),
            "recordedDate": self.at_ago(self.recorded_after(onset)),
        }

    def noise_observation(
        self, rid: str, coding: C.Coding, category: str, when: timedelta, **value: Any
    ) -> dict[str, Any]:
        displays = {"vital-signs": "Vital Signs", "laboratory": "Laboratory"}
        res = {
            "resourceType": "Observation",
            "id": rid,
            "status": "final",
            "category": _category(C.OBSERVATION_CATEGORY, category, displays[category]),
            "code": _concept([coding]),
            "subject": self.subject(),
            "effectiveDateTime": self.at_ago(when),
        }
        res.update(value)
        return res

    # -- the record
    def build(self) -> list[dict[str, Any]]:
        super().build()
        self.noise_problems()
        self.noise_vitals_and_labs()
        return self.resources

    def patient(self) -> dict[str, Any]:
        d = self.desc
        age_days = int(d["age"]) * 365 + self.rng.randint(0, 364)
        number = d["id"].lstrip("p")
        return {
            "resourceType": "Patient",
            "id": self.pid,
            "active": True,
            "identifier": [{"system": C.MRN_SYSTEM, "value": f"SBX-{d['id'].upper()}"}],
            "name": [{"use": "official", "family": d["name"]["family"], "given": list(d["name"]["given"])}],
            "gender": d["gender"],
            "birthDate": (self.now.date() - timedelta(days=age_days)).isoformat(),
            "telecom": [{"system": "phone", "value": f"+31 6 5550 {int(number):04d}", "use": "mobile"}],
            "address": [{"use": "home", "city": d.get("city", "Utrecht"), "country": "NL"}],
            "communication": [
                {
                    "language": {
                        "coding": [{"system": "urn:ietf:bcp:47", "code": "nl-NL", "display": "Dutch (Netherlands)"}]
                    }
                }
            ],
        }

    # -- noise
    def _primary_onset(self) -> timedelta | None:
        for item in self.desc.get("diagnoses") or []:
            if item.get("key") == "primary":
                return self.ago_of(item["onset"], "diagnoses.primary.onset")
        return None

    def noise_problems(self) -> None:
        for key in self.desc.get("comorbidities") or []:
            if key not in C.COMORBIDITIES:
                raise PatientFileError(f"{self.file}: comorbidities: unknown {key!r}; known: {sorted(C.COMORBIDITIES)}")
            onset = timedelta(days=self.rng.randint(2 * 365, 15 * 365))
            self.add(
                self.noise_condition(
                    self.rid("cond", key), C.COMORBIDITIES[key], onset=onset, category="problem-list-item"
                )
            )
        for key in self.desc.get("resolved") or []:
            if key not in C.RESOLVED_EPISODES:
                raise PatientFileError(f"{self.file}: resolved: unknown {key!r}; known: {sorted(C.RESOLVED_EPISODES)}")
            onset = timedelta(days=self.rng.randint(200, 5 * 365))
            res = self.noise_condition(
                self.rid("cond", key),
                C.RESOLVED_EPISODES[key],
                onset=onset,
                category="encounter-diagnosis",
                clinical="resolved",
            )
            res["abatementDateTime"] = self.at_ago(onset - timedelta(days=self.rng.randint(7, 21)))
            self.add(res)
        primary_onset = self._primary_onset()
        cancer_surgery = {"mastectomy", "radical-prostatectomy", "lobectomy", "nephrectomy", "thyroidectomy"}
        for key in self.desc.get("past_procedures") or []:
            if key not in C.PAST_PROCEDURES:
                raise PatientFileError(
                    f"{self.file}: past_procedures: unknown {key!r}; known: {sorted(C.PAST_PROCEDURES)}"
                )
            if key in cancer_surgery and primary_onset is not None:
                # Operated some weeks after the diagnosis, never in the future.
                when = max(primary_onset - timedelta(days=self.rng.randint(20, 60)), timedelta(days=1))
            else:
                when = timedelta(days=self.rng.randint(3 * 365, 20 * 365))
            self.add(
                {
                    "resourceType": "Procedure",
                    "id": self.rid("proc", key),
                    "status": "completed",
                    "code": _concept(C.PAST_PROCEDURES[key]),
                    "performedDateTime": self.at_ago(when),
                }
            )

    def _baseline(self) -> dict[str, Any]:
        d, rng = self.desc, self.rng
        problems = set(d.get("comorbidities") or [])
        profile = d.get("profile")
        height = rng.uniform(158, 174) if d["gender"] == "female" else rng.uniform(170, 190)
        bmi = (
            rng.uniform(31, 37)
            if "obesity" in problems
            else rng.uniform(19, 22)
            if profile == "frail"
            else rng.uniform(22, 28.5)
        )
        return {
            "height": round(height, 1),
            "bmi": bmi,
            "systolic": rng.uniform(138, 152) if "hypertension" in problems else rng.uniform(112, 132),
            "diastolic": rng.uniform(84, 92) if "hypertension" in problems else rng.uniform(68, 80),
            "heart_rate": rng.uniform(75, 100) if "atrial-fibrillation" in problems else rng.uniform(62, 84),
            "spo2": rng.uniform(91, 94) if "copd" in problems else rng.uniform(95, 99),
        }

    def _lab_range(self, key: str) -> tuple[float, float]:
        _code, _display, _unit, low, high, _dec = C.LABS[key]
        problems = set(self.desc.get("comorbidities") or [])
        profile = self.desc.get("profile")
        overrides: dict[str, tuple[float, float]] = {}
        if "type-2-diabetes" in problems:
            overrides["glucose"] = (125, 210)
        if "ckd-3" in problems:
            overrides.update(creatinine=(1.4, 1.9), egfr=(35, 55))
        if profile == "myeloma":
            overrides.update(haemoglobin=(8.8, 10.6), calcium=(10.3, 11.6), creatinine=(1.3, 2.1))
        if profile == "frail":
            overrides.update(albumin=(2.5, 3.1), haemoglobin=(9.5, 11.2), crp=(15, 60))
        if any(item.get("concept") == "bone-metastasis" for item in self.desc.get("diagnoses") or []):
            overrides["alkaline-phosphatase"] = (110, 280)
        return overrides.get(key, (low, high))

    def noise_vitals_and_labs(self) -> None:
        rng = self.rng
        history = self.desc.get("history") or {}
        n_visits = int(history.get("visits", rng.randint(6, 15)))
        n_labs = min(int(history.get("labs", rng.randint(2, 6))), n_visits)
        # Visits spread over two years, the latest within the last few days.
        days = sorted(rng.sample(range(8, 730), n_visits - 1), reverse=True) + [rng.randint(1, 4)]
        visits = [timedelta(days=day, hours=rng.randint(0, 9), minutes=rng.choice((0, 15, 30, 45))) for day in days]
        base = self._baseline()
        weight0 = base["bmi"] * (base["height"] / 100) ** 2
        for n, when in enumerate(visits, start=1):
            tag = f"{n:02d}"
            # Patients with cancer lose some weight over the two years.
            drift = 1 - (0.06 * n / n_visits if self._primary_onset() is not None else 0)
            weight = round(weight0 * drift + rng.uniform(-0.8, 0.8), 1)
            if n == 1:
                self.add(
                    self.noise_observation(
                        self.rid("vs", tag, "height"),
                        (C.LOINC, *C.VITALS["height"][:2]),
                        "vital-signs",
                        when,
                        valueQuantity=_quantity(base["height"], "cm"),
                    )
                )
            bp = self.noise_observation(self.rid("vs", tag, "bp"), C.BLOOD_PRESSURE, "vital-signs", when)
            bp["component"] = [
                {
                    "code": _concept([C.SYSTOLIC]),
                    "valueQuantity": _quantity(round(base["systolic"] + rng.uniform(-9, 9)), "mm[Hg]"),
                },
                {
                    "code": _concept([C.DIASTOLIC]),
                    "valueQuantity": _quantity(round(base["diastolic"] + rng.uniform(-6, 6)), "mm[Hg]"),
                },
            ]
            self.add(bp)
            values = {
                "heart-rate": round(base["heart_rate"] + rng.uniform(-8, 8)),
                "respiratory-rate": rng.randint(12, 19),
                "temperature": round(rng.uniform(36.3, 37.4), 1),
                "spo2": round(min(100, base["spo2"] + rng.uniform(-1.5, 1.5))),
                "weight": weight,
                "bmi": round(weight / (base["height"] / 100) ** 2, 1),
            }
            for key, value in values.items():
                code, display, unit, _ = C.VITALS[key]
                self.add(
                    self.noise_observation(
                        self.rid("vs", tag, key),
                        (C.LOINC, code, display),
                        "vital-signs",
                        when,
                        valueQuantity=_quantity(value, unit),
                    )
                )
        lab_visits = sorted(rng.sample(range(len(visits) - 1), n_labs - 1)) + [len(visits) - 1] if n_labs else []
        panel = list(C.BASIC_PANEL) + list(self.desc.get("extra_labs") or [])
        for n, index in enumerate(lab_visits, start=1):
            drawn = visits[index] + timedelta(minutes=40)
            for key in panel:
                if key not in C.LABS:
                    raise PatientFileError(f"{self.file}: extra_labs: unknown {key!r}; known: {sorted(C.LABS)}")
                code, display, unit, ref_low, ref_high, decimals = C.LABS[key]
                low, high = self._lab_range(key)
                value = round(rng.uniform(low, high), decimals)
                res = self.noise_observation(
                    self.rid("lab", f"{n:02d}", key),
                    (C.LOINC, code, display),
                    "laboratory",
                    drawn,
                    valueQuantity=_quantity(int(value) if decimals == 0 else value, unit),
                )
                res["issued"] = self.at_ago(drawn - timedelta(hours=2))
                if key not in ("psa", "cea", "ca15-3", "hba1c"):
                    res["referenceRange"] = [{"low": _quantity(ref_low, unit), "high": _quantity(ref_high, unit)}]
                self.add(res)


# ---------------------------------------------------------------- bundles


def _now(now: datetime | None) -> datetime:
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    # Whole seconds: every instant is written to the second, so offsets stay exact.
    return now.astimezone(UTC).replace(microsecond=0)


def build_resources(patient: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """The patient's resources, Patient first, anchored at `now` (default: the current time)."""
    return _Builder(description(patient), _now(now)).build()


def _full_url(resource: dict[str, Any], base_url: str | None) -> str:
    path = f"{resource['resourceType']}/{resource['id']}"
    if base_url:
        return f"{base_url.rstrip('/')}/{path}"
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, "https://spinecds.org/sandbox/" + path))


def build_bundle(patient: str, now: datetime | None = None, base_url: str | None = None) -> dict[str, Any]:
    """A FHIR R4 transaction Bundle of the patient's resources, each entry `PUT <type>/<id>`.

    fullUrl is the resource's absolute URL on `base_url` when given (what a server expects for a
    client-assigned id), else a deterministic urn:uuid.
    """
    resources = build_resources(patient, now)
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "meta": {"tag": [dict(C.SANDBOX_TAG)]},
        "entry": [
            {
                "fullUrl": _full_url(res, base_url),
                "resource": res,
                "request": {"method": "PUT", "url": f"{res['resourceType']}/{res['id']}"},
            }
            for res in resources
        ],
    }


def build_all(now: datetime | None = None, base_url: str | None = None) -> dict[str, dict[str, Any]]:
    """Patient id -> transaction Bundle, for every sandbox patient, all anchored at the same `now`."""
    anchor = _now(now)
    return {pid: build_bundle(pid, anchor, base_url) for pid in patient_ids()}


# ---------------------------------------------------------------- expectations / INDEX.md


def sins_points(lesion: dict[str, Any]) -> tuple[int, int]:
    """(min, max) SINS total of a described lesion (missing components 0 .. their maximum)."""
    low = high = 0
    for key, prefix in C.SINS_ANSWER_PREFIX.items():
        answer = lesion.get(key)
        if answer is None:
            high += max(points for code, points in C.SINS_POINTS.items() if code.startswith(prefix))
        else:
            points = C.SINS_POINTS[answer]
            low, high = low + points, high + points
    return low, high


def describe_card(card: dict[str, Any]) -> str:
    """One expected card in reviewer words: 'mri-urgency: tier 2 (critical, 24 h)'."""
    rule, outcome = card["ruleId"], card.get("outcome")
    details = [card["indicator"]] if card.get("indicator") else []
    if rule == "mri-urgency":
        label = f"tier {outcome}"
        details.append(f"{card['deadlineHours']} h")
    else:
        label = str(outcome)
    if "hoursLeft" in card:
        hours = card["hoursLeft"]
        details.append(f"{hours} h left" if hours >= 0 else f"{-hours} h overdue")
    if "sins" in card:
        sins = card["sins"]
        details.append(f"SINS {sins['total']}" if "total" in sins else f"SINS {sins['min']}-{sins['max']}")
    for model in card.get("survival") or []:
        group = model.get("group") or " or ".join(model.get("groups") or [])
        details.append(f"{'Van der Linden' if model['model'] == 'van-der-linden' else 'Bollen'} group {group}")
    return f"{rule}: {label}" + (f" ({', '.join(details)})" if details else "")


def render_index() -> str:
    lines = [
        "# Sandbox patients",
        "",
        "Generated by `python -m sandbox.patients --write-index` from the YAML files in this folder; do",
        'not edit by hand. Times in the files are relative ("3 days ago") and become dates when the',
        "patients are built or loaded, so the clinical clocks below hold whenever you load them.",
        "Load them with `spinecds sandbox load --fhir-server URL`, then",
        "`spinecds sandbox fire --fhir-server URL --patient ID --hook patient-view`.",
        "",
        "Expected cards: what the clinical specification (sections 2-5) asks for on `patient-view`.",
        "*Also* lists supporting cards expected in the same response; *never* lists rules that must stay",
        "silent.",
        "",
        "| Patient id | File | Story | Expected cards | Also | Never |",
        "|---|---|---|---|---|---|",
    ]
    for desc in descriptions():
        expect = desc.get("expect") or {}
        cards = "<br>".join(describe_card(card) for card in expect.get("cards") or []) or "**no card**"
        story = " ".join(str(desc["story"]).split())
        lines.append(
            f"| `{ID_PREFIX}{desc['id']}` | [{desc['_file']}]({desc['_file']}) | {story} | {cards} | "
            f"{', '.join(expect.get('presentRules') or [])} | {', '.join(expect.get('absentRules') or [])} |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.patients", description=__doc__.splitlines()[0])
    parser.add_argument("--write-index", action="store_true", help=f"regenerate {INDEX_PATH}")
    args = parser.parse_args(argv)
    text = render_index()
    if args.write_index:
        INDEX_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {INDEX_PATH}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
