"""`GET /cds-services`: the CDS Hooks discovery document."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from ..json_clean import strip_empty
from ..service_parts import RulesEngine, rules_engine, verified_client
from ..services import SERVICES
from ..version import SERVICE_VERSION

router = APIRouter()


@router.get("/cds-services", dependencies=[Depends(verified_client)])
async def discovery(engine: RulesEngine = Depends(rules_engine)) -> JSONResponse:
    # CDS Hooks discovery has no version member; ours rides in each service's `extension`
    # (allowed on every spec object) so integrators can see which release and rules answer them.
    rules = engine.rule_versions()
    return JSONResponse(
        strip_empty({"services": [s.discovery_entry(SERVICE_VERSION, rules) for s in SERVICES.values()]})
    )
