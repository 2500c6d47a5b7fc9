"""`GET /patient-sheets/{sheet}`: patient information sheets that cards link to.

Sheets are content, so they live with the rule that links to them; the URL is the stable name.
Unauthenticated (a patient opens them), and served with a policy that lets them use their own inline
styles and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from engine import api as engine_api

from ..operation_outcome import ApiError
from ..service_parts import ServiceParts, service_parts

PATIENT_SHEETS = {
    "alarm-symptoms": Path("alarm-symptom-education") / "patient-sheet.html",
}
router = APIRouter()


@router.get("/patient-sheets/{sheet}", response_class=HTMLResponse, include_in_schema=True)
async def patient_sheet(sheet: str, parts: ServiceParts = Depends(service_parts)) -> HTMLResponse:
    """Patient information sheets that cards link to (e.g. the Table 2 alarm symptoms)."""
    relative = PATIENT_SHEETS.get(sheet)
    path = (parts.settings.rules_dir or engine_api.RULES_DIR) / relative if relative else None
    if path is None or not path.is_file():
        raise ApiError(404, "not-found", f"unknown patient sheet '{sheet}'")
    html = path.read_text(encoding="utf-8")
    return HTMLResponse(html, headers={"Content-Security-Policy": sheet_policy(html)})


def sheet_policy(html: str) -> str:
    """A patient sheet may use its own inline <style> blocks (allowed by hash) and nothing else: no
    scripts, no external loads, no framing."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(block.encode()).digest()).decode() + "'"
        for block in re.findall(r"<style[^>]*>(.*?)</style>", html, flags=re.S | re.I)
    ]
    style_src = " ".join(hashes) or "'none'"
    return (
        f"default-src 'none'; style-src {style_src}; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
