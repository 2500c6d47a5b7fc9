"""Write the assessment Questionnaires (FHIR R4, SDC style) into fhir_profiles/questionnaires/.

The answer lists come from the spine-findings CodeSystem, the ValueSets and the SINS score table, so
the forms can never offer a code the engine does not read. Run after changing any of those:

    .venv/bin/python -m tools.make_questionnaires

tests/test_questionnaires.py fails when the committed files differ from what this writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "fhir_profiles" / "questionnaires"
SF = "http://spinecds.org/fhir/CodeSystem/spine-findings"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
Q_URL = "http://spinecds.org/fhir/Questionnaire/"
SD = "http://spinecds.org/fhir/StructureDefinition/"
ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
CALCULATED = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
EXTRACT_CONTEXT = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-itemExtractionContext"
HIDDEN = "http://hl7.org/fhir/StructureDefinition/questionnaire-hidden"
CONTROL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
SDC_PROFILE = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-extr-defn"
YES_NO = "http://terminology.hl7.org/CodeSystem/v2-0136"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"

# Vertebral levels a lesion can sit at (bodySite.text of the SINS Observation).
LEVELS = (
    ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]
    + [f"T{n}" for n in range(1, 13)]
    + [f"L{n}" for n in range(1, 6)]
    + [f"S{n}" for n in range(1, 6)]
)
SIDES = [("7771000", "Left"), ("24028007", "Right"), ("51440002", "Right and left")]
ECOG_BANDS = {0: "90-100", 1: "70-80", 2: "50-60", 3: "30-40", 4: "10-20"}
# LOINC answer list LL529-9 of 89247-1 (the codes mCODE uses); ECOG 5 (dead) is not offered.
ECOG_LOINC = {0: "LA9622-7", 1: "LA9623-5", 2: "LA9624-3", 3: "LA9625-0", 4: "LA9626-8"}
ECOG_TEXT = {
    0: "Fully active",
    1: "Restricted in strenuous activity, ambulatory",
    2: "Ambulatory, capable of self-care, unable to work",
    3: "Capable of only limited self-care",
    4: "Completely disabled",
}


def _symptoms(display: dict[str, str]) -> list[str]:
    """The alarm symptoms, in the order of the `symptom` ValueSet (one part ValueSet per symptom)."""
    data = json.loads((ROOT / "fhir_profiles" / "valuesets" / "symptom.json").read_text())
    prefix = "http://spinecds.org/fhir/ValueSet/symptom-"
    codes = [url.removeprefix(prefix) for include in data["compose"]["include"] for url in include["valueSet"]]
    return [code for code in codes if code in display]


def _sf_display() -> dict[str, str]:
    data = json.loads((ROOT / "fhir_profiles" / "codesystems" / "spine-findings.json").read_text())
    return {c["code"]: c["display"] for c in data["concept"]}


def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"system": system, "code": code, "display": display}


def _base(qid: str, title: str, description: str, subject: str = "Patient") -> dict[str, Any]:
    return {
        "resourceType": "Questionnaire",
        "id": qid,
        "meta": {"profile": [SDC_PROFILE]},
        "url": Q_URL + qid,
        "version": "1.0.0",
        "name": "".join(part.title() for part in qid.split("-")),
        "title": title,
        "status": "active",
        "experimental": False,
        "subjectType": [subject],
        "publisher": "spinecds",
        "description": description,
    }


def _expression(text: str, language: str = "text/fhirpath") -> dict[str, Any]:
    return {"language": language, "expression": text}


def sins(display: dict[str, str]) -> dict[str, Any]:
    table = yaml.safe_load((ROOT / "rules" / "scores" / "sins.yaml").read_text())
    components = []
    for comp in table["components"]:
        code = comp["code"]
        components.append(
            {
                "linkId": comp["id"],
                "definition": f"{SD}spinecds-sins-observation#Observation.component:{comp['id']}.value[x]",
                "code": [_coding(SF, code, display[code])],
                "text": display[code].removeprefix("SINS ").capitalize(),
                "type": "choice",
                "required": False,
                "answerOption": [
                    {
                        "valueCoding": {
                            "system": SF,
                            "code": answer,
                            "display": display[answer],
                            "extension": [{"url": ORDINAL, "valueDecimal": points}],
                        }
                    }
                    for answer, points in comp["points"].items()
                ],
            }
        )
    links = " | ".join(f"'{c['linkId']}'" for c in components)
    scored = f"%context.item.where(linkId in ({links})).answer.value"
    answers = f"iif({scored}.count() = 6, {scored}.extension('{ORDINAL}').value.sum(), {{}})"
    bands = ", ".join(f"{b['min']}-{b['max']} {b['label']}" for b in table["bands"])
    return {
        **_base(
            "spinecds-sins",
            "Spinal Instability Neoplastic Score (SINS), per lesion",
            "One group per spinal lesion: the vertebral level and the six SINS components. Extracted to one"
            " Observation per lesion (profile spinecds-sins-observation): code SF sins, bodySite.text = the level,"
            " one component per answered item, valueInteger = the total only when all six are answered."
            f" Categories: {bands}.",
        ),
        "code": [_coding(SF, "sins", display["sins"])],
        "item": [
            {
                "linkId": "lesion",
                "text": "Lesion",
                "type": "group",
                "repeats": True,
                "definition": f"{SD}spinecds-sins-observation",
                "extension": [{"url": EXTRACT_CONTEXT, "valueCode": "Observation"}],
                "item": [
                    {
                        "linkId": "level",
                        "definition": f"{SD}spinecds-sins-observation#Observation.bodySite.text",
                        "text": "Vertebral level",
                        "type": "choice",
                        "required": True,
                        "answerOption": [{"valueString": level} for level in LEVELS],
                    },
                    *components,
                    {
                        "linkId": "total",
                        "definition": f"{SD}spinecds-sins-observation#Observation.value[x]",
                        "text": "SINS total (0-18)",
                        "type": "integer",
                        "readOnly": True,
                        "extension": [{"url": CALCULATED, "valueExpression": _expression(answers)}],
                    },
                    {
                        "linkId": "category",
                        "text": "Category",
                        "type": "string",
                        "readOnly": True,
                        "extension": [
                            {
                                "url": CALCULATED,
                                "valueExpression": _expression(
                                    "%context.item.where(linkId='total').answer.value.select(iif($this <= 6,"
                                    " 'stable', iif($this <= 12, 'potentially unstable', 'unstable')))"
                                ),
                            }
                        ],
                    },
                ],
            }
        ],
    }


def performance() -> dict[str, Any]:
    return {
        **_base(
            "spinecds-performance-status",
            "Performance status (KPS or ECOG)",
            "The Karnofsky performance status, or the ECOG grade when no KPS is known (its conventional KPS band"
            " is shown). Extracted to an Observation with LOINC 89243-0 (profile spinecds-kps-observation) or"
            " 89247-1 (profile spinecds-ecog-observation).",
        ),
        "item": [
            {
                "linkId": "scale",
                "text": "Scale",
                "type": "choice",
                "required": True,
                "answerOption": [
                    {"valueCoding": _coding(LOINC, "89243-0", "Karnofsky Performance Status (KPS)")},
                    {"valueCoding": _coding(LOINC, "89247-1", "ECOG performance status")},
                ],
            },
            {
                "linkId": "kps",
                "definition": f"{SD}spinecds-kps-observation#Observation.value[x]",
                "code": [_coding(LOINC, "89243-0", "Karnofsky Performance Status score")],
                "text": "KPS (0-100, in steps of 10)",
                "type": "integer",
                "enableWhen": [
                    {"question": "scale", "operator": "=", "answerCoding": {"system": LOINC, "code": "89243-0"}}
                ],
                "extension": [
                    {"url": MIN_VALUE, "valueInteger": 0},
                    {"url": MAX_VALUE, "valueInteger": 100},
                ],
            },
            {
                "linkId": "ecog",
                "definition": f"{SD}spinecds-ecog-observation#Observation.value[x]",
                "code": [_coding(LOINC, "89247-1", "ECOG Performance Status score")],
                "text": "ECOG grade",
                "type": "choice",
                "enableWhen": [
                    {"question": "scale", "operator": "=", "answerCoding": {"system": LOINC, "code": "89247-1"}}
                ],
                "answerOption": [
                    {
                        "valueCoding": {
                            "system": LOINC,
                            "code": ECOG_LOINC[grade],
                            "display": f"{grade}: {ECOG_TEXT[grade]} (KPS band {band})",
                            "extension": [{"url": ORDINAL, "valueDecimal": grade}],
                        }
                    }
                    for grade, band in ECOG_BANDS.items()
                ],
            },
        ],
    }


def _yes_no_unknown(link: str, text: str) -> dict[str, Any]:
    return {
        "linkId": link,
        "text": text,
        "type": "choice",
        "required": True,
        "extension": [{"url": CONTROL, "valueCodeableConcept": {"coding": [{"code": "radio-button"}]}}],
        "answerOption": [
            {"valueCoding": _coding(YES_NO, "Y", "Present")},
            {"valueCoding": _coding(YES_NO, "N", "Absent")},
            {"valueCoding": _coding(NULL_FLAVOR, "UNK", "Unknown")},
        ],
    }


def staging(display: dict[str, str]) -> dict[str, Any]:
    return {
        **_base(
            "spinecds-staging",
            "Staging: visceral and brain metastases",
            "Present, absent or unknown for each. Extracted to one staging Observation (SF visceral-metastases,"
            " valueBoolean) only when the answers decide it: any present -> true, both absent -> false; otherwise"
            " nothing is written and the status stays unknown (read both ways by the survival models).",
        ),
        "code": [_coding(SF, "visceral-metastases", display["visceral-metastases"])],
        "item": [
            _yes_no_unknown("visceral", "Visceral metastases (lung, liver, pleura, peritoneum, adrenal, kidney...)"),
            _yes_no_unknown("brain", "Brain metastases"),
        ],
    }


def red_flags(display: dict[str, str]) -> dict[str, Any]:
    return {
        **_base(
            "spinecds-red-flags",
            "Red-flag symptoms (alarm symptoms of spinal metastases)",
            "One group per symptom: which symptom, the side, the course and the onset. Extracted to one"
            " Condition per symptom (profile spinecds-symptom-condition): code SF <symptom>, bodySite = the side,"
            " the symptom-course extension, onsetDateTime. An unknown side, course or onset is left out and read"
            " the urgent way (bilateral, progressive, within 7 days). A group pre-filled from a recorded symptom"
            " carries its reference (hidden item `existing`): that Condition is updated, not duplicated.",
        ),
        "item": [
            {
                "linkId": "symptom",
                "text": "Symptom",
                "type": "group",
                "repeats": True,
                "definition": f"{SD}spinecds-symptom-condition",
                "extension": [{"url": EXTRACT_CONTEXT, "valueCode": "Condition"}],
                "item": [
                    {
                        "linkId": "existing",
                        "text": "Recorded symptom being completed",
                        "type": "reference",
                        "readOnly": True,
                        "extension": [{"url": HIDDEN, "valueBoolean": True}],
                    },
                    {
                        "linkId": "code",
                        "definition": f"{SD}spinecds-symptom-condition#Condition.code",
                        "text": "Symptom",
                        "type": "choice",
                        "required": True,
                        "answerOption": [
                            {"valueCoding": _coding(SF, code, display[code])} for code in _symptoms(display)
                        ],
                    },
                    {
                        "linkId": "side",
                        "definition": f"{SD}spinecds-symptom-condition#Condition.bodySite",
                        "text": "Side",
                        "type": "choice",
                        "answerOption": [{"valueCoding": _coding(SNOMED, code, text)} for code, text in SIDES]
                        + [{"valueCoding": _coding(NULL_FLAVOR, "UNK", "Unknown")}],
                    },
                    {
                        "linkId": "course",
                        "definition": f"{SD}symptom-course#Extension.value[x]",
                        "text": "Course",
                        "type": "choice",
                        "answerOption": [
                            {"valueCoding": _coding(SF, code, display[code])}
                            for code in ("progressive", "stable", "improving")
                        ]
                        + [{"valueCoding": _coding(NULL_FLAVOR, "UNK", "Unknown")}],
                    },
                    {
                        "linkId": "onset",
                        "definition": f"{SD}spinecds-symptom-condition#Condition.onset[x]",
                        "text": "Onset (date)",
                        "type": "date",
                    },
                ],
            }
        ],
    }


def build_all() -> dict[str, dict[str, Any]]:
    display = _sf_display()
    items = [sins(display), performance(), staging(display), red_flags(display)]
    return {q["id"]: q for q in items}


def render(questionnaire: dict[str, Any]) -> str:
    return json.dumps(questionnaire, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for qid, questionnaire in build_all().items():
        (OUT / f"{qid}.json").write_text(render(questionnaire), encoding="utf-8")
        print(f"wrote {OUT / qid}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
