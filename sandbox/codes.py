"""Every coding the synthetic patients use, in one place.

Clinical concepts spell the codes of clinical-spec section 1 exactly; the noise tables (vital
signs, labs, unrelated problems, past procedures) use standard LOINC / SNOMED CT / ICD-10-CM codes
that no rule reads. The patient files under sandbox/patients/ refer to these by short key.
"""

from __future__ import annotations

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
WHO_ICD10 = "http://hl7.org/fhir/sid/icd-10"
# Short names a patient file may use for the code systems EHRs send (charts coded "the real way").
SYSTEM_ALIASES = {"sct": "http://snomed.info/sct", "icd10cm": ICD10, "icd10": WHO_ICD10, "loinc": "http://loinc.org"}
MCODE_PROFILES = {
    "primary-cancer": "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-primary-cancer-condition",
    "secondary-cancer": "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-secondary-cancer-condition",
    "kps": "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-karnofsky-performance-status",
    "ecog": "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-ecog-performance-status",
}
MCODE_HISTOLOGY_URL = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-histology-morphology-behavior"
SF = "http://spinecds.org/fhir/CodeSystem/spine-findings"
COURSE_URL = "http://spinecds.org/fhir/StructureDefinition/symptom-course"
CLINICAL_STATUS = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
SANDBOX_TAG = {
    "system": "http://spinecds.org/fhir/CodeSystem/sandbox",
    "code": "synthetic",
    "display": "Synthetic spinecds sandbox patient",
}
MRN_SYSTEM = "http://spinecds.org/fhir/sandbox/mrn"

Coding = tuple[str, str, str]  # system, code, display

# Diagnoses the rules read (clinical-spec section 1, "Diagnoses"). Key -> codings (first is primary).
DIAGNOSES: dict[str, list[Coding]] = {
    "breast-cancer": [
        (ICD10, "C50.911", "Malignant neoplasm of unspecified site of right female breast"),
        (SNOMED, "254837009", "Malignant neoplasm of breast"),
    ],
    "breast-cancer-left": [(ICD10, "C50.912", "Malignant neoplasm of unspecified site of left female breast")],
    "prostate-cancer": [
        (ICD10, "C61", "Malignant neoplasm of prostate"),
        (SNOMED, "399068003", "Malignant tumor of prostate"),
    ],
    "lung-cancer": [
        (ICD10, "C34.11", "Malignant neoplasm of upper lobe, right bronchus or lung"),
        (SNOMED, "363358000", "Malignant tumor of lung"),
    ],
    "lung-cancer-lower-left": [(ICD10, "C34.32", "Malignant neoplasm of lower lobe, left bronchus or lung")],
    "kidney-cancer": [
        (ICD10, "C64.1", "Malignant neoplasm of right kidney, except renal pelvis"),
        (SNOMED, "363518003", "Malignant tumor of kidney"),
    ],
    "thyroid-cancer": [
        (ICD10, "C73", "Malignant neoplasm of thyroid gland"),
        (SNOMED, "363478007", "Malignant tumor of thyroid gland"),
    ],
    "multiple-myeloma": [
        (ICD10, "C90.00", "Multiple myeloma not having achieved remission"),
        (SNOMED, "109989006", "Multiple myeloma"),
    ],
    "lymphoma": [
        (ICD10, "C83.38", "Diffuse large B-cell lymphoma, lymph nodes of multiple sites"),
        (SNOMED, "118600007", "Malignant lymphoma"),
    ],
    "bone-metastasis": [
        (ICD10, "C79.51", "Secondary malignant neoplasm of bone"),
        (SNOMED, "94222008", "Secondary malignant neoplasm of bone"),
    ],
    "liver-metastasis": [
        (ICD10, "C78.7", "Secondary malignant neoplasm of liver and intrahepatic bile duct"),
        (SNOMED, "94381002", "Secondary malignant neoplasm of liver"),
    ],
    "lung-metastasis": [
        (ICD10, "C78.00", "Secondary malignant neoplasm of unspecified lung"),
        (SNOMED, "94391008", "Secondary malignant neoplasm of lung"),
    ],
    "brain-metastasis": [
        (ICD10, "C79.31", "Secondary malignant neoplasm of brain"),
        (SNOMED, "94225005", "Secondary malignant neoplasm of brain"),
    ],
    "mescc": [(ICD10, "G95.20", "Unspecified cord compression")],
}

