"""Who counts as "with cancer", which metastasis is spinal, and when a cord compression is MESCC.

- With cancer: a malignancy Condition not refuted or entered-in-error, any clinicalStatus, except
  non-melanoma skin cancer (ValueSet ``malignancy-excluded``) when that is all it is; or a MESCC
  coded as such (SF ``mescc``, metastatic by definition) or a spinal metastasis, even without a
  malignancy code.
- Spinal metastasis: a bone-metastasis code whose bodySite is absent or in the vertebral column
  (ValueSet ``vertebral-column-site``); with another bodySite it is a bone metastasis elsewhere.
- A generic cord/cauda compression code (ValueSet ``cord-compression-generic``) is MESCC only in a
  patient with cancer; otherwise it is reported under data quality and gives no MESCC card.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.parse import CONDITION_VERIFICATION, Entry, Parsed, status_code
from fhir_profiles.terminology import Terminology

EXCLUDED = frozenset({"refuted", "entered-in-error"})
CANCER_CODE_CONCEPTS = frozenset(
    {
        "malignancy",
        "secondary-malignancy",
        "visceral-metastasis",
        "primary-breast",
        "primary-prostate",
        "primary-lung",
        "primary-kidney",
        "primary-thyroid",
        "primary-germ-cell",
        "primary-unknown",
        "myeloma",
        "lymphoma",
    }
)


@dataclass
class CancerFacts:
    cancer: list[Entry] = field(default_factory=list)  # the Conditions that make the patient "with cancer"
    spinal_metastases: list[Entry] = field(default_factory=list)
    bone_elsewhere: list[Entry] = field(default_factory=list)
    mescc: list[Entry] = field(default_factory=list)  # MESCC Conditions that count (SF code, or generic with cancer)
    unexplained_compression: list[Entry] = field(default_factory=list)  # generic code, no cancer
    primaries: list[Entry] = field(default_factory=list)  # malignancies that name a primary (not C80, not secondary)


def _excluded(entry: Entry) -> bool:
    return status_code(entry.model.verificationStatus, CONDITION_VERIFICATION)[0] in EXCLUDED


def _only_skin(entry: Entry, term: Terminology) -> bool:
    """Every malignancy coding of the Condition is non-melanoma skin cancer."""
    malignant = [c for c in entry.model.code.coding or () if term.concepts([c]) & CANCER_CODE_CONCEPTS]
    return bool(malignant) and all("malignancy-excluded" in term.concepts([c]) for c in malignant)


def _spinal_site(entry: Entry, term: Terminology) -> bool | None:
    """True: a coded bodySite in the vertebral column; False: only coded sites elsewhere; None: no
    coded site (absent, or text only such as "L2": not read as "elsewhere", which would hide cards)."""
    coded = [site for site in entry.model.bodySite or [] if site.coding]
    if not coded:
        return None
    return any("vertebral-column-site" in term.concepts(site.coding) for site in coded)


def _specific_mescc(entry: Entry, term: Terminology) -> bool:
    """A MESCC coding that is not one of the generic cord/cauda compression codes."""
    return any(
        "mescc" in (found := term.concepts([c])) and "cord-compression-generic" not in found
        for c in entry.model.code.coding or ()
    )


def cancer_facts(parsed: Parsed, term: Terminology) -> CancerFacts:
    out = CancerFacts()
    for entry in parsed.conditions:
        if _excluded(entry):
            continue
        if "spinal-metastasis" in entry.concepts:
            (out.bone_elsewhere if _spinal_site(entry, term) is False else out.spinal_metastases).append(entry)
    malignant = [
        e
        for e in parsed.conditions
        if e.concepts & CANCER_CODE_CONCEPTS and not _excluded(e) and not _only_skin(e, term)
    ]
    specific = [e for e in parsed.conditions if "mescc" in e.concepts and not _excluded(e) and _specific_mescc(e, term)]
    not_primary = {"secondary-malignancy", "visceral-metastasis", "spinal-metastasis", "primary-unknown"}
    out.primaries = [e for e in malignant if not e.concepts & not_primary]
    out.cancer = malignant + [e for e in out.spinal_metastases if e not in malignant] + specific
    generic = [
        e for e in parsed.conditions if "mescc" in e.concepts and not _excluded(e) and not _specific_mescc(e, term)
    ]
    out.mescc = specific + (generic if out.cancer else [])
    if not out.cancer:
        out.unexplained_compression = generic
    return out
