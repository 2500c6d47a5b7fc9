"""Prefetch templates: ask the CDS client for exactly the data the rules use, nothing more.

The Observation code lists live in ONE function, `observation_code_groups()`, so they can later be
derived from the fhir_profiles ValueSets without touching the templates.
"""

from __future__ import annotations

LOINC = "http://loinc.org"
SPINE_FINDINGS = "http://spinecds.org/fhir/CodeSystem/spine-findings"

SINS_CODES = (
    "sins", "sins-location", "sins-pain", "sins-bone-lesion", "sins-alignment", "sins-collapse",
    "sins-posterolateral",
)


def observation_code_groups() -> dict[str, list[tuple[str, str]]]:
    """Prefetch key -> (system, code) pairs of the Observations the rules read (clinical-spec 1)."""
    return {
        "performanceStatus": [(LOINC, "89243-0"), (LOINC, "89247-1")],   # Karnofsky, ECOG
        "pain": [(LOINC, "72514-3")],                                      # pain severity NRS
        "sins": [(SPINE_FINDINGS, code) for code in SINS_CODES],
        "staging": [(SPINE_FINDINGS, "visceral-metastases")],
    }


# Per-group page size: enough history for "latest and previous" values without huge Bundles.
_OBSERVATION_COUNT = 50


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
    return templates
