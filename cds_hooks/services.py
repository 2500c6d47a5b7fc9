"""The service catalogue: one CDS Service per hook, described for discovery."""

from __future__ import annotations

from dataclasses import dataclass, field

from .prefetch_templates import prefetch_templates

USAGE = (
    "Adults with cancer and suspected or confirmed spinal metastases. Needs read access to the patient's "
    "Patient, Condition and Observation resources, and reads Procedure, ImagingStudy, DiagnosticReport and "
    "ServiceRequest when given (prefetch or fhirServer with fhirAuthorization)."
)


@dataclass(frozen=True)
class CdsService:
    id: str
    hook: str
    title: str
    description: str
    usage_requirements: str = USAGE
    prefetch: dict[str, str] = field(default_factory=prefetch_templates)

    def discovery_entry(self, version: str = "", rule_versions: dict[str, str] | None = None) -> dict[str, object]:
        return {
            "extension": {"spinecds": {"version": version, "rules": dict(rule_versions or {})}},
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
            "prefetch": dict(self.prefetch),
            "usageRequirements": self.usage_requirements,
        }


SERVICES: dict[str, CdsService] = {
    service.id: service
    for service in (
        CdsService(
            id="spinecds-patient-view",
            hook="patient-view",
            title="Spinal metastases guideline check",
            description=(
                "Checks the chart of a patient with cancer against the Dutch guideline on spinal metastases: "
                "urgency of MRI for red-flag symptoms, spinal cord compression timelines, spinal stability "
                "(SINS) and expected survival."
            ),
        ),
        CdsService(
            id="spinecds-order-select",
            hook="order-select",
            title="Spinal metastases order advice",
            description=(
                "Reviews selected draft orders (MRI of the spine, spine surgery referral, spinal surgery, "
                "radiotherapy) against the Dutch guideline on spinal metastases, e.g. the MRI deadline."
            ),
        ),
        CdsService(
            id="spinecds-order-sign",
            hook="order-sign",
            title="Spinal metastases order check before signing",
            description=(
                "Checks draft orders about to be signed against the Dutch guideline on spinal metastases, "
                "e.g. surgery for patients with a short expected survival."
            ),
        ),
    )
}
