"""Prefetch templates: ask the CDS client for exactly the data the rules use, nothing more.

The Observation code lists live in ONE function, `observation_code_groups()`, so they can later be
derived from the fhir_profiles ValueSets without touching the templates.
"""

from __future__ import annotations

from fhir_profiles.terminology import load_terminology

# Prefetch key -> the ValueSets (fhir_profiles/valuesets) whose Observations the rules read.
OBSERVATION_GROUPS: dict[str, tuple[str, ...]] = {
    "performanceStatus": ("kps", "ecog"),
    "pain": ("pain-nrs",),
    "sins": ("sins", "sins-component"),
    "staging": ("visceral-metastases-staging",),
}


def observation_code_groups() -> dict[str, list[tuple[str, str]]]:
    """Prefetch key -> (system, code) pairs, read from the ValueSets: a site that adds a local KPS
    code to fhir_profiles/valuesets/kps.json gets it prefetched too, with no code change."""
    terminology = load_terminology()
    groups: dict[str, list[tuple[str, str]]] = {}
    for key, concepts in OBSERVATION_GROUPS.items():
        codes: list[tuple[str, str]] = []
        for concept in concepts:
            codes.extend(code for code in terminology.codes(concept) if code not in codes)
        groups[key] = codes
    return groups


# Per-group page size: enough history for "latest and previous" values without huge Bundles.
_OBSERVATION_COUNT = 50

# Prefetch key -> (resource type, the ValueSets whose codes filter the search; () = no filter).
# Procedures: MESCC treatment (radiotherapy, surgery, systemic therapy) and spine MRIs done;
# ImagingStudy (no code search parameter in FHIR R4: all of the patient's, the engine filters) and
# DiagnosticReport: spine MRIs done; ServiceRequest: spine MRIs already ordered. Comfort-only care
# (hospice care, care of the dying, comfort measures) as a Procedure or an order.
RECORD_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "procedures": (
        "Procedure",
        (
            "spinal-surgery",
            "spinal-surgery-combined",
            "spine-radiotherapy",
            "mri-spine-done",
            "systemic-therapy",
            "comfort-care",  # hospice care delivered: the goals-of-care line on every card
        ),
    ),
    "imagingStudies": ("ImagingStudy", ()),
    "diagnosticReports": ("DiagnosticReport", ("mri-spine-done",)),
    "serviceRequests": ("ServiceRequest", ("mri-spine", "comfort-care")),  # comfort care ordered
}
_RECORD_COUNT = 100


def record_templates() -> dict[str, str]:
    terminology = load_terminology()
    templates = {}
    for key, (resource_type, concepts) in RECORD_GROUPS.items():
        codes: list[tuple[str, str]] = []
        for concept in concepts:
            codes.extend(code for code in terminology.codes(concept) if code not in codes)
        query = f"{resource_type}?patient={{{{context.patientId}}}}"
        if codes:
            query += "&code=" + ",".join(f"{system}|{code}" for system, code in codes)
        templates[key] = f"{query}&_count={_RECORD_COUNT}"
    return templates


def prefetch_templates() -> dict[str, str]:
    """The same templates serve every hook: each hook's context has patientId."""
    templates = {
        "patient": "Patient/{{context.patientId}}",
        "conditions": "Condition?patient={{context.patientId}}&_count=200",
    }
    for key, codes in observation_code_groups().items():
        token_list = ",".join(f"{system}|{code}" for system, code in codes)
        templates[key] = (
            f"Observation?patient={{{{context.patientId}}}}&code={token_list}&_sort=-date&_count={_OBSERVATION_COUNT}"
        )
    templates.update(record_templates())
    return templates
