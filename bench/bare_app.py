"""The baseline for the HTTP benchmark: a bare FastAPI endpoint that parses the same hook JSON and
answers with a response of the same shape. Anything spinecds costs beyond this is ours."""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.post("/cds-services/{service_id}")
async def bare(service_id: str, request: Request) -> JSONResponse:
    body = json.loads(await request.body())
    return JSONResponse({"cards": [], "echo": {"hook": body.get("hook"), "keys": sorted(body.get("prefetch") or {})}})
