"""The codings only the synthetic patients use: their record's noise, plus SINS points for INDEX.md.

The clinical concepts (diagnoses, symptoms, scores, SINS, procedures) and the systems come from the
shared fixture builder, engine/fixtures/concepts.py, which reads the fhir_profiles artefacts. The
noise tables (vital signs, labs, unrelated problems, past procedures) use standard LOINC / SNOMED CT
/ ICD-10-CM codes that no rule reads. The patient files under sandbox/patients/ refer to these by
short key.
"""

from __future__ import annotations

from engine.fixtures.concepts import (  # noqa: F401 - the systems the sandbox writes, re-exported
    CLINICAL_STATUS,
    CONDITION_CATEGORY,
    COURSE_URL,
    ICD10,
    LOINC,
    OBSERVATION_CATEGORY,
    PROCEDURES,
    SF,
    SNOMED,
    UCUM,
    VERIFICATION_STATUS,
    Coding,
    symptom_names,
)

SANDBOX_TAG = {
    "system": "http://spinecds.org/fhir/CodeSystem/sandbox",
    "code": "synthetic",
    "display": "Synthetic spinecds sandbox patient",
}
MRN_SYSTEM = "http://spinecds.org/fhir/sandbox/mrn"

# The spine-findings symptom codes (the ones a patient file may name besides the SNOMED back pains).
SYMPTOMS = [name for name in symptom_names() if name not in ("low-back-pain", "backache")]

# SINS answer code -> points per Fisher 2010. Only INDEX.md and the tests use them (an oracle
# independent of the service, which computes SINS from rules/scores/sins.yaml).
SINS_POINTS: dict[str, int] = {
    "loc-junctional": 3,
    "loc-mobile": 2,
    "loc-semirigid": 1,
    "loc-rigid": 0,
    "pain-mechanical": 3,
    "pain-occasional": 1,
    "pain-free": 0,
    "lesion-lytic": 2,
    "lesion-mixed": 1,
    "lesion-blastic": 0,
    "align-subluxation": 4,
    "align-deformity": 2,
    "align-normal": 0,
    "collapse-gt50": 3,
    "collapse-lt50": 2,
    "collapse-involved-gt50": 1,
    "collapse-none": 0,
    "postero-bilateral": 3,
    "postero-unilateral": 1,
    "postero-none": 0,
}
# Component key -> its answer-code prefix, so a patient file cannot put a pain answer in location.
SINS_ANSWER_PREFIX = {
    "location": "loc-",
    "pain": "pain-",
    "lesion": "lesion-",
    "alignment": "align-",
    "collapse": "collapse-",
    "posterolateral": "postero-",
}

# ---- noise: what else a real record holds; no rule reads these ----

# Unrelated problems: key -> (SNOMED coding, ICD-10-CM coding). No ICD-10-CM code starts with C.
COMORBIDITIES: dict[str, list[Coding]] = {
    "hypertension": [(SNOMED, "38341003", "Hypertensive disorder"), (ICD10, "I10", "Essential (primary) hypertension")],
    "type-2-diabetes": [
        (SNOMED, "44054006", "Diabetes mellitus type 2"),
        (ICD10, "E11.9", "Type 2 diabetes mellitus without complications"),
    ],
    "hypercholesterolaemia": [
        (SNOMED, "13644009", "Hypercholesterolemia"),
        (ICD10, "E78.00", "Pure hypercholesterolemia, unspecified"),
    ],
    "copd": [
        (SNOMED, "13645005", "Chronic obstructive lung disease"),
        (ICD10, "J44.9", "Chronic obstructive pulmonary disease, unspecified"),
    ],
    "atrial-fibrillation": [
        (SNOMED, "49436004", "Atrial fibrillation"),
        (ICD10, "I48.91", "Unspecified atrial fibrillation"),
    ],
    "knee-osteoarthritis": [
        (SNOMED, "239873007", "Osteoarthritis of knee"),
        (ICD10, "M17.11", "Unilateral primary osteoarthritis, right knee"),
    ],
    "hypothyroidism": [(SNOMED, "40930008", "Hypothyroidism"), (ICD10, "E03.9", "Hypothyroidism, unspecified")],
    "depression": [(SNOMED, "35489007", "Depressive disorder"), (ICD10, "F32.A", "Depression, unspecified")],
    "gerd": [
        (SNOMED, "235595009", "Gastroesophageal reflux disease"),
        (ICD10, "K21.9", "Gastro-esophageal reflux disease without esophagitis"),
    ],
    "obesity": [(SNOMED, "414916001", "Obesity"), (ICD10, "E66.9", "Obesity, unspecified")],
    "asthma": [(SNOMED, "195967001", "Asthma"), (ICD10, "J45.909", "Unspecified asthma, uncomplicated")],
    "ckd-3": [
        (SNOMED, "433144002", "Chronic kidney disease stage 3"),
        (ICD10, "N18.30", "Chronic kidney disease, stage 3 unspecified"),
    ],
    "gout": [(SNOMED, "90560007", "Gout"), (ICD10, "M10.9", "Gout, unspecified")],
    "osteoporosis": [
        (SNOMED, "64859006", "Osteoporosis"),
        (ICD10, "M81.0", "Age-related osteoporosis without current pathological fracture"),
    ],
    "anxiety": [(SNOMED, "197480006", "Anxiety disorder"), (ICD10, "F41.1", "Generalized anxiety disorder")],
    "benign-prostatic-hyperplasia": [
        (SNOMED, "266569009", "Benign prostatic hyperplasia"),
        (ICD10, "N40.0", "Benign prostatic hyperplasia without lower urinary tract symptoms"),
    ],
    "migraine": [
        (SNOMED, "37796009", "Migraine"),
        (ICD10, "G43.909", "Migraine, unspecified, not intractable, without status migrainosus"),
    ],
}
# Resolved episodes sprinkled into the history (clinicalStatus resolved).
RESOLVED_EPISODES: dict[str, list[Coding]] = {
    "acute-bronchitis": [(SNOMED, "10509002", "Acute bronchitis"), (ICD10, "J20.9", "Acute bronchitis, unspecified")],
    "urinary-tract-infection": [
        (SNOMED, "68566005", "Urinary tract infectious disease"),
        (ICD10, "N39.0", "Urinary tract infection, site not specified"),
    ],
    "community-acquired-pneumonia": [
        (SNOMED, "385093006", "Community acquired pneumonia"),
        (ICD10, "J18.9", "Pneumonia, unspecified organism"),
    ],
    "ankle-sprain": [
        (SNOMED, "44465007", "Sprain of ankle"),
        (ICD10, "S93.401A", "Sprain of unspecified ligament of right ankle, initial encounter"),
    ],
    "herpes-zoster": [(SNOMED, "4740000", "Herpes zoster"), (ICD10, "B02.9", "Zoster without complications")],
}
# Past procedures unrelated to the spine.
PAST_PROCEDURES: dict[str, list[Coding]] = {
    "mastectomy": [(SNOMED, "69031006", "Excision of breast tissue")],
    "radical-prostatectomy": [(SNOMED, "26294005", "Radical prostatectomy")],
    "lobectomy": [(SNOMED, "173171007", "Lobectomy of lung")],
    "nephrectomy": [(SNOMED, "108022006", "Nephrectomy")],
    "thyroidectomy": [(SNOMED, "13619001", "Thyroidectomy")],
    "cholecystectomy": [(SNOMED, "38102005", "Cholecystectomy")],
    "appendectomy": [(SNOMED, "80146002", "Appendectomy")],
    "cataract-surgery": [(SNOMED, "110473004", "Cataract surgery")],
    "colonoscopy": [(SNOMED, "73761001", "Colonoscopy")],
}

