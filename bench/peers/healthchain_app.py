"""The peer for the HTTP benchmark: a HealthChain CDS Hooks service (PyPI `healthchain`) with one
patient-view hook that scans the prefetch and answers one card.

It is what a Python team would write instead of spinecds with the framework's defaults
(HealthChainAPI: CORS and event dispatch on, pydantic CDSRequest/CDSResponse models), minus the
guideline: no FHIR validation, no rules engine, no audit. It runs in bench/.peers-venv (made by
`make bench-peers`), because healthchain pins its own fhir.resources.

    bench/.peers-venv/bin/python -m uvicorn bench.peers.healthchain_app:app --port 8001
    POST /cds-services/spinecds-patient-view  (the same path and body as spinecds)
"""

from __future__ import annotations

from typing import Any

from healthchain.gateway import CDSHooksService, HealthChainAPI
from healthchain.gateway.cds import CDSHooksConfig
from healthchain.models.requests.cdsrequest import CDSRequest
from healthchain.models.responses.cdsresponse import CDSResponse

SPINAL_METASTASIS = "C79.51"

app = HealthChainAPI(title="HealthChain peer")
# base_path "" so the hook answers at the same URL as spinecds's.
cds = CDSHooksService(config=CDSHooksConfig(base_path=""))


def _resources(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") == "Bundle":
        return [e["resource"] for e in value.get("entry") or () if isinstance(e, dict) and "resource" in e]
    return [value]


@cds.hook("patient-view", id="spinecds-patient-view", title="Spinal metastases (peer)")
def patient_view(request: CDSRequest) -> CDSResponse:
    # Scan every prefetched resource once (what any hook has to do to find its data).
    seen = 0
    metastasis = False
    for value in (request.prefetch or {}).values():
        for resource in _resources(value):
            seen += 1
            if resource.get("resourceType") == "Condition":
                for coding in (resource.get("code") or {}).get("coding") or ():
                    metastasis = metastasis or coding.get("code") == SPINAL_METASTASIS
    return CDSResponse(
        cards=[
            {
                "summary": "Spinal metastasis on record" if metastasis else "No spinal metastasis on record",
                "indicator": "warning" if metastasis else "info",
                "detail": f"{seen} prefetched resources scanned.",
                "source": {"label": "HealthChain peer"},
            }
        ]
    )


app.register_service(cds)