# Symptom findings (clinical-spec section 1, "Symptoms"): SF code -> display.
SYMPTOMS: dict[str, str] = {
    "local-back-pain": "New or increasing back or neck pain, local only",
    "interscapular-pain": "Pain between or just below the shoulder blades",
    "nocturnal-back-pain": "Back pain lying down that eases sitting up",
    "radiating-pain": "Band-like pain radiating to stomach, chest, arms or legs",
    "radicular-pain": "Radicular pain",
    "radicular-deficit": "Radicular motor or sensory deficit",
    "lhermitte-sign": "Lhermitte's sign",
    "leg-weakness": "Decreased strength in the legs",
    "limb-control-difficulty": "Difficulty controlling the legs",
    "unsteady-gait": "Very wobbly gait",
    "sensory-level": "Numbness or tingling radiating down from chest, abdomen, groin or legs",
    "unable-to-walk": "Unable to walk or stand, legs give way",
}
# SNOMED codes the spec also accepts as local back pain.
SNOMED_BACK_PAIN: dict[str, Coding] = {
    "low-back-pain": (SNOMED, "279039007", "Low back pain"),
    "backache": (SNOMED, "161891005", "Backache"),
}

SIDES: dict[str, Coding] = {
    "left": (SNOMED, "7771000", "Left"),
    "right": (SNOMED, "24028007", "Right"),
    "bilateral": (SNOMED, "51440002", "Right and left"),
}
COURSES = ("progressive", "stable", "improving")

KPS: Coding = (LOINC, "89243-0", "Karnofsky Performance Status score")
ECOG: Coding = (LOINC, "89247-1", "ECOG Performance Status score")
PAIN_NRS: Coding = (LOINC, "72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported")
VISCERAL_STAGING: Coding = (SF, "visceral-metastases", "Visceral or brain metastases present")
SINS: Coding = (SF, "sins", "Spinal Instability Neoplastic Score")

# SINS component key (as written in the patient files) -> SF component code, display.
SINS_COMPONENTS: dict[str, tuple[str, str]] = {
    "location": ("sins-location", "SINS location"),
    "pain": ("sins-pain", "SINS pain"),
    "lesion": ("sins-bone-lesion", "SINS bone lesion"),
    "alignment": ("sins-alignment", "SINS radiographic spinal alignment"),
    "collapse": ("sins-collapse", "SINS vertebral body collapse"),
    "posterolateral": ("sins-posterolateral", "SINS posterolateral involvement of spinal elements"),
}
# SF answer code -> (points per Fisher 2010, display). Points only fill INDEX.md and the tests;
# the service computes SINS from its own score table.
SINS_ANSWERS: dict[str, tuple[int, str]] = {
    "loc-junctional": (3, "Junctional (occiput-C2, C7-T2, T11-L1, L5-S1)"),
    "loc-mobile": (2, "Mobile spine (C3-C6, L2-L4)"),
    "loc-semirigid": (1, "Semi-rigid (T3-T10)"),
    "loc-rigid": (0, "Rigid (S2-S5)"),
    "pain-mechanical": (3, "Mechanical pain"),
    "pain-occasional": (1, "Occasional pain, not mechanical"),
    "pain-free": (0, "Pain-free lesion"),
    "lesion-lytic": (2, "Lytic"),
    "lesion-mixed": (1, "Mixed lytic/blastic"),
    "lesion-blastic": (0, "Blastic"),
    "align-subluxation": (4, "Subluxation or translation present"),
    "align-deformity": (2, "De novo deformity (kyphosis or scoliosis)"),
    "align-normal": (0, "Normal alignment"),
    "collapse-gt50": (3, "More than 50% collapse"),
    "collapse-lt50": (2, "Less than 50% collapse"),
    "collapse-involved-gt50": (1, "No collapse with more than 50% of the body involved"),
    "collapse-none": (0, "None of the above"),
    "postero-bilateral": (3, "Bilateral"),
    "postero-unilateral": (1, "Unilateral"),
    "postero-none": (0, "None of the above"),
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

# Procedures that matter clinically (prior radiotherapy of the spine: clinical-spec orders table).
PROCEDURES: dict[str, list[Coding]] = {
    "spine-radiotherapy": [
        (SF, "spine-radiotherapy", "Radiotherapy of the spine"),
        (SNOMED, "108290001", "Radiation oncology AND/OR radiotherapy"),
    ],
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
    """(system, code) of every coding outside clinical-spec section 1: the noise tables plus the standard
    codes written next to an SF code (SNOMED radiotherapy). The tests accept these besides the spec."""
    found: set[tuple[str, str]] = set()
    for table in (COMORBIDITIES, RESOLVED_EPISODES, PAST_PROCEDURES, PROCEDURES):
        for codings in table.values():
            found.update((system, code) for system, code, _ in codings)
    found.update((LOINC, code) for code, *_ in VITALS.values())
    found.update((LOINC, code) for code, *_ in LABS.values())
    found.update({(BLOOD_PRESSURE[0], BLOOD_PRESSURE[1]), (SYSTOLIC[0], SYSTOLIC[1]), (DIASTOLIC[0], DIASTOLIC[1])})
    return found