# Vital signs: key -> (LOINC code, display, UCUM unit, display unit).
VITALS: dict[str, tuple[str, str, str, str]] = {
    "heart-rate": ("8867-4", "Heart rate", "/min", "beats/minute"),
    "respiratory-rate": ("9279-1", "Respiratory rate", "/min", "breaths/minute"),
    "temperature": ("8310-5", "Body temperature", "Cel", "C"),
    "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", "%"),
    "weight": ("29463-7", "Body weight", "kg", "kg"),
    "height": ("8302-2", "Body height", "cm", "cm"),
    "bmi": ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", "kg/m2"),
}
BLOOD_PRESSURE: Coding = (LOINC, "85354-9", "Blood pressure panel with all children optional")
SYSTOLIC: Coding = (LOINC, "8480-6", "Systolic blood pressure")
DIASTOLIC: Coding = (LOINC, "8462-4", "Diastolic blood pressure")

# Labs: key -> (LOINC code, display, UCUM unit, typical low, typical high, decimals).
LABS: dict[str, tuple[str, str, str, float, float, int]] = {
    "haemoglobin": ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 11.5, 15.5, 1),
    "leukocytes": ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 4.0, 10.0, 1),
    "platelets": ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 160, 380, 0),
    "sodium": ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 136, 144, 0),
    "potassium": ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.6, 4.9, 1),
    "creatinine": ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.1, 2),
    "egfr": (
        "62238-1",
        "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood"
        " by Creatinine-based formula (CKD-EPI)",
        "mL/min/{1.73_m2}",
        65,
        100,
        0,
    ),
    "calcium": ("17861-6", "Calcium [Mass/volume] in Serum or Plasma", "mg/dL", 8.7, 10.1, 1),
    "albumin": ("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL", 3.6, 4.8, 1),
    "alkaline-phosphatase": (
        "6768-6",
        "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma",
        "U/L",
        45,
        115,
        0,
    ),
    "alt": ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 10, 40, 0),
    "glucose": ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 75, 110, 0),
    "crp": ("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L", 0.5, 8, 1),
    "hba1c": ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 6.6, 7.8, 1),
    "psa": ("2857-1", "Prostate specific Ag [Mass/volume] in Serum or Plasma", "ng/mL", 4, 60, 1),
    "cea": ("2039-6", "Carcinoembryonic Ag [Mass/volume] in Serum or Plasma", "ng/mL", 2, 40, 1),
    "ca15-3": ("6875-9", "Cancer Ag 15-3 [Units/volume] in Serum or Plasma", "U/mL", 20, 120, 0),
}
BASIC_PANEL = (
    "haemoglobin",
    "leukocytes",
    "platelets",
    "sodium",
    "potassium",
    "creatinine",
    "egfr",
    "calcium",
    "albumin",
    "alkaline-phosphatase",
    "alt",
    "glucose",
    "crp",
)


def noise_codings() -> set[tuple[str, str]]:
    """(system, code) of every coding the rules do not read: the noise tables plus the standard
    codes written next to an SF code (SNOMED radiotherapy). The tests accept these besides the ValueSets."""
    found: set[tuple[str, str]] = set()
    for table in (COMORBIDITIES, RESOLVED_EPISODES, PAST_PROCEDURES):
        for codings in table.values():
            found.update((system, code) for system, code, _ in codings)
    for concept in PROCEDURES.values():
        found.update((system, code) for system, code, _ in concept.extra)
    found.update((LOINC, code) for code, *_ in VITALS.values())
    found.update((LOINC, code) for code, *_ in LABS.values())
    found.update({(BLOOD_PRESSURE[0], BLOOD_PRESSURE[1]), (SYSTOLIC[0], SYSTOLIC[1]), (DIASTOLIC[0], DIASTOLIC[1])})
    return found
